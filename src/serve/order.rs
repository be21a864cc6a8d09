//! The order of listing entries: directories first, then names in version order
//! ([`version_cmp`]: `hello_9.0` before `hello_10.0`). That order is made once when a
//! directory is read (and cached by `dircache.rs`); a [`View`] (`?sort=size|date|name&
//! order=asc|desc`) reorders references to the entries per request, never the cached list.

use std::cmp::Ordering;

use super::listing::{Entry, Kind};

/// Directories first, then by name in version order.
pub(super) fn sort(entries: &mut [Entry]) {
    entries.sort_unstable_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then_with(|| version_cmp(&a.name, &b.name))
    });
}

/// Names in the order a person expects of package files: runs of digits compare as numbers
/// (`9` < `10`), `~` sorts before anything, even the end of the name (`1.0~rc1` < `1.0`, as
/// in dpkg), then the end, then `_` (it ends a package name or version: `hello_1.0_amd64`
/// before `hello_1.0-2_amd64`, `hello_…` before `hello-doc_…`), other bytes by value. Names equal that way (`01` and `1`) fall back to bytes,
/// so the order is total.
pub(super) fn version_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    // Fast path (listings sort thousands of names sharing long prefixes): skip the common
    // prefix bytewise; only a difference inside a digit run needs the run compared as a
    // number, from its start.
    let same = x.iter().zip(y).take_while(|(c, d)| c == d).count();
    let digit = |s: &[u8], i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    if !digit(x, same) && !digit(y, same) {
        return match rank(x.get(same)).cmp(&rank(y.get(same))) {
            Ordering::Equal => a.cmp(b),
            other => other,
        };
    }
    let run_start = x[..same]
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    natural_from(x, y, run_start).then_with(|| a.cmp(b))
}

/// Where bytes outside digit runs sort: `~`, the end, `_`, then the rest by value.
fn rank(b: Option<&u8>) -> u16 {
    match b {
        Some(b'~') => 0,
        None => 1,
        Some(b'_') => 2,
        Some(&b) => u16::from(b) + 3,
    }
}

/// The natural comparison from index `at` of both names (the bytes before are equal and end
/// outside a digit run).
fn natural_from(x: &[u8], y: &[u8], at: usize) -> Ordering {
    let (mut i, mut j) = (at, at);
    loop {
        match (x.get(i), y.get(j)) {
            (None, None) => return Ordering::Equal,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let (n, i2) = digit_run(x, i);
                let (m, j2) = digit_run(y, j);
                let by_value = n.len().cmp(&m.len()).then_with(|| n.cmp(m));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                (i, j) = (i2, j2);
            }
            (c, d) => match rank(c).cmp(&rank(d)) {
                Ordering::Equal => (i, j) = (i + 1, j + 1),
                other => return other,
            },
        }
    }
}

/// The digits starting at `at` without leading zeros, and the index after the run.
fn digit_run(s: &[u8], at: usize) -> (&[u8], usize) {
    let end = s[at..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(s.len(), |n| at + n);
    let digits = &s[at..end];
    let first = digits
        .iter()
        .position(|&b| b != b'0')
        .unwrap_or(digits.len());
    (&digits[first..], end)
}

/// What a listing is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum SortKey {
    #[default]
    Name,
    Size,
    Date,
}

/// How a listing is shown: `?sort=name|size|date&order=asc|desc` (anything else: the default,
/// by name ascending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct View {
    pub key: SortKey,
    pub desc: bool,
}

impl View {
    pub(super) fn from_query(query: Option<&str>) -> View {
        let mut view = View::default();
        for pair in query.unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some(("sort", "size")) => view.key = SortKey::Size,
                Some(("sort", "date")) => view.key = SortKey::Date,
                Some(("sort", "name")) => view.key = SortKey::Name,
                Some(("order", "desc")) => view.desc = true,
                Some(("order", "asc")) => view.desc = false,
                _ => {}
            }
        }
        view
    }

    /// The query string that selects this view (empty for the default).
    pub(super) fn query(self) -> String {
        let key = match self.key {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Date => "date",
        };
        format!(
            "?sort={key}&amp;order={}",
            if self.desc { "desc" } else { "asc" }
        )
    }

    /// `entries` (in the read order: directories first, then by name) in this view's order.
    /// Directories stay first; ties keep the name order.
    pub(super) fn order(self, entries: &[Entry]) -> Vec<&Entry> {
        let mut view: Vec<&Entry> = entries.iter().collect();
        match self.key {
            SortKey::Name => {}
            SortKey::Size => view.sort_by(|a, b| a.kind.cmp(&b.kind).then(a.size.cmp(&b.size))),
            SortKey::Date => view.sort_by(|a, b| a.kind.cmp(&b.kind).then(a.mtime.cmp(&b.mtime))),
        }
        if self.desc {
            let dirs = view.partition_point(|e| e.kind == Kind::Directory);
            view[..dirs].reverse();
            view[dirs..].reverse();
        }
        view
    }
}

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
    fn version_order() {
        let mut names = vec![
            "hello_10.0_amd64.deb",
            "hello_9.0_amd64.deb",
            "hello_1.0_amd64.deb",
            "hello_1.0~rc1_amd64.deb",
            "hello_1.0-10_amd64.deb",
            "hello_1.0-2_amd64.deb",
            "hello_01.0_amd64.deb",
            "hello-doc_1.0_all.deb",
            "a",
        ];
        names.sort_by(|a, b| version_cmp(a, b));
        assert_eq!(
            names,
            [
                "a",
                "hello_1.0~rc1_amd64.deb",
                "hello_01.0_amd64.deb",
                "hello_1.0_amd64.deb",
                "hello_1.0-2_amd64.deb",
                "hello_1.0-10_amd64.deb",
                "hello_9.0_amd64.deb",
                "hello_10.0_amd64.deb",
                "hello-doc_1.0_all.deb",
            ]
        );
    }

    /// The fast path agrees with the plain walk on every pair of a varied set.
    #[test]
    fn fast_path_agrees_with_the_walk() {
        let names = [
            "", "a", "a1", "a01", "a1b", "a10", "a9", "a~", "a_", "a-", "a.1", "a.01", "x1.2~rc1",
            "x1.2", "x1.10", "x01.2", "x1.2_", "x1.2-1", "x12", "x1", "1", "01", "001", "10",
        ];
        for a in names {
            for b in names {
                let slow = natural_from(a.as_bytes(), b.as_bytes(), 0).then_with(|| a.cmp(b));
                assert_eq!(version_cmp(a, b), slow, "{a:?} vs {b:?}");
                assert_eq!(
                    version_cmp(a, b),
                    version_cmp(b, a).reverse(),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn views_reorder_and_keep_directories_first() {
        let mut es = vec![
            Entry {
                size: 30,
                mtime: 1,
                ..entry("b", Kind::File)
            },
            Entry {
                size: 10,
                mtime: 3,
                ..entry("a", Kind::File)
            },
            Entry {
                size: 20,
                mtime: 2,
                ..entry("c", Kind::File)
            },
            entry("z", Kind::Directory),
        ];
        sort(&mut es);
        let names = |q: &str| -> Vec<String> {
            View::from_query(Some(q))
                .order(&es)
                .iter()
                .map(|e| e.name.clone())
                .collect()
        };
        assert_eq!(names(""), ["z", "a", "b", "c"]);
        assert_eq!(names("sort=size"), ["z", "a", "c", "b"]);
        assert_eq!(names("sort=size&order=desc"), ["z", "b", "c", "a"]);
        assert_eq!(names("order=desc&sort=date"), ["z", "a", "c", "b"]);
        assert_eq!(names("sort=name&order=desc"), ["z", "c", "b", "a"]);
        assert_eq!(names("sort=bogus&order=sideways"), ["z", "a", "b", "c"]);
    }
}
