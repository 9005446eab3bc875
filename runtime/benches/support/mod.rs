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
