//! Packages parsing throughput: the 50 MB bookworm main amd64 index (from apt's lists when
//! this machine has them; otherwise the committed 300-stanza excerpt repeated to 50 MB).
//! Target: the scan itself at >= 1 GB/s.

use std::io::{Read, Write};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use debsync::archive::compression::Compression;
use debsync::archive::deb822::StanzaReader;
use debsync::archive::packages::pool_file;

const APT_LIST: &str =
    "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4";

fn packages() -> Vec<u8> {
    if let Ok(f) = std::fs::File::open(APT_LIST) {
        let mut out = Vec::new();
        if lz4_flex::frame::FrameDecoder::new(f)
            .read_to_end(&mut out)
            .is_ok()
        {
            return out;
        }
    }
    let excerpt = include_bytes!("../tests/fixtures/bookworm-main-amd64-Packages-300");
    let mut out = Vec::new();
    while out.len() < 50_000_000 {
        out.extend_from_slice(excerpt);
    }
    out
}

fn scan(reader: impl Read) -> u64 {
    let mut r = StanzaReader::new(reader);
    let mut total = 0u64;
    while let Some(s) = r.next_stanza().expect("read") {
        total += pool_file(s, 0).expect("stanza").size;
    }
    total
}

fn bench(c: &mut Criterion) {
    let data = packages();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&data).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&data).expect("xz");
    let xz = xz.finish().expect("xz");

    let mut g = c.benchmark_group("packages");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("scan", |b| b.iter(|| scan(&data[..])));
    g.bench_function("gunzip+scan", |b| {
        b.iter(|| scan(Compression::Gzip.decoder(&gz[..]).expect("decoder")))
    });
    g.bench_function("unxz+scan", |b| {
        b.iter(|| scan(Compression::Xz.decoder(&xz[..]).expect("decoder")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
