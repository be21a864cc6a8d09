//! What [`super::archive`] and [`super::shapes`] render and write: index stanzas, compression,
//! dates in the formats Debian uses, and small file helpers.

use std::io::Write;
use std::path::{Component, Path};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::archive::{FileInfo, Package, SourcePackage};

pub fn package_stanza(p: &Package) -> String {
    let info = FileInfo::of(&p.content);
    let mut s = String::new();
    s.push_str(&format!("Package: {}\n", p.name));
    s.push_str(&format!("Version: {}\n", p.version));
    s.push_str(&format!("Architecture: {}\n", p.arch));
    s.push_str("Maintainer: Debsync Tests <tests@test.invalid>\n");
    s.push_str("Priority: optional\n");
    s.push_str("Section: misc\n");
    s.push_str(&format!("Filename: {}\n", p.filename()));
    s.push_str(&format!("Size: {}\n", p.size_override.unwrap_or(info.size)));
    s.push_str(&format!("MD5sum: {}\n", info.md5));
    s.push_str(&format!("SHA256: {}\n", info.sha256));
    s.push_str(&format!("Description: test package {}\n", p.name));
    for (k, v) in &p.extra_fields {
        s.push_str(&format!("{k}: {v}\n"));
    }
    s
}

pub fn source_stanza(src: &SourcePackage) -> String {
    let mut s = String::new();
    s.push_str(&format!("Package: {}\n", src.name));
    s.push_str(&format!("Binary: {}\n", src.name));
    s.push_str(&format!("Version: {}\n", src.version));
    s.push_str("Maintainer: Debsync Tests <tests@test.invalid>\n");
    s.push_str("Architecture: any\n");
    s.push_str("Format: 3.0 (quilt)\n");
    s.push_str(&format!("Directory: {}\n", src.directory()));
    s.push_str("Files:\n");
    for (f, bytes) in &src.files {
        let i = FileInfo::of(bytes);
        s.push_str(&format!(" {} {} {}\n", i.md5, i.size, f));
    }
    s.push_str("Checksums-Sha256:\n");
    for (f, bytes) in &src.files {
        let i = FileInfo::of(bytes);
        s.push_str(&format!(" {} {} {}\n", i.sha256, i.size, f));
    }
    s.push_str("Section: misc\nPriority: optional\n");
    s
}

/// Debian's pool prefix: `libfoo` → `libf`, anything else → first character.
pub fn pool_prefix(name: &str) -> String {
    if name.starts_with("lib") && name.len() > 3 {
        name[..4].to_string()
    } else {
        name[..1].to_string()
    }
}

/// The version as it appears in file names: the epoch (`1:`) is dropped.
pub fn version_in_filename(version: &str) -> String {
    match version.split_once(':') {
        Some((_, v)) => v.to_string(),
        None => version.to_string(),
    }
}

/// RFC 2822 date as Debian writes it: `Sat, 10 Jun 2023 08:54:36 UTC`.
pub fn rfc2822(t: SystemTime) -> String {
    httpdate::fmt_http_date(t).replace(" GMT", " UTC")
}

/// [`rfc2822`] of now plus (or minus, with a negative value) `secs` seconds.
pub fn rfc2822_from_now(secs: i64) -> String {
    let now = SystemTime::now();
    let t = if secs >= 0 {
        now + Duration::from_secs(secs as u64)
    } else {
        now - Duration::from_secs(secs.unsigned_abs())
    };
    rfc2822(t)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn xz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn is_safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\0')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

pub fn write_file(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

pub fn write_if_changed(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).ok().as_deref() != Some(bytes) {
        write_file(path, bytes);
    }
}

/// Regular files under `dir`, relative, `/`-separated, sorted.
pub fn walk_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

pub fn bzip2(bytes: &[u8]) -> Vec<u8> {
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// SHA-1 hex (Ubuntu's Release still lists SHA1), via the `pgp` crate's hasher.
pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(
        pgp::crypto::hash::HashAlgorithm::Sha1
            .digest(bytes)
            .unwrap(),
    )
}

/// A UTC time broken down: (year, month 1-12, day, hour, minute, second, weekday 0=Sunday).
pub fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7) as u32;
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    (year, month, day, h as u32, m as u32, s as u32, weekday)
}

/// dak's pdiff patch name for a time: `2026-12-02-0800.11`.
pub fn dak_patch_name(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}-{h:02}{mi:02}.{s:02}")
}

/// `date -u` output, the first line of a trace file: `Wed Dec  2 08:00:01 UTC 2026`.
pub fn ctime(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(t);
    format!(
        "{} {} {d:>2} {h:02}:{mi:02}:{s:02} UTC {y}",
        DAYS[wd as usize],
        MONTHS[mo as usize - 1]
    )
}

/// A ustar archive of regular files (mode 0644, mtime 0), as `tar cf` writes it.
pub fn tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, bytes) in files {
        assert!(name.len() < 100, "tar name too long: {name}");
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let mut field = |at: usize, len: usize, value: String| {
            h[at..at + value.len()].copy_from_slice(value.as_bytes());
            assert!(value.len() < len);
        };
        field(100, 8, "0000644".into());
        field(108, 8, "0000000".into());
        field(116, 8, "0000000".into());
        field(124, 12, format!("{:011o}", bytes.len()));
        field(136, 12, format!("{:011o}", 0));
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(bytes);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A valid 1x1 RGBA PNG (68 bytes), the icon DEP-11 tarballs carry.
pub fn tiny_png() -> Vec<u8> {
    hex::decode(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489\
         0000000b49444154789c6360000200000500017a5eab3f0000000049454e44ae426082",
    )
    .unwrap()
}
