//! Golden IR for every example under `examples/*/` (plugin.toml + grant.toml
//! → policy.json) and every broken-on-purpose grant fixture under
//! `tests/fixtures/` (see [`goldens`]), validated against the IR JSON Schema and re-loaded with
//! `load_policy`; plus a table of hand edits that `load_policy` must reject.
//!
//! Regenerate the golden files after an intended IR change with:
//!
//! ```text
//! NETGRANT_BLESS=1 cargo test -p netgrant-policy --test golden
//! ```
//!
//! and review the `git diff` of `examples/*/policy.json` and
//! `tests/fixtures/*.policy.json`: it reads as the permission change.

use netgrant_policy::schema::{schema_value, SchemaKind};
use netgrant_policy::{compile, load_policy, CompiledPolicy, Grant, Manifest, Policy};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

const BLESS_VAR: &str = "NETGRANT_BLESS";
const GOLDEN: &str = "policy.json";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A golden IR: the manifest and grant it compiles from, and the file.
struct Golden {
    name: String,
    manifest: PathBuf,
    grant: PathBuf,
    golden: PathBuf,
}

/// Every example directory with a manifest and a grant (golden
/// `examples/NAME/policy.json`), sorted by name, then the fixtures whose
/// grants are broken on purpose (`tests/fixtures/NAME.grant.toml` for the
/// example `NAME`'s manifest minus its last `-` part, golden
/// `tests/fixtures/NAME.policy.json`): examples stay clean enough to copy,
/// and the fixtures keep an IR with `ignored` entries under test.
fn goldens() -> Vec<Golden> {
    let examples = root().join("examples");
    let mut out: Vec<Golden> = fs::read_dir(&examples)
        .expect("examples/ exists")
        .map(|e| e.expect("readable examples/ entry").path())
        .filter(|p| p.join("plugin.toml").is_file() && p.join("grant.toml").is_file())
        .map(|p| Golden {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            manifest: p.join("plugin.toml"),
            grant: p.join("grant.toml"),
            golden: p.join(GOLDEN),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!out.is_empty(), "no examples found under {examples:?}");
    let fixtures = root().join("tests/fixtures");
    let mut extra: Vec<Golden> = fs::read_dir(&fixtures)
        .expect("tests/fixtures/ exists")
        .map(|e| e.expect("readable fixture").path())
        .filter_map(|p| {
            let name = p
                .file_name()?
                .to_str()?
                .strip_suffix(".grant.toml")?
                .to_owned();
            let example = &name[..name.rfind('-')?];
            Some(Golden {
                manifest: examples.join(example).join("plugin.toml"),
                grant: p.clone(),
                golden: fixtures.join(format!("{name}.policy.json")),
                name,
            })
        })
        .collect();
    extra.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(extra);
    out
}

fn compile_golden(g: &Golden) -> CompiledPolicy {
    let name = &g.name;
    let read = |f: &Path| fs::read_to_string(f).unwrap_or_else(|e| panic!("{name}: {f:?}: {e}"));
    let m = Manifest::parse("plugin.toml", &read(&g.manifest));
    let manifest = m
        .value
        .unwrap_or_else(|| panic!("{name}: the manifest does not parse: {:#?}", m.diagnostics));
    let gr = Grant::parse("grant.toml", &read(&g.grant));
    let grant = gr
        .value
        .unwrap_or_else(|| panic!("{name}: the grant does not parse: {:#?}", gr.diagnostics));
    let c = compile(&manifest, Some(&grant));
    c.policy
        .unwrap_or_else(|| panic!("{name} does not compile: {:#?}", c.diagnostics))
}

fn blessing() -> bool {
    std::env::var_os(BLESS_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

fn first_difference(want: &str, got: &str) -> String {
    for (n, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n      golden:   {w}\n      compiled: {g}", n + 1);
        }
    }
    format!(
        "golden has {} lines, compiled has {}",
        want.lines().count(),
        got.lines().count()
    )
}

#[test]
fn examples_match_their_golden_ir() {
    let bless = blessing();
    let mut failures = Vec::new();
    for g in goldens() {
        let (name, path) = (&g.name, &g.golden);
        let compiled = compile_golden(&g).to_json();
        if bless {
            fs::write(path, &compiled).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
            continue;
        }
        match fs::read_to_string(path) {
            Err(e) => failures.push(format!("{name}: cannot read {path:?}: {e}")),
            Ok(golden) if golden != compiled => failures.push(format!(
                "{name}: {path:?} differs from the compiled IR at {}",
                first_difference(&golden, &compiled)
            )),
            Ok(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended, regenerate with\n  {BLESS_VAR}=1 cargo test -p netgrant-policy --test golden\nand review the diff of examples/*/{GOLDEN} and tests/fixtures/*.policy.json.",
        failures.join("\n")
    );
}

fn golden_text(g: &Golden) -> String {
    fs::read_to_string(&g.golden).unwrap_or_else(|e| {
        panic!("{:?}: {e} (generate it with {BLESS_VAR}=1 cargo test -p netgrant-policy --test golden)", g.golden)
    })
}

fn ir_validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema_value(SchemaKind::Ir)).expect("the IR schema compiles")
}

fn schema_errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn golden_ir_validates_against_the_ir_schema() {
    let validator = ir_validator();
    let mut failures = Vec::new();
    for g in goldens() {
        let name = &g.name;
        let doc: Value = serde_json::from_str(&golden_text(&g))
            .unwrap_or_else(|e| panic!("{name}: golden is not JSON: {e}"));
        let errors = schema_errors(&validator, &doc);
        if !errors.is_empty() {
            failures.push(format!("{name}:\n    {}", errors.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "golden IR fails the IR schema:\n{}",
        failures.join("\n")
    );
}

#[test]
fn load_policy_accepts_golden_ir_and_returns_the_same_policy() {
    let mut failures = Vec::new();
    for g in goldens() {
        let name = &g.name;
        let text = golden_text(&g);
        let compiled = compile_golden(&g);
        match load_policy(GOLDEN, &text) {
            Err(diags) => failures.push(format!(
                "{name}: rejected: {:?}",
                diags
                    .iter()
                    .map(|d| format!("{}: {}", d.code.as_str(), d.message))
                    .collect::<Vec<_>>()
            )),
            Ok(loaded) => {
                if loaded != compiled {
                    failures.push(format!(
                        "{name}: loaded policy differs from the compiled one"
                    ));
                }
                if loaded.to_json() != text {
                    failures.push(format!(
                        "{name}: loaded policy does not re-serialize to the golden bytes"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn golden_set_exercises_the_interesting_ir_features() {
    // The tampering table below relies on these; fail loudly if the examples
    // stop covering them.
    let all: Vec<Value> = goldens()
        .iter()
        .map(|g| serde_json::from_str(&golden_text(g)).unwrap())
        .collect();
    let entries = || {
        all.iter()
            .flat_map(|p| p["entries"].as_array().unwrap().iter())
    };
    assert!(entries().any(|e| e["flags"]["broad"] == true && e["approved_broad"] == true));
    assert!(entries().any(|e| e["status"] == "not_granted"));
    assert!(entries().any(|e| !e["narrows"].is_null()));
    assert!(entries().any(|e| e["port"] == "*"));
    assert!(all
        .iter()
        .any(|p| !p["ignored"].as_array().unwrap().is_empty()));
}

// ---------------------------------------------------------------------------
// Tampering
// ---------------------------------------------------------------------------

const TAMPERED: &str = "netgrant::ir::tampered";
const SYNTAX: &str = "netgrant::ir::syntax";
const VERSION: &str = "netgrant::ir::version";

/// Re-validation must catch the edit even when the editor also recomputes
/// `digest` (so the check is not just "the digest changed").
const EVEN_WITH_FRESH_DIGEST: bool = true;
/// The edit is self-consistent once the digest is recomputed (the IR carries
/// its own grant); only the recorded digest gives it away.
const DIGEST_ONLY: bool = false;

struct Tamper {
    name: &'static str,
    example: &'static str,
    edit: fn(&mut Value),
    code: &'static str,
    fresh_digest: bool,
}

fn entry<'a>(ir: &'a mut Value, id: &str) -> &'a mut Value {
    ir["entries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no entry {id} in the golden IR"))
}

const TAMPERS: &[Tamper] = &[
    Tamper {
        name: "flip flags.broad off on an approved broad entry",
        example: "broad-scraper",
        edit: |ir| entry(ir, "request:https://*/")["flags"]["broad"] = false.into(),
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "flip flags.broad on for a narrow entry",
        example: "discord-bridge",
        edit: |ir| entry(ir, "websocket:wss://gateway.discord.gg/")["flags"]["broad"] = true.into(),
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "clear flags.loopback",
        example: "local-dev",
        edit: |ir| entry(ir, "websocket:ws://localhost:9000/")["flags"]["loopback"] = false.into(),
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "status not_granted -> granted",
        example: "discord-bridge",
        edit: |ir| {
            entry(ir, "request:https://cdn.discordapp.com/attachments/")["status"] =
                "granted".into()
        },
        code: TAMPERED,
        fresh_digest: DIGEST_ONLY,
    },
    Tamper {
        name: "status granted -> not_granted",
        example: "discord-bridge",
        edit: |ir| {
            entry(ir, "websocket:wss://gateway.discord.gg/")["status"] = "not_granted".into()
        },
        code: TAMPERED,
        fresh_digest: DIGEST_ONLY,
    },
    Tamper {
        name: "host changed to * without fixing flags or approval",
        example: "discord-bridge",
        edit: |ir| {
            let e = entry(ir, "websocket:wss://gateway.discord.gg/");
            e["id"] = "websocket:wss://*/".into();
            e["target"] = "wss://*/".into();
            e["host"] = "*".into();
            e["host_kind"] = "any".into();
        },
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "host field alone changed to *",
        example: "discord-bridge",
        edit: |ir| {
            let e = entry(ir, "websocket:wss://gateway.discord.gg/");
            e["host"] = "*".into();
            e["host_kind"] = "any".into();
        },
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "change digest",
        example: "discord-bridge",
        edit: |ir| {
            ir["digest"] =
                "sha256:0000000000000000000000000000000000000000000000000000000000000000".into()
        },
        code: TAMPERED,
        fresh_digest: DIGEST_ONLY,
    },
    Tamper {
        name: "change requested_digest",
        example: "discord-bridge",
        edit: |ir| {
            ir["requested_digest"] =
                "sha256:1111111111111111111111111111111111111111111111111111111111111111".into()
        },
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "reorder entries",
        example: "discord-bridge",
        edit: |ir| ir["entries"].as_array_mut().unwrap().reverse(),
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "change port",
        example: "local-dev",
        edit: |ir| entry(ir, "websocket:ws://127.0.0.1:9229/debug/")["port"] = 9230.into(),
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "port to * on an exact target",
        example: "discord-bridge",
        edit: |ir| entry(ir, "websocket:wss://gateway.discord.gg/")["port"] = "*".into(),
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "drop approved_broad",
        example: "broad-scraper",
        edit: |ir| entry(ir, "request:https://*/")["approved_broad"] = false.into(),
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "widen granted methods beyond the request",
        example: "broad-scraper",
        edit: |ir| {
            entry(ir, "request:https://*/")["methods"] = serde_json::json!(["GET", "DELETE"])
        },
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "widen a narrowing grant to what it narrows, keeping `narrows`",
        example: "discord-bridge",
        edit: |ir| {
            entry(ir, "request:https://discord.com/api/v10/")["methods"] =
                serde_json::json!(["GET", "POST"])
        },
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "non-canonical target spelling",
        example: "discord-bridge",
        edit: |ir| {
            let e = entry(ir, "websocket:wss://gateway.discord.gg/");
            e["target"] = "wss://gateway.discord.gg:443/".into();
        },
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "networks added to an entry",
        example: "discord-bridge",
        edit: |ir| {
            entry(ir, "websocket:wss://gateway.discord.gg/")["networks"] =
                serde_json::json!(["10.0.0.0/8"])
        },
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "a never-allowed header declared",
        example: "discord-bridge",
        edit: |ir| {
            entry(ir, "request:https://discord.com/api/v10/")["headers"] =
                serde_json::json!(["authorization", "x-audit-log-reason"])
        },
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "remove an ignored grant entry",
        example: "broad-scraper-unapproved",
        edit: |ir| ir["ignored"].as_array_mut().unwrap().clear(),
        code: TAMPERED,
        fresh_digest: DIGEST_ONLY,
    },
    Tamper {
        name: "reason with a bidi override",
        example: "discord-bridge",
        edit: |ir| {
            entry(ir, "websocket:wss://gateway.discord.gg/")["reason"] =
                "Receive \u{202e}stneve yawetag".into()
        },
        code: TAMPERED,
        fresh_digest: EVEN_WITH_FRESH_DIGEST,
    },
    Tamper {
        name: "add an unknown top-level field",
        example: "discord-bridge",
        edit: |ir| ir["trusted"] = true.into(),
        code: SYNTAX,
        fresh_digest: DIGEST_ONLY,
    },
    Tamper {
        name: "add an unknown field to an entry",
        example: "discord-bridge",
        edit: |ir| entry(ir, "websocket:wss://gateway.discord.gg/")["allow_all"] = true.into(),
        code: SYNTAX,
        fresh_digest: DIGEST_ONLY,
    },
    Tamper {
        name: "drop a required field",
        example: "discord-bridge",
        edit: |ir| {
            entry(ir, "websocket:wss://gateway.discord.gg/")
                .as_object_mut()
                .unwrap()
                .remove("flags");
        },
        code: SYNTAX,
        fresh_digest: DIGEST_ONLY,
    },
    Tamper {
        name: "unsupported version",
        example: "discord-bridge",
        edit: |ir| ir["version"] = 2.into(),
        code: VERSION,
        fresh_digest: DIGEST_ONLY,
    },
];

fn golden_value(name: &str) -> Value {
    let g = goldens()
        .into_iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no golden IR named {name}"));
    serde_json::from_str(&golden_text(&g)).unwrap()
}

/// Sets `digest` to what the (edited) IR would hash to, if it still
/// deserializes.
fn refresh_digest(ir: &mut Value) {
    if let Ok(p) = serde_json::from_value::<Policy>(ir.clone()) {
        ir["digest"] = p.compute_digest().into();
    }
}

fn load_code(text: &str) -> Result<(), Vec<String>> {
    load_policy("policy.json", text)
        .map(|_| ())
        .map_err(|d| d.iter().map(|d| d.code.as_str().to_string()).collect())
}

#[test]
fn load_policy_rejects_hand_edited_ir() {
    let mut failures = Vec::new();
    for t in TAMPERS {
        let original = golden_value(t.example);
        let mut variants = vec![("as edited", {
            let mut v = original.clone();
            (t.edit)(&mut v);
            v
        })];
        if t.fresh_digest {
            let mut v = original.clone();
            (t.edit)(&mut v);
            refresh_digest(&mut v);
            variants.push(("with the digest recomputed", v));
        }
        for (how, v) in variants {
            if v == original {
                failures.push(format!("{}: the edit changed nothing", t.name));
                continue;
            }
            let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
            match load_code(&text) {
                Ok(()) => failures.push(format!("{} ({how}): accepted", t.name)),
                Err(codes) if codes.first().map(String::as_str) != Some(t.code) => {
                    failures.push(format!(
                        "{} ({how}): rejected with {codes:?}, expected {}",
                        t.name, t.code
                    ))
                }
                Err(_) => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} tampering cases failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn schema_rejects_unknown_fields_too() {
    let validator = ir_validator();
    let mut top = golden_value("discord-bridge");
    top["trusted"] = true.into();
    assert!(
        !schema_errors(&validator, &top).is_empty(),
        "unknown top-level field passes the schema"
    );
    let mut inner = golden_value("discord-bridge");
    entry(&mut inner, "websocket:wss://gateway.discord.gg/")["allow_all"] = true.into();
    assert!(
        !schema_errors(&validator, &inner).is_empty(),
        "unknown entry field passes the schema"
    );
}

#[test]
fn untouched_golden_reserialized_loads() {
    // Control for the tampering table: re-serializing the unedited value
    // (the same path the table uses) is accepted, so rejections above are
    // caused by the edits.
    for Golden { name, .. } in goldens() {
        let v = golden_value(&name);
        let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
        assert_eq!(load_code(&text), Ok(()), "{name}");
        let mut fresh = v.clone();
        refresh_digest(&mut fresh);
        assert_eq!(
            fresh, v,
            "{name}: the recorded digest is the recomputed one"
        );
    }
}
