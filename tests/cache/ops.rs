//! Upstream credentials from a file, and preheating from the CLI and the endpoint.

use crate::common::*;
use crate::kit::*;

fn secret_file(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn upstream_basic_credentials_from_an_apt_auth_conf() {
    let secrets = tempfile::tempdir().unwrap();
    let conf = secret_file(
        secrets.path(),
        "auth.conf",
        "# apt's format\nmachine 127.0.0.1 login debsync password s3cret-pw\n",
    );
    let edge = Edge::start(|_| {}, &format!("auth_file = {conf:?}"));
    // base64("debsync:s3cret-pw")
    edge.up().add_fault(FaultRule::any(Fault::RequireAuth(
        "Basic ZGVic3luYzpzM2NyZXQtcHc=".into(),
    )));
    let apt = edge.apt("client");
    assert_eq!(apt.fetch_package("hello"), edge.archive.read(HELLO));
    assert!(edge.up().requests().iter().all(|r| r.status != 401));
}

#[test]
fn bearer_token_and_wrong_credentials_never_shown() {
    let secrets = tempfile::tempdir().unwrap();
    let good = secret_file(secrets.path(), "good", "tok-123\n");
    let edge = Edge::start(|_| {}, &format!("bearer_token_file = {good:?}"));
    edge.up()
        .add_fault(FaultRule::any(Fault::RequireAuth("Bearer tok-123".into())));
    assert_eq!(edge.get("dists/stable/InRelease", &[]).status, 200);

    let bad = secret_file(secrets.path(), "bad", "wrong-secret-token\n");
    let edge = Edge::start(|_| {}, &format!("bearer_token_file = {bad:?}"));
    edge.up()
        .add_fault(FaultRule::any(Fault::RequireAuth("Bearer tok-123".into())));
    let got = edge.get("dists/stable/InRelease", &[]);
    let text = String::from_utf8_lossy(&got.body);
    assert_eq!(got.status, 502, "{text}");
    assert!(text.contains("401") && text.contains("InRelease"), "{text}");
    assert!(!text.contains("wrong-secret-token"), "{text}");
}

#[test]
fn preheat_from_the_cli_fetches_the_dependency_closure() {
    let edge = Edge::start(|_| {}, "");
    let config = edge.config.to_string_lossy().into_owned();
    let out = run_debsync(&[
        "preheat",
        CACHE,
        "--config",
        &config,
        "--suite",
        "stable",
        "--packages",
        "tool",
        "--with-depends",
    ]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 package(s): 2 file(s) fetched"),
        "{stdout}"
    );
    let stored = edge.stored();
    assert!(
        stored.contains_key(HELLO) && stored.contains_key("pool/main/t/tool/tool_0.1_amd64.deb")
    );
    assert!(!stored.contains_key(BIG));
    // A client now finds them local: no pool request goes upstream.
    edge.up().clear_log();
    let apt = edge.apt("client");
    apt.update().assert_clean();
    apt.download("tool").0.assert_clean();
    assert!(
        edge.up()
            .requests()
            .iter()
            .all(|r| !r.path.contains("/pool/")),
        "{:#?}",
        edge.up().requests()
    );
    let again = run_debsync(&[
        "preheat",
        CACHE,
        "--config",
        &config,
        "--suite",
        "stable",
        "--packages",
        "tool,nope",
    ]);
    assert_success(&again);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("1 already cached"), "{stdout}");
    assert!(
        stdout.contains("not in the suite's indices: nope"),
        "{stdout}"
    );
}

#[test]
fn preheat_endpoint_needs_the_token() {
    let secrets = tempfile::tempdir().unwrap();
    let token = secret_file(secrets.path(), "preheat", "rollout-token\n");
    let edge = Edge::start(|_| {}, &format!("preheat_token_file = {token:?}"));
    let url = format!(
        "{}-/preheat/{CACHE}?suite=stable&packages=tool&with_depends=true",
        edge.server.url
    );
    let post = |auth: Option<&str>| {
        rt().block_on(async {
            let mut req = client().post(&url);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        })
    };
    assert_eq!(post(None).0, 401);
    assert_eq!(post(Some("Bearer nope")).0, 401);
    let (status, body) = post(Some("Bearer rollout-token"));
    assert_eq!(status, 202, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["packages"], serde_json::json!(["tool", "hello"]));
    assert!(eventually(|| edge.tree().join(HELLO).exists()));
    // POST anywhere else is still refused.
    let other = rt().block_on(async {
        client()
            .post(format!("{}{HELLO}", edge.url()))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(other, 405);
}
