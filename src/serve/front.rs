//! What a visitor of a config site needs to use a mirror: the front page `/` (one card per
//! mirror) and the same card above the listing of `/<mirror>/`.
//!
//! A card shows the upstream (credentials redacted), suites, components, architectures, the
//! last successful sync and its age, links to the trace files, and the apt sources to paste
//! in both forms (one-line and deb822) with `signed-by` naming the keyring the mirror checks
//! upstream with. Everything that comes from outside (config, `Host`, file names) is
//! HTML-escaped. Built on request from the config and the state file: no cache to go stale.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Mount;
use super::datetime::Utc;
use super::listing::{STYLE, escape, push_escaped};
use super::path::{encode_segment, is_listable};
use crate::config::MirrorConfig;
use crate::sync::state::{RunResult, State};

/// Trace files linked from a card at most.
const MAX_TRACES: usize = 16;

/// What a card shows of a mirror's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MirrorInfo {
    /// Upstream URL with any credentials replaced by `***`.
    upstream: String,
    suites: Vec<String>,
    components: Vec<String>,
    architectures: Vec<String>,
    keyrings: Vec<PathBuf>,
    flat: bool,
    sources: bool,
}

impl MirrorInfo {
    pub(super) fn of(m: &MirrorConfig) -> MirrorInfo {
        MirrorInfo {
            upstream: crate::fetch::shown(&m.upstream),
            suites: m.suites.clone(),
            components: m.components.clone(),
            architectures: m.architectures.clone(),
            keyrings: m.keyrings.clone(),
            flat: m.flat,
            sources: m.sources,
        }
    }
}

/// What a card needs beyond the config, read from the tree (blocking, small).
pub(super) struct Live {
    state: Option<State>,
    traces: Vec<String>,
}

impl Live {
    pub(super) fn read(tree: &Path) -> Live {
        let mut traces: Vec<String> = std::fs::read_dir(tree.join("project/trace"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| is_listable(n))
            .collect();
        traces.sort();
        traces.truncate(MAX_TRACES);
        Live {
            state: State::read(tree),
            traces,
        }
    }
}

/// The base URL clients reach this server at: scheme and the request's `Host`.
pub(super) fn base_url(https: bool, host: Option<&str>) -> String {
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}", host.unwrap_or("THIS-SERVER"))
}

/// The front page: one card per mirror of the config.
pub(super) fn page(mirrors: &[(&Mount, &MirrorInfo, Live)], base: &str, now: i64) -> String {
    let mut out = String::with_capacity(4096 + mirrors.len() * 2048);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"color-scheme\" content=\"light dark\">\n");
    out.push_str("<title>Debian mirrors</title>\n");
    out.push_str(STYLE);
    out.push_str("</head>\n<body>\n<header>\n<nav class=\"crumbs\" aria-label=\"path\">");
    out.push_str("<span class=\"here\">/</span></nav>\n");
    let _ = writeln!(
        out,
        "<p class=\"summary\">{} {} served from {}</p>\n</header>\n<main>",
        mirrors.len(),
        if mirrors.len() == 1 {
            "mirror"
        } else {
            "mirrors"
        },
        escape(base)
    );
    for (mount, info, live) in mirrors {
        card(&mut out, mount, info, live, base, now, true);
    }
    out.push_str("</main>\n<footer>Served by debsync</footer>\n</body>\n</html>\n");
    out
}

/// One mirror's card; `linked`: its name links to `/<mirror>/` (front page).
pub(super) fn card(
    out: &mut String,
    mount: &Mount,
    info: &MirrorInfo,
    live: &Live,
    base: &str,
    now: i64,
    linked: bool,
) {
    let href = format!("/{}/", encode_segment(&mount.name));
    out.push_str("<section class=\"card\">\n<h2>");
    if linked {
        let _ = write!(out, "<a href=\"{href}\">{}/</a>", escape(&mount.name));
    } else {
        push_escaped(out, &mount.name);
    }
    out.push_str("</h2>\n<dl>\n");
    fact(
        out,
        "Upstream",
        &format!("<code>{}</code>", escape(&info.upstream)),
    );
    if info.flat {
        fact(out, "Layout", "flat repository (<code>./</code>)");
    } else {
        fact(out, "Suites", &words(&info.suites));
        fact(out, "Components", &words(&info.components));
    }
    fact(out, "Architectures", &words(&info.architectures));
    fact(out, "Last sync", &last_sync(live.state.as_ref(), now));
    if !live.traces.is_empty() {
        let mut links = String::new();
        for (i, t) in live.traces.iter().enumerate() {
            if i > 0 {
                links.push(' ');
            }
            let _ = write!(
                links,
                "<a href=\"{href}project/trace/{}\">{}</a>",
                encode_segment(t),
                escape(t)
            );
        }
        fact(out, "Trace", &links);
    }
    out.push_str("</dl>\n");
    let url = format!("{base}{href}");
    let (one_line, deb822) = apt_sources(info, &url);
    let _ = write!(
        out,
        "<p class=\"apt\">apt: <code>/etc/apt/sources.list.d/{0}.list</code></p>\n<pre>{1}</pre>\n\
         <p class=\"apt\">or deb822: <code>/etc/apt/sources.list.d/{0}.sources</code></p>\n<pre>{2}</pre>\n",
        escape(&mount.name),
        escape(&one_line),
        escape(&deb822)
    );
    out.push_str("</section>\n");
}

fn fact(out: &mut String, name: &str, html: &str) {
    let _ = writeln!(out, "<dt>{name}</dt><dd>{html}</dd>");
}

fn words(items: &[String]) -> String {
    if items.is_empty() {
        return "&mdash;".to_string();
    }
    items
        .iter()
        .map(|i| format!("<code>{}</code>", escape(i)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `2026-12-02 16:00 UTC (3h 2m ago)`, and a warning when the last attempt did not succeed.
fn last_sync(state: Option<&State>, now: i64) -> String {
    let Some(state) = state else {
        return "<span class=\"bad\">never</span>".to_string();
    };
    let mut out = String::new();
    match state.last_success {
        Some(t) => {
            Utc::from_unix(t).push_short(&mut out);
            let _ = write!(out, " UTC ({} ago)", crate::status::age(now - t));
        }
        None => out.push_str("<span class=\"bad\">never</span>"),
    }
    match state.last_result {
        RunResult::Failed => out.push_str(" <span class=\"bad\">last attempt failed</span>"),
        RunResult::Running => out.push_str(" <span class=\"note\">a sync is running</span>"),
        RunResult::Ok | RunResult::Interrupted | RunResult::Never => {}
    }
    out
}

/// The apt sources for the mirror at `url`: (one-line form, deb822 form), plain text.
pub(super) fn apt_sources(info: &MirrorInfo, url: &str) -> (String, String) {
    let signed_by: Vec<String> = info
        .keyrings
        .iter()
        .map(|k| k.display().to_string())
        .collect();
    let types = if info.sources { "deb deb-src" } else { "deb" };
    let option = format!("[signed-by={}]", signed_by.join(","));
    let mut one_line = String::new();
    let mut deb822 = format!("Types: {types}\nURIs: {url}\n");
    if info.flat {
        for t in types.split(' ') {
            let _ = writeln!(one_line, "{t} {option} {url} ./");
        }
        deb822.push_str("Suites: ./\n");
    } else {
        let components = info.components.join(" ");
        for t in types.split(' ') {
            for suite in &info.suites {
                let _ = writeln!(one_line, "{t} {option} {url} {suite} {components}");
            }
        }
        let _ = write!(
            deb822,
            "Suites: {}\nComponents: {components}\n",
            info.suites.join(" ")
        );
    }
    let _ = write!(deb822, "Signed-By: {}", signed_by.join(" "));
    (one_line.trim_end().to_string(), deb822)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> MirrorInfo {
        MirrorInfo {
            upstream: "https://***@deb.example/debian/".into(),
            suites: vec!["bookworm".into(), "bookworm-updates".into()],
            components: vec!["main".into(), "contrib".into()],
            architectures: vec!["amd64".into()],
            keyrings: vec!["/usr/share/keyrings/debian-archive-keyring.gpg".into()],
            flat: false,
            sources: false,
        }
    }

    #[test]
    fn apt_lines_name_the_keyring() {
        let (one, deb822) = apt_sources(&info(), "http://m.example/debian/");
        assert_eq!(
            one,
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m.example/debian/ bookworm main contrib\n\
             deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m.example/debian/ bookworm-updates main contrib"
        );
        assert_eq!(
            deb822,
            "Types: deb\nURIs: http://m.example/debian/\nSuites: bookworm bookworm-updates\n\
             Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg"
        );
        let flat = MirrorInfo {
            flat: true,
            sources: true,
            ..info()
        };
        let (one, deb822) = apt_sources(&flat, "http://m/f/");
        assert!(one.starts_with("deb [signed-by="), "{one}");
        assert!(one.ends_with(
            "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m/f/ ./"
        ));
        assert!(deb822.contains("Types: deb deb-src\n") && deb822.contains("Suites: ./\n"));
        assert!(!deb822.contains("Components"));
    }

    #[test]
    fn hostile_host_and_names_are_escaped() {
        let mount = Mount {
            name: "debian".into(),
            tree: "/nonexistent".into(),
            info: None,
        };
        let live = Live {
            state: None,
            traces: vec!["<b>x".into()],
        };
        let base = base_url(false, Some("evil\"><script>"));
        let html = page(&[(&mount, &info(), live)], &base, 0);
        assert!(!html.contains("<script>") && !html.contains("<b>"));
        assert!(html.contains("http://evil&quot;&gt;&lt;script&gt;/debian/"));
        assert!(html.contains("href=\"/debian/project/trace/%3Cb%3Ex\""));
        assert!(html.contains("https://***@deb.example/debian/"));
        assert!(html.contains("<span class=\"bad\">never</span>"));
    }
}
