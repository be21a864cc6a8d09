//! Debian's trace file, `project/trace/<hostname>`, in ftpsync's format, so mirror checkers
//! and downstream mirrors read debsync like any other Debian mirror.

use std::path::Path;

use crate::archive::date::{format_ctime, format_rfc2822};

pub struct TraceInfo<'a> {
    pub hostname: &'a str,
    pub started: i64,
    pub finished: i64,
    pub serial: &'a str,
    pub architectures: &'a [String],
    pub suites: &'a [String],
    pub upstream: &'a str,
    pub bytes_received: u64,
    pub stage1_secs: u64,
    pub stage2_secs: u64,
}

pub fn render(t: &TraceInfo<'_>) -> String {
    let total = (t.finished - t.started).max(0) as u64;
    let rate = t.bytes_received / total.max(1);
    let mut archs: Vec<&str> = t.architectures.iter().map(String::as_str).collect();
    archs.sort_unstable();
    archs.dedup();
    format!(
        "{}\n\
         Date: {}\n\
         Date-Started: {}\n\
         Archive serial: {}\n\
         Creator: debsync {}\n\
         Running on host: {}\n\
         Architectures: {}\n\
         Architectures-Configuration: INCLUDE {}\n\
         Suites: {}\n\
         Upstream-mirror: {}\n\
         Total bytes received: {}\n\
         Total time spent in stage1: {}\n\
         Total time spent in stage2: {}\n\
         Total time spent: {}\n\
         Average rate: {} B/s\n",
        format_ctime(t.finished),
        format_rfc2822(t.finished),
        format_rfc2822(t.started),
        t.serial,
        env!("CARGO_PKG_VERSION"),
        t.hostname,
        archs.join(" "),
        archs.join(" "),
        t.suites.join(" "),
        t.upstream,
        t.bytes_received,
        t.stage1_secs,
        t.stage2_secs,
        total,
        rate,
    )
}

pub fn write(tree: &Path, t: &TraceInfo<'_>) -> std::io::Result<()> {
    let dir = tree.join("project/trace");
    std::fs::create_dir_all(&dir)?;
    super::write_atomic(&dir.join(t.hostname), render(t).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_ftpsync_fields() {
        let archs = vec!["amd64".to_string(), "source".to_string()];
        let suites = vec!["bookworm".to_string()];
        let text = render(&TraceInfo {
            hostname: "mirror1",
            started: 1686387276,
            finished: 1686387286,
            serial: "2023061001",
            architectures: &archs,
            suites: &suites,
            upstream: "deb.debian.org",
            bytes_received: 1000,
            stage1_secs: 8,
            stage2_secs: 2,
        });
        assert!(text.starts_with("Sat Jun 10 08:54:46 UTC 2023\n"), "{text}");
        for line in [
            "Date: Sat, 10 Jun 2023 08:54:46 +0000",
            "Date-Started: Sat, 10 Jun 2023 08:54:36 +0000",
            "Archive serial: 2023061001",
            "Architectures: amd64 source",
            "Upstream-mirror: deb.debian.org",
            "Total bytes received: 1000",
            "Total time spent: 10",
            "Average rate: 100 B/s",
        ] {
            assert!(text.contains(line), "missing {line:?} in {text}");
        }
        assert!(text.contains("Creator: debsync "));
    }
}
