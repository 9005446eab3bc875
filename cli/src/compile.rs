//! `netgrant compile`: print the canonical IR.

use crate::input;
use crate::output::{print_stderr, print_stdout};
use crate::Exit;
use std::path::Path;

/// Runs `compile`. Warnings and entry-level grant errors go to stderr; the
/// policy is still printed (dropped entries are under `ignored`).
pub fn run(manifest: &Path, grant: Option<&Path>, output: Option<&Path>) -> Exit {
    let loaded = input::load_manifest_and_grant(manifest, grant);
    print_stderr(&input::render_human(&loaded.diagnostics));
    let Some(policy) = loaded.policy.filter(|_| {
        !loaded
            .diagnostics
            .iter()
            .any(|d| d.severity() == netgrant_policy::Severity::Error)
    }) else {
        return Exit::Invalid;
    };
    let json = policy.to_json();
    match output {
        None => print_stdout(&json),
        Some(p) => match std::fs::write(p, json) {
            Ok(()) => Exit::Ok,
            Err(e) => {
                print_stderr(&format!(
                    "error: cannot write {}: {e}\n",
                    netgrant_policy::redact::escape_terminal(&p.display().to_string())
                ));
                Exit::Invalid
            }
        },
    }
}
