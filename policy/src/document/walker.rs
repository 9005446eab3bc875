//! `plugin.toml` and `grant.toml`: parsing with spans into the normalized model.
//!
//! The TOML is parsed into a spanned tree (`toml::de::DeTable`) and walked by
//! hand, so every problem in a file is collected (serde would stop at the
//! first) and every diagnostic points at the exact offending value. The serde
//! models in `crate::schema` (`schema` feature) describe the same shape for JSON Schema; a test
//! keeps the two in agreement.

use crate::capability::Capability;
use crate::credential::{self, Credential, CredentialPlacement, SecretRef};
use crate::diagnostics::{self, quote, Code, Diagnostic};
use crate::headers;
use crate::permission::{Method, Methods};
use crate::target::{Target, TargetErrorKind};
use ipnet::IpNet;
use miette::NamedSource;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Largest manifest or grant file, in bytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most targets in one file (both capabilities together).
pub const MAX_TARGETS: usize = 10_000;
/// Most `headers` per target.
pub const MAX_HEADERS_PER_TARGET: usize = 32;
/// Most `subprotocols` per target.
pub const MAX_SUBPROTOCOLS_PER_TARGET: usize = 16;
/// Most `networks` per target.
pub const MAX_NETWORKS_PER_TARGET: usize = 32;
/// Longest `reason`, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// Where an entry came from, for diagnostics. Absent for entries rebuilt from an IR.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The entry's table.
    pub table: Range<usize>,
    /// The `url` value.
    pub url: Range<usize>,
    /// The `methods` value, if written.
    pub methods: Option<Range<usize>>,
    /// The `broad` value, if written.
    pub broad: Option<Range<usize>>,
    /// The `credentials` value, if written.
    pub credentials: Option<Range<usize>>,
    /// Each credential binding's key in a grant (name and span).
    pub credential_keys: Vec<(String, Range<usize>)>,
}

/// A requested target from the manifest.
#[derive(Clone, Debug)]
pub struct Requested {
    /// The permission requested.
    pub permission: crate::permission::Permission,
    /// The plugin's reason, shown at review.
    pub reason: Option<String>,
    /// The credentials it declares (docs/spec.md §9.1), sorted by name.
    pub credentials: Vec<Credential>,
    /// Source location.
    pub origin: Option<Origin>,
}

/// One entry of a grant. Unset fields default to the containing request's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantEntry {
    /// Which capability.
    pub capability: Capability,
    /// The granted target.
    pub target: Target,
    /// Methods (request only); `None` approves the requested methods.
    pub methods: Option<Methods>,
    /// Headers; `None` approves the requested ones.
    pub headers: Option<BTreeSet<String>>,
    /// Subprotocols; `None` approves the requested ones.
    pub subprotocols: Option<BTreeSet<String>>,
    /// Networks; `None` approves the requested ones.
    pub networks: Option<BTreeSet<IpNet>>,
    /// `broad = true`: broad access approved consciously.
    pub broad: bool,
    /// Credential bindings, name → SecretRef (docs/spec.md §9.2). Never
    /// inherited: an unbound credential is not granted.
    pub credentials: BTreeMap<String, SecretRef>,
    /// Source location.
    pub origin: Option<Origin>,
}

/// A parsed, validated manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// `plugin.name`.
    pub name: String,
    /// `plugin.version`.
    pub version: String,
    /// Requested targets, in file order.
    pub requested: Vec<Requested>,
    /// The source, for diagnostics.
    pub source: Option<Arc<NamedSource<String>>>,
}

/// A parsed, validated grant.
#[derive(Clone, Debug)]
pub struct Grant {
    /// `plugin`.
    pub plugin: String,
    /// Span of the `plugin` value.
    pub plugin_span: Option<Range<usize>>,
    /// Entries, in file order.
    pub entries: Vec<GrantEntry>,
    /// `approved_digest`, if written.
    pub approved_digest: Option<String>,
    /// Span of the `approved_digest` value.
    pub approved_digest_span: Option<Range<usize>>,
    /// The source, for diagnostics.
    pub source: Option<Arc<NamedSource<String>>>,
}

/// The result of parsing: the value when no error was found, and every
/// diagnostic (warnings included), sorted by position, with the source attached.
#[derive(Debug)]
pub struct Parsed<T> {
    /// `Some` unless an error was found.
    pub value: Option<T>,
    /// All diagnostics.
    pub diagnostics: Vec<Diagnostic>,
}

impl Manifest {
    /// Parses `plugin.toml` text. `name` is the file name used in diagnostics.
    pub fn parse(name: &str, text: &str) -> Parsed<Manifest> {
        let source = diagnostics::named_source(name, text);
        let mut w = Walker::default();
        let value = w.manifest(text).map(|mut m| {
            m.source = Some(source.clone());
            m
        });
        w.finish(value, source)
    }

    /// Parses raw bytes (checks size and UTF-8 first).
    pub fn parse_bytes(name: &str, bytes: &[u8]) -> Parsed<Manifest> {
        match check_bytes(name, bytes) {
            Ok(text) => Manifest::parse(name, text),
            Err(d) => Parsed {
                value: None,
                diagnostics: vec![d],
            },
        }
    }
}

impl Grant {
    /// Parses `grant.toml` text. `name` is the file name used in diagnostics.
    pub fn parse(name: &str, text: &str) -> Parsed<Grant> {
        let source = diagnostics::named_source(name, text);
        let mut w = Walker::default();
        let value = w.grant(text).map(|mut g| {
            g.source = Some(source.clone());
            g
        });
        w.finish(value, source)
    }

    /// Parses raw bytes (checks size and UTF-8 first).
    pub fn parse_bytes(name: &str, bytes: &[u8]) -> Parsed<Grant> {
        match check_bytes(name, bytes) {
            Ok(text) => Grant::parse(name, text),
            Err(d) => Parsed {
                value: None,
                diagnostics: vec![d],
            },
        }
    }
}

fn check_bytes<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str, Diagnostic> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::new(
            Code::FileTooLarge,
            format!(
                "{} is {} bytes; the limit is {MAX_FILE_BYTES} bytes (1 MiB)",
                quote(name),
                bytes.len()
            ),
        )
        .with_help(
            "split the plugin, or use wildcards and path prefixes instead of listing every URL",
        ));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        Diagnostic::new(
            Code::NotUtf8,
            format!(
                "{} is not valid UTF-8 (at byte {})",
                quote(name),
                e.valid_up_to()
            ),
        )
        .with_help("save the file as UTF-8")
    })
}

/// Which file the walker reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Manifest,
    Grant,
}

#[derive(Default)]
struct Walker {
    diags: Vec<Diagnostic>,
    targets_seen: usize,
}

type Sv<'i> = Spanned<DeValue<'i>>;

impl Walker {
    fn finish<T>(mut self, value: Option<T>, source: Arc<NamedSource<String>>) -> Parsed<T> {
        diagnostics::sort(&mut self.diags);
        let failed = self.diags.iter().any(|d| d.severity().is_error());
        Parsed {
            value: if failed { None } else { value },
            diagnostics: self
                .diags
                .into_iter()
                .map(|d| d.with_source(source.clone()))
                .collect(),
        }
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn error(&mut self, code: Code, span: Range<usize>, label: &str, msg: String, help: &str) {
        self.push(
            Diagnostic::new(code, msg)
                .with_label(span, label)
                .with_help(help),
        );
    }

    fn parse_toml<'i>(&mut self, text: &'i str) -> Option<DeTable<'i>> {
        if text.len() > MAX_FILE_BYTES {
            self.push(
                Diagnostic::new(
                    Code::FileTooLarge,
                    format!("file is {} bytes; the limit is {MAX_FILE_BYTES} bytes (1 MiB)", text.len()),
                )
                .with_help("split the plugin, or use wildcards and path prefixes instead of listing every URL"),
            );
            return None;
        }
        let (table, errors) = DeTable::parse_recoverable(text);
        if errors.is_empty() {
            return Some(table.into_inner());
        }
        for e in errors {
            // A few parser limits (nesting depth) come without a position:
            // say so rather than point at the first byte as if it were at fault.
            let (span, label) = match e.span() {
                Some(s) => (s, "here"),
                None => (0..0, "somewhere in this file (the parser gave no position)"),
            };
            let msg = e.message().trim().to_string();
            let first_line = msg.lines().next().unwrap_or("invalid TOML").to_string();
            self.push(
                Diagnostic::new(
                    Code::TomlSyntax,
                    format!("invalid TOML: {}", first_line.to_lowercase()),
                )
                .with_label(span, label)
                .with_help("fix the TOML syntax; see https://toml.io"),
            );
        }
        None
    }

    /// Reports keys not in `allowed`, with a fix-it when one is likely.
    fn check_keys(
        &mut self,
        table: &DeTable<'_>,
        allowed: &[&str],
        ctx: &str,
        hint: &dyn Fn(&str) -> Option<String>,
    ) {
        for (k, _) in table.iter() {
            let key: &str = k.get_ref();
            if allowed.contains(&key) {
                continue;
            }
            let help = hint(key)
                .or_else(|| suggest(key, allowed).map(|s| format!("did you mean `{s}`?")))
                .unwrap_or_else(|| format!("allowed keys here: {}", allowed.join(", ")));
            self.push(
                Diagnostic::new(
                    Code::UnknownKey,
                    format!("unknown key {} in {ctx}", quote(key)),
                )
                .with_label(k.span(), "unknown key")
                .with_help(help),
            );
        }
    }

    fn wrong_type(&mut self, v: &Sv<'_>, what: &str, expected: &str, help: &str) {
        self.push(
            Diagnostic::new(
                Code::WrongType,
                format!(
                    "{what} must be {expected}, found {}",
                    v.get_ref().type_str()
                ),
            )
            .with_label(v.span(), format!("expected {expected}"))
            .with_help(help.to_string()),
        );
    }

    fn string<'t>(&mut self, v: &'t Sv<'_>, what: &str) -> Option<&'t str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(v, what, "a string", "quote the value");
                None
            }
        }
    }

    fn string_array<'t>(
        &mut self,
        v: &'t Sv<'_>,
        what: &str,
    ) -> Option<Vec<(&'t str, Range<usize>)>> {
        match v.get_ref() {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for it in items.iter() {
                    match it.get_ref() {
                        DeValue::String(s) => out.push((s.as_ref(), it.span())),
                        _ => {
                            self.wrong_type(
                                it,
                                &format!("each item of {what}"),
                                "a string",
                                "quote each item",
                            );
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }
            _ => {
                self.wrong_type(
                    v,
                    what,
                    "an array of strings",
                    &format!("write `{what} = [\"…\"]`"),
                );
                None
            }
        }
    }

    fn manifest(&mut self, text: &str) -> Option<Manifest> {
        let root = self.parse_toml(text)?;
        self.check_keys(
            &root,
            &["plugin", "host_api"],
            "the manifest",
            &|k| match k {
                "permissions" | "network" | "hostapi" | "host-api" => {
                    Some("did you mean `host_api`?".into())
                }
                "name" | "version" => Some("put name and version under `[plugin]`".into()),
                "request" | "websocket" => Some(format!("write `[[host_api.{k}]]`")),
                _ => None,
            },
        );
        let (mut name, mut version) = (None, None);
        match root.get("plugin") {
            None => self.push(
                Diagnostic::new(Code::MissingKey, "missing `[plugin]` table")
                    .with_label(0..0, "the manifest starts here")
                    .with_help("add `[plugin]` with `name = \"…\"` and `version = \"…\"`"),
            ),
            Some(p) => match p.get_ref() {
                DeValue::Table(t) => {
                    self.check_keys(t, &["name", "version"], "`[plugin]`", &|_| None);
                    name = self.plugin_name(t, p.span());
                    version = self.plugin_version(t, p.span());
                }
                _ => self.wrong_type(
                    p,
                    "`plugin`",
                    "a table",
                    "write `[plugin]` with name and version",
                ),
            },
        }
        let requested = self.host_api(&root, FileKind::Manifest);
        let requested: Vec<Requested> = requested
            .into_iter()
            .filter_map(|e| match e {
                Entry::Requested(r) => Some(r),
                Entry::Granted(_) => None,
            })
            .collect();
        if self.targets_seen == 0 && !self.diags.iter().any(|d| d.severity().is_error()) {
            // Legal (a plugin may need no network), but worth a word on an
            // otherwise valid manifest (a typo'd table is an unknown key).
            let (span, label) = match (root.get("host_api"), root.get("plugin")) {
                (Some(h), _) => (
                    h.span(),
                    "no `[[host_api.request]]` or `[[host_api.websocket]]` entry",
                ),
                (None, Some(p)) => (p.span(), "this plugin requests no network target"),
                (None, None) => (0..0, "the manifest starts here"),
            };
            self.push(
                Diagnostic::new(Code::NoTargets, "the manifest requests no network target")
                    .with_label(span, label)
                    .with_help("if the plugin needs the network, add `[[host_api.request]]` or `[[host_api.websocket]]` entries; otherwise nothing to do"),
            );
        }
        Some(Manifest {
            name: name?,
            version: version?,
            requested,
            source: None,
        })
    }

    fn plugin_name(&mut self, t: &DeTable<'_>, table_span: Range<usize>) -> Option<String> {
        let Some(v) = t.get("name") else {
            self.push(
                Diagnostic::new(Code::MissingKey, "missing `plugin.name`")
                    .with_label(table_span, "in this table")
                    .with_help("add `name = \"my-plugin\"` ([a-z0-9][a-z0-9-]{0,63})"),
            );
            return None;
        };
        let s = self.string(v, "`plugin.name`")?;
        if !is_valid_plugin_name(s) {
            self.error(
                Code::PluginName,
                v.span(),
                "invalid plugin name",
                format!(
                    "plugin name {} does not match [a-z0-9][a-z0-9-]{{0,63}}",
                    quote(s)
                ),
                &plugin_name_help(s),
            );
            return None;
        }
        Some(s.to_string())
    }

    fn plugin_version(&mut self, t: &DeTable<'_>, table_span: Range<usize>) -> Option<String> {
        let Some(v) = t.get("version") else {
            self.push(
                Diagnostic::new(Code::MissingKey, "missing `plugin.version`")
                    .with_label(table_span, "in this table")
                    .with_help("add `version = \"0.1.0\"` (semver)"),
            );
            return None;
        };
        let s = self.string(v, "`plugin.version`")?;
        if s.len() > 128 || semver::Version::parse(s).is_err() {
            self.error(
                Code::PluginVersion,
                v.span(),
                "not a semantic version",
                format!("plugin version {} is not a semantic version", quote(s)),
                "write MAJOR.MINOR.PATCH, e.g. `0.3.1` or `1.0.0-beta.2`",
            );
            return None;
        }
        Some(s.to_string())
    }

    fn grant(&mut self, text: &str) -> Option<Grant> {
        let root = self.parse_toml(text)?;
        self.check_keys(
            &root,
            &["plugin", "host_api", "approved_digest"],
            "the grant",
            &|k| match k {
                "name" => Some("the grant names its plugin with `plugin = \"…\"`".into()),
                "permissions" | "hostapi" | "host-api" => Some("did you mean `host_api`?".into()),
                "digest" | "requested_digest" => Some("did you mean `approved_digest`?".into()),
                _ => None,
            },
        );
        let mut plugin = None;
        let mut plugin_span = None;
        match root.get("plugin") {
            None => self.push(
                Diagnostic::new(Code::MissingKey, "missing `plugin`")
                    .with_label(0..0, "the grant starts here")
                    .with_help("add `plugin = \"<the manifest's plugin.name>\"`"),
            ),
            Some(v) => {
                if let DeValue::Table(_) = v.get_ref() {
                    self.wrong_type(
                        v,
                        "`plugin`",
                        "a string",
                        "a grant names its plugin with `plugin = \"name\"`, not a `[plugin]` table",
                    );
                } else if let Some(s) = self.string(v, "`plugin`") {
                    if is_valid_plugin_name(s) {
                        plugin = Some(s.to_string());
                        plugin_span = Some(v.span());
                    } else {
                        self.error(
                            Code::PluginName,
                            v.span(),
                            "invalid plugin name",
                            format!(
                                "plugin name {} does not match [a-z0-9][a-z0-9-]{{0,63}}",
                                quote(s)
                            ),
                            &plugin_name_help(s),
                        );
                    }
                }
            }
        }
        let mut approved_digest = None;
        let mut approved_digest_span = None;
        if let Some(v) = root.get("approved_digest") {
            if let Some(s) = self.string(v, "`approved_digest`") {
                if is_valid_digest(s) {
                    approved_digest = Some(s.to_string());
                    approved_digest_span = Some(v.span());
                } else {
                    self.error(
                        Code::DigestFormat,
                        v.span(),
                        "not a sha256 digest",
                        format!("approved_digest {} is not `sha256:` followed by 64 lowercase hex digits", quote(s)),
                        "copy `requested_digest` from `netgrant show`, or let `netgrant approve` write it",
                    );
                }
            }
        }
        let entries = self
            .host_api(&root, FileKind::Grant)
            .into_iter()
            .filter_map(|e| match e {
                Entry::Granted(g) => Some(g),
                Entry::Requested(_) => None,
            })
            .collect();
        Some(Grant {
            plugin: plugin?,
            plugin_span,
            entries,
            approved_digest,
            approved_digest_span,
            source: None,
        })
    }

    fn host_api(&mut self, root: &DeTable<'_>, kind: FileKind) -> Vec<Entry> {
        let mut out = Vec::new();
        let Some(h) = root.get("host_api") else {
            return out;
        };
        let DeValue::Table(t) = h.get_ref() else {
            self.wrong_type(
                h,
                "`host_api`",
                "a table",
                "write `[[host_api.request]]` / `[[host_api.websocket]]` entries",
            );
            return out;
        };
        self.check_keys(t, &["request", "websocket"], "`host_api`", &|k| {
            let lower = k.to_ascii_lowercase();
            let cap = match lower.as_str() {
                "ws" | "wss" | "websockets" | "web_socket" | "web-socket" | "socket"
                | "sockets" | "stream" | "streaming" => "websocket",
                "http" | "https" | "requests" | "fetch" | "net" | "network" => "request",
                _ => return None,
            };
            Some(format!("did you mean `host_api.{cap}`?"))
        });
        for cap in Capability::ALL {
            let Some(v) = t.get(cap.as_str()) else {
                continue;
            };
            match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, it) in items.iter().enumerate() {
                        self.targets_seen += 1;
                        if self.targets_seen == MAX_TARGETS + 1 {
                            self.error(
                                Code::TooMany,
                                it.span(),
                                "one target too many",
                                format!("more than {MAX_TARGETS} targets in one file"),
                                "use wildcards and path prefixes instead of listing every URL",
                            );
                        }
                        if self.targets_seen > MAX_TARGETS {
                            continue;
                        }
                        match it.get_ref() {
                            DeValue::Table(et) => {
                                if let Some(e) = self.entry(et, it.span(), cap, kind, i) {
                                    out.push(e);
                                }
                            }
                            _ => self.wrong_type(
                                it,
                                &format!("each `{}` entry", cap.table()),
                                "a table",
                                &format!("write `[[{}]]` tables", cap.table()),
                            ),
                        }
                    }
                }
                DeValue::Table(_) => self.wrong_type(
                    v,
                    &format!("`{}`", cap.table()),
                    "an array of tables",
                    &format!(
                        "write `[[{}]]` (double brackets), even for a single target",
                        cap.table()
                    ),
                ),
                _ => self.wrong_type(
                    v,
                    &format!("`{}`", cap.table()),
                    "an array of tables",
                    &format!("write `[[{}]]` tables", cap.table()),
                ),
            }
        }
        out
    }

    fn entry(
        &mut self,
        t: &DeTable<'_>,
        span: Range<usize>,
        cap: Capability,
        kind: FileKind,
        _index: usize,
    ) -> Option<Entry> {
        let allowed: &[&str] = match (kind, cap) {
            (FileKind::Manifest, Capability::Request) => &[
                "url",
                "methods",
                "headers",
                "networks",
                "credentials",
                "reason",
            ],
            (FileKind::Manifest, Capability::Websocket) => &[
                "url",
                "subprotocols",
                "headers",
                "networks",
                "credentials",
                "reason",
            ],
            (FileKind::Grant, Capability::Request) => &[
                "url",
                "methods",
                "headers",
                "networks",
                "credentials",
                "broad",
            ],
            (FileKind::Grant, Capability::Websocket) => &[
                "url",
                "subprotocols",
                "headers",
                "networks",
                "credentials",
                "broad",
            ],
        };
        // A constant, not a `format!` per entry: used only in diagnostics.
        let ctx = match cap {
            Capability::Request => "a `host_api.request` entry",
            Capability::Websocket => "a `host_api.websocket` entry",
        };
        self.check_keys(t, allowed, ctx, &|k| match (k, cap, kind) {
            ("methods" | "method", Capability::Websocket, _) => Some("methods apply to `host_api.request` only; a WebSocket opens with GET".into()),
            ("subprotocols" | "subprotocol", Capability::Request, _) => Some("subprotocols apply to `host_api.websocket` only".into()),
            ("broad", _, FileKind::Manifest) => Some("flags are derived, never written in a manifest; a grant approves broad access with `broad = true`".into()),
            ("reason", _, FileKind::Grant) => Some("reasons belong in the manifest; write a TOML comment in the grant instead".into()),
            ("method", Capability::Request, _) => Some("did you mean `methods`?".into()),
            ("header", _, _) => Some("did you mean `headers`?".into()),
            ("credential" | "secrets" | "secret", _, _) => Some("did you mean `credentials`?".into()),
            ("network" | "cidrs" | "cidr", _, _) => Some("did you mean `networks`?".into()),
            ("protocols" | "protocol", Capability::Websocket, _) => Some("did you mean `subprotocols`?".into()),
            ("description" | "why" | "note", _, FileKind::Manifest) => Some("did you mean `reason`?".into()),
            ("target" | "uri" | "host" | "endpoint", _, _) => Some("did you mean `url`?".into()),
            ("approved_digest" | "plugin", _, FileKind::Grant) => Some(format!("`{k}` is a top-level key: in TOML a key after a `[[…]]` header belongs to that table, so move it above the first `[[host_api.…]]` table")),
            _ => None,
        });
        let before = self
            .diags
            .iter()
            .filter(|d| d.severity().is_error())
            .count();
        let mut origin = Origin {
            table: span.clone(),
            ..Origin::default()
        };
        // url
        let target = match t.get("url") {
            None => {
                self.push(
                    Diagnostic::new(Code::MissingKey, format!("{ctx} has no `url`"))
                        .with_label(span.clone(), "this entry")
                        .with_help(format!(
                            "add `url = \"{}://host/\"`",
                            if cap == Capability::Request {
                                "https"
                            } else {
                                "wss"
                            }
                        )),
                );
                None
            }
            Some(v) => {
                origin.url = v.span();
                self.string(v, "`url`").and_then(|s| self.target(s, v, cap))
            }
        };
        // methods
        let methods = match (cap, t.get("methods")) {
            (Capability::Request, None) if kind == FileKind::Manifest => {
                self.push(
                    Diagnostic::new(Code::MissingMethods, "request target has no `methods`")
                        .with_label(span.clone(), "this entry")
                        .with_help(
                            "add `methods = [\"GET\"]` (or the methods it needs; `\"*\"` for all)",
                        ),
                );
                None
            }
            (Capability::Request, Some(v)) => {
                origin.methods = Some(v.span());
                self.methods(v)
            }
            _ => None,
        };
        let headers = t.get("headers").and_then(|v| self.headers(v));
        let subprotocols = match cap {
            Capability::Websocket => t.get("subprotocols").and_then(|v| self.subprotocols(v)),
            Capability::Request => None,
        };
        let networks = t.get("networks").and_then(|v| self.networks(v));
        let (declared, bindings) = match (kind, t.get("credentials")) {
            (_, None) => (Vec::new(), BTreeMap::new()),
            (FileKind::Manifest, Some(v)) => {
                origin.credentials = Some(v.span());
                (
                    self.credential_decls(v, cap, headers.as_ref())
                        .unwrap_or_default(),
                    BTreeMap::new(),
                )
            }
            (FileKind::Grant, Some(v)) => {
                origin.credentials = Some(v.span());
                let b = self.credential_bindings(v, &mut origin).unwrap_or_default();
                (Vec::new(), b)
            }
        };
        let reason = match kind {
            FileKind::Manifest => t.get("reason").and_then(|v| self.reason(v)),
            FileKind::Grant => None,
        };
        let broad = match (kind, t.get("broad")) {
            (FileKind::Grant, Some(v)) => {
                origin.broad = Some(v.span());
                match v.get_ref() {
                    DeValue::Boolean(b) => *b,
                    _ => {
                        self.wrong_type(v, "`broad`", "a boolean", "write `broad = true`");
                        false
                    }
                }
            }
            _ => false,
        };
        let after = self
            .diags
            .iter()
            .filter(|d| d.severity().is_error())
            .count();
        if after > before {
            return None;
        }
        let target = target?;
        match kind {
            FileKind::Manifest => {
                let methods = match cap {
                    Capability::Request => Some(methods?),
                    Capability::Websocket => None,
                };
                let permission = crate::permission::Permission {
                    capability: cap,
                    target,
                    methods,
                    headers: headers.unwrap_or_default(),
                    subprotocols: subprotocols.unwrap_or_default(),
                    networks: networks.unwrap_or_default(),
                };
                if !declared.is_empty() {
                    let span = origin.credentials.clone().unwrap_or(span);
                    let problems = credential::target_problems(&permission);
                    for p in &problems {
                        self.push(credential_target_diagnostic(
                            *p,
                            &permission,
                            span.clone(),
                            "declared",
                        ));
                    }
                    if !problems.is_empty() {
                        return None;
                    }
                }
                Some(Entry::Requested(Requested {
                    permission,
                    reason,
                    credentials: declared,
                    origin: Some(origin),
                }))
            }
            FileKind::Grant => Some(Entry::Granted(GrantEntry {
                capability: cap,
                target,
                methods,
                headers,
                subprotocols,
                networks,
                broad,
                credentials: bindings,
                origin: Some(origin),
            })),
        }
    }

    fn target(&mut self, s: &str, v: &Sv<'_>, cap: Capability) -> Option<Target> {
        // Offsets into the TOML value: +1 for the opening quote when the string
        // has no escapes (the common case); otherwise label the whole value.
        let vspan = v.span();
        let inner = |r: Range<usize>| -> Range<usize> {
            let raw_len = vspan.end.saturating_sub(vspan.start);
            if raw_len == s.len() + 2 {
                vspan.start + 1 + r.start..vspan.start + 1 + r.end
            } else {
                vspan.clone()
            }
        };
        match Target::parse(s) {
            Ok(t) => {
                if t.capability() != cap {
                    let right = t.capability();
                    self.push(
                        Diagnostic::new(
                            Code::WrongCapability,
                            format!("`{}` target in `{}`", t.scheme, cap.table()),
                        )
                        .with_label(
                            inner(0..t.scheme.as_str().len().min(s.len())),
                            format!("{} is a {} scheme", t.scheme, right),
                        )
                        .with_help(format!(
                            "did you mean `[[{}]]`? {} and {} are separate capabilities",
                            right.table(),
                            Capability::Request.table(),
                            Capability::Websocket.table()
                        )),
                    );
                    return None;
                }
                Some(t)
            }
            Err(e) => {
                let code = match e.kind {
                    TargetErrorKind::Syntax => Code::TargetSyntax,
                    TargetErrorKind::TooLong => Code::TargetTooLong,
                    TargetErrorKind::Scheme => Code::TargetScheme,
                    TargetErrorKind::Userinfo => Code::Userinfo,
                    TargetErrorKind::QueryOrFragment => Code::QueryOrFragment,
                    TargetErrorKind::Wildcard => Code::Wildcard,
                    TargetErrorKind::Host => Code::Host,
                    TargetErrorKind::Port => Code::Port,
                    TargetErrorKind::Path => Code::Path,
                    TargetErrorKind::ForbiddenAddress => Code::ForbiddenAddress,
                };
                let label = match e.kind {
                    TargetErrorKind::Userinfo => "credentials here",
                    TargetErrorKind::QueryOrFragment => "not allowed in a target",
                    TargetErrorKind::ForbiddenAddress => "never reachable",
                    _ => "here",
                };
                let span = if e.kind == TargetErrorKind::TooLong {
                    vspan.clone()
                } else {
                    inner(e.span.clone())
                };
                self.push(
                    Diagnostic::new(code, e.message)
                        .with_label(span, label)
                        .with_help(e.help),
                );
                None
            }
        }
    }

    fn methods(&mut self, v: &Sv<'_>) -> Option<Methods> {
        if let DeValue::String(s) = v.get_ref() {
            if s.as_ref() == "*" {
                return Some(Methods::Any);
            }
            self.wrong_type(
                v,
                "`methods`",
                "an array of strings or \"*\"",
                "write `methods = [\"GET\"]` or `methods = \"*\"`",
            );
            return None;
        }
        let items = self.string_array(v, "`methods`")?;
        if items.is_empty() {
            self.error(
                Code::MissingMethods,
                v.span(),
                "empty",
                "`methods` is empty".into(),
                "list the methods this target needs, e.g. `[\"GET\"]`",
            );
            return None;
        }
        let mut set = BTreeSet::new();
        let mut any = false;
        let mut ok = true;
        for (m, span) in &items {
            if *m == "*" {
                any = true;
                continue;
            }
            match Method::parse(m) {
                Some(x) => {
                    set.insert(x);
                }
                None => {
                    ok = false;
                    let upper = m.to_ascii_uppercase();
                    if upper == "CONNECT" || upper == "TRACE" {
                        self.error(
                            Code::ForbiddenMethod,
                            span.clone(),
                            "never allowed",
                            format!("method {} is never allowed", quote(m)),
                            "CONNECT opens tunnels and TRACE reflects requests; remove it",
                        );
                    } else if Method::parse(&upper).is_some() {
                        self.error(
                            Code::UnknownMethod,
                            span.clone(),
                            "methods are uppercase",
                            format!("unknown method {}", quote(m)),
                            &format!("did you mean `{upper}`?"),
                        );
                    } else {
                        self.error(
                            Code::UnknownMethod,
                            span.clone(),
                            "unknown method",
                            format!("unknown method {}", quote(m)),
                            "use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, or \"*\" for all of them",
                        );
                    }
                }
            }
        }
        if any && (items.len() > 1) {
            self.error(
                Code::UnknownMethod,
                v.span(),
                "`*` mixed with methods",
                "`*` cannot be combined with other methods".into(),
                "write `methods = \"*\"` for every method, or list the methods without `*`",
            );
            return None;
        }
        if !ok {
            return None;
        }
        Some(if any {
            Methods::Any
        } else {
            Methods::from_set(set)
        })
    }

    fn headers(&mut self, v: &Sv<'_>) -> Option<BTreeSet<String>> {
        let items = self.string_array(v, "`headers`")?;
        if items.len() > MAX_HEADERS_PER_TARGET {
            self.error(
                Code::TooMany,
                items[MAX_HEADERS_PER_TARGET].1.clone(),
                "one too many",
                format!(
                    "{} headers; at most {MAX_HEADERS_PER_TARGET} per target",
                    items.len()
                ),
                "declare only the headers the plugin sends",
            );
            return None;
        }
        let mut out = BTreeSet::new();
        let mut ok = true;
        for (h, span) in items {
            if h.len() > 128 {
                ok = false;
                self.error(
                    Code::InvalidHeader,
                    span,
                    "too long",
                    format!("header name {} is longer than 128 characters", quote(h)),
                    "header names are at most 128 characters",
                );
                continue;
            }
            match headers::check_declared(h) {
                Ok(name) => {
                    out.insert(name);
                }
                Err(headers::DeclareError::AlwaysAllowed) => {
                    self.push(
                        Diagnostic::new(
                            Code::RedundantHeader,
                            format!("header {} is always allowed", quote(h)),
                        )
                        .with_label(span, "always allowed")
                        .with_help("remove it from `headers`; it needs no declaration"),
                    );
                }
                Err(headers::DeclareError::Invalid) => {
                    ok = false;
                    self.error(
                        Code::InvalidHeader,
                        span,
                        "not a header name",
                        format!("header name {} is not an HTTP token", quote(h)),
                        "header names are letters, digits and !#$%&'*+-.^_`|~ only",
                    );
                }
                Err(headers::DeclareError::NeverAllowed(why)) => {
                    ok = false;
                    let help = if h.eq_ignore_ascii_case("authorization") {
                        "a plugin never sends a credential itself: declare it under `credentials` instead, e.g. `credentials = [{ name = \"api-token\", header = \"Authorization\", format = \"Bearer {secret}\" }]`, and bind it in the grant"
                    } else {
                        "remove it: the host sets this header itself, or it would let a plugin bypass the policy"
                    };
                    self.error(
                        Code::ForbiddenHeader,
                        span,
                        why,
                        format!("header {} is never allowed ({why})", quote(h)),
                        help,
                    );
                }
                Err(headers::DeclareError::CredentialLike(frag)) => {
                    ok = false;
                    self.error(
                        Code::ForbiddenHeader,
                        span,
                        "looks like a credential",
                        format!("header {} looks like a credential (contains `{frag}`)", quote(h)),
                        &format!("a plugin never sends a credential itself: declare it under `credentials` instead, e.g. `credentials = [{{ name = \"api-key\", header = \"{}\" }}]`, and bind it in the grant", h),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    fn subprotocols(&mut self, v: &Sv<'_>) -> Option<BTreeSet<String>> {
        let items = self.string_array(v, "`subprotocols`")?;
        if items.len() > MAX_SUBPROTOCOLS_PER_TARGET {
            self.error(
                Code::TooMany,
                items[MAX_SUBPROTOCOLS_PER_TARGET].1.clone(),
                "one too many",
                format!(
                    "{} subprotocols; at most {MAX_SUBPROTOCOLS_PER_TARGET} per target",
                    items.len()
                ),
                "declare only the subprotocols the plugin asks for",
            );
            return None;
        }
        let mut out = BTreeSet::new();
        let mut ok = true;
        for (p, span) in items {
            if headers::is_token(p) && p.len() <= 128 {
                out.insert(p.to_string());
            } else {
                ok = false;
                self.error(
                    Code::InvalidSubprotocol,
                    span,
                    "not a token",
                    format!("subprotocol {} is not an HTTP token", quote(p)),
                    "subprotocol names are letters, digits and !#$%&'*+-.^_`|~ only (at most 128)",
                );
            }
        }
        ok.then_some(out)
    }

    fn networks(&mut self, v: &Sv<'_>) -> Option<BTreeSet<IpNet>> {
        let items = self.string_array(v, "`networks`")?;
        if items.len() > MAX_NETWORKS_PER_TARGET {
            self.error(
                Code::TooMany,
                items[MAX_NETWORKS_PER_TARGET].1.clone(),
                "one too many",
                format!(
                    "{} networks; at most {MAX_NETWORKS_PER_TARGET} per target",
                    items.len()
                ),
                "merge adjacent networks",
            );
            return None;
        }
        let mut out = BTreeSet::new();
        let mut ok = true;
        for (n, span) in items {
            match parse_network(n) {
                Some(net) => {
                    let net = crate::address::canonical_network(net);
                    if crate::address::classify_network(net).only_never {
                        ok = false;
                        self.error(
                            Code::ForbiddenNetwork,
                            span,
                            "never reachable",
                            format!("network {net} lies entirely in never-reachable ranges"),
                            "unspecified, multicast, broadcast and cloud metadata addresses cannot be granted",
                        );
                    } else {
                        out.insert(net);
                    }
                }
                None => {
                    ok = false;
                    self.error(Code::InvalidNetwork, span, "not a network", format!("invalid network {}", quote(n)), "write a CIDR block such as `10.0.0.0/8` or `fd00::/8`, or a single IP address");
                }
            }
        }
        ok.then(|| crate::address::aggregate_networks(&out))
    }

    /// A manifest target's `credentials = [{ name, header | message, format, reason }]`
    /// (docs/spec.md §9.1), sorted by name. `headers` is the target's own
    /// list, which may not name a credential's header too.
    fn credential_decls(
        &mut self,
        v: &Sv<'_>,
        cap: Capability,
        declared_headers: Option<&BTreeSet<String>>,
    ) -> Option<Vec<Credential>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(
                v,
                "`credentials`",
                "an array of tables",
                "write `credentials = [{ name = \"bot-token\", header = \"Authorization\" }]`",
            );
            return None;
        };
        if items.len() > credential::MAX_CREDENTIALS_PER_TARGET {
            self.error(
                Code::TooMany,
                items[credential::MAX_CREDENTIALS_PER_TARGET].span(),
                "one too many",
                format!(
                    "{} credentials; at most {} per target",
                    items.len(),
                    credential::MAX_CREDENTIALS_PER_TARGET
                ),
                "declare only the credentials the plugin uses",
            );
            return None;
        }
        let mut out: Vec<Credential> = Vec::new();
        let mut names: BTreeMap<String, Range<usize>> = BTreeMap::new();
        let mut ok = true;
        for it in items.iter() {
            let DeValue::Table(t) = it.get_ref() else {
                self.wrong_type(
                    it,
                    "each item of `credentials`",
                    "a table",
                    "write `{ name = \"bot-token\", header = \"Authorization\" }`",
                );
                ok = false;
                continue;
            };
            match self.credential_decl(t, it.span(), cap, declared_headers) {
                Some((c, name_span)) => {
                    if let Some(first) = names.get(&c.name) {
                        self.push(
                            Diagnostic::new(
                                Code::CredentialDuplicateName,
                                format!(
                                    "credential {} is declared twice on this target",
                                    quote(&c.name)
                                ),
                            )
                            .with_label(name_span, "duplicate")
                            .with_label(first.clone(), "first declared here")
                            .with_help(
                                "merge the two declarations, or give each credential its own name",
                            ),
                        );
                        ok = false;
                        continue;
                    }
                    names.insert(c.name.clone(), name_span);
                    out.push(c);
                }
                None => ok = false,
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        ok.then_some(out)
    }

    /// One declaration, and the span of its name.
    fn credential_decl(
        &mut self,
        t: &DeTable<'_>,
        span: Range<usize>,
        cap: Capability,
        declared_headers: Option<&BTreeSet<String>>,
    ) -> Option<(Credential, Range<usize>)> {
        self.check_keys(
            t,
            &["name", "header", "message", "format", "reason"],
            "a credential",
            &|k| match k {
                "value" | "secret" | "token" | "password" | "key" => Some(
                    "a manifest never holds a secret: declare `name` and where it goes, and bind it to a SecretRef in the grant".into(),
                ),
                "headers" => Some("did you mean `header`? a credential goes into one header".into()),
                "messages" => Some("did you mean `message = true`?".into()),
                _ => None,
            },
        );
        let before = self
            .diags
            .iter()
            .filter(|d| d.severity().is_error())
            .count();
        let name = match t.get("name") {
            None => {
                self.push(
                    Diagnostic::new(Code::MissingKey, "credential has no `name`")
                        .with_label(span.clone(), "this credential")
                        .with_help("add `name = \"bot-token\"` ([a-z0-9][a-z0-9-]{0,63})"),
                );
                None
            }
            Some(v) => self.credential_name(v),
        };
        let header = t.get("header").and_then(|v| {
            let h = self.string(v, "`header`")?;
            match crate::headers::check_credential_header(h) {
                Ok(lower) => {
                    if declared_headers.is_some_and(|d| d.contains(&lower)) {
                        self.error(
                            Code::CredentialHeader,
                            v.span(),
                            "also in `headers`",
                            format!("header {} is a credential's placement and also in `headers`", quote(h)),
                            "remove it from `headers`: the host owns a credential's header, the plugin cannot set it",
                        );
                        return None;
                    }
                    Some((lower, v.span()))
                }
                Err(e) => {
                    let (label, why, help) = match e {
                        crate::headers::CredentialHeaderError::Invalid => (
                            "not a header name",
                            "is not an HTTP token (at most 128 characters)".to_string(),
                            "header names are letters, digits and !#$%&'*+-.^_`|~ only",
                        ),
                        crate::headers::CredentialHeaderError::NeverAllowed(why) => (
                            why,
                            format!("can never carry a credential ({why})"),
                            "use the header the API expects for its credential, such as `Authorization` or `X-Api-Key`",
                        ),
                        crate::headers::CredentialHeaderError::AlwaysAllowed => (
                            "always allowed",
                            "is always allowed, so the plugin could set it too".to_string(),
                            "use the header the API expects for its credential, such as `Authorization` or `X-Api-Key`",
                        ),
                    };
                    self.error(
                        Code::CredentialHeader,
                        v.span(),
                        label,
                        format!("credential header {} {why}", quote(h)),
                        help,
                    );
                    None
                }
            }
        });
        let message = match t.get("message") {
            None => None,
            Some(v) => match v.get_ref() {
                DeValue::Boolean(true) => Some(v.span()),
                DeValue::Boolean(false) => {
                    self.error(
                        Code::CredentialPlacement,
                        v.span(),
                        "not a placement",
                        "`message = false` places the credential nowhere".into(),
                        "write `message = true` (websocket text messages), or remove it and give a `header`",
                    );
                    None
                }
                _ => {
                    self.wrong_type(v, "`message`", "a boolean", "write `message = true`");
                    None
                }
            },
        };
        if let (Some(m), Capability::Request) = (&message, cap) {
            self.error(
                Code::CredentialPlacement,
                m.clone(),
                "websocket only",
                "`message = true` applies to `host_api.websocket` targets only".into(),
                "a one-shot request carries a credential in a header: write `header = \"Authorization\"` (or the header the API expects)",
            );
        }
        let has_header = t.contains_key("header");
        let has_message = t.contains_key("message");
        match (has_header, has_message) {
            (true, true) => self.error(
                Code::CredentialPlacement,
                span.clone(),
                "two placements",
                "a credential has both `header` and `message`".into(),
                "keep one: `header = \"…\"` or `message = true`; declare two credentials for two placements",
            ),
            (false, false) => self.error(
                Code::CredentialPlacement,
                span.clone(),
                "no placement",
                "a credential has no placement".into(),
                match cap {
                    Capability::Request => "add `header = \"Authorization\"` (or the header the API expects)",
                    Capability::Websocket => "add `header = \"Authorization\"` (the handshake) or `message = true` (text messages)",
                },
            ),
            _ => {}
        }
        let placement = match (header, message) {
            (Some((h, _)), None) => Some(CredentialPlacement::Header(h)),
            (None, Some(_)) => Some(CredentialPlacement::Message),
            _ => None,
        };
        let format = match t.get("format") {
            None => Some(credential::SECRET_PLACEHOLDER.to_string()),
            Some(v) => {
                let f = self.string(v, "`format`");
                match (f, &placement) {
                    (Some(f), Some(p)) => match credential::check_format(f, p) {
                        Ok(()) => Some(f.to_string()),
                        Err(e) => {
                            self.error(
                                Code::CredentialFormat,
                                v.span(),
                                "invalid format",
                                e.to_string(),
                                "write the value's shape with one `{secret}`, e.g. `format = \"Bot {secret}\"`",
                            );
                            None
                        }
                    },
                    (Some(f), None) => Some(f.to_string()),
                    (None, _) => None,
                }
            }
        };
        let reason = t.get("reason").and_then(|v| self.reason(v));
        let after = self
            .diags
            .iter()
            .filter(|d| d.severity().is_error())
            .count();
        if after > before {
            return None;
        }
        let (name, name_span) = name?;
        Some((
            Credential {
                name,
                placement: placement?,
                format: format?,
                reason,
            },
            name_span,
        ))
    }

    /// A credential name (a declaration's `name` value).
    fn credential_name(&mut self, v: &Sv<'_>) -> Option<(String, Range<usize>)> {
        let s = self.string(v, "`name`")?;
        if !credential::is_valid_name(s) {
            self.error(
                Code::CredentialName,
                v.span(),
                "invalid credential name",
                format!(
                    "credential name {} does not match [a-z0-9][a-z0-9-]{{0,63}}",
                    quote(s)
                ),
                &plugin_name_help(s),
            );
            return None;
        }
        Some((s.to_string(), v.span()))
    }

    /// A grant entry's `credentials = { name = "secret/ref" }` (docs/spec.md §9.2).
    fn credential_bindings(
        &mut self,
        v: &Sv<'_>,
        origin: &mut Origin,
    ) -> Option<BTreeMap<String, SecretRef>> {
        let DeValue::Table(t) = v.get_ref() else {
            self.wrong_type(
                v,
                "`credentials`",
                "a table of name = \"secret/ref\"",
                "write `credentials = { bot-token = \"discord/bot\" }`",
            );
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (i, (k, val)) in t.iter().enumerate() {
            let name: &str = k.get_ref();
            if i == credential::MAX_CREDENTIALS_PER_TARGET {
                self.error(
                    Code::TooMany,
                    k.span(),
                    "one too many",
                    format!(
                        "{} credential bindings; at most {} per entry",
                        t.len(),
                        credential::MAX_CREDENTIALS_PER_TARGET
                    ),
                    "bind only the credentials the manifest declares for this target",
                );
                return None;
            }
            if !credential::is_valid_name(name) {
                ok = false;
                self.error(
                    Code::CredentialName,
                    k.span(),
                    "invalid credential name",
                    format!(
                        "credential name {} does not match [a-z0-9][a-z0-9-]{{0,63}}",
                        quote(name)
                    ),
                    &plugin_name_help(name),
                );
                continue;
            }
            let Some(r) = self.string(val, &format!("credential {}", quote(name))) else {
                ok = false;
                continue;
            };
            match SecretRef::parse(r) {
                Ok(r) => {
                    origin.credential_keys.push((name.to_string(), k.span()));
                    out.insert(name.to_string(), r);
                }
                Err(e) => {
                    ok = false;
                    // Never echo the text: a malformed reference may be a
                    // pasted secret value.
                    self.error(
                        Code::SecretRef,
                        val.span(),
                        "not a secret reference",
                        format!("the binding of credential {} is not a secret reference: {e}", quote(name)),
                        "bind a reference to a secret in the host's store, never the value itself, e.g. `discord/bot`",
                    );
                }
            }
        }
        ok.then_some(out)
    }

    fn reason(&mut self, v: &Sv<'_>) -> Option<String> {
        let s = self.string(v, "`reason`")?;
        if let Some(msg) = reason_problem(s) {
            self.error(
                Code::Reason,
                v.span(),
                "invalid reason",
                msg,
                "write at most 200 characters of plain printable text on one line",
            );
            return None;
        }
        Some(s.to_string())
    }
}

/// The error for a credential on a target that cannot carry one
/// (docs/spec.md §9.1); `verb` is `declared` (manifest) or `bound` (grant).
pub(crate) fn credential_target_diagnostic(
    p: credential::TargetProblem,
    perm: &crate::permission::Permission,
    span: Range<usize>,
    verb: &str,
) -> Diagnostic {
    use credential::TargetProblem;
    let target = perm.target.to_string();
    let (code, label, msg, help) = match p {
        TargetProblem::Broad => (
            Code::CredentialBroadTarget,
            "broad target",
            format!(
                "a credential cannot be {verb} on broad target {} ({})",
                quote(&target),
                perm.broad_reason().unwrap_or_else(|| "broad".into())
            ),
            "a secret goes only to hosts a reviewer can name: narrow the target to exact hosts, or drop the credential".to_string(),
        ),
        TargetProblem::Plaintext => {
            let tls = match perm.target.scheme {
                crate::capability::Scheme::Ws => "wss",
                _ => "https",
            };
            let fixed = format!("{tls}{}", &target[perm.target.scheme.as_str().len()..]);
            (
                Code::CredentialPlaintextTarget,
                "plaintext",
                format!(
                    "a credential cannot be {verb} on plaintext target {}",
                    quote(&target)
                ),
                format!("a secret travels over TLS only (plaintext is allowed to loopback): did you mean `{fixed}`?"),
            )
        }
        TargetProblem::AnyPort => (
            Code::CredentialAnyPortTarget,
            "any port",
            format!(
                "a credential cannot be {verb} on target {} with port `*`",
                quote(&target)
            ),
            "any service on the host could receive the secret: name the port (or drop `:*` for the scheme's default)".to_string(),
        ),
    };
    Diagnostic::new(code, msg)
        .with_label(span, label)
        .with_help(help)
}

enum Entry {
    Requested(Requested),
    Granted(GrantEntry),
}

/// What is wrong with a `reason`, if anything.
pub fn reason_problem(s: &str) -> Option<String> {
    let n = s.chars().count();
    if n > MAX_REASON_CHARS {
        return Some(format!(
            "reason is {n} characters; the limit is {MAX_REASON_CHARS}"
        ));
    }
    if let Some(c) = s.chars().find(|c| {
        c.is_control()
            || crate::redact::is_bidi_control(*c)
            || matches!(
                c,
                '\u{200B}'..='\u{200D}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
            )
    }) {
        let what = if c == '\n' || c == '\r' {
            "a newline"
        } else if crate::redact::is_bidi_control(c) {
            "a bidi control character"
        } else {
            "a control character"
        };
        return Some(format!("reason contains {what} (U+{:04X})", c as u32));
    }
    None
}

/// Parses a CIDR block or a bare IP address (a /32 or /128).
pub fn parse_network(s: &str) -> Option<IpNet> {
    if s.len() > 64 {
        return None;
    }
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n);
    }
    s.parse::<std::net::IpAddr>().ok().map(IpNet::from)
}

/// `[a-z0-9][a-z0-9-]{0,63}`.
pub fn is_valid_plugin_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn plugin_name_help(s: &str) -> String {
    let fixed: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_start_matches('-')
        .chars()
        .take(64)
        .collect();
    if is_valid_plugin_name(&fixed) {
        format!("use lowercase letters, digits and `-`, starting with a letter or digit: did you mean `{fixed}`?")
    } else {
        "use lowercase letters, digits and `-`, starting with a letter or digit, at most 64 characters".into()
    }
}

/// `sha256:` followed by 64 lowercase hex digits.
pub fn is_valid_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The closest allowed key by edit distance, if close enough.
fn suggest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    allowed
        .iter()
        .map(|a| (levenshtein(&key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min()
        .map(|(_, a)| a)
}

/// Edit distance in chars; only the first 64 chars of `a` (the user's key) count.
fn levenshtein(a: &str, b: &str) -> usize {
    let a: String = a.chars().take(64).collect();
    strsim::levenshtein(&a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("methds", &["url", "methods"]), Some("methods"));
        assert_eq!(suggest("zzzzzz", &["url", "methods"]), None);
    }

    #[test]
    fn names_and_digests() {
        assert!(is_valid_plugin_name("discord-bridge"));
        assert!(!is_valid_plugin_name("-x"));
        assert!(!is_valid_plugin_name("Discord"));
        assert!(!is_valid_plugin_name(&"a".repeat(65)));
        assert!(is_valid_digest(&format!("sha256:{}", "0".repeat(64))));
        assert!(!is_valid_digest(&format!("sha256:{}", "A".repeat(64))));
    }

    #[test]
    fn reasons() {
        assert!(reason_problem("Post replies").is_none());
        assert!(reason_problem("a\nb").is_some());
        assert!(reason_problem("a\u{202e}b").is_some());
        assert!(reason_problem(&"x".repeat(201)).is_some());
        assert!(reason_problem(&"é".repeat(200)).is_none());
    }
}
