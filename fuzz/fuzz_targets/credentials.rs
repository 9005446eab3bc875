//! Structured fuzzing of credential substitution and masking: the input
//! type and every invariant live in `src/credentials.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netgrant_fuzz::credentials::{run, Input};

fuzz_target!(|input: Input| run(&input));
