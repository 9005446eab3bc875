//! What a corpus of the `authorize` target exercises: runs every input once
//! (checking the same invariants) and counts decisions by code, so a run's
//! report can say how often the reference matcher was consulted (on allow).
//!
//! `cargo run --release --example corpus_stats -- fuzz/corpus/authorize`

use arbitrary::{Arbitrary, Unstructured};
use netgrant_fuzz::authorize::{run, Input};
use std::collections::BTreeMap;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: corpus_stats <corpus dir>");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        // libfuzzer-sys builds typed inputs exactly this way.
        let key = match Input::arbitrary_take_rest(Unstructured::new(&bytes)) {
            Err(_) => "(not an input)".to_string(),
            Ok(input) => run(&input),
        };
        *counts.entry(key).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    println!("{total} inputs");
    for (code, n) in counts {
        println!("{n:>7}  {code}");
    }
}
