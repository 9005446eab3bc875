//! Structured authorization fuzzing: the input type, the policy it builds
//! and every invariant live in `src/authorize.rs` (shared with the
//! `corpus_stats` example, which reports what the corpus exercises).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netgrant_fuzz::authorize::{run, Input};

fuzz_target!(|input: Input| {
    let _ = run(&input);
});
