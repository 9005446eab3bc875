//! JSON Schemas (draft-07) for `plugin.toml`, `grant.toml` and the IR.
//!
//! The serde models here describe the file shapes for editors (taplo, VS Code)
//! and CI. The authoritative validation is the document parser's spanned walker;
//! tests check that the two agree on every fixture.

#![allow(missing_docs)] // field docs become schema descriptions; items are documented where it matters

use schemars::{generate::SchemaSettings, JsonSchema};
use serde::Deserialize;

const NO_CONTROL: &str =
    r"^[^\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\u061c\ufeff]*$";

/// `plugin.toml`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "netgrant plugin manifest (plugin.toml)")]
pub struct ManifestFile {
    /// Plugin identity.
    pub plugin: PluginTable,
    /// The network targets the plugin requests.
    #[serde(default)]
    pub host_api: Option<ManifestHostApi>,
}

/// `[plugin]`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginTable {
    /// Plugin name: lowercase letters, digits and `-`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$"))]
    pub name: String,
    /// Semantic version, e.g. `0.3.1`.
    #[schemars(regex(
        pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
    ))]
    pub version: String,
}

/// `[host_api]` in a manifest.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestHostApi {
    /// One-shot HTTP targets.
    #[serde(default)]
    #[schemars(length(max = 10000))]
    pub request: Option<Vec<RequestTarget>>,
    /// WebSocket targets.
    #[serde(default)]
    #[schemars(length(max = 10000))]
    pub websocket: Option<Vec<WebsocketTarget>>,
}

/// A `[[host_api.request]]` entry.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestTarget {
    /// `http(s)://host[:port][/path-prefix]`; host may be `*.domain` or `*`, port may be `*`.
    #[schemars(
        regex(pattern = r"^[hH][tT][tT][pP][sS]?://[^\s?#@/\\]+([/\\][^\s?#]*)?$"),
        length(max = 2048)
    )]
    pub url: String,
    /// HTTP methods, or `"*"` for all.
    pub methods: MethodsField,
    /// Extra header names it may send.
    #[serde(default)]
    #[schemars(length(max = crate::document::MAX_HEADERS_PER_TARGET))]
    pub headers: Option<Vec<HeaderName>>,
    /// Non-public networks (CIDR) the host may resolve to.
    #[serde(default)]
    #[schemars(length(max = crate::document::MAX_NETWORKS_PER_TARGET))]
    pub networks: Option<Vec<Network>>,
    /// Credentials the host injects for this target (in a header), bound in the grant.
    #[serde(default)]
    #[schemars(length(max = crate::MAX_CREDENTIALS_PER_TARGET))]
    pub credentials: Option<Vec<RequestCredential>>,
    /// Why the plugin needs this, shown at review (at most 200 printable characters).
    #[serde(default)]
    #[schemars(length(max = 200), regex(pattern = NO_CONTROL))]
    pub reason: Option<String>,
}

/// A `[[host_api.websocket]]` entry.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebsocketTarget {
    /// `ws(s)://host[:port][/path-prefix]`; host may be `*.domain` or `*`, port may be `*`.
    #[schemars(
        regex(pattern = r"^[wW][sS][sS]?://[^\s?#@/\\]+([/\\][^\s?#]*)?$"),
        length(max = 2048)
    )]
    pub url: String,
    /// The only subprotocols `open` may ask for.
    #[serde(default)]
    #[schemars(length(max = crate::document::MAX_SUBPROTOCOLS_PER_TARGET))]
    pub subprotocols: Option<Vec<Token>>,
    /// Extra header names it may send in the handshake.
    #[serde(default)]
    #[schemars(length(max = crate::document::MAX_HEADERS_PER_TARGET))]
    pub headers: Option<Vec<HeaderName>>,
    /// Non-public networks (CIDR) the host may resolve to.
    #[serde(default)]
    #[schemars(length(max = crate::document::MAX_NETWORKS_PER_TARGET))]
    pub networks: Option<Vec<Network>>,
    /// Credentials the host injects for this target (a handshake header, or text messages), bound in the grant.
    #[serde(default)]
    #[schemars(length(max = crate::MAX_CREDENTIALS_PER_TARGET))]
    pub credentials: Option<Vec<WebsocketCredential>>,
    /// Why the plugin needs this, shown at review (at most 200 printable characters).
    #[serde(default)]
    #[schemars(length(max = 200), regex(pattern = NO_CONTROL))]
    pub reason: Option<String>,
}

/// `grant.toml`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "netgrant grant (grant.toml)")]
pub struct GrantFile {
    /// Must equal the manifest's `plugin.name`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$"))]
    pub plugin: String,
    /// The approved targets.
    #[serde(default)]
    pub host_api: Option<GrantHostApi>,
    /// The manifest's `requested_digest` this grant approved.
    #[serde(default)]
    #[schemars(regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub approved_digest: Option<String>,
}

/// `[host_api]` in a grant.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantHostApi {
    /// Approved one-shot HTTP targets.
    #[serde(default)]
    #[schemars(length(max = 10000))]
    pub request: Option<Vec<GrantRequest>>,
    /// Approved WebSocket targets.
    #[serde(default)]
    #[schemars(length(max = 10000))]
    pub websocket: Option<Vec<GrantWebsocket>>,
}

/// A granted `[[host_api.request]]` entry: contained in a requested one.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The granted target (equal to or narrower than a requested one).
    #[schemars(
        regex(pattern = r"^[hH][tT][tT][pP][sS]?://[^\s?#@/\\]+([/\\][^\s?#]*)?$"),
        length(max = 2048)
    )]
    pub url: String,
    /// Narrows the requested methods; omitted = the requested ones.
    #[serde(default)]
    pub methods: Option<MethodsField>,
    /// Narrows the requested headers; omitted = the requested ones.
    #[serde(default)]
    #[schemars(length(max = crate::document::MAX_HEADERS_PER_TARGET))]
    pub headers: Option<Vec<HeaderName>>,
    /// Narrows the requested networks; omitted = the requested ones.
    #[serde(default)]
    #[schemars(length(max = crate::document::MAX_NETWORKS_PER_TARGET))]
    pub networks: Option<Vec<Network>>,
    /// Credential bindings: declared credential name → SecretRef in the host's store.
    #[serde(default)]
    pub credentials: Option<Bindings>,
    /// Required (`true`) for broad entries: broad access approved consciously.
    #[serde(default)]
    pub broad: Option<bool>,
}

/// A granted `[[host_api.websocket]]` entry: contained in a requested one.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantWebsocket {
    /// The granted target (equal to or narrower than a requested one).
    #[schemars(
        regex(pattern = r"^[wW][sS][sS]?://[^\s?#@/\\]+([/\\][^\s?#]*)?$"),
        length(max = 2048)
    )]
    pub url: String,
    /// Narrows the requested subprotocols; omitted = the requested ones.
    #[serde(default)]
    #[schemars(length(max = crate::document::MAX_SUBPROTOCOLS_PER_TARGET))]
    pub subprotocols: Option<Vec<Token>>,
    /// Narrows the requested headers; omitted = the requested ones.
    #[serde(default)]
    #[schemars(length(max = crate::document::MAX_HEADERS_PER_TARGET))]
    pub headers: Option<Vec<HeaderName>>,
    /// Narrows the requested networks; omitted = the requested ones.
    #[serde(default)]
    #[schemars(length(max = crate::document::MAX_NETWORKS_PER_TARGET))]
    pub networks: Option<Vec<Network>>,
    /// Credential bindings: declared credential name → SecretRef in the host's store.
    #[serde(default)]
    pub credentials: Option<Bindings>,
    /// Required (`true`) for broad entries: broad access approved consciously.
    #[serde(default)]
    pub broad: Option<bool>,
}

/// A credential of a request target: always a header.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestCredential {
    /// The credential's name, bound in the grant.
    pub name: CredentialName,
    /// The header the host puts it in (e.g. `Authorization`).
    pub header: HeaderName,
    /// The value's shape, with exactly one `{secret}` (default `{secret}`).
    #[serde(default)]
    #[schemars(
        length(max = 256),
        regex(pattern = r"^[\t\x20-\x7e]*\{secret\}[\t\x20-\x7e]*$")
    )]
    pub format: Option<String>,
    /// Why the plugin needs it, shown at review (at most 200 printable characters).
    #[serde(default)]
    #[schemars(length(max = 200), regex(pattern = NO_CONTROL))]
    pub reason: Option<String>,
}

/// A credential of a websocket target: a handshake header, or text messages.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WebsocketCredential {
    /// In a handshake header.
    Header(RequestCredential),
    /// In text messages (`{{credential:<name>}}` placeholders).
    Message(MessageCredential),
}

/// A credential the host substitutes into websocket text messages.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageCredential {
    /// The credential's name, bound in the grant.
    pub name: CredentialName,
    /// Must be `true`.
    #[schemars(extend("const" = true))]
    pub message: bool,
    /// The value's shape, with exactly one `{secret}` (default `{secret}`).
    #[serde(default)]
    #[schemars(length(max = 256), regex(pattern = NO_CONTROL))]
    pub format: Option<String>,
    /// Why the plugin needs it, shown at review (at most 200 printable characters).
    #[serde(default)]
    #[schemars(length(max = 200), regex(pattern = NO_CONTROL))]
    pub reason: Option<String>,
}

/// A credential name.
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct CredentialName(#[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,63}$"))] pub String);

/// Credential name → SecretRef (a name in the host's secret store, never a value).
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Bindings(
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z0-9][a-z0-9-]{0,63}$"}, "maxProperties" = 16))]
    pub std::collections::BTreeMap<String, SecretRefName>,
);

/// A SecretRef: `[a-z0-9][a-z0-9._/-]{0,127}` (so never `://` or whitespace).
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SecretRefName(#[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._/-]{0,127}$"))] pub String);

/// `"*"` or a non-empty list of methods.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MethodsField {
    /// Every method.
    All(AllMethods),
    /// A list of methods.
    List(#[schemars(length(min = 1))] Vec<MethodName>),
    /// `["*"]`: every method, as a list (the IR's spelling).
    AllList(#[schemars(length(min = 1, max = 1))] Vec<AllMethods>),
}

/// The literal `"*"`.
#[derive(Deserialize, JsonSchema)]
pub enum AllMethods {
    #[serde(rename = "*")]
    All,
}

/// An HTTP method (CONNECT and TRACE are never allowed).
#[derive(Deserialize, JsonSchema)]
pub enum MethodName {
    GET,
    HEAD,
    POST,
    PUT,
    PATCH,
    DELETE,
    OPTIONS,
}

/// An HTTP header name (token).
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct HeaderName(
    #[schemars(regex(pattern = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"), length(max = 128))] pub String,
);

/// An HTTP token (subprotocol name).
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Token(
    #[schemars(regex(pattern = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"), length(max = 128))] pub String,
);

/// A CIDR block or IP address.
#[derive(Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Network(
    #[schemars(regex(pattern = r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$"), length(max = 64))] pub String,
);

/// Which schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaKind {
    /// `plugin.toml`
    Manifest,
    /// `grant.toml`
    Grant,
    /// The compiled IR.
    Ir,
}

impl SchemaKind {
    /// Parses `manifest`, `grant` or `ir`.
    pub fn parse(s: &str) -> Option<SchemaKind> {
        match s {
            "manifest" => Some(SchemaKind::Manifest),
            "grant" => Some(SchemaKind::Grant),
            "ir" => Some(SchemaKind::Ir),
            _ => None,
        }
    }
}

/// The JSON Schema as a value.
pub fn schema_value(kind: SchemaKind) -> serde_json::Value {
    let gen = SchemaSettings::draft07().into_generator();
    let schema = match kind {
        SchemaKind::Manifest => gen.into_root_schema_for::<ManifestFile>(),
        SchemaKind::Grant => gen.into_root_schema_for::<GrantFile>(),
        SchemaKind::Ir => gen.into_root_schema_for::<crate::ir::Policy>(),
    };
    let mut value = serde_json::to_value(schema).expect("schema serializes");
    if kind != SchemaKind::Ir {
        strip_null(&mut value);
    }
    value
}

/// Removes `null` from a TOML file's schema: TOML has no null, and an
/// optional table emitted as `anyOf: [{$ref}, {type: null}]` makes editors
/// (taplo) report a typo deep inside it as "not valid under any of the
/// schemas listed in the 'anyOf' keyword" over the whole table. Without the
/// `anyOf`, the validator reports "additional properties" at the typo's key.
fn strip_null(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            let is_null = |s: &Value| {
                s.get("type").is_some_and(|t| t == "null")
                    && s.as_object().is_some_and(|o| o.len() == 1)
            };
            if let Some(Value::Array(any)) = map.get_mut("anyOf") {
                if any.iter().any(is_null) {
                    any.retain(|s| !is_null(s));
                    if any.len() == 1 {
                        // `allOf` keeps the `$ref` valid next to `description`
                        // in draft-07 and reports the inner errors unwrapped.
                        let only = any.remove(0);
                        map.remove("anyOf");
                        map.insert("allOf".into(), Value::Array(vec![only]));
                    }
                }
            }
            for child in map.values_mut() {
                strip_null(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// The JSON Schema text, as committed under `schema/` (pretty, trailing newline).
pub fn schema_json(kind: SchemaKind) -> String {
    let mut s = serde_json::to_string_pretty(&schema_value(kind)).expect("schema serializes");
    s.push('\n');
    s
}
