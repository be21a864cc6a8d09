//! Directory listings: read once from the open directory handle, then rendered as HTML (for
//! people, phones included) or JSON (for scripts, on `Accept: application/json`).
//!
//! Order (`order.rs`): directories first, then by name in version order, as read and cached;
//! `?sort=size|date|name&order=asc|desc` reorders a view of it per request, and the column
//! headers link to those views.
//!
//! Entries are filtered with the request parser's own name rule (`path::is_listable`: no
//! private names, no `\`, …), so a listing never shows what a request could not fetch. Names
//! are HTML-escaped in text and percent-encoded in hrefs; the page carries a CSP without
//! scripts as a second line of defence.

use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType};
use serde::Serialize;

use super::datetime::Utc;
pub(super) use super::order::{SortKey, View, sort};
use super::path::{OpenMode, encode_segment, is_listable, open_beneath, push_encoded};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Kind {
    Directory,
    File,
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    pub mtime: i64,
}

/// Reads the entries of an open directory (blocking; run it off the async threads).
///
/// Symlinks are shown as what they point to, and only if that stays inside the tree
/// (`tree_fd` + `rel`, the directory's path in the tree); dangling or escaping links, FIFOs,
/// sockets, devices, non-UTF-8 names and names a request could not name are left out.
///
/// Returns the sorted entries and whether any of them was a symlink.
pub(super) fn read_entries(
    dir: File,
    tree: &Path,
    tree_fd: &OwnedFd,
    rel: &Path,
) -> io::Result<(Vec<Entry>, bool)> {
    let mut dir = Dir::new(OwnedFd::from(dir))?;
    let mut out = Vec::new();
    let mut symlinks = false;
    while let Some(item) = dir.read() {
        let item = item?;
        let Ok(name) = item.file_name().to_str() else {
            continue;
        };
        if !is_listable(name) {
            continue;
        }
        let name = name.to_string();
        let dirfd = dir.fd()?;
        let Ok(st) = rustix::fs::statat(dirfd, item.file_name(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue; // removed since readdir
        };
        let st = match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                symlinks = true;
                match open_beneath(tree, tree_fd, &rel.join(&name), OpenMode::Stat)
                    .and_then(|f| rustix::fs::fstat(&f).map_err(io::Error::from))
                {
                    Ok(st) => st,
                    Err(_) => continue,
                }
            }
            _ => st,
        };
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Kind::Directory,
            FileType::RegularFile => Kind::File,
            _ => continue,
        };
        out.push(Entry {
            name,
            kind,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: st.st_mtime,
        });
    }
    sort(&mut out);
    Ok((out, symlinks))
}

#[derive(Serialize)]
struct JsonListing<'a> {
    path: &'a str,
    entries: Vec<JsonEntry<'a>>,
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: Kind,
    href: String,
    size: Option<u64>,
    mtime: i64,
}

/// A rendered listing.
pub(super) struct Page {
    pub body: String,
    pub content_type: &'static str,
}

/// How to render one listing.
#[derive(Debug, Default)]
pub(super) struct Render<'a> {
    /// Decoded URL path of the directory.
    pub segments: &'a [String],
    pub json: bool,
    pub view: View,
    /// HTML put above the table (the mirror's card on `/<mirror>/`).
    pub intro: Option<&'a str>,
}

/// Renders `entries` (sorted by [`sort`]) of a directory.
pub(super) fn render(how: &Render<'_>, entries: &[Entry]) -> Page {
    let entries = how.view.order(entries);
    if how.json {
        let mut path = String::from("/");
        for s in how.segments {
            path.push_str(s);
            path.push('/');
        }
        Page {
            body: json(&path, &entries),
            content_type: "application/json",
        }
    } else {
        Page {
            body: html(how, &entries),
            content_type: "text/html; charset=utf-8",
        }
    }
}

/// The listing as JSON: `{"path": "/debian/pool/", "entries": [{"name", "type", "href",
/// "size" (null for directories), "mtime" (Unix seconds)}]}`.
pub(super) fn json(path: &str, entries: &[&Entry]) -> String {
    let listing = JsonListing {
        path,
        entries: entries
            .iter()
            .map(|e| JsonEntry {
                name: &e.name,
                kind: e.kind,
                href: href(e),
                size: (e.kind == Kind::File).then_some(e.size),
                mtime: e.mtime,
            })
            .collect(),
    };
    serde_json::to_string(&listing).unwrap_or_else(|_| "{}".to_string())
}

fn href(e: &Entry) -> String {
    let mut h = encode_segment(&e.name);
    if e.kind == Kind::Directory {
        h.push('/');
    }
    h
}

/// The listing as an HTML page: breadcrumb from `how.segments`, `how.intro`, then `entries`
/// in the order given.
pub(super) fn html(how: &Render<'_>, entries: &[&Entry]) -> String {
    let segments = how.segments;
    let mut out = String::with_capacity(4096 + entries.len() * 220);
    let title = {
        let mut t = String::from("/");
        for s in segments {
            t.push_str(s);
            t.push('/');
        }
        t
    };
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"color-scheme\" content=\"light dark\">\n");
    let _ = writeln!(out, "<title>Index of {}</title>", escape(&title));
    out.push_str(STYLE);
    out.push_str("</head>\n<body>\n<header>\n<nav class=\"crumbs\" aria-label=\"path\">");
    out.push_str("<a href=\"/\">/</a>");
    let mut acc = String::from("/");
    for (i, s) in segments.iter().enumerate() {
        acc.push_str(&encode_segment(s));
        acc.push('/');
        if i + 1 == segments.len() {
            let _ = write!(out, "<span class=\"here\">{}</span>/", escape(s));
        } else {
            let _ = write!(out, "<a href=\"{acc}\">{}</a>/", escape(s));
        }
    }
    out.push_str("</nav>\n");
    let dirs = entries.iter().filter(|e| e.kind == Kind::Directory).count();
    let files = entries.len() - dirs;
    let total: u64 = entries
        .iter()
        .filter(|e| e.kind == Kind::File)
        .map(|e| e.size)
        .sum();
    let _ = writeln!(
        out,
        "<p class=\"summary\">{dirs} {}, {files} {}, {}</p>\n</header>",
        if dirs == 1 {
            "directory"
        } else {
            "directories"
        },
        if files == 1 { "file" } else { "files" },
        human_size(total)
    );
    out.push_str("<main>\n");
    if let Some(intro) = how.intro {
        out.push_str(intro);
    }
    out.push_str("<table>\n<thead><tr>");
    for (key, class, title) in [
        (SortKey::Name, "name", "Name"),
        (SortKey::Size, "size", "Size"),
        (SortKey::Date, "date", "Modified (UTC)"),
    ] {
        let current = how.view.key == key;
        // A click on the current column flips its order; another column starts with what one
        // looks for: names A to Z, the largest and the newest first.
        let next = View {
            key,
            desc: if current {
                !how.view.desc
            } else {
                key != SortKey::Name
            },
        };
        let arrow = match (current, how.view.desc) {
            (false, _) => "",
            (true, false) => " &#9650;",
            (true, true) => " &#9660;",
        };
        let _ = write!(
            out,
            "<th class=\"{class}\"><a href=\"{}\">{title}</a>{arrow}</th>",
            next.query()
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if !segments.is_empty() {
        out.push_str(
            "<tr class=\"up\"><td class=\"name\"><a href=\"../\">Parent directory</a></td>\
             <td class=\"size\"></td><td class=\"date\"></td></tr>\n",
        );
    }
    // The hot loop for big pool directories: append only, no per-entry allocation.
    for e in entries {
        let dir = e.kind == Kind::Directory;
        out.push_str(if dir {
            "<tr class=\"d\"><td class=\"name\"><a href=\""
        } else {
            "<tr class=\"f\"><td class=\"name\"><a href=\""
        });
        push_encoded(&mut out, &e.name);
        if dir {
            out.push('/');
        }
        out.push_str("\">");
        push_escaped(&mut out, &e.name);
        if dir {
            out.push_str("/</a></td><td class=\"size\">&mdash;");
        } else {
            let _ = write!(
                out,
                "</a></td><td class=\"size\"><span title=\"{} bytes\">",
                e.size
            );
            push_human_size(&mut out, e.size);
            out.push_str("</span>");
        }
        out.push_str("</td><td class=\"date\">");
        Utc::from_unix(e.mtime).push_short(&mut out);
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</main>\n");
    out.push_str("<footer>Served by debsync</footer>\n</body>\n</html>\n");
    out
}

/// `1.5 KiB`, `12 MiB`, `512 B`.
pub(super) fn human_size(n: u64) -> String {
    let mut s = String::with_capacity(12);
    push_human_size(&mut s, n);
    s
}

/// [`human_size`] appending to `out`.
pub(super) fn push_human_size(out: &mut String, n: u64) {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        let _ = write!(out, "{n} B");
        return;
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        let _ = write!(out, "{v:.1} {}", UNITS[unit]);
    } else {
        let _ = write!(out, "{v:.0} {}", UNITS[unit]);
    }
}

/// Escapes text for HTML element content and quoted attributes.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

/// [`escape`] appending to `out`.
pub(super) fn push_escaped(out: &mut String, s: &str) {
    if !s
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\''))
    {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// The stylesheet of every HTML page (listings and the front page).
pub(super) const STYLE: &str = r#"<style>
:root{--fg:#1f2328;--muted:#59636e;--bg:#fff;--hover:#f3f5f7;--line:#e4e7eb;--link:#0b5cad;--accent:#c70036;--panel:#f6f8fa;--bad:#b3261e}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0f1216;--hover:#171c22;--line:#262c33;--link:#6cb6ff;--accent:#ff5c7f;--panel:#161b22;--bad:#ff7b72}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;border-top:4px solid var(--accent);color:var(--fg);background:var(--bg);font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}
header{padding-top:1.1rem}
.crumbs{font-size:1.25rem;font-weight:600;overflow-wrap:anywhere;color:var(--muted)}
.crumbs a{color:var(--link);text-decoration:none;padding:0 .1em}
.crumbs a:hover{text-decoration:underline}
.crumbs .here{color:var(--fg);padding:0 .1em}
.summary{margin:.25rem 0 .8rem;color:var(--muted);font-size:.85rem}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-size:.72rem;font-weight:600;letter-spacing:.06em;text-transform:uppercase;color:var(--muted);padding:.35rem .5rem;border-bottom:2px solid var(--line);white-space:nowrap}
th a{color:inherit;text-decoration:none}
th a:hover{color:var(--link);text-decoration:underline}
td{padding:.17rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
tbody tr:hover{background:var(--hover)}
td.name a{color:var(--link);text-decoration:none;overflow-wrap:anywhere;display:block;padding-left:1.5em;position:relative}
td.name a:hover{text-decoration:underline}
td.name a::before{content:"";position:absolute;left:0;top:.15em;width:1em;height:1em;background:no-repeat center/contain}
tr.d td.name a{font-weight:600}
tr.d td.name a::before{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Cpath fill='%23d9a21b' d='M1 3.5A1.5 1.5 0 0 1 2.5 2h3.6l1.5 1.5h5.9A1.5 1.5 0 0 1 15 5v7.5a1.5 1.5 0 0 1-1.5 1.5h-11A1.5 1.5 0 0 1 1 12.5z'/%3E%3C/svg%3E")}
tr.f td.name a::before{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Cpath fill='%238a94a0' d='M3.5 1h6L13 4.5v9a1.5 1.5 0 0 1-1.5 1.5h-8A1.5 1.5 0 0 1 2 13.5v-11A1.5 1.5 0 0 1 3.5 1zM9 1.5V5h3.5'/%3E%3C/svg%3E")}
tr.up td.name a::before{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Cpath fill='none' stroke='%238a94a0' stroke-width='1.6' stroke-linecap='round' stroke-linejoin='round' d='M8 13V3M3.5 7.5 8 3l4.5 4.5'/%3E%3C/svg%3E")}
.size,.date{text-align:right;white-space:nowrap;color:var(--muted);font-variant-numeric:tabular-nums}
th.size,th.date{text-align:right}
.card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.6rem 1rem .8rem;margin:0 0 1rem}
.card h2{margin:.1rem 0 .4rem;font-size:1.1rem}
.card h2 a{color:var(--link);text-decoration:none}
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:0 0 .5rem}
.card dt{color:var(--muted);font-size:.85rem}
.card dd{margin:0;overflow-wrap:anywhere}
.card dd a{color:var(--link);margin-right:.6em}
.card .apt{margin:.5rem 0 .2rem;color:var(--muted);font-size:.8rem}
.card pre{margin:0;padding:.45rem .6rem;background:var(--bg);border:1px solid var(--line);border-radius:4px;overflow-x:auto;font-size:.8rem;line-height:1.35}
code,pre{font-family:ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,Consolas,monospace}
dd code{font-size:.85rem}
.bad{color:var(--bad);font-weight:600}
.note{color:var(--muted)}
footer{color:var(--muted);font-size:.8rem;padding-top:1rem;padding-bottom:2rem}
@media (max-width:36rem){body{font-size:13.5px}.date{display:none}td,th{padding-left:.3rem;padding-right:.3rem}td.size{font-size:.85rem}.crumbs{font-size:1.1rem}.card{padding:.5rem .6rem}.card dl{grid-template-columns:1fr;gap:0}.card dd{margin-bottom:.3rem}header,main,footer{padding-left:.5rem;padding-right:.5rem}}
</style>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: Kind) -> Entry {
        Entry {
            name: name.into(),
            kind,
            size: 1536,
            mtime: 784_111_777,
        }
    }

    #[test]
    fn sizes() {
        for (n, s) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (10 * 1024, "10 KiB"),
            (1024 * 1024, "1.0 MiB"),
            (5 * 1024 * 1024 * 1024, "5.0 GiB"),
        ] {
            assert_eq!(human_size(n), s);
        }
    }

    #[test]
    fn hostile_names_are_escaped_and_encoded() {
        let mut es = vec![
            entry("<script>alert(1)</script>", Kind::File),
            entry("a \"quoted\" 'name'", Kind::File),
            entry("new\nline", Kind::File),
            entry("javascript:alert(1)", Kind::File),
            entry("😀 emoji", Kind::Directory),
        ];
        sort(&mut es);
        let refs: Vec<&Entry> = es.iter().collect();
        let segments = ["x<y".to_string()];
        let page = html(
            &Render {
                segments: &segments,
                ..Render::default()
            },
            &refs,
        );
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("href=\"%3Cscript%3Ealert%281%29%3C%2Fscript%3E\""));
        assert!(page.contains("href=\"javascript%3Aalert%281%29\""));
        assert!(page.contains("href=\"new%0Aline\""));
        assert!(page.contains("href=\"%F0%9F%98%80%20emoji/\""));
        assert!(page.contains("a &quot;quoted&quot; &#39;name&#39;"));
        assert!(page.contains("<title>Index of /x&lt;y/</title>"));
        // Directories first.
        assert!(page.find("emoji").unwrap() < page.find("alert").unwrap());
        let j: serde_json::Value = serde_json::from_str(&json("/x/", &refs)).unwrap();
        assert_eq!(j["entries"][0]["type"], "directory");
        assert_eq!(j["entries"][0]["size"], serde_json::Value::Null);
        assert_eq!(j["entries"][1]["size"], 1536);
        assert!(
            j["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "new\nline")
        );
    }
}
