//! Replays the fuzz corpus (`fuzz/corpus/parse/`, seeds plus every input that once broke the
//! parser) through the fuzz target's checks, so `cargo test` keeps every past finding fixed
//! without needing cargo-fuzz or a nightly toolchain.

use std::path::Path;

#[test]
fn fuzz_corpus_keeps_the_invariants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/parse");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading the fuzz corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus directory entry").path())
        .collect();
    entries.sort();
    assert!(
        entries.len() >= 200,
        "the fuzz corpus {} has only {} files",
        dir.display(),
        entries.len()
    );
    let mut failures = Vec::new();
    for path in &entries {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // The fuzz target skips invalid UTF-8 the same way.
        let Ok(raw) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if let Err(broken) = iocx_model::check_invariants(raw) {
            failures.push(format!("{}: {broken}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
