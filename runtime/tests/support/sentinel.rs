//! Redaction checks: a sentinel value must appear in none of a `Debug`
//! string, an error's `Display`, captured `tracing` output or a file.
//!
//! A sentinel is searched for as written and as `Debug` escapes it, so a
//! value that was quoted on its way out is still found.

use std::fmt::{Debug, Display};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A secret-looking value that occurs nowhere else: search for it.
#[derive(Clone, Copy)]
pub struct Sentinel(pub &'static str);

impl Sentinel {
    /// The default sentinel, unlikely in any real output.
    pub const DEFAULT: Sentinel = Sentinel("SENTINEL-7c1f9a2e-credential");

    /// The value, to put into a store or a message.
    pub fn value(&self) -> &'static str {
        self.0
    }

    /// Whether `hay` holds the sentinel, raw or `Debug`-escaped.
    pub fn found_in(&self, hay: &[u8]) -> bool {
        let escaped = format!("{:?}", self.0);
        let escaped = escaped.trim_matches('"');
        contains(hay, self.0.as_bytes()) || contains(hay, escaped.as_bytes())
    }

    fn check(&self, what: &str, hay: &[u8]) {
        assert!(
            !self.found_in(hay),
            "sentinel leaked into {what}: {}",
            String::from_utf8_lossy(hay)
        );
    }

    /// `{v:?}` and `{v:#?}` do not contain it.
    pub fn assert_not_in_debug<T: Debug + ?Sized>(&self, what: &str, v: &T) {
        self.check(&format!("Debug of {what}"), format!("{v:?}").as_bytes());
        self.check(&format!("Debug of {what}"), format!("{v:#?}").as_bytes());
    }

    /// `{e}` does not contain it, nor does any `source()` in its chain.
    pub fn assert_not_in_error<E: std::error::Error + ?Sized>(&self, what: &str, e: &E) {
        self.assert_not_in_display(what, e);
        let mut source = e.source();
        while let Some(s) = source {
            self.assert_not_in_display(&format!("source of {what}"), s);
            source = s.source();
        }
    }

    /// `{v}` does not contain it.
    pub fn assert_not_in_display<T: Display + ?Sized>(&self, what: &str, v: &T) {
        self.check(&format!("Display of {what}"), v.to_string().as_bytes());
    }

    /// The file's bytes do not contain it (a missing file passes: nothing
    /// was written).
    pub fn assert_not_in_file(&self, path: &Path) {
        if let Ok(bytes) = std::fs::read(path) {
            self.check(&format!("file {}", path.display()), &bytes);
        }
    }

    /// Runs `f` with a `tracing` subscriber (every level, every target, with
    /// span fields) on this thread, then checks what it wrote. Returns `f`'s
    /// result and the captured text.
    pub fn assert_not_in_tracing<R>(&self, f: impl FnOnce() -> R) -> (R, String) {
        let (r, text) = capture_tracing(f);
        self.check("tracing output", text.as_bytes());
        (r, text)
    }
}

/// Runs `f` under a thread-local `tracing` subscriber that records every
/// event at every level; returns its result and the text written. Only
/// this thread is captured: drive async code with a current-thread runtime
/// inside `f`.
pub fn capture_tracing<R>(f: impl FnOnce() -> R) -> (R, String) {
    let buf = Captured::default();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(buf.clone())
        .finish();
    let r = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (r, text)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
