//! deb822 control data: paragraphs of `Field: value` lines separated by blank lines.
//!
//! Two layers, both allocation-light:
//! - [`StanzaReader`] splits a `Read` into raw stanzas without holding more than one
//!   buffer's worth of text, so a 50 MB `Packages` streams through a fixed window.
//! - [`Paragraph`] parses one stanza's text into borrowed `(field, value)` pairs, for the
//!   small documents (Release, one Sources stanza) where a full parse is the clear choice.

use std::io;

/// A malformed paragraph; `line` counts from 1 within the parsed text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Deb822Error {
    #[error("line {line}: expected `Field: value`, got {text:?}")]
    NotAField { line: usize, text: String },
    #[error("line {line}: continuation line before any field")]
    LeadingContinuation { line: usize },
    #[error("line {line}: field {field:?} appears twice")]
    DuplicateField { line: usize, field: String },
}

/// One paragraph: fields in order, values with surrounding whitespace trimmed; multi-line
/// values keep their continuation lines (leading space stripped, `\n`-joined via [`lines`]).
///
/// [`lines`]: Paragraph::lines
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Paragraph<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Paragraph<'a> {
    /// Field names compare case-insensitively, as deb822 says.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The continuation lines of a multi-line field (the first line's text is skipped when
    /// empty, as in `SHA256:\n <hash> <size> <path>`).
    pub fn lines(&self, name: &str) -> impl Iterator<Item = &'a str> {
        self.get(name)
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
    }

    pub fn fields(&self) -> &[(&'a str, &'a str)] {
        &self.fields
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Parses every paragraph of a text. `#` comment lines are skipped.
pub fn parse_paragraphs(text: &str) -> Result<Vec<Paragraph<'_>>, Deb822Error> {
    let mut out = Vec::new();
    let mut current = Paragraph::default();
    // Byte range of the value being built, so multi-line values stay borrowed slices.
    let mut open: Option<(usize, &str, usize, usize)> = None; // (index, name, start, end)
    let base = text.as_ptr() as usize;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            close(&mut current, &mut open, text);
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let offset = line.as_ptr() as usize - base;
        if line.starts_with([' ', '\t']) {
            match open.as_mut() {
                Some((_, _, _, end)) => *end = offset + line.len(),
                None => return Err(Deb822Error::LeadingContinuation { line: line_no }),
            }
            continue;
        }
        close(&mut current, &mut open, text);
        let Some((name, _)) = line.split_once(':') else {
            return Err(Deb822Error::NotAField {
                line: line_no,
                text: line.chars().take(80).collect(),
            });
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(Deb822Error::NotAField {
                line: line_no,
                text: line.chars().take(80).collect(),
            });
        }
        if current.get(name).is_some() {
            return Err(Deb822Error::DuplicateField {
                line: line_no,
                field: name.to_string(),
            });
        }
        let value_start = offset + name.len() + 1;
        open = Some((current.fields.len(), name, value_start, offset + line.len()));
        current.fields.push((name, ""));
    }
    close(&mut current, &mut open, text);
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

fn close<'a>(
    p: &mut Paragraph<'a>,
    open: &mut Option<(usize, &'a str, usize, usize)>,
    text: &'a str,
) {
    if let Some((index, name, start, end)) = open.take() {
        p.fields[index] = (name, text[start..end].trim());
    }
}

/// Splits a stream into raw stanzas (the bytes between blank lines) with one reusable buffer.
///
/// A stanza larger than `max_stanza` is an error rather than unbounded growth: a hostile index
/// cannot make the reader allocate without limit.
pub struct StanzaReader<R> {
    inner: R,
    /// Fixed-size window (zeroed once, grown only for a stanza larger than it).
    buf: Vec<u8>,
    /// `buf[start..end]` is read but not yet returned.
    start: usize,
    end: usize,
    /// How far `buf[start..end]` was already searched for a separator.
    scanned: usize,
    eof: bool,
    max_stanza: usize,
    /// Stanzas returned so far, for error messages.
    pub index: u64,
}

/// Initial buffer (it grows for a longer stanza): a 50 MB index is read in under a thousand
/// calls, and a sync's planner holds one open all through the pool stage.
const READ_CHUNK: usize = 64 * 1024;

static SEPARATOR: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\n\n"));

impl<R: io::Read> StanzaReader<R> {
    pub fn new(inner: R) -> Self {
        StanzaReader {
            inner,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            scanned: 0,
            eof: false,
            max_stanza: 16 * 1024 * 1024,
            index: 0,
        }
    }

    pub fn with_max_stanza(mut self, max: usize) -> Self {
        self.max_stanza = max;
        self
    }

    /// The next non-empty stanza, without its trailing blank line; `None` at the end.
    pub fn next_stanza(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            // Skip blank lines between stanzas.
            while self.start < self.end && matches!(self.buf[self.start], b'\n' | b'\r') {
                self.start += 1;
                self.scanned = 0;
            }
            let window = &self.buf[self.start..self.end];
            let from = self.scanned.saturating_sub(1);
            if let Some(pos) = SEPARATOR.find(&window[from..]) {
                let end = self.start + from + pos + 1;
                let stanza_start = self.start;
                self.start = end + 1;
                self.scanned = 0;
                self.index += 1;
                return Ok(Some(trim_cr(&self.buf[stanza_start..end])));
            }
            self.scanned = window.len();
            if self.eof {
                if window.iter().all(|b| b.is_ascii_whitespace()) {
                    self.start = self.end;
                    return Ok(None);
                }
                let stanza_start = self.start;
                self.start = self.end;
                self.scanned = 0;
                self.index += 1;
                return Ok(Some(trim_cr(&self.buf[stanza_start..self.end])));
            }
            if window.len() > self.max_stanza {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "stanza {} is larger than {} bytes",
                        self.index + 1,
                        self.max_stanza
                    ),
                ));
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let bigger = self.buf.len() * 2;
            self.buf.resize(bigger, 0);
        }
        let n = loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.end += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

fn trim_cr(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 0 && matches!(s[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &s[..end]
}

/// Iterates the lines of a raw stanza as `(field, value)` for field lines, skipping
/// continuation lines: the fast path for indices where only a few single-line fields matter.
pub fn field_lines(stanza: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    // Lines found with memchr, not a byte-at-a-time split: the planner walks the head of
    // every stanza of a 50 MB index with this.
    let mut rest = Some(stanza);
    std::iter::from_fn(move || {
        let s = rest?;
        Some(match memchr::memchr(b'\n', s) {
            Some(end) => {
                rest = Some(&s[end + 1..]);
                &s[..end]
            }
            None => {
                rest = None;
                s
            }
        })
    })
    .filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line
            .first()
            .is_none_or(|b| *b == b' ' || *b == b'\t' || *b == b'#')
        {
            return None;
        }
        let colon = memchr::memchr(b':', line)?;
        Some((&line[..colon], trim_ascii(&line[colon + 1..])))
    })
}

#[inline]
fn trim_ascii(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_with_multiline_values() {
        let text = "Origin: Debian\nSHA256:\n abc 1 main/x\n def 2 main/y\n\n\nPackage: a\nDescription: one\n two\n";
        let ps = parse_paragraphs(text).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("origin"), Some("Debian"));
        assert_eq!(
            ps[0].lines("SHA256").collect::<Vec<_>>(),
            ["abc 1 main/x", "def 2 main/y"]
        );
        assert_eq!(ps[1].get("Description"), Some("one\n two"));
    }

    #[test]
    fn paragraph_errors_name_the_line() {
        assert_eq!(
            parse_paragraphs("A: 1\nnot a field\n"),
            Err(Deb822Error::NotAField {
                line: 2,
                text: "not a field".into()
            })
        );
        assert_eq!(
            parse_paragraphs(" leading\n"),
            Err(Deb822Error::LeadingContinuation { line: 1 })
        );
        assert!(matches!(
            parse_paragraphs("A: 1\na: 2\n"),
            Err(Deb822Error::DuplicateField { line: 2, .. })
        ));
    }

    fn stanzas(input: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        // A reader returning `chunk` bytes at a time exercises the buffer refills.
        struct Chunked<'a>(&'a [u8], usize);
        impl io::Read for Chunked<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = StanzaReader::new(Chunked(input, chunk));
        let mut out = Vec::new();
        while let Some(s) = r.next_stanza().unwrap() {
            out.push(s.to_vec());
        }
        out
    }

    #[test]
    fn stanza_reader_splits_across_reads() {
        let input = b"\n\nA: 1\nB: 2\n\nC: 3\n\n\n\nD: 4";
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(
                stanzas(input, chunk),
                vec![b"A: 1\nB: 2".to_vec(), b"C: 3".to_vec(), b"D: 4".to_vec()],
                "chunk {chunk}"
            );
        }
        assert!(stanzas(b"", 10).is_empty());
        assert!(stanzas(b"\n\n\n", 10).is_empty());
    }

    #[test]
    fn stanza_reader_bounds_memory() {
        let big = vec![b'x'; 1000];
        let mut r = StanzaReader::new(&big[..]).with_max_stanza(100);
        // The limit applies once the window outgrows it without a separator.
        let err = match r.next_stanza() {
            Err(e) => e,
            Ok(_) => panic!("expected an error"),
        };
        assert!(err.to_string().contains("larger than 100"));
    }

    #[test]
    fn field_lines_skip_continuations() {
        let s = b"Package: a\nDescription: x\n more\nSize: 12\n";
        let got: Vec<_> = field_lines(s).collect();
        assert_eq!(
            got,
            vec![
                (&b"Package"[..], &b"a"[..]),
                (&b"Description"[..], &b"x"[..]),
                (&b"Size"[..], &b"12"[..])
            ]
        );
    }
}
