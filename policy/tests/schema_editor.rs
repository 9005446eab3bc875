//! What an editor shows for a typo: the committed JSON Schemas make a
//! validator report an unknown key *at that key*, never a vague `anyOf`
//! failure over the enclosing table.
//!
//! Editors that validate TOML against a JSON Schema (taplo, and the VS Code
//! extensions built on it) place an `additionalProperties` error on the
//! unexpected keys of the table at the error's instance path, and an `anyOf`
//! error over the whole value. TOML has no null, so the schemas carry no
//! `null` alternatives (an optional table as `anyOf: [{$ref}, {type: null}]`
//! turned every typo inside it into an `anyOf` error over the table).

use jsonschema::error::ValidationErrorKind;
use netgrant_policy::schema::{schema_value, SchemaKind};

/// A typo fixture: the TOML, the instance path of the table holding the
/// typo, and the unexpected key the validator must name there.
struct Typo {
    name: &'static str,
    kind: SchemaKind,
    text: &'static str,
    table: &'static str,
    key: &'static str,
}

const MANIFEST_HEAD: &str = "[plugin]\nname = \"typo\"\nversion = \"1.0.0\"\n";

fn typos() -> Vec<Typo> {
    vec![
        Typo {
            name: "reasn in a request target",
            kind: SchemaKind::Manifest,
            text: "[[host_api.request]]\nurl = \"https://api.example.com/\"\nmethods = [\"GET\"]\nreasn = \"typo\"\n",
            table: "/host_api/request/0",
            key: "reasn",
        },
        Typo {
            name: "subprotocol (singular) in a websocket target",
            kind: SchemaKind::Manifest,
            text: "[[host_api.websocket]]\nurl = \"wss://gw.example.com/\"\nsubprotocol = [\"json\"]\n",
            table: "/host_api/websocket/0",
            key: "subprotocol",
        },
        Typo {
            name: "requests (plural) table",
            kind: SchemaKind::Manifest,
            text: "[[host_api.requests]]\nurl = \"https://api.example.com/\"\nmethods = [\"GET\"]\n",
            table: "/host_api",
            key: "requests",
        },
        Typo {
            name: "host-api (dash) table",
            kind: SchemaKind::Manifest,
            text: "[[host-api.request]]\nurl = \"https://api.example.com/\"\nmethods = [\"GET\"]\n",
            table: "",
            key: "host-api",
        },
        Typo {
            name: "broad misspelt in a grant entry",
            kind: SchemaKind::Grant,
            text: "plugin = \"typo\"\n[[host_api.websocket]]\nurl = \"wss://*/\"\nbraod = true\n",
            table: "/host_api/websocket/0",
            key: "braod",
        },
        Typo {
            name: "approved_digest misspelt in a grant",
            kind: SchemaKind::Grant,
            text: "plugin = \"typo\"\napproved_digets = \"sha256:00\"\n",
            table: "",
            key: "approved_digets",
        },
        Typo {
            name: "method (singular) in a grant request entry",
            kind: SchemaKind::Grant,
            text: "plugin = \"typo\"\n[[host_api.request]]\nurl = \"https://api.example.com/\"\nmethod = [\"GET\"]\n",
            table: "/host_api/request/0",
            key: "method",
        },
    ]
}

#[test]
fn a_typo_is_reported_as_an_unknown_key_at_the_key() {
    for t in typos() {
        let text = match t.kind {
            SchemaKind::Manifest => format!("{MANIFEST_HEAD}{}", t.text),
            _ => t.text.to_owned(),
        };
        let json: serde_json::Value = toml::from_str(&text).expect("fixture is TOML");
        let validator = jsonschema::draft7::new(&schema_value(t.kind)).expect("schema compiles");
        let errors: Vec<_> = validator.iter_errors(&json).collect();
        assert!(!errors.is_empty(), "{}: the typo was accepted", t.name);
        for e in &errors {
            assert!(
                !matches!(
                    e.kind(),
                    ValidationErrorKind::AnyOf { .. }
                        | ValidationErrorKind::OneOfNotValid { .. }
                        | ValidationErrorKind::OneOfMultipleValid { .. }
                ),
                "{}: a vague {} error at {:?}: {e}",
                t.name,
                e.kind().keyword(),
                e.instance_path().as_str()
            );
        }
        let at_key = errors.iter().any(|e| {
            e.instance_path().as_str() == t.table
                && matches!(e.kind(), ValidationErrorKind::AdditionalProperties { unexpected }
                    if unexpected.iter().any(|k| k == t.key))
        });
        assert!(
            at_key,
            "{}: no unknown-key error for `{}` at {:?}; got: {:?}",
            t.name,
            t.key,
            t.table,
            errors
                .iter()
                .map(|e| format!("{} at {:?}", e, e.instance_path().as_str()))
                .collect::<Vec<_>>()
        );
    }
}

/// The schemas for TOML files never mention `null`, which no TOML value
/// can be (the IR is JSON, so its schema keeps them).
#[test]
fn toml_schemas_have_no_null() {
    for kind in [SchemaKind::Manifest, SchemaKind::Grant] {
        let text = serde_json::to_string(&schema_value(kind)).unwrap();
        assert!(!text.contains("null"), "{kind:?} schema mentions null");
    }
}
