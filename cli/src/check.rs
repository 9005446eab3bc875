//! `netgrant check`: validate, with human, JSON, GitHub and SARIF output.

use crate::input::{self, Loaded};
use crate::output::{print_stderr, print_stdout};
use crate::Exit;
use clap::ValueEnum;
use netgrant_policy::diagnostics::Severity;
use netgrant_policy::lint::Levels;
use netgrant_policy::redact::{escape_github_data, escape_github_property};
use netgrant_policy::{Code, Diagnostic};
use serde_json::{json, Value};
use std::path::Path;

/// Output format for `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// Rendered diagnostics for a terminal.
    Human,
    /// One JSON document.
    Json,
    /// GitHub Actions workflow annotations.
    Github,
    /// SARIF 2.1.0.
    Sarif,
}

/// What `check` was asked to do beyond validating.
pub struct CheckOptions<'a> {
    /// Exit 1 when anything broad is requested.
    pub deny_broad: bool,
    /// Lint levels from `--deny` / `--allow`.
    pub levels: &'a Levels,
    /// Output format.
    pub format: CheckFormat,
}

/// Parses `--deny` / `--allow` names; an unknown name is a usage error.
pub fn levels(deny: &[String], allow: &[String]) -> Result<Levels, Exit> {
    Levels::new(deny, allow).map_err(|e| {
        print_stderr(&format!(
            "error: {} is not a lint or warning code; use `warnings` or one of:\n  {}\n",
            netgrant_policy::diagnostics::quote(&e.0),
            Levels::names().join("\n  ")
        ));
        Exit::Invalid
    })
}

/// Runs `check`.
pub fn run(manifest: &Path, grant: Option<&Path>, opts: &CheckOptions<'_>) -> Exit {
    let deny_broad = opts.deny_broad;
    let format = opts.format;
    let mut loaded = input::load_manifest_and_grant(manifest, grant);
    // Lints are advice about a valid file: they run only when it compiled.
    if let (Some(m), Some(p)) = (&loaded.manifest, &loaded.policy) {
        let lints = netgrant_policy::lint::lint(m, loaded.grant.as_ref(), p);
        loaded.diagnostics.extend(lints);
    }
    loaded.diagnostics = opts.levels.apply(std::mem::take(&mut loaded.diagnostics));
    let broad = broad_requested(&loaded);
    let invalid = loaded
        .diagnostics
        .iter()
        .any(|d| d.severity().is_error() && !d.is_promoted());
    let denied_lints = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_promoted())
        .count();
    let gate = deny_broad && !broad.is_empty();
    let exit = if invalid {
        Exit::Invalid
    } else if gate || denied_lints > 0 {
        Exit::Deny
    } else {
        Exit::Ok
    };
    let out = match format {
        CheckFormat::Human => {
            let mut s = input::render_human(&loaded.diagnostics);
            let (e, w) = counts(&loaded.diagnostics);
            if denied_lints > 0 {
                s.push_str(&format!(
                    "✗ --deny: {denied_lints} denied warning{}\n",
                    plural(denied_lints)
                ));
            }
            if gate {
                s.push_str(&format!(
                    "✗ --deny-broad: {} broad target{} requested:\n",
                    broad.len(),
                    plural(broad.len())
                ));
                for b in &broad {
                    s.push_str(&format!(
                        "    {}\n",
                        netgrant_policy::redact::escape_terminal(b)
                    ));
                }
            }
            let name = manifest.display().to_string();
            let verdict = match exit {
                Exit::Ok => "ok",
                Exit::Deny => "gate tripped",
                Exit::Invalid => "failed",
            };
            let notes = loaded
                .diagnostics
                .iter()
                .filter(|d| d.severity() == Severity::Note)
                .count();
            let notes = if notes > 0 {
                format!(", {notes} note{}", plural(notes))
            } else {
                String::new()
            };
            s.push_str(&format!(
                "check {}: {verdict} ({e} error{}, {w} warning{}{notes})\n",
                netgrant_policy::redact::escape_terminal(&name),
                plural(e),
                plural(w)
            ));
            print_stderr(&s);
            return exit;
        }
        CheckFormat::Json => {
            let (e, w) = counts(&loaded.diagnostics);
            let v = json!({
                "version": 1,
                "ok": exit == Exit::Ok,
                "exit_code": exit as u8,
                "errors": e,
                "warnings": w,
                "broad_requested": broad,
                "deny_broad_tripped": gate,
                "denied": denied_lints,
                "requested_digest": loaded.policy.as_ref().map(|p| p.requested_digest.clone()),
                "diagnostics": loaded.diagnostics.iter().map(diag_json).collect::<Vec<_>>(),
            });
            pretty(&v)
        }
        CheckFormat::Github => {
            let mut s = String::new();
            for d in &loaded.diagnostics {
                s.push_str(&github_line(d));
            }
            if gate {
                s.push_str(&format!(
                    "::error file={},title={}::{}\n",
                    escape_github_property(&manifest.display().to_string()),
                    escape_github_property("netgrant --deny-broad"),
                    escape_github_data(&format!("broad targets requested: {}", broad.join(", ")))
                ));
            }
            s
        }
        CheckFormat::Sarif => pretty(&sarif(&loaded.diagnostics)),
    };
    match print_stdout(&out) {
        Exit::Ok => exit,
        e => e,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("json");
    s.push('\n');
    s
}

/// Errors (promoted lints included) and warnings; notes are not counted.
fn counts(diags: &[Diagnostic]) -> (usize, usize) {
    let e = diags.iter().filter(|d| d.severity().is_error()).count();
    let w = diags
        .iter()
        .filter(|d| d.severity() == Severity::Warning)
        .count();
    (e, w)
}

/// Ids of requested targets that are broad.
fn broad_requested(loaded: &Loaded) -> Vec<String> {
    let Some(m) = &loaded.manifest else {
        return Vec::new();
    };
    let mut v: Vec<String> = m
        .requested
        .iter()
        .filter(|r| r.permission.flags().broad)
        .map(|r| format!("{}:{}", r.permission.capability, r.permission.target))
        .collect();
    v.sort();
    v
}

/// One diagnostic as JSON (stable, documented in docs/cli.md).
pub fn diag_json(d: &Diagnostic) -> Value {
    let (line, column) = d
        .line_col()
        .map(|(l, c)| (Some(l), Some(c)))
        .unwrap_or((None, None));
    let (end_line, end_column) = d
        .end_line_col()
        .map(|(l, c)| (Some(l), Some(c)))
        .unwrap_or((None, None));
    json!({
        "code": d.code.as_str(),
        "severity": d.severity().as_str(),
        "message": d.message,
        "help": d.help,
        "file": d.file_name(),
        "line": line,
        "column": column,
        "end_line": end_line,
        "end_column": end_column,
        "labels": d.labels.iter().map(|l| json!({"start": l.span.start, "end": l.span.end, "text": l.text})).collect::<Vec<_>>(),
        "related": d.related.iter().map(diag_json).collect::<Vec<_>>(),
    })
}

fn github_line(d: &Diagnostic) -> String {
    let level = match d.severity() {
        Severity::Warning => "warning",
        Severity::Note => "notice",
        _ => "error",
    };
    let mut props = Vec::new();
    if let Some(f) = d.file_name() {
        props.push(format!("file={}", escape_github_property(f)));
    }
    if let (Some((l, c)), Some((el, ec))) = (d.line_col(), d.end_line_col()) {
        props.push(format!("line={l}"));
        props.push(format!("col={c}"));
        props.push(format!("endLine={el}"));
        if el == l {
            props.push(format!("endColumn={}", ec + 1));
        }
    }
    props.push(format!("title={}", escape_github_property(d.code.as_str())));
    let mut msg = d.message.clone();
    if let Some(h) = &d.help {
        msg.push_str(" — help: ");
        msg.push_str(h);
    }
    format!(
        "::{level} {}::{}\n",
        props.join(","),
        escape_github_data(&msg)
    )
}

/// A SARIF 2.1.0 log.
pub fn sarif(diags: &[Diagnostic]) -> Value {
    let rules: Vec<Value> = Code::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.as_str(),
                "name": c.as_str().rsplit("::").next().unwrap_or(c.as_str()),
                "shortDescription": {"text": c.summary()},
                "defaultConfiguration": {"level": level(c.severity())},
                "helpUri": format!("https://example.invalid/netgrant/docs/diagnostics.md#{}", c.as_str().replace("::", "-")),
            })
        })
        .collect();
    let results: Vec<Value> = diags
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str(". help: ");
                text.push_str(h);
            }
            let rule_index = Code::ALL.iter().position(|c| *c == d.code).unwrap_or(0);
            let mut r = json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": rule_index,
                "level": level(d.severity()),
                "message": {"text": text},
            });
            if let Some(f) = d.file_name() {
                let mut loc = json!({"physicalLocation": {"artifactLocation": {"uri": uri(f)}}});
                if let (Some((l, c)), Some((el, ec)), Some(span)) =
                    (d.line_col(), d.end_line_col(), d.primary_span())
                {
                    loc["physicalLocation"]["region"] = json!({
                        "startLine": l, "startColumn": c, "endLine": el, "endColumn": ec + 1,
                        "charOffset": span.start, "charLength": span.end - span.start,
                    });
                }
                r["locations"] = json!([loc]);
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "netgrant",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/netgrant",
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "warning",
        Severity::Note => "note",
        _ => "error",
    }
}

/// What a relative URI reference carries as is: ASCII letters, digits and `-._~/`.
const URI_KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// A relative URI reference for a file path (percent-encoding what URIs cannot carry).
fn uri(path: &str) -> String {
    percent_encoding::utf8_percent_encode(&path.replace('\\', "/"), URI_KEEP).to_string()
}

#[cfg(test)]
mod tests {
    use super::uri;

    #[test]
    fn uri_encodes_what_a_relative_reference_cannot_carry() {
        assert_eq!(uri("a/b-c_d.e~f.toml"), "a/b-c_d.e~f.toml");
        assert_eq!(
            uri("dir\\sub dir/ü%#?.toml"),
            "dir/sub%20dir/%C3%BC%25%23%3F.toml"
        );
    }
}
