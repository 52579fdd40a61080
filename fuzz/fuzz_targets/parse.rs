//! Fuzzes the indicator parser: no panic, idempotent canonical forms, and detection agreeing
//! with declaration, on any text. The checks are `iocx_model::check_invariants`, the same ones
//! `crates/iocx-model/tests/fuzz_corpus.rs` replays over `corpus/parse/` in `cargo test`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The parser takes text; invalid UTF-8 is the importer's problem, not the parser's.
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(broken) = iocx_model::check_invariants(raw) {
        panic!("{broken}");
    }
});
