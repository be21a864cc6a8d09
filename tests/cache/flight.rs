//! One download however many clients ask, streamed while it downloads; `Range` on a miss.

use std::time::Duration;

use crate::common::*;
use crate::kit::*;

/// A client's `apt-get update`, by hand: InRelease and the amd64 Packages through the cache,
/// so the cache knows the pool files.
fn update(edge: &Edge) {
    assert_eq!(edge.get("dists/stable/InRelease", &[]).status, 200);
    let got = edge.get("dists/stable/main/binary-amd64/Packages.xz", &[]);
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
}

#[test]
fn hundred_concurrent_downloads_are_one_upstream_request() {
    let edge = Edge::start(|_| {}, "");
    update(&edge);
    // Slow enough that every client asks while the download runs.
    edge.up().add_fault(FaultRule::suffix(
        "/big_2.0-1_amd64.deb",
        Fault::Drip {
            chunk: 64 * 1024,
            every: Duration::from_millis(20),
        },
    ));
    let url = format!("{}{BIG}", edge.url());
    let results = rt().block_on(async {
        let client = client();
        let all = (0..100).map(|_| fetch(&client, &url, &[]));
        futures_util::future::join_all(all).await
    });
    let want = edge.archive.read(BIG);
    for got in &results {
        assert_eq!(got.status, 200);
        assert!(!got.broken && got.body == want, "a client got other bytes");
    }
    assert_eq!(
        edge.upstream_hits("/big_2.0-1_amd64.deb"),
        1,
        "one upstream GET"
    );
    let joined = results.iter().filter(|g| g.cache() == "MISS").count();
    assert!(
        joined >= 50,
        "only {joined} of 100 joined the download in flight"
    );
    let coalesced = edge
        .metric(&format!(
            "debsync_cache_coalesced_total{{cache=\"{CACHE}\"}}"
        ))
        .unwrap();
    assert_eq!(coalesced as usize, joined - 1);
    assert_eq!(edge.stored().get(BIG), Some(&sha256_hex(&want)));
}

#[test]
fn first_bytes_reach_the_client_while_the_file_downloads() {
    let edge = Edge::start(|_| {}, "");
    update(&edge);
    edge.up().add_fault(FaultRule::suffix(
        "/big_2.0-1_amd64.deb",
        Fault::Drip {
            chunk: 64 * 1024,
            every: Duration::from_millis(60),
        },
    ));
    let url = format!("{}{BIG}", edge.url());
    let final_name = edge.tree().join(BIG);
    let (early, rest) = rt().block_on(async {
        use futures_util::StreamExt;
        let resp = client().get(&url).send().await.unwrap();
        assert_eq!(resp.headers()["x-debsync-cache"], "MISS");
        let mut stream = resp.bytes_stream();
        let first = stream.next().await.unwrap().unwrap();
        // The download is not finished (it takes about 3 s): nothing under the final name.
        let early = (first.len(), final_name.exists());
        let mut rest = first.to_vec();
        while let Some(chunk) = stream.next().await {
            rest.extend_from_slice(&chunk.unwrap());
        }
        (early, rest)
    });
    assert!(early.0 > 0 && early.0 < BIG_LEN, "{early:?}");
    assert!(!early.1, "the first bytes came only after the download");
    assert_eq!(rest, edge.archive.read(BIG));
    assert!(final_name.exists());
}

#[test]
fn range_requests_on_a_miss() {
    let edge = Edge::start(|_| {}, "");
    update(&edge);
    edge.up().add_fault(FaultRule::suffix(
        "/big_2.0-1_amd64.deb",
        Fault::Drip {
            chunk: 256 * 1024,
            every: Duration::from_millis(20),
        },
    ));
    let want = edge.archive.read(BIG);
    let url = format!("{}{BIG}", edge.url());
    let (mid, tail) = rt().block_on(async {
        let c = client();
        tokio::join!(
            fetch(&c, &url, &[("Range", "bytes=1000-1999")]),
            fetch(&c, &url, &[("Range", "bytes=-100")]),
        )
    });
    assert_eq!(mid.status, 206);
    assert_eq!(
        mid.header("content-range"),
        Some(format!("bytes 1000-1999/{BIG_LEN}").as_str())
    );
    assert_eq!(mid.body, want[1000..2000]);
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, want[BIG_LEN - 100..]);
    assert_eq!(edge.upstream_hits("/big_2.0-1_amd64.deb"), 1);
    // Stored now: a range is served from disk.
    let again = edge.get(BIG, &[("Range", "bytes=5-9")]);
    assert_eq!((again.status, again.cache()), (206, "HIT"));
    assert_eq!(again.body, want[5..10]);
}

#[test]
fn unlisted_files_pass_through_or_are_refused() {
    let edge = Edge::start(
        |a| a.write("pool/extra/unlisted.bin", b"not in any index"),
        "",
    );
    update(&edge);
    let got = edge.get("pool/extra/unlisted.bin", &[]);
    assert_eq!((got.status, got.cache()), (200, "PASS"));
    assert_eq!(got.body, b"not in any index");
    assert!(!edge.tree().join("pool/extra/unlisted.bin").exists());
    assert_eq!(edge.get("pool/extra/missing.bin", &[]).status, 404);
    // Not listed in the verified Release: a 404 without asking upstream.
    let before = edge.up().requests().len();
    assert_eq!(
        edge.get("dists/stable/main/binary-amd64/Packages.lz4", &[])
            .status,
        404
    );
    assert_eq!(edge.up().requests().len(), before);

    let refusing = Edge::start(
        |a| a.write("pool/extra/unlisted.bin", b"not in any index"),
        "unlisted = \"refuse\"",
    );
    update(&refusing);
    let got = refusing.get("pool/extra/unlisted.bin", &[]);
    assert_eq!(got.status, 403);
    assert!(
        String::from_utf8_lossy(&got.body).contains("not listed"),
        "{}",
        String::from_utf8_lossy(&got.body)
    );
}

#[test]
fn a_kill_mid_download_leaves_only_verified_files() {
    let mut edge = Edge::start(|_| {}, "");
    update(&edge);
    edge.up().add_fault(FaultRule::suffix(
        "/big_2.0-1_amd64.deb",
        Fault::Drip {
            chunk: 64 * 1024,
            every: Duration::from_millis(100),
        },
    ));
    let url = format!("{}{BIG}", edge.url());
    let partial = rt().block_on(async {
        use futures_util::StreamExt;
        let resp = client().get(&url).send().await.unwrap();
        let mut stream = resp.bytes_stream();
        let first = stream.next().await.unwrap().unwrap();
        (first.len(), stream)
    });
    assert!(partial.0 > 0);
    edge.restart(); // kill -9 of the server mid-download, then a new one
    drop(partial);
    assert!(
        !edge.tree().join(BIG).exists(),
        "a partial file got its final name"
    );
    assert_eq!(edge.temp_files().len(), 1, "{:?}", edge.temp_files());
    edge.up().clear_faults();
    let got = edge.get(BIG, &[]);
    assert_eq!((got.status, got.cache(), got.broken), (200, "MISS", false));
    assert_eq!(got.body, edge.archive.read(BIG));
    assert_eq!(edge.get(BIG, &[]).cache(), "HIT");
}
