//! Pinned-grant drift: which entries a change of the manifest's requested set
//! affects (docs/spec.md §3.4: `check` and `show` say so and name what the
//! change can have touched).
//!
//! A digest alone cannot say what changed, so drift names what the change can
//! have touched, judged on the compiled policy and the grant as written:
//!
//! * requested targets that are now `not_granted` (new requests, changed
//!   requests the grant no longer contains, or requests never approved);
//! * grant entries that are now `ignored` (no longer requested, or now broad);
//! * granted entries that leave a field unset (`methods`, `headers`,
//!   `subprotocols`, `networks`) and so take it from the manifest: whatever the
//!   new manifest says there, they now allow. `netgrant approve` writes every
//!   field explicitly, so the entries it writes never appear here.

use crate::capability::Capability;
use crate::document::Grant;
use crate::ir::{Policy, Status};
#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::Serialize;

/// What a pinned grant's drift affects. Every list is sorted by capability,
/// then target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Drift {
    /// The grant's `approved_digest`.
    pub approved_digest: String,
    /// The manifest's current `requested_digest`.
    pub requested_digest: String,
    /// Ids (`<capability>:<target>`) of requested targets with no effective
    /// grant entry.
    pub not_granted: Vec<String>,
    /// Ids of grant entries that no longer apply (listed under `ignored`).
    pub ignored: Vec<String>,
    /// Granted entries that take unset fields from the manifest. `None` when
    /// unknown: an IR does not record which grant fields were unset.
    pub follows_manifest: Option<Vec<FollowsManifest>>,
}

/// A granted entry that takes one or more fields from the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct FollowsManifest {
    /// The entry id, `<capability>:<target>`.
    pub id: String,
    /// The fields it takes from the manifest, with their current values.
    pub fields: Vec<InheritedField>,
}

/// One field a granted entry takes from the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct InheritedField {
    /// `methods`, `headers`, `subprotocols` or `networks`.
    pub field: String,
    /// The value it now has (the manifest's).
    pub values: Vec<String>,
}

impl FollowsManifest {
    /// `methods GET, POST; networks 10.0.0.0/8`.
    pub fn describe(&self) -> String {
        self.fields
            .iter()
            .map(|f| format!("{} {}", f.field, f.values.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Drift {
    /// Whether no entry is named (the change touched nothing this grant
    /// allows or lists).
    pub fn is_empty(&self) -> bool {
        self.not_granted.is_empty()
            && self.ignored.is_empty()
            && self.follows_manifest.as_ref().is_none_or(|f| f.is_empty())
    }

    /// One line per affected entry, for terminals and messages (not escaped:
    /// callers escape for their medium).
    pub fn lines(&self) -> Vec<String> {
        let mut v = Vec::new();
        for id in &self.not_granted {
            v.push(format!("not granted: {id}"));
        }
        for id in &self.ignored {
            v.push(format!("no longer applies: {id}"));
        }
        for f in self.follows_manifest.iter().flatten() {
            v.push(format!("follows the manifest: {} ({})", f.id, f.describe()));
        }
        v
    }
}

/// What the drift between `policy.approved_digest` and
/// `policy.requested_digest` affects, or `None` when there is no drift.
///
/// With the grant, unset fields are known exactly; without it (an IR),
/// [`Drift::follows_manifest`] is `None`.
pub fn drift(policy: &Policy, grant: Option<&Grant>) -> Option<Drift> {
    if !policy.digest_drift() {
        return None;
    }
    let not_granted = policy
        .entries
        .iter()
        .filter(|e| e.status == Status::NotGranted)
        .map(|e| e.id.clone())
        .collect();
    let ignored = policy
        .ignored
        .iter()
        .map(|i| format!("{}:{}", i.capability, i.target))
        .collect();
    let follows_manifest = grant.map(|g| {
        // The first grant entry per id, as a scan from the top would find
        // it; a lookup per granted entry keeps this linear.
        let mut by_id = std::collections::HashMap::new();
        for ge in &g.entries {
            by_id
                .entry(format!("{}:{}", ge.capability, ge.target))
                .or_insert(ge);
        }
        policy
            .granted()
            .filter_map(|e| {
                // An entry's id is `<capability>:<target>`.
                let ge = *by_id.get(&e.id)?;
                let mut fields = Vec::new();
                let mut push = |field: &str, unset: bool, values: &[String]| {
                    if unset && !values.is_empty() {
                        fields.push(InheritedField {
                            field: field.to_string(),
                            values: values.to_vec(),
                        });
                    }
                };
                if e.capability == Capability::Request {
                    push(
                        "methods",
                        ge.methods.is_none(),
                        e.methods.as_deref().unwrap_or_default(),
                    );
                }
                push("headers", ge.headers.is_none(), &e.headers);
                if e.capability == Capability::Websocket {
                    push("subprotocols", ge.subprotocols.is_none(), &e.subprotocols);
                }
                push("networks", ge.networks.is_none(), &e.networks);
                (!fields.is_empty()).then(|| FollowsManifest {
                    id: e.id.clone(),
                    fields,
                })
            })
            .collect()
    });
    Some(Drift {
        approved_digest: policy.approved_digest.clone().unwrap_or_default(),
        requested_digest: policy.requested_digest.clone(),
        not_granted,
        ignored,
        follows_manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compile, Manifest};

    const M: &str = r#"
[plugin]
name = "p"
version = "1.0.0"

[[host_api.request]]
url = "https://api.example.com/"
methods = ["GET", "POST"]
headers = ["X-Trace"]

[[host_api.request]]
url = "https://new.example.com/"
methods = ["GET"]

[[host_api.websocket]]
url = "wss://ws.example.com/"
subprotocols = ["json"]
"#;

    fn policy(grant: &str) -> (Policy, Grant) {
        let m = Manifest::parse("plugin.toml", M).value.unwrap();
        let g = Grant::parse("grant.toml", grant).value.unwrap();
        (compile(&m, Some(&g)).policy.unwrap().into_ir(), g)
    }

    #[test]
    fn names_not_granted_ignored_and_inherited_fields() {
        let z = "0".repeat(64);
        let (p, g) = policy(&format!(
            r#"
plugin = "p"
approved_digest = "sha256:{z}"
[[host_api.request]]
url = "https://api.example.com/"
headers = []
[[host_api.request]]
url = "https://gone.example.com/"
methods = ["GET"]
[[host_api.websocket]]
url = "wss://ws.example.com/"
subprotocols = ["json"]
networks = []
"#
        ));
        let d = drift(&p, Some(&g)).unwrap();
        assert_eq!(d.not_granted, ["request:https://new.example.com/"]);
        assert_eq!(d.ignored, ["request:https://gone.example.com/"]);
        let f = d.follows_manifest.as_ref().unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].id, "request:https://api.example.com/");
        assert_eq!(f[0].describe(), "methods GET, POST");
        assert!(!d.is_empty());
        assert_eq!(d.lines().len(), 3);
        // From an IR alone, inherited fields are unknown.
        assert_eq!(drift(&p, None).unwrap().follows_manifest, None);
    }

    #[test]
    fn no_drift_without_pin_or_with_matching_pin() {
        let (p, g) = policy("plugin = \"p\"\n");
        assert!(drift(&p, Some(&g)).is_none());
        let (p2, g2) = policy(&format!(
            "plugin = \"p\"\napproved_digest = \"{}\"\n",
            p.requested_digest
        ));
        assert!(drift(&p2, Some(&g2)).is_none());
    }
}
