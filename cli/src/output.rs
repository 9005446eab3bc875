//! Writing to standard streams without panicking on a closed pipe.

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
