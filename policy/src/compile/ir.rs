//! The permission IR: canonical, diffable, self-describing JSON.
//!
//! Canonical means semantically equal inputs give byte-identical output: key
//! order is the declaration order below, entries are sorted, every value is
//! spelled canonically, and nothing depends on file paths, spans or time.

use crate::capability::{Capability, Scheme};
use crate::permission::Flags;
use crate::target::HostKind;
#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The IR format version this crate writes and reads.
pub const IR_VERSION: u32 = 1;

/// A compiled policy: what one plugin may reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", schemars(title = "netgrant permission IR"))]
pub struct Policy {
    /// IR format version.
    pub version: u32,
    /// The plugin this policy is for.
    pub plugin: PluginInfo,
    /// `sha256:` over the manifest's requested set only: what a grant's
    /// `approved_digest` pins.
    pub requested_digest: String,
    /// The grant's `approved_digest`, if it had one.
    pub approved_digest: Option<String>,
    /// `sha256:` over this whole IR with both digest fields left out.
    pub digest: String,
    /// One entry per permission, sorted by capability then target.
    pub entries: Vec<Entry>,
    /// Grant entries that were dropped (granted but not requested, or broad
    /// without approval), sorted by capability then target.
    pub ignored: Vec<Ignored>,
}

/// Plugin identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    /// `plugin.name`.
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$"))
    )]
    pub name: String,
    /// `plugin.version` (semver).
    pub version: String,
}

/// Whether a requested permission is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Requested and granted: usable.
    Granted,
    /// Requested but not granted: shown at review, never usable.
    NotGranted,
}

impl Status {
    /// `granted` / `not_granted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Granted => "granted",
            Status::NotGranted => "not_granted",
        }
    }
}

/// One permission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Stable rule id: `<capability>:<target>`.
    pub id: String,
    /// `request` or `websocket`.
    pub capability: Capability,
    /// `granted` or `not_granted`.
    pub status: Status,
    /// The canonical target string.
    pub target: String,
    /// Scheme.
    pub scheme: Scheme,
    /// Host: a domain (A-label), `*.suffix`, `*`, an IPv4 address or a bracketed IPv6 address.
    pub host: String,
    /// What kind of host.
    pub host_kind: HostKind,
    /// Port number, or `"*"`.
    pub port: Port,
    /// Path prefix (at least `/`).
    pub path: String,
    /// Methods (request entries only): canonical order, or `["*"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Extra headers it may send (lowercase, sorted).
    pub headers: Vec<String>,
    /// Subprotocols `open` may ask for (sorted; websocket entries).
    pub subprotocols: Vec<String>,
    /// Non-public networks the host may resolve to (canonical CIDR, sorted).
    pub networks: Vec<String>,
    /// Credentials the target declares, sorted by name, each with its status
    /// and, when granted, the bound SecretRef (docs/spec.md §9.2). Absent
    /// when there are none, so policies without credentials keep their bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<Credential>,
    /// Derived flags.
    pub flags: Flags,
    /// The plugin's reason, if given.
    pub reason: Option<String>,
    /// The grant said `broad = true` (granted broad entries must).
    pub approved_broad: bool,
    /// For a grant that narrows a request: the request it narrows.
    pub narrows: Option<Narrowed>,
}

/// A credential of an entry: the manifest's declaration and the grant's
/// binding. Never a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The declared name.
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$"))
    )]
    pub name: String,
    /// `header` or `message`.
    pub placement: Placement,
    /// The header (lowercase), for a header placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The value's shape, with exactly one `{secret}`.
    pub format: String,
    /// The plugin's reason, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `granted` when this entry's grant binds it, else `not_granted`.
    pub status: Status,
    /// The bound SecretRef, for a granted credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^[a-z0-9][a-z0-9._/-]{0,127}$"))
    )]
    pub secret_ref: Option<String>,
}

/// Where a credential goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// A request (or websocket handshake) header.
    Header,
    /// Websocket text messages.
    Message,
}

/// A port: a number or `"*"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(untagged)]
pub enum Port {
    /// A port number.
    Number(u16),
    /// `"*"`.
    Any(AnyPort),
}

/// The literal `"*"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub enum AnyPort {
    /// `*`
    #[serde(rename = "*")]
    Any,
}

/// The requested permission a granted entry narrows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Narrowed {
    /// The requested target.
    pub target: String,
    /// Requested methods (request entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Requested headers.
    pub headers: Vec<String>,
    /// Requested subprotocols.
    pub subprotocols: Vec<String>,
    /// Requested networks.
    pub networks: Vec<String>,
}

/// Why a grant entry was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum IgnoredCode {
    /// No requested target contains it.
    NotRequested,
    /// It is broad and lacks `broad = true`.
    BroadNotApproved,
    /// It binds a credential its target does not declare.
    CredentialNotDeclared,
}

/// A dropped grant entry, as written (unset fields stay `null`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Ignored {
    /// `request` or `websocket`.
    pub capability: Capability,
    /// The canonical target string.
    pub target: String,
    /// Methods as written, if any.
    pub methods: Option<Vec<String>>,
    /// Headers as written, if any.
    pub headers: Option<Vec<String>>,
    /// Subprotocols as written, if any.
    pub subprotocols: Option<Vec<String>>,
    /// Networks as written, if any.
    pub networks: Option<Vec<String>>,
    /// `broad = true` was written.
    pub broad: bool,
    /// Credential bindings as written (name → SecretRef); absent when none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub credentials: std::collections::BTreeMap<String, String>,
    /// Why it was dropped.
    pub code: IgnoredCode,
    /// A human sentence.
    pub message: String,
}

impl Policy {
    /// The canonical JSON text: pretty-printed, two-space indent, trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("IR serializes");
        s.push('\n');
        s
    }

    /// Recomputes `digest` over the IR with both digest fields left out.
    ///
    /// The canonical bytes are compact JSON with every object's keys in
    /// sorted order (what serializing through a `serde_json::Value` gives);
    /// they are streamed from a borrowed view straight into the hasher.
    pub fn compute_digest(&self) -> String {
        crate::canonical_json::digest_of(&canonical::PolicyView(self))
    }

    /// The granted entries.
    pub fn granted(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.status == Status::Granted)
    }

    /// Whether the grant's `approved_digest` differs from `requested_digest`.
    pub fn digest_drift(&self) -> bool {
        self.approved_digest
            .as_ref()
            .is_some_and(|a| *a != self.requested_digest)
    }
}

/// `sha256:` and the lowercase hex digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    hex_digest(Sha256::digest(bytes).as_slice())
}

pub(crate) fn hex_digest(d: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(7 + 2 * d.len());
    s.push_str("sha256:");
    for &b in d {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// Borrowed views of the IR whose fields are declared in sorted key order:
/// serialized compactly they give exactly the bytes of the IR turned into a
/// `serde_json::Value` (whose objects sort their keys) and written out, the
/// digests' canonical form since IR version 1. `compile::tests` and
/// `tests::streamed_digest_matches_value_digest` keep the two equal.
pub(crate) mod canonical {
    use super::*;
    use serde::Serializer;

    /// The whole IR minus `digest` and `requested_digest`.
    pub struct PolicyView<'a>(pub &'a Policy);

    impl Serialize for PolicyView<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            struct View<'a> {
                approved_digest: &'a Option<String>,
                entries: Vec<EntryView<'a>>,
                ignored: Vec<IgnoredView<'a>>,
                plugin: PluginView<'a>,
                version: u32,
            }
            let p = self.0;
            View {
                approved_digest: &p.approved_digest,
                entries: p.entries.iter().map(EntryView).collect(),
                ignored: p.ignored.iter().map(IgnoredView).collect(),
                plugin: PluginView(&p.plugin),
                version: p.version,
            }
            .serialize(s)
        }
    }

    /// `PluginInfo` in key order.
    pub struct PluginView<'a>(pub &'a PluginInfo);

    impl Serialize for PluginView<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            struct View<'a> {
                name: &'a str,
                version: &'a str,
            }
            View {
                name: &self.0.name,
                version: &self.0.version,
            }
            .serialize(s)
        }
    }

    struct EntryView<'a>(&'a Entry);

    impl Serialize for EntryView<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            struct View<'a> {
                approved_broad: bool,
                capability: Capability,
                #[serde(skip_serializing_if = "Vec::is_empty")]
                credentials: Vec<CredentialView<'a>>,
                flags: FlagsView,
                headers: &'a [String],
                host: &'a str,
                host_kind: HostKind,
                id: &'a str,
                #[serde(skip_serializing_if = "Option::is_none")]
                methods: &'a Option<Vec<String>>,
                narrows: Option<NarrowedView<'a>>,
                networks: &'a [String],
                path: &'a str,
                port: Port,
                reason: &'a Option<String>,
                scheme: Scheme,
                status: Status,
                subprotocols: &'a [String],
                target: &'a str,
            }
            let e = self.0;
            View {
                approved_broad: e.approved_broad,
                capability: e.capability,
                credentials: e.credentials.iter().map(CredentialView).collect(),
                flags: FlagsView(e.flags),
                headers: &e.headers,
                host: &e.host,
                host_kind: e.host_kind,
                id: &e.id,
                methods: &e.methods,
                narrows: e.narrows.as_ref().map(NarrowedView),
                networks: &e.networks,
                path: &e.path,
                port: e.port,
                reason: &e.reason,
                scheme: e.scheme,
                status: e.status,
                subprotocols: &e.subprotocols,
                target: &e.target,
            }
            .serialize(s)
        }
    }

    struct CredentialView<'a>(&'a Credential);

    impl Serialize for CredentialView<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            struct View<'a> {
                format: &'a str,
                #[serde(skip_serializing_if = "Option::is_none")]
                header: &'a Option<String>,
                name: &'a str,
                placement: Placement,
                #[serde(skip_serializing_if = "Option::is_none")]
                reason: &'a Option<String>,
                #[serde(skip_serializing_if = "Option::is_none")]
                secret_ref: &'a Option<String>,
                status: Status,
            }
            let c = self.0;
            View {
                format: &c.format,
                header: &c.header,
                name: &c.name,
                placement: c.placement,
                reason: &c.reason,
                secret_ref: &c.secret_ref,
                status: c.status,
            }
            .serialize(s)
        }
    }

    struct FlagsView(Flags);

    impl Serialize for FlagsView {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            struct View {
                any_method: bool,
                any_port: bool,
                broad: bool,
                loopback: bool,
                private: bool,
                wildcard: bool,
            }
            let f = self.0;
            View {
                any_method: f.any_method,
                any_port: f.any_port,
                broad: f.broad,
                loopback: f.loopback,
                private: f.private,
                wildcard: f.wildcard,
            }
            .serialize(s)
        }
    }

    struct NarrowedView<'a>(&'a Narrowed);

    impl Serialize for NarrowedView<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            struct View<'a> {
                headers: &'a [String],
                #[serde(skip_serializing_if = "Option::is_none")]
                methods: &'a Option<Vec<String>>,
                networks: &'a [String],
                subprotocols: &'a [String],
                target: &'a str,
            }
            let n = self.0;
            View {
                headers: &n.headers,
                methods: &n.methods,
                networks: &n.networks,
                subprotocols: &n.subprotocols,
                target: &n.target,
            }
            .serialize(s)
        }
    }

    struct IgnoredView<'a>(&'a Ignored);

    impl Serialize for IgnoredView<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            struct View<'a> {
                broad: bool,
                capability: Capability,
                code: IgnoredCode,
                #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
                credentials: &'a std::collections::BTreeMap<String, String>,
                headers: &'a Option<Vec<String>>,
                message: &'a str,
                methods: &'a Option<Vec<String>>,
                networks: &'a Option<Vec<String>>,
                subprotocols: &'a Option<Vec<String>>,
                target: &'a str,
            }
            let i = self.0;
            View {
                broad: i.broad,
                capability: i.capability,
                code: i.code,
                credentials: &i.credentials,
                headers: &i.headers,
                message: &i.message,
                methods: &i.methods,
                networks: &i.networks,
                subprotocols: &i.subprotocols,
                target: &i.target,
            }
            .serialize(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest as computed before it was streamed: clone, turn into a
    /// `serde_json::Value` (sorted keys), drop the digest fields, serialize.
    fn value_digest(p: &Policy) -> String {
        let mut copy = p.clone();
        copy.digest = String::new();
        copy.requested_digest = String::new();
        let mut v = serde_json::to_value(&copy).expect("IR serializes");
        if let Some(o) = v.as_object_mut() {
            o.remove("digest");
            o.remove("requested_digest");
        }
        let d = Sha256::digest(serde_json::to_vec(&v).expect("json"));
        let mut s = String::from("sha256:");
        for b in d {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Old and new digests agree on policies with every field shape: both
    /// capabilities, granted and not granted, narrows with and without
    /// methods, reasons with escapes, ignored entries with unset and set
    /// fields, networks, flags, `:*`, an `approved_digest` or none.
    #[test]
    fn streamed_digest_matches_value_digest() {
        let m = r#"
[plugin]
name = "digests"
version = "1.2.3-rc.1"

[[host_api.request]]
url = "https://api.example.com/v1"
methods = ["GET", "POST"]
headers = ["X-Trace", "X-Lang"]
credentials = [
  { name = "api-key", header = "X-Api-Key", reason = "as the app" },
  { name = "bot", header = "Authorization", format = "Bot {secret}" },
]
reason = "quote \" backslash \\ unicode é ✓ \u00e9"

[[host_api.request]]
url = "https://*.example.net:*/"
methods = "*"
networks = ["10.0.0.0/8", "fd00::/8"]
reason = "wild"

[[host_api.request]]
url = "http://10.1.2.3:8080/data/"
methods = ["GET"]

[[host_api.websocket]]
url = "wss://ws.example.com/"
subprotocols = ["json", "mqtt"]
credentials = [{ name = "bot", message = true, format = "é {secret}" }]
reason = "socket"

[[host_api.websocket]]
url = "ws://localhost:9000/"

[[host_api.websocket]]
url = "wss://*/"
"#;
        let g = |pin: &str| {
            format!(
                r#"{pin}plugin = "digests"
[[host_api.request]]
url = "https://api.example.com/v1/users/"
methods = ["GET"]
credentials = {{ bot = "app/bot" }}
[[host_api.request]]
url = "https://a.example.net/"
[[host_api.request]]
url = "https://gone.example.org/"
methods = ["PUT"]
headers = ["X-Gone"]
networks = ["10.0.0.0/8"]
credentials = {{ k = "a/b" }}
[[host_api.websocket]]
url = "wss://ws.example.com/"
subprotocols = []
credentials = {{ bot = "app/bot" }}
[[host_api.websocket]]
url = "wss://*/"
"#
            )
        };
        let parsed = crate::Manifest::parse("plugin.toml", m);
        let manifest = parsed
            .value
            .unwrap_or_else(|| panic!("{:?}", parsed.diagnostics));
        let mut seen = 0;
        for grant in [
            None,
            Some(g("")),
            Some(g(&format!(
                "approved_digest = \"sha256:{}\"\n",
                "a".repeat(64)
            ))),
        ] {
            let grant = grant.map(|t| {
                let parsed = crate::Grant::parse("grant.toml", &t);
                parsed
                    .value
                    .unwrap_or_else(|| panic!("{:?}", parsed.diagnostics))
            });
            let c = crate::compile(&manifest, grant.as_ref());
            let p = c.policy.unwrap_or_else(|| panic!("{:?}", c.diagnostics));
            assert_eq!(p.compute_digest(), value_digest(&p));
            assert_eq!(p.digest, value_digest(&p));
            // Credentials take part, bound and not, and on ignored entries.
            assert!(p.entries.iter().any(|e| !e.credentials.is_empty()));
            if grant.is_some() {
                assert!(p
                    .entries
                    .iter()
                    .any(|e| e.credentials.iter().any(|c| c.secret_ref.is_some())));
                assert!(p.ignored.iter().any(|i| !i.credentials.is_empty()));
            }
            seen += p.entries.len() + p.ignored.len();
            // Every field changed somewhere still agrees (and still matters).
            let mut q = p.ir().clone();
            for e in &mut q.entries {
                e.reason = None;
                e.narrows = None;
                e.methods = None;
                e.credentials.clear();
            }
            q.approved_digest = Some("x".into());
            q.ignored.clear();
            assert_eq!(q.compute_digest(), value_digest(&q));
            assert_ne!(q.compute_digest(), p.digest);
        }
        assert!(seen > 15, "{seen}");
    }
}
