//! Runs every fuzz target's body over its seeds and over whatever `corpus/<target>/` and
//! `artifacts/<target>/` hold, on the stable toolchain: `cd fuzz && cargo test`.
//!
//! `cargo test -- --ignored write_seed_corpus` writes the seeds to `corpus/<target>/` for
//! `cargo fuzz run <target>` to start from.

use std::path::Path;

use debsync_fuzz::{TARGETS, seeds};

fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect()
}

#[test]
fn targets_accept_seeds_and_saved_inputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, body) in TARGETS {
        let mut inputs = seeds(name);
        assert!(!inputs.is_empty(), "{name}: no seeds");
        inputs.extend(files_in(&root.join("corpus").join(name)));
        inputs.extend(files_in(&root.join("artifacts").join(name)));
        for input in &inputs {
            body(input);
            // Cheap variants: every prefix cut at a line boundary.
            for (i, _) in input
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .take(50)
            {
                body(&input[..i]);
            }
        }
        eprintln!("{name}: {} inputs", inputs.len());
    }
}

#[test]
#[ignore = "writes corpus/<target>/seed-*: run before `cargo fuzz run`"]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in TARGETS {
        let dir = root.join("corpus").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in seeds(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), seed).unwrap();
        }
    }
}
