//! The run lock and the Release gate: signatures, key validity, Valid-Until, rollback,
//! components.

use std::time::Duration;

use pgp::composed::{ArmorOptions, CleartextSignedMessage};

use crate::common::key::{GpgCase, GpgKey};
use crate::common::*;
use crate::support::*;

fn lock_path(f: &Fixture) -> std::path::PathBuf {
    f.tree()
        .join(format!("Archive-Update-in-Progress-{}", hostname()))
}

#[test]
fn second_sync_is_refused_while_one_runs_and_a_killed_runs_lock_is_taken_over() {
    let f = Fixture::new(|_| {}, "");
    // The first run stalls on a pool file, inside the lock.
    f.upstream.add_fault(FaultRule::suffix(
        HELLO,
        Fault::Drip {
            chunk: 64,
            every: Duration::from_millis(200),
        },
    ));
    let mut first = f.spawn_sync();
    f.wait_for_request(HELLO, Duration::from_secs(30));
    // Wait (bounded) until some of the dripping file reached its temp file.
    let partial = f
        .tree()
        .join("pool/main/h/hello/.hello_1.0-1_amd64.deb.debsync-tmp");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) == 0 {
        assert!(std::time::Instant::now() < deadline, "no partial download");
        std::thread::sleep(Duration::from_millis(5));
    }

    let out = f.sync();
    let stderr = assert_failure(&out);
    assert!(
        stderr.contains("already running") && stderr.contains(&format!("(pid {})", first.id())),
        "{stderr}"
    );
    assert!(
        stderr.contains("Archive-Update-in-Progress-"),
        "names the lock file: {stderr}"
    );

    // Kill the holder: its lock file stays behind with a dead pid, and a partial download.
    first.kill().unwrap();
    first.wait().unwrap();
    let stale = std::fs::read_to_string(lock_path(&f)).expect("lock file left by a kill");
    assert_eq!(stale.trim(), first.id().to_string());
    assert!(
        !f.tree().join("dists/stable").exists(),
        "nothing went live before the pool finished"
    );

    f.upstream.clear_faults();
    f.upstream.clear_log();
    f.sync_ok();
    assert!(!lock_path(&f).exists(), "lock file removed after the run");
    // The killed run's partial file was resumed, not fetched again from byte 0.
    let hello = f.upstream.requests_to(HELLO);
    assert!(
        hello.len() == 1
            && hello[0]
                .range
                .as_deref()
                .is_some_and(|r| r.starts_with("bytes=")),
        "{hello:#?}"
    );
    assert!(!partial.exists());
    assert_eq!(
        std::fs::read(f.tree().join(HELLO)).unwrap(),
        f.archive.read(HELLO)
    );
    assert_eq!(f.state()["last_result"], "ok");
}

#[test]
fn lock_held_by_another_process_refuses_and_stale_file_is_taken_over() {
    use std::io::Write;
    let f = Fixture::new(|_| {}, "");
    std::fs::create_dir_all(f.tree()).unwrap();
    let mut held = std::fs::File::create(lock_path(&f)).unwrap();
    writeln!(held, "4242").unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();

    let stderr = assert_failure(&f.sync());
    assert!(stderr.contains("already running (pid 4242)"), "{stderr}");
    assert!(!f.tree().join("dists").exists() && !f.tree().join("pool").exists());

    // Same file, same pid, but nobody holds the flock: stale, taken over.
    rustix::fs::flock(&held, rustix::fs::FlockOperation::Unlock).unwrap();
    drop(held);
    assert!(lock_path(&f).exists());
    f.sync_ok();
    assert!(!lock_path(&f).exists());
    assert!(f.tree().join(HELLO).is_file());
}

/// A good first sync; returns the served snapshot.
fn synced(f: &Fixture) -> std::collections::BTreeMap<String, String> {
    f.sync_ok();
    let snap = f.served();
    assert!(snap.contains_key("dists/stable/Release"), "{snap:?}");
    snap
}

#[test]
fn inrelease_signed_by_unknown_key_is_refused() {
    let mut f = Fixture::new(|_| {}, "");
    let before = synced(&f);
    f.change(|a| {
        add(a, "newpkg", "1.0", "amd64");
        a.suite("stable").signer = Some(TestKey::other().clone());
    });
    f.assert_refused(
        &before,
        &[
            "dists/stable/InRelease",
            "no valid signature by a key in the keyring",
        ],
    );
}

#[test]
fn tampered_inrelease_is_refused() {
    let mut f = Fixture::new(|_| {}, "");
    let before = synced(&f);
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    f.archive.tamper_inrelease("stable");
    f.assert_refused(&before, &["dists/stable/InRelease", "no valid signature"]);
}

#[test]
fn missing_or_unsigned_release_is_refused() {
    let mut f = Fixture::new(|_| {}, "");
    let before = synced(&f);
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));

    // An InRelease that is not signed at all.
    let release = f.archive.read("dists/stable/Release");
    f.archive.write("dists/stable/InRelease", &release);
    f.assert_refused(
        &before,
        &[
            "dists/stable/InRelease",
            "not a valid OpenPGP signed message",
        ],
    );

    // No InRelease, and a Release without its signature.
    f.archive.delete("dists/stable/InRelease");
    f.archive.delete("dists/stable/Release.gpg");
    f.assert_refused(
        &before,
        &[
            "dists/stable/",
            "neither InRelease nor Release + Release.gpg",
        ],
    );
}

#[test]
fn release_with_detached_signature_is_used_without_inrelease() {
    let mut f = Fixture::new(|a| a.suite("stable").write_inrelease = false, "");
    let before = synced(&f);
    assert!(!before.contains_key("dists/stable/InRelease"));
    assert_eq!(
        std::fs::read(f.tree().join("dists/stable/Release.gpg")).unwrap(),
        f.archive.read("dists/stable/Release.gpg")
    );
    assert!(f.tree().join(HELLO).is_file());

    // The same layout signed by an unknown key.
    f.change(|a| {
        add(a, "newpkg", "1.0", "amd64");
        a.suite("stable").signer = Some(TestKey::other().clone());
    });
    f.assert_refused(&before, &["dists/stable/Release", "no valid signature"]);
}

/// Clear-signs `text` with both keys, the way `gpg --clearsign -u A -u B` would.
fn clearsign_twice(text: &str, a: &TestKey, b: &TestKey) -> String {
    let sig = |k: &TestKey| {
        let (msg, _) = CleartextSignedMessage::from_string(&k.clearsign(text)).unwrap();
        msg.signatures()[0].clone()
    };
    let sigs = vec![sig(a), sig(b)];
    let text = text.strip_suffix('\n').unwrap_or(text);
    CleartextSignedMessage::new_many(text, |_| Ok(sigs))
        .unwrap()
        .to_armored_string(ArmorOptions::default())
        .unwrap()
}

#[test]
fn signature_by_unknown_key_beside_a_good_one_is_ignored() {
    let mut f = Fixture::new(|_| {}, "");
    let release = String::from_utf8(f.archive.read("dists/stable/Release")).unwrap();
    let both = clearsign_twice(&release, TestKey::other(), f.archive.key());
    // Guard: the message really carries both signatures, and only one verifies with our key.
    let (msg, _) = CleartextSignedMessage::from_string(&both).unwrap();
    assert_eq!(msg.signatures().len(), 2);
    f.archive.key().verify_clearsigned(&both).unwrap();
    assert!(TestKey::other().verify_clearsigned(&both).is_ok());
    f.archive.write("dists/stable/InRelease", both.as_bytes());
    f.archive.delete("dists/stable/Release.gpg");

    f.sync_ok();
    assert_eq!(
        std::fs::read(f.tree().join("dists/stable/InRelease")).unwrap(),
        both.as_bytes()
    );
    assert!(f.tree().join(HELLO).is_file());

    // And the reverse: two signatures, neither by a key we trust.
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    let before = f.served();
    let release = String::from_utf8(f.archive.read("dists/stable/Release")).unwrap();
    let stranger = TestKey::ed25519("stranger <s@test.invalid>");
    let neither = clearsign_twice(&release, TestKey::other(), &stranger);
    f.archive
        .write("dists/stable/InRelease", neither.as_bytes());
    f.archive.delete("dists/stable/Release.gpg");
    f.assert_refused(&before, &["dists/stable/InRelease", "2 signature(s)"]);
}

#[test]
fn expired_valid_until_is_refused() {
    let mut f = Fixture::new(
        |a| a.suite("stable").valid_until = Some(rfc2822_from_now(86_400)),
        "",
    );
    let before = synced(&f);
    f.change(|a| {
        add(a, "newpkg", "1.0", "amd64");
        a.suite("stable").valid_until = Some(rfc2822_from_now(-3600));
    });
    f.assert_refused(&before, &["dists/stable/Release", "expired", "Valid-Until"]);
}

#[test]
fn release_older_than_the_mirrored_one_is_refused() {
    let mut f = Fixture::new(|_| {}, "");
    let before = synced(&f);
    f.change(|a| {
        add(a, "newpkg", "1.0", "amd64");
        a.suite("stable").date = Some(rfc2822_from_now(-86_400));
    });
    f.assert_refused(
        &before,
        &["dists/stable/Release", "older", "rollback refused"],
    );
}

#[test]
fn release_lacking_a_configured_component_is_refused() {
    let mut f = Fixture::new(
        |a| {
            a.add_package("tool", "1.0", "amd64", "contrib", &noise("tool", DEB_LEN));
        },
        "[[mirror]]\ncomponents = [\"main\", \"contrib\"]\n",
    );
    let before = synced(&f);
    assert!(before.contains_key("pool/contrib/t/tool/tool_1.0_amd64.deb"));
    f.change(|a| a.suite("stable").release_omit_components = vec!["contrib".into()]);
    f.assert_refused(
        &before,
        &["dists/stable/Release", "lacks component \"contrib\""],
    );
}

/// Replaces upstream's signatures with one by `key` (InRelease, or Release.gpg if `detached`)
/// over the current Release, and adds `key` to the mirror's keyring beside the archive key.
fn resign_with(f: &Fixture, key: &GpgKey, detached: bool) {
    let release = f.archive.read("dists/stable/Release");
    if detached {
        f.archive.delete("dists/stable/InRelease");
        f.archive.write(
            "dists/stable/Release.gpg",
            key.detach_sign(&release).as_bytes(),
        );
    } else {
        let text = String::from_utf8(release).unwrap();
        f.archive
            .write("dists/stable/InRelease", key.clearsign(&text).as_bytes());
        f.archive.delete("dists/stable/Release.gpg");
    }
    let mut keyring = std::fs::read(&f.keyring).unwrap();
    keyring.extend_from_slice(key.public_binary());
    std::fs::write(&f.keyring, keyring).unwrap();
}

/// A mirrored archive whose next Release is signed only by `key`: the sync is refused with one
/// line naming the file, the key and every needle, and the served tree is unchanged.
fn refused_when_signed_by(key: &GpgKey, detached: bool, needles: &[&str]) -> String {
    let mut f = Fixture::new(|_| {}, "");
    let before = synced(&f);
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    resign_with(&f, key, detached);
    let file = if detached {
        "dists/stable/Release"
    } else {
        "dists/stable/InRelease"
    };
    let mut all = vec![
        file,
        "no valid signature by a key in the keyring",
        key.fingerprint(),
    ];
    all.extend_from_slice(needles);
    f.assert_refused(&before, &all)
}

#[test]
fn release_signed_by_an_expired_key_is_refused() {
    // Signed while the key was valid (2020-01-01 01:00), but it has expired since: gpgv says
    // EXPKEYSIG and apt refuses the suite, so the mirror must not publish it.
    let key = GpgKey::new(GpgCase::Expired);
    refused_when_signed_by(&key, false, &["expired on Thu, 02 Jan 2020 00:00:00 +0000"]);
    refused_when_signed_by(&key, true, &["expired on Thu, 02 Jan 2020 00:00:00 +0000"]);
}

#[test]
fn release_signed_by_a_revoked_key_is_refused() {
    let key = GpgKey::new(GpgCase::Revoked);
    refused_when_signed_by(&key, false, &["revoked on Wed, 01 Jan 2020"]);
    // A soft revocation made a year after the signature: sqv would still accept the signature,
    // but gpgv says REVKEYSIG and apt refuses the file today.
    let key = GpgKey::new(GpgCase::Superseded);
    refused_when_signed_by(
        &key,
        false,
        &[
            "revoked on Fri, 01 Jan 2021",
            "superseded",
            "replaced by a newer key",
        ],
    );
}

#[test]
fn release_signed_by_an_expired_subkey_of_a_valid_key_is_refused() {
    let key = GpgKey::new(GpgCase::ExpiredSubkey);
    refused_when_signed_by(
        &key,
        false,
        &[
            "signing subkey",
            key.signing_fingerprint(),
            "expired on Thu, 02 Jan 2020",
        ],
    );
}

#[test]
fn release_signed_by_a_subkey_without_a_valid_binding_is_refused() {
    let key = GpgKey::new(GpgCase::UnboundSubkey);
    refused_when_signed_by(
        &key,
        false,
        &[key.signing_fingerprint(), "not validly bound"],
    );
}

#[test]
fn release_signed_by_a_valid_subkey_is_mirrored() {
    let mut f = Fixture::new(|_| {}, "");
    synced(&f);
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    let key = GpgKey::new(GpgCase::ValidSubkey);
    resign_with(&f, &key, false);
    f.sync_ok();
    assert_eq!(
        std::fs::read(f.tree().join("dists/stable/InRelease")).unwrap(),
        f.archive.read("dists/stable/InRelease")
    );
    assert!(
        f.tree()
            .join(pool_path("main", "newpkg", "1.0", "amd64"))
            .is_file()
    );
}

#[test]
fn signature_by_an_expired_key_beside_a_good_one_is_ignored() {
    // Debian signs with old and new keys while it rotates them; apt counts an EXPKEYSIG
    // beside a GOODSIG as worthless, not fatal.
    let mut f = Fixture::new(|_| {}, "");
    synced(&f);
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    let expired = GpgKey::new(GpgCase::Expired);
    let release = String::from_utf8(f.archive.read("dists/stable/Release")).unwrap();
    let (gpg_msg, _) = CleartextSignedMessage::from_string(&expired.clearsign(&release)).unwrap();
    let (good_msg, _) =
        CleartextSignedMessage::from_string(&f.archive.key().clearsign(&release)).unwrap();
    let sigs = vec![
        gpg_msg.signatures()[0].clone(),
        good_msg.signatures()[0].clone(),
    ];
    let text = release.strip_suffix('\n').unwrap_or(&release);
    let both = CleartextSignedMessage::new_many(text, |_| Ok(sigs))
        .unwrap()
        .to_armored_string(ArmorOptions::default())
        .unwrap();
    f.archive.write("dists/stable/InRelease", both.as_bytes());
    f.archive.delete("dists/stable/Release.gpg");
    let mut keyring = std::fs::read(&f.keyring).unwrap();
    keyring.extend_from_slice(expired.public_binary());
    std::fs::write(&f.keyring, keyring).unwrap();

    f.sync_ok();
    assert_eq!(
        std::fs::read(f.tree().join("dists/stable/InRelease")).unwrap(),
        both.as_bytes()
    );
}

/// Signs upstream's Release with `key` only (InRelease) and points a private apt-get at
/// upstream itself, trusting only `key`.
fn apt_trusting_only(f: &Fixture, key: &GpgKey) -> Apt {
    let release = String::from_utf8(f.archive.read("dists/stable/Release")).unwrap();
    f.archive
        .write("dists/stable/InRelease", key.clearsign(&release).as_bytes());
    if f.archive.dir().join("dists/stable/Release.gpg").exists() {
        f.archive.delete("dists/stable/Release.gpg");
    }
    let dir = f.tmp.path().join(format!("apt-{:?}", key.case()));
    let keyring = dir.join("key.gpg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&keyring, key.public_binary()).unwrap();
    std::fs::write(&f.keyring, key.public_binary()).unwrap();
    Apt::new(&dir, &f.upstream.base_url(), "stable", &["main"], &keyring)
}

#[test]
fn apt_refuses_what_debsync_refuses_for_key_validity() {
    // The real apt-get (gpgv) and debsync, against the same upstream file and trusting the same
    // keyring: both refuse every case, apt with the status gpgv reported.
    let f = Fixture::new(|_| {}, "");
    for (case, status) in [
        (GpgCase::Expired, Some("EXPKEYSIG")),
        (GpgCase::Revoked, Some("REVKEYSIG")),
        (GpgCase::Superseded, Some("REVKEYSIG")),
        (GpgCase::ExpiredSubkey, Some("EXPKEYSIG")),
        (GpgCase::UnboundSubkey, None),
    ] {
        let key = GpgKey::new(case);
        let apt = apt_trusting_only(&f, &key);
        let problems = apt.update().assert_problem().join("\n");
        assert!(
            problems.contains("is not signed"),
            "{case:?}: apt must refuse the suite: {problems}"
        );
        if let Some(status) = status {
            assert!(problems.contains(status), "{case:?}: {problems}");
        }
        let stderr = assert_failure(&f.sync());
        assert!(
            stderr.contains("dists/stable/InRelease") && stderr.contains(key.fingerprint()),
            "{case:?}: {stderr}"
        );
    }
    // The control: a good signature by a subkey passes both.
    let key = GpgKey::new(GpgCase::ValidSubkey);
    apt_trusting_only(&f, &key).update().assert_clean();
    f.sync_ok();
}

#[test]
fn bad_signature_by_a_keyring_key_beside_a_good_one_is_refused_as_apt_does() {
    // apt refuses a file with any BADSIG, even beside a GOODSIG.
    let mut f = Fixture::new(|_| {}, "");
    let before = synced(&f);
    f.change(|a| add(a, "newpkg", "1.0", "amd64"));
    let release = String::from_utf8(f.archive.read("dists/stable/Release")).unwrap();
    let sig = |k: &TestKey, text: &str| {
        let (msg, _) = CleartextSignedMessage::from_string(&k.clearsign(text)).unwrap();
        msg.signatures()[0].clone()
    };
    let other = TestKey::other();
    // `other` signed a different text: its signature does not match this one.
    let sigs = vec![
        sig(f.archive.key(), &release),
        sig(other, &release.replace("stable", "unstable")),
    ];
    let text = release.strip_suffix('\n').unwrap_or(&release);
    let mixed = CleartextSignedMessage::new_many(text, |_| Ok(sigs))
        .unwrap()
        .to_armored_string(ArmorOptions::default())
        .unwrap();
    f.archive.write("dists/stable/InRelease", mixed.as_bytes());
    f.archive.delete("dists/stable/Release.gpg");
    let mut keyring = std::fs::read(&f.keyring).unwrap();
    keyring.extend_from_slice(&other.public_binary());
    std::fs::write(&f.keyring, keyring).unwrap();

    let apt = Apt::new(
        &f.tmp.path().join("apt"),
        &f.upstream.base_url(),
        "stable",
        &["main"],
        &f.keyring,
    );
    let problems = apt.update().assert_problem().join("\n");
    assert!(problems.contains("BADSIG"), "{problems}");
    f.assert_refused(
        &before,
        &[
            "dists/stable/InRelease",
            "bad signature by key",
            &other.fingerprint(),
            "beside a good one",
        ],
    );
}
