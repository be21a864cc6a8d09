//! pdiffs as dak writes them: `<index>.diff/Index` (listed in Release) and the `diff --ed`
//! patches it names, gzip'd, kept across in-place rebuilds of a [`super::archive::TestArchive`].

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::render::{dak_patch_name, gzip};
use super::shapes::Listing;

/// The pdiff history of one suite across in-place rebuilds.
#[derive(Clone, Debug, Default)]
pub struct PdiffLog {
    /// Index path → its bytes now and its history.
    indices: BTreeMap<String, (Vec<u8>, History)>,
    last: Option<SystemTime>,
}

/// `(patch name, bytes before that patch)`, oldest first.
type History = Vec<(String, Vec<u8>)>;

/// Generations of history kept per index (dak keeps more; apt needs one).
const PDIFF_HISTORY: usize = 8;

impl PdiffLog {
    /// Records this build's indices and adds `<index>.diff/Index` (listed) and the patches
    /// (unlisted) for every index with a history.
    pub(crate) fn update(&mut self, out: &mut Listing) {
        let diffable: Vec<(String, Vec<u8>)> = out
            .plain
            .iter()
            .filter(|p| {
                let file = p.rsplit('/').next().unwrap();
                ["Packages", "Sources"].contains(&file)
                    || file.starts_with("Translation-")
                    || file.starts_with("Contents-")
            })
            .map(|p| (p.clone(), out.listed[p].clone()))
            .collect();
        let mut name = None;
        for (path, bytes) in diffable {
            let entry = self
                .indices
                .entry(path.clone())
                .or_insert_with(|| (bytes.clone(), Vec::new()));
            if entry.0 != bytes {
                let name = name.get_or_insert_with(|| {
                    let now = SystemTime::now();
                    let t = match self.last {
                        Some(last) if now < last + Duration::from_secs(1) => {
                            last + Duration::from_secs(1)
                        }
                        _ => now,
                    };
                    self.last = Some(t);
                    dak_patch_name(t)
                });
                let old = std::mem::replace(&mut entry.0, bytes);
                entry.1.push((name.clone(), old));
                let excess = entry.1.len().saturating_sub(PDIFF_HISTORY);
                entry.1.drain(..excess);
            }
            if !entry.1.is_empty() {
                write_pdiffs(&path, &entry.0, &entry.1, out);
            }
        }
    }
}

/// dak's merged pdiffs: `T-<latest>-F-<name>` takes the file that patch `<name>` started
/// from straight to the current one; the unmerged chain is listed as `X-Unmerged-*`.
fn write_pdiffs(path: &str, current: &[u8], history: &[(String, Vec<u8>)], out: &mut Listing) {
    let dir = format!("{path}.diff");
    let latest = &history.last().unwrap().0;
    let line = |bytes: &[u8], name: &str| {
        format!(
            " {} {:>8} {name}\n",
            hex::encode(Sha256::digest(bytes)),
            bytes.len()
        )
    };
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for (i, (name, old)) in history.iter().enumerate() {
        let next = history.get(i + 1).map_or(current, |(_, b)| b.as_slice());
        let merged_name = format!("T-{latest}-F-{name}");
        for (prefix, patch_name, patch) in [
            ("", merged_name.as_str(), ed_diff(old, current)),
            ("X-Unmerged-", name.as_str(), ed_diff(old, next)),
        ] {
            let gz = gzip(&patch);
            let f = |k: &str| format!("{prefix}SHA256-{k}");
            fields
                .entry(f("History"))
                .or_default()
                .push_str(&line(old, patch_name));
            fields
                .entry(f("Patches"))
                .or_default()
                .push_str(&line(&patch, patch_name));
            let download = format!("{patch_name}.gz");
            fields
                .entry(f("Download"))
                .or_default()
                .push_str(&line(&gz, &download));
            out.unlisted.insert(format!("{dir}/{download}"), gz);
        }
    }
    let mut index = format!(
        "SHA256-Current: {} {}\n",
        hex::encode(Sha256::digest(current)),
        current.len()
    );
    for prefix in ["", "X-Unmerged-"] {
        for k in ["History", "Patches", "Download"] {
            let key = format!("{prefix}SHA256-{k}");
            index.push_str(&format!("{key}:\n{}", fields[&key]));
        }
    }
    let names: Vec<&str> = history.iter().map(|(n, _)| n.as_str()).collect();
    index.push_str("X-Patch-Precedence: merged\n");
    index.push_str(&format!("X-DAK-Older-Patches: {}\n", names.join(" ")));
    out.listed.insert(format!("{dir}/Index"), index.into());
}

/// `diff --ed old new`, what dak's pdiffs are made of.
fn ed_diff(old: &[u8], new: &[u8]) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("old"), tmp.path().join("new"));
    std::fs::write(&a, old).unwrap();
    std::fs::write(&b, new).unwrap();
    let out = std::process::Command::new("diff")
        .arg("--ed")
        .arg(&a)
        .arg(&b)
        .output()
        .expect("run diff --ed");
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "diff --ed: {out:?}"
    );
    out.stdout
}
