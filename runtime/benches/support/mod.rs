//! What both runtime benchmarks share.

/// This process's resident set size (Linux `/proc/self/statm`), in bytes;
/// 0 where it cannot be read.
pub fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Rounds in an interleaved measurement.
pub const ROUNDS: usize = 15;

/// `ours` and `theirs` (each runs the given number of iterations and
/// returns the time they took) measured in alternation: [`ROUNDS`] rounds
/// of about 100 ms each, the order swapped every round, so that a load
/// swing on the shared machine lands on both sides of a ratio. Returns the
/// per-round ratios, ours ÷ theirs, sorted, and the iterations per round.
pub fn interleave(
    mut ours: impl FnMut(u32) -> std::time::Duration,
    mut theirs: impl FnMut(u32) -> std::time::Duration,
) -> (Vec<f64>, u32) {
    // Warm up both, then size a round to ~100 ms of the slower side.
    let one = ours(20).max(theirs(20)) / 20;
    let iters = (100_000_000 / one.as_nanos().max(1)).clamp(2, 100_000) as u32;
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|r| {
            let (o, t) = if r % 2 == 0 {
                let o = ours(iters);
                (o, theirs(iters))
            } else {
                let t = theirs(iters);
                (ours(iters), t)
            };
            o.as_secs_f64() / t.as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    (ratios, iters)
}

/// One printed row of an interleaved table: the median ratio and its range.
pub fn report(row: &str, (ratios, iters): (Vec<f64>, u32)) {
    println!(
        "{row}: {:.2}× (range {:.2}–{:.2}×), {iters} iterations a round",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
}
