//! Writing to standard streams without panicking on a closed pipe, and the
//! one usage-error line every command prints.

use crate::Exit;
use std::io::{IsTerminal, Write};

/// Prints to stdout; a broken pipe is not an error worth a panic.
pub fn print_stdout(s: &str) -> Exit {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Exit::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
        Err(_) => Exit::Invalid,
    }
}

/// Prints to stderr, ignoring errors.
pub fn print_stderr(s: &str) {
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

/// Whether to colour output on stderr.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Reports a usage problem found after argument parsing (`error: …`, made
/// safe for a terminal) and returns exit 2.
pub fn usage(msg: &str) -> Exit {
    print_stderr(&format!(
        "error: {}\n",
        netgrant_policy::redact::escape_terminal(msg)
    ));
    Exit::Invalid
}
