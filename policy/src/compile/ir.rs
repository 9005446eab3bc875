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
    /// Derived flags.
    pub flags: Flags,
    /// The plugin's reason, if given.
    pub reason: Option<String>,
    /// The grant said `broad = true` (granted broad entries must).
    pub approved_broad: bool,
    /// For a grant that narrows a request: the request it narrows.
    pub narrows: Option<Narrowed>,
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
    pub fn compute_digest(&self) -> String {
        let mut copy = self.clone();
        copy.digest = String::new();
        copy.requested_digest = String::new();
        let mut v = serde_json::to_value(&copy).expect("IR serializes");
        if let Some(o) = v.as_object_mut() {
            o.remove("digest");
            o.remove("requested_digest");
        }
        sha256(&serde_json::to_vec(&v).expect("json"))
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
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
