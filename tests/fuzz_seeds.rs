//! The fuzz targets' seeds and every input a fuzzer ever crashed on (`fuzz/seeds/<target>/`,
//! `fuzz/regressions/<target>/`), replayed through the same entry points on stable Rust in
//! every test run, plus 20,000 seeded random mutations of each seed. The real
//! coverage-guided runs are `scripts/fuzz.sh` (cargo fuzz; see README).

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("modelfile", rollama::fuzzing::modelfile),
    ("model_name", rollama::fuzzing::model_name),
    ("gguf_header", rollama::fuzzing::gguf_header),
    ("template", rollama::fuzzing::template),
    ("request_body", rollama::fuzzing::request_body),
];

fn inputs(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// A random edit: flip, insert, delete or duplicate a few bytes.
fn mutate(input: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let at = if out.is_empty() {
            0
        } else {
            rng.random_range(0..out.len())
        };
        match rng.random_range(0..4) {
            0 if !out.is_empty() => out[at] ^= 1 << rng.random_range(0..8),
            1 => out.insert(at, rng.random()),
            2 if !out.is_empty() => {
                out.remove(at);
            }
            _ if !out.is_empty() => {
                let end = (at + rng.random_range(1..16)).min(out.len());
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
            _ => out.push(rng.random()),
        }
    }
    out
}

/// Runs one input; a panic fails the test naming the target and showing the input.
fn run(name: &str, target: Target, input: &[u8]) {
    if std::panic::catch_unwind(|| target(input)).is_err() {
        panic!(
            "{name} panicked on {:?}",
            String::from_utf8_lossy(input)
                .chars()
                .take(2000)
                .collect::<String>()
        );
    }
}

#[test]
fn seeds_regressions_and_mutations_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut rng = StdRng::seed_from_u64(1);
    for (name, target) in TARGETS {
        let seeds = inputs(&root.join("seeds").join(name));
        assert!(!seeds.is_empty(), "no seeds for {name}");
        for input in seeds
            .iter()
            .chain(&inputs(&root.join("regressions").join(name)))
        {
            run(name, *target, input);
        }
        for _ in 0..20_000 {
            let seed = &seeds[rng.random_range(0..seeds.len())];
            run(name, *target, &mutate(seed, &mut rng));
        }
    }
}
