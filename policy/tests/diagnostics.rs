//! Diagnostic fixtures: every [`Code`] is triggered by at least one fixture,
//! every diagnostic is rendered the way a terminal shows it and snapshotted.
//!
//! Layout: `tests/diagnostics/<fixture>/` holds `plugin.toml` (and optionally
//! `grant.toml`), or `ir.json`, plus `expect`: the codes the fixture must
//! produce, one per line — exactly those, no more, no fewer. Inputs too big
//! to commit (1 MiB files, 10,001 targets, 2,049-byte URLs) are generated in
//! [`synthetic`]. Snapshots live in `tests/snapshots/diagnostics__<fixture>.snap`.
//!
//! Checks:
//! (a) each fixture produces exactly its `expect`ed codes;
//! (b) every code in `Code::ALL` is covered by a fixture (or listed in
//!     [`ELSEWHERE`] with the reason it cannot be produced by this crate);
//! (c) every error / entry_error diagnostic from a TOML file has a label and a
//!     help line, and every label lies inside the file on char boundaries;
//! (d) codes are unique and every code appears in `docs/diagnostics.md`;
//! plus "collect all problems": one parse reports every independent error,
//! sorted by position.

use netgrant_policy::diagnostics::{render, Severity};
use netgrant_policy::{compile, load_policy, Code, Diagnostic, Grant, Manifest};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/diagnostics");
const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/diagnostics.md");

/// Codes no fixture in this crate can produce, and why. Keep this list short:
/// a code belongs here only if no `netgrant-policy` function emits it.
const ELSEWHERE: &[(Code, &str)] = &[
    (
        Code::IoRead,
        // Reading files is the CLI's job: `netgrant_policy` takes text or bytes,
        // and the function that emits this code, `read` in cli/src/input.rs, lives
        // in the binary-only `netgrant` crate, which this crate cannot depend on.
        // The CLI's integration tests drive it with a nonexistent path;
        // `io_read_is_emitted_by_the_cli` below checks the code is still there.
        "cli/src/input.rs",
    ),
    (
        // The `list` walk and grant pairing live in the CLI (file system).
        Code::ListLimit,
        "cli/src/list.rs",
    ),
    (Code::ListAmbiguousGrant, "cli/src/list.rs"),
];

/// Diagnostics about a file as a whole, where no span makes sense (the file
/// is too big or not text), or about an IR file, which `load_policy` reports
/// without spans except for JSON syntax errors (see the report: IR
/// diagnostics have no spans because serde_json gives none).
const WHOLE_FILE: &[Code] = &[
    Code::IoRead,
    Code::FileTooLarge,
    Code::NotUtf8,
    Code::IrVersion,
    Code::IrTampered,
];

struct Fixture {
    name: String,
    expect: Vec<Code>,
    diagnostics: Vec<Diagnostic>,
}

fn code_from_str(s: &str) -> Code {
    *Code::ALL
        .iter()
        .find(|c| c.as_str() == s)
        .unwrap_or_else(|| panic!("unknown code {s:?} in an expect file"))
}

fn read_expect(dir: &Path) -> Vec<Code> {
    let text = std::fs::read_to_string(dir.join("expect"))
        .unwrap_or_else(|e| panic!("{}: no expect file: {e}", dir.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(code_from_str)
        .collect()
}

/// Parses, then compiles, the way the CLI does: manifest diagnostics, then
/// grant diagnostics, then compile diagnostics (only when both parsed).
fn run_toml(name: &str, manifest: Option<&[u8]>, grant: Option<&[u8]>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let m = manifest.map(|bytes| {
        let p = Manifest::parse_bytes(&format!("{name}/plugin.toml"), bytes);
        out.extend(p.diagnostics);
        p.value
    });
    let g = grant.map(|bytes| {
        let p = Grant::parse_bytes(&format!("{name}/grant.toml"), bytes);
        out.extend(p.diagnostics);
        p.value
    });
    if let Some(Some(m)) = &m {
        let grant = match &g {
            None => None,
            Some(Some(g)) => Some(g),
            Some(None) => return out,
        };
        let compiled = compile(m, grant);
        out.extend(compiled.diagnostics);
        // Lints run the way `check` runs them, but only for `lint_*` fixtures,
        // so the other fixtures keep expecting exactly their own codes.
        if let (true, Some(p)) = (name.starts_with("lint_"), &compiled.policy) {
            out.extend(netgrant_policy::lint::lint(m, grant, p));
        }
    }
    out
}

fn run_dir(dir: &Path) -> Fixture {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let read = |f: &str| std::fs::read(dir.join(f)).ok();
    let diagnostics = if let Some(ir) = read("ir.json") {
        let text = String::from_utf8(ir).expect("IR fixtures are UTF-8");
        match load_policy(&format!("{name}/ir.json"), &text) {
            Ok(_) => Vec::new(),
            Err(ds) => ds,
        }
    } else {
        let m = read("plugin.toml");
        let g = read("grant.toml");
        assert!(
            m.is_some() || g.is_some(),
            "{name}: a fixture needs plugin.toml, grant.toml or ir.json"
        );
        run_toml(&name, m.as_deref(), g.as_deref())
    };
    Fixture {
        expect: read_expect(dir),
        name,
        diagnostics,
    }
}

fn manifest_header() -> String {
    "[plugin]\nname = \"demo\"\nversion = \"0.1.0\"\n".to_string()
}

/// Fixtures generated in code: too big to commit, or best built exactly.
fn synthetic() -> Vec<Fixture> {
    let mut out = Vec::new();

    // 1 MiB + 1 byte: valid TOML padded with a comment, read as bytes.
    let mut big = manifest_header();
    big.push_str("[[host_api.websocket]]\nurl = \"wss://gateway.example.com/\"\n# ");
    while big.len() < 1024 * 1024 + 1 {
        big.push('x');
    }
    big.truncate(1024 * 1024 + 1);
    out.push(Fixture {
        name: "synthetic_io_too_large".into(),
        expect: vec![Code::FileTooLarge],
        diagnostics: run_toml("synthetic_io_too_large", Some(big.as_bytes()), None),
    });

    // 10,001 targets: the one too many is labelled.
    let mut many = manifest_header();
    for i in 0..10_001 {
        many.push_str(&format!(
            "\n[[host_api.websocket]]\nurl = \"wss://h{i}.example.com/\"\n"
        ));
    }
    assert!(many.len() < 1024 * 1024);
    out.push(Fixture {
        name: "synthetic_too_many_targets".into(),
        expect: vec![Code::TooMany],
        diagnostics: run_toml("synthetic_too_many_targets", Some(many.as_bytes()), None),
    });

    // A 2,049-byte URL.
    let prefix = "wss://gateway.example.com/";
    let mut url = prefix.to_string();
    while url.len() < 2049 {
        url.push_str("segment/");
    }
    url.truncate(2049);
    assert_eq!(url.len(), 2049);
    let text = format!(
        "{}\n[[host_api.websocket]]\nurl = \"{url}\"\n",
        manifest_header()
    );
    out.push(Fixture {
        name: "synthetic_target_too_long".into(),
        expect: vec![Code::TargetTooLong],
        diagnostics: run_toml("synthetic_target_too_long", Some(text.as_bytes()), None),
    });
    out
}

fn all_fixtures() -> Vec<Fixture> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .expect("fixture directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut out: Vec<Fixture> = dirs.iter().map(|d| run_dir(d)).collect();
    out.extend(synthetic());
    out
}

fn rendered(f: &Fixture) -> String {
    f.diagnostics
        .iter()
        .map(|d| render(d, false))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn fixtures_produce_their_codes_and_render() {
    let fixtures = all_fixtures();
    assert!(
        fixtures.len() >= Code::ALL.len(),
        "{} fixtures",
        fixtures.len()
    );
    let mut failures = Vec::new();
    for f in &fixtures {
        let produced: BTreeSet<&str> = f.diagnostics.iter().map(|d| d.code.as_str()).collect();
        let expected: BTreeSet<&str> = f.expect.iter().map(|c| c.as_str()).collect();
        if produced != expected {
            failures.push(format!(
                "{}: expected {expected:?}, produced {produced:?}\n{}",
                f.name,
                rendered(f)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for f in &fixtures {
        let text = rendered(f);
        // A rendered diagnostic is plain text: no escape sequences survive.
        assert!(
            !text.contains('\u{1b}') && !text.chars().any(netgrant_policy::redact::is_bidi_control),
            "{}: control characters in rendered output",
            f.name
        );
        let expect: Vec<&str> = f.expect.iter().map(|c| c.as_str()).collect();
        insta::with_settings!({
            description => format!("expect: {}", expect.join(", ")),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(f.name.clone(), text);
        });
    }
}

#[test]
fn every_code_is_covered() {
    let fixtures = all_fixtures();
    let mut covered: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in &fixtures {
        for c in &f.expect {
            covered.entry(c.as_str()).or_default().push(&f.name);
        }
    }
    let elsewhere: HashSet<Code> = ELSEWHERE.iter().map(|(c, _)| *c).collect();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !covered.contains_key(c.as_str()) && !elsewhere.contains(c))
        .map(|c| c.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a fixture (add one under tests/diagnostics/): {missing:?}"
    );
    for c in &elsewhere {
        assert!(
            !covered.contains_key(c.as_str()),
            "{c} has a fixture now; remove it from ELSEWHERE"
        );
    }
}

#[test]
fn io_read_is_emitted_by_the_cli() {
    for (code, file) in ELSEWHERE {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
        let src =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let variant = format!("Code::{code:?}");
        assert!(
            src.contains(&variant),
            "{code} is listed as produced by {file}, which no longer mentions {variant}"
        );
    }
}

fn is_char_boundary_range(text: &str, r: &std::ops::Range<usize>) -> bool {
    r.start <= r.end
        && r.end <= text.len()
        && text.is_char_boundary(r.start)
        && text.is_char_boundary(r.end)
}

#[test]
fn errors_have_labels_and_help() {
    let mut problems = Vec::new();
    for f in all_fixtures() {
        for d in &f.diagnostics {
            let is_error = matches!(d.severity(), Severity::Error | Severity::EntryError);
            if is_error && d.help.as_deref().is_none_or(str::is_empty) {
                problems.push(format!("{}: {} has no help line", f.name, d.code));
            }
            let Some(text) = d.source_text() else {
                assert!(
                    d.labels.is_empty(),
                    "{}: {} has labels but no source",
                    f.name,
                    d.code
                );
                continue;
            };
            if is_error && !WHOLE_FILE.contains(&d.code) && d.labels.is_empty() {
                problems.push(format!("{}: {} from a file has no label", f.name, d.code));
            }
            for l in &d.labels {
                if !is_char_boundary_range(text, &l.span) {
                    problems.push(format!(
                        "{}: {} label {:?} is outside the file or splits a character",
                        f.name, d.code, l.span
                    ));
                }
                if l.text.is_empty() {
                    problems.push(format!("{}: {} label without text", f.name, d.code));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn codes_are_unique_and_documented() {
    let mut seen = HashSet::new();
    for c in Code::ALL {
        assert!(seen.insert(c.as_str()), "duplicate code {c}");
        assert!(c.as_str().starts_with("netgrant::"), "{c}");
    }
    let docs = std::fs::read_to_string(DOCS).expect("docs/diagnostics.md");
    let mut missing = Vec::new();
    for c in Code::ALL {
        let row = format!("| `{}` | {} |", c.as_str(), c.severity().as_str());
        if !docs.lines().any(|l| l.starts_with(&row)) {
            missing.push(row);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/diagnostics.md lacks rows starting with:\n{}",
        missing.join("\n")
    );
    // And no stale rows for codes that no longer exist.
    let known: HashSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    for l in docs.lines().filter(|l| l.starts_with("| `netgrant::")) {
        let code = l.split('`').nth(1).unwrap();
        assert!(
            known.contains(code),
            "docs/diagnostics.md documents unknown code {code}"
        );
    }
}

#[test]
fn one_parse_collects_every_problem_sorted_by_position() {
    let dir = Path::new(FIXTURES).join("collect_all");
    let f = run_dir(&dir);
    let errors: Vec<&Diagnostic> = f
        .diagnostics
        .iter()
        .filter(|d| d.severity().is_error())
        .collect();
    assert!(errors.len() >= 5, "{}", rendered(&f));
    // Every expected code is reported, each exactly once.
    let codes: Vec<Code> = errors.iter().map(|d| d.code).collect();
    let mut want = f.expect.clone();
    let mut got = codes.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{}", rendered(&f));
    // In file order.
    let starts: Vec<usize> = errors
        .iter()
        .map(|d| d.primary_span().unwrap().start)
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "diagnostics are not sorted by position");
    // The problems are in different entries: at least four distinct lines of
    // `[[host_api.*]]` entries, plus the `[plugin]` table.
    let lines: BTreeSet<usize> = f
        .diagnostics
        .iter()
        .filter_map(|d| d.line_col())
        .map(|(l, _)| l)
        .collect();
    assert!(lines.len() >= 7, "{lines:?}");
}

#[test]
fn a_valid_ir_loads() {
    // The IR fixtures are hand-edited copies of this one; it must load, so the
    // tampering fixtures test exactly the edit they make.
    let manifest = Manifest::parse(
        "plugin.toml",
        r#"[plugin]
name = "bridge"
version = "0.3.1"

[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET", "POST"]
reason = "Post replies"

[[host_api.websocket]]
url = "wss://*/"
reason = "Connect to user-configured relays"
"#,
    )
    .value
    .unwrap();
    let grant = Grant::parse(
        "grant.toml",
        r#"plugin = "bridge"
[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET"]
[[host_api.websocket]]
url = "wss://*/"
broad = true
"#,
    )
    .value
    .unwrap();
    let policy = compile(&manifest, Some(&grant)).policy.unwrap();
    let json = policy.to_json();
    assert!(load_policy("ir.json", &json).is_ok());
    // Each tampered fixture differs from this IR in one line.
    for name in [
        "ir_tampered_approval",
        "ir_tampered_flags",
        "ir_version",
        "ir_syntax",
    ] {
        let edited =
            std::fs::read_to_string(Path::new(FIXTURES).join(name).join("ir.json")).unwrap();
        let differing = json
            .lines()
            .zip(edited.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differing, 1,
            "{name} should differ from the compiled IR in one line"
        );
    }
}
