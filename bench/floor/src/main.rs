//! The filesystem floor of the SCALE bench: the file work a mirror sync of the same pool must
//! do at least, and nothing else (no network, no hashing, no index parsing).
//!
//! For every `Filename:`/`Size:` stanza of a `Packages` file, in index order: create the parent
//! directories (when the first file of a directory finds it missing), open a temp name beside the final one (`O_CREAT|O_EXCL`), write
//! `Size` bytes, close, rename to the final name. The files are shared out to N threads through
//! one atomic cursor, as a download queue would. Each thread count runs in its own fresh
//! directory the caller provides, so every count meets the same empty filesystem state.
//!
//! Then one `syncfs` of DIR's filesystem, the durability barrier a sync must add before its
//! indices go live (reported apart: `secs` is the floor, `synced` the floor plus the barrier).
//!
//!   debsync-floor PACKAGES THREADS DIR
//!     prints "floor threads=N files=F bytes=B secs=S synced=T"
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("debsync-floor: {e}");
        std::process::exit(1);
    }
}

fn run() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, packages, threads, dir] = args.as_slice() else {
        return Err(io::Error::other(
            "usage: debsync-floor PACKAGES THREADS DIR",
        ));
    };
    let threads: usize = threads
        .parse()
        .map_err(|_| io::Error::other(format!("THREADS: not a number: {threads}")))?;
    let files = pool_files(Path::new(packages))?;
    let root = PathBuf::from(dir);
    let cursor = AtomicUsize::new(0);
    let bytes: u64 = files.iter().map(|(_, size)| size).sum();
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| scope.spawn(|| write_files(&root, &files, &cursor)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(io::Error::other("worker panicked")))
            })
            .collect::<io::Result<Vec<()>>>()
    })?;
    let secs = started.elapsed().as_secs_f64();
    let dir = File::open(&root)?;
    // SAFETY: a plain syscall on a descriptor we own for the duration of the call.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } != 0 {
        return Err(io::Error::last_os_error());
    }
    println!(
        "floor threads={threads} files={} bytes={bytes} secs={secs:.3} synced={:.3}",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// (Filename, Size) of every stanza, in index order.
fn pool_files(packages: &Path) -> io::Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    let mut name = None;
    for line in BufReader::new(File::open(packages)?).lines() {
        let line = line?;
        if let Some(f) = line.strip_prefix("Filename: ") {
            name = Some(f.to_owned());
        } else if let Some(s) = line.strip_prefix("Size: ") {
            let size = s
                .parse()
                .map_err(|_| io::Error::other(format!("bad Size: {s}")))?;
            if let Some(f) = name.take() {
                files.push((f, size));
            }
        }
    }
    Ok(files)
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

fn write_files(root: &Path, files: &[(String, u64)], cursor: &AtomicUsize) -> io::Result<()> {
    let block = vec![b'x'; 64 * 1024];
    loop {
        let i = cursor.fetch_add(1, Ordering::Relaxed);
        let Some((name, size)) = files.get(i) else {
            return Ok(());
        };
        let path = root.join(name);
        let temp = path.with_file_name(format!(
            ".tmp.{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("f")
        ));
        let mut out = match create(&temp) {
            // The first file of a directory makes it (and its parents), as a sync must.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                create(&temp)?
            }
            other => other?,
        };
        let mut left = *size as usize;
        while left > 0 {
            let n = left.min(block.len());
            out.write_all(&block[..n])?;
            left -= n;
        }
        drop(out);
        fs::rename(&temp, &path)?;
    }
}
