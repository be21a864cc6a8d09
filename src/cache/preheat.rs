//! Preheat: fetch named packages (and their dependency closure) into the cache ahead of a
//! fleet rollout, so the first client already finds them local.
//!
//! 1. **Release**: the suite's verified Release through the cache (revalidated as usual).
//! 2. **Indices**: the `Packages` of each component for the architectures asked (plus `all`),
//!    fetched through the cache like a client's, so they are verified and stored.
//! 3. **Closure** ([`Universe::closure`], pure): from the named packages over `Depends` and
//!    `Pre-Depends`; of the alternatives `a | b` the first one the indices can satisfy (by a
//!    package or a `Provides`), as apt prefers; version constraints and architecture
//!    qualifiers are not evaluated (the first stanza of a name is taken).
//! 4. **Fetch**: every pool file of the closure through the in-flight map (so a client asking
//!    at the same time joins the same download), four at a time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use futures_util::StreamExt;

use super::flight::Target;
use super::{Answer, Cache, CacheError};
use crate::archive::Sha256;
use crate::archive::compression::Compression;
use crate::archive::deb822::{StanzaReader, field_lines};

/// What to preheat.
#[derive(Debug, Clone)]
pub struct PreheatRequest {
    pub suite: String,
    pub packages: Vec<String>,
    pub with_depends: bool,
    /// Architectures whose `Packages` to read (`all` is added).
    pub architectures: Vec<String>,
}

/// What a preheat found and did.
#[derive(Debug, Default, serde::Serialize)]
pub struct PreheatReport {
    /// Packages of the closure, by name, in the order found.
    pub packages: Vec<String>,
    /// Names (asked or depended on) that no index of the suite provides.
    pub missing: Vec<String>,
    /// Pool files fetched now / already in the cache / failed.
    pub fetched: usize,
    pub cached: usize,
    pub failed: Vec<String>,
    pub bytes: u64,
}

/// One binary package stanza, as much as the closure needs.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub name: String,
    pub filename: String,
    pub size: u64,
    pub sha256: Sha256,
    /// `Depends` and `Pre-Depends`, each a list of alternatives.
    pub depends: Vec<Vec<String>>,
    pub provides: Vec<String>,
}

/// The packages of a suite's indices, by name and by what they provide.
#[derive(Default)]
pub(crate) struct Universe {
    candidates: Vec<Candidate>,
    by_name: HashMap<String, usize>,
    providers: HashMap<String, Vec<usize>>,
}

/// `a (>= 1) | b:any, c` → `[[a, b], [c]]`.
fn parse_relations(value: &str) -> Vec<Vec<String>> {
    value
        .split(',')
        .map(|group| {
            group
                .split('|')
                .filter_map(|alt| {
                    let name = alt.trim().split([' ', '(', '[', '<']).next()?;
                    let name = name.split(':').next()?.trim();
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

impl Universe {
    /// Adds the stanzas of one decompressed `Packages` text.
    pub(crate) fn add_index(&mut self, reader: impl std::io::Read) -> std::io::Result<()> {
        let mut stanzas = StanzaReader::new(std::io::BufReader::new(reader));
        while let Some(stanza) = stanzas.next_stanza()? {
            let mut c = Candidate {
                name: String::new(),
                filename: String::new(),
                size: 0,
                sha256: Sha256([0; 32]),
                depends: Vec::new(),
                provides: Vec::new(),
            };
            let mut hash_ok = false;
            for (k, v) in field_lines(stanza) {
                let v = String::from_utf8_lossy(v);
                match k.to_ascii_lowercase().as_slice() {
                    b"package" => c.name = v.into_owned(),
                    b"filename" => c.filename = v.trim_start_matches("./").to_string(),
                    b"size" => c.size = v.parse().unwrap_or(0),
                    b"sha256" => {
                        if let Some(h) = Sha256::from_hex(&v) {
                            c.sha256 = h;
                            hash_ok = true;
                        }
                    }
                    b"depends" | b"pre-depends" => c.depends.extend(parse_relations(&v)),
                    b"provides" => c.provides.extend(parse_relations(&v).into_iter().flatten()),
                    _ => {}
                }
            }
            if c.name.is_empty() || c.filename.is_empty() || !hash_ok {
                continue;
            }
            self.add(c);
        }
        Ok(())
    }

    pub(crate) fn add(&mut self, c: Candidate) {
        let i = self.candidates.len();
        if self.by_name.contains_key(&c.name) {
            return;
        }
        self.by_name.insert(c.name.clone(), i);
        for p in &c.provides {
            self.providers.entry(p.clone()).or_default().push(i);
        }
        self.candidates.push(c);
    }

    /// The package a name resolves to: itself, else its first provider.
    fn pick(&self, name: &str) -> Option<usize> {
        self.by_name
            .get(name)
            .copied()
            .or_else(|| self.providers.get(name)?.first().copied())
    }

    /// The packages to fetch for `names` (with their dependencies when `deep`), and the names
    /// nothing satisfies.
    pub(crate) fn closure(&self, names: &[String], deep: bool) -> (Vec<&Candidate>, Vec<String>) {
        let mut chosen: Vec<usize> = Vec::new();
        let mut seen: HashSet<usize> = HashSet::new();
        let mut missing = Vec::new();
        let mut queue: VecDeque<usize> = VecDeque::new();
        for n in names {
            match self.pick(n) {
                Some(i) if seen.insert(i) => queue.push_back(i),
                Some(_) => {}
                None => missing.push(n.clone()),
            }
        }
        while let Some(i) = queue.pop_front() {
            chosen.push(i);
            if !deep {
                continue;
            }
            for group in &self.candidates[i].depends {
                // Satisfied already by a chosen alternative, else the first satisfiable one.
                let options: Vec<usize> = group.iter().filter_map(|a| self.pick(a)).collect();
                if options.iter().any(|o| seen.contains(o)) {
                    continue;
                }
                match options.first() {
                    Some(&o) => {
                        seen.insert(o);
                        queue.push_back(o);
                    }
                    None => missing.push(group.join(" | ")),
                }
            }
        }
        (
            chosen.iter().map(|&i| &self.candidates[i]).collect(),
            missing,
        )
    }
}

/// Runs a preheat (steps 1–4; see the module doc). `background`: return after step 3 and
/// fetch in a task (the HTTP endpoint); otherwise wait for every file (the CLI).
pub async fn preheat(
    cache: &Arc<Cache>,
    req: &PreheatRequest,
    background: bool,
) -> Result<PreheatReport, CacheError> {
    cache.suites.load_known(cache).await;
    let (g, _) = cache.suites.current(cache, &req.suite).await?;
    let release = g.verified.release();
    let mut archs = req.architectures.clone();
    archs.push("all".into());
    // Step 2: the best-compressed listed variant of each wanted Packages.
    let mut indices = Vec::new();
    for f in &release.files {
        let (logical, compression) = Compression::split(f.path.as_str());
        let wanted = archs
            .iter()
            .any(|a| logical.ends_with(&format!("/binary-{a}/Packages")))
            && !logical.contains("debian-installer");
        if wanted {
            indices.push((logical.to_string(), compression, f.clone()));
        }
    }
    // Cheapest to decode first; a variant upstream does not serve (Debian's plain
    // `Packages`) is skipped for the next.
    indices.sort_by_key(|(l, c, _)| (l.clone(), c.decode_cost()));
    let mut universe = Universe::default();
    let mut done: HashSet<String> = HashSet::new();
    for (logical, compression, f) in &indices {
        if done.contains(logical) {
            continue;
        }
        let rel = format!("dists/{}/{}", req.suite, f.path);
        let stored = match super::index::resolve_index(cache, &req.suite, f.path.as_str()).await {
            Ok(Answer::Stored { rel, .. }) => rel,
            Ok(Answer::Flight(flight)) => {
                flight.finished().await?;
                flight.rel.clone().into()
            }
            Ok(Answer::Pass(_)) | Err(CacheError::NotFound) => continue,
            Err(e) => return Err(e),
        };
        done.insert(logical.clone());
        let path = cache.tree.join(stored);
        let compression = *compression;
        universe = tokio::task::spawn_blocking(move || -> Result<Universe, CacheError> {
            let io = |source| CacheError::Io {
                path: path.clone(),
                source,
            };
            let file = std::fs::File::open(&path).map_err(io)?;
            let reader = compression.decoder(file).map_err(io)?;
            universe.add_index(reader).map_err(io)?;
            Ok(universe)
        })
        .await
        .map_err(|e| CacheError::Setup(format!("{rel}: {e}")))??;
    }
    // Step 3.
    let (closure, missing) = universe.closure(&req.packages, req.with_depends);
    let mut report = PreheatReport {
        packages: closure.iter().map(|c| c.name.clone()).collect(),
        missing,
        ..PreheatReport::default()
    };
    let targets: Vec<Target> = closure
        .iter()
        .map(|c| Target {
            store_rel: c.filename.clone(),
            upstream_rel: c.filename.clone(),
            size: c.size,
            sha256: c.sha256,
        })
        .filter(|t| crate::archive::ArchivePath::new(&t.store_rel).is_ok())
        .collect();
    report.bytes = targets.iter().map(|t| t.size).sum();
    // Step 4.
    let c = cache.clone();
    let fetch_all = async move {
        let results: Vec<(String, Result<bool, CacheError>)> = futures_util::stream::iter(targets)
            .map(|t| {
                let c = c.clone();
                async move {
                    let name = t.store_rel.clone();
                    let r = match c.flights.fetch(&c, t).await {
                        Ok(Answer::Flight(f)) => f.finished().await.map(|()| true),
                        Ok(_) => Ok(false),
                        Err(e) => Err(e),
                    };
                    (name, r)
                }
            })
            .buffer_unordered(4)
            .collect()
            .await;
        results
    };
    if background {
        let name = cache.name().to_string();
        tokio::spawn(async move {
            for (file, r) in fetch_all.await {
                if let Err(e) = r {
                    tracing::warn!("cache {name}: preheat {file}: {e}");
                }
            }
        });
        return Ok(report);
    }
    for (file, r) in fetch_all.await {
        match r {
            Ok(true) => report.fetched += 1,
            Ok(false) => report.cached += 1,
            Err(e) => report.failed.push(format!("{file}: {e}")),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, depends: &str, provides: &str) -> Candidate {
        Candidate {
            name: name.into(),
            filename: format!("pool/{name}.deb"),
            size: 1,
            sha256: Sha256::digest(name.as_bytes()),
            depends: parse_relations(depends),
            provides: parse_relations(provides).into_iter().flatten().collect(),
        }
    }

    #[test]
    fn relations_parse() {
        assert_eq!(
            parse_relations("libc6 (>= 2.36), a:any | b [amd64], c <!nocheck>"),
            vec![vec!["libc6"], vec!["a", "b"], vec!["c"]]
        );
        assert!(parse_relations("").is_empty());
    }

    #[test]
    fn closure_follows_depends_alternatives_and_provides() {
        let mut u = Universe::default();
        u.add(pkg("app", "libx (>= 1), mta | postfix, missing-lib", ""));
        u.add(pkg("libx", "libc6", ""));
        u.add(pkg("libc6", "", ""));
        u.add(pkg("exim4", "libc6", "mta"));
        u.add(pkg("postfix", "", "mta"));
        u.add(pkg("unrelated", "", ""));
        let names = |v: Vec<&Candidate>| v.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let (c, missing) = u.closure(&["app".into()], true);
        assert_eq!(names(c), ["app", "libx", "exim4", "libc6"]);
        assert_eq!(missing, ["missing-lib"]);
        let (c, _) = u.closure(&["app".into(), "postfix".into()], true);
        assert!(names(c).contains(&"postfix".to_string()));
        assert!(
            !names(u.closure(&["app".into(), "postfix".into()], true).0).contains(&"exim4".into())
        );
        let (c, missing) = u.closure(&["app".into(), "nope".into()], false);
        assert_eq!(
            (names(c), missing),
            (vec!["app".to_string()], vec!["nope".to_string()])
        );
    }
}
