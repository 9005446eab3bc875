//! Diagnostics: the one home of the diagnostic codes (`netgrant::<area>::<name>`)
//! and the [`Diagnostic`] value every check produces.
//!
//! Problems are collected, never thrown: parsing and compiling return every
//! diagnostic they found, sorted by position, so a user fixes a file in one go.

use miette::{LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Fatal everywhere: no policy is produced.
    Error,
    /// An error that drops one grant entry: `check` fails, while `compile` and
    /// the authorizer keep the rest of the policy (docs/spec.md §3.3).
    EntryError,
    /// Worth a look; does not fail `check` (unless promoted with `--deny`).
    Warning,
    /// Informational: reported so a reviewer sees it, never a problem by itself.
    Note,
}

impl Severity {
    /// `error`, `entry_error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::EntryError => "entry_error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }

    /// Errors of both kinds fail `check`.
    pub fn is_error(self) -> bool {
        matches!(self, Severity::Error | Severity::EntryError)
    }
}

macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $code:literal, $sev:ident, $summary:literal; )*) => {
        /// Every diagnostic code netgrant emits. The string form
        /// (`netgrant::<area>::<name>`) is a stable interface.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Code {
            /// All codes, in documentation order.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The stable `netgrant::<area>::<name>` spelling.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            /// The severity this code is reported with unless a lint level
            /// overrides it (only lints and warnings can be promoted or allowed).
            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$sev, )* }
            }

            /// A one-line description for docs and SARIF rule metadata.
            pub fn summary(self) -> &'static str {
                match self { $( Code::$variant => $summary, )* }
            }
        }
    };
}

codes! {
    /// The file could not be read.
    IoRead = "netgrant::io::read", Error, "the file could not be read";
    /// The file is larger than 1 MiB.
    FileTooLarge = "netgrant::io::too_large", Error, "the file is larger than 1 MiB";
    /// The file is not valid UTF-8.
    NotUtf8 = "netgrant::io::not_utf8", Error, "the file is not valid UTF-8";
    /// TOML syntax error.
    TomlSyntax = "netgrant::toml::syntax", Error, "the file is not valid TOML";
    /// A key the schema does not know (typos must not silently drop a permission).
    UnknownKey = "netgrant::schema::unknown_key", Error, "a key the schema does not know";
    /// A required key is missing.
    MissingKey = "netgrant::schema::missing_key", Error, "a required key is missing";
    /// A value has the wrong TOML type.
    WrongType = "netgrant::schema::wrong_type", Error, "a value has the wrong type";
    /// A count limit is exceeded (targets, headers, subprotocols).
    TooMany = "netgrant::schema::too_many", Error, "too many targets, headers or subprotocols";
    /// The plugin name does not match `[a-z0-9][a-z0-9-]{0,63}`.
    PluginName = "netgrant::manifest::plugin_name", Error, "the plugin name does not match [a-z0-9][a-z0-9-]{0,63}";
    /// The plugin version is not semver.
    PluginVersion = "netgrant::manifest::plugin_version", Error, "the plugin version is not a semantic version";
    /// A `reason` is too long or contains control, newline or bidi characters.
    Reason = "netgrant::manifest::reason", Error, "a reason is longer than 200 characters or contains control, newline or bidi characters";
    /// The same target is requested twice in one capability.
    DuplicateTarget = "netgrant::manifest::duplicate_target", Error, "the same target is requested twice";
    /// A manifest requests nothing.
    NoTargets = "netgrant::manifest::no_targets", Warning, "the manifest requests no network target";
    /// A target is not `scheme://host[:port][/path-prefix]`.
    TargetSyntax = "netgrant::target::syntax", Error, "a target is not scheme://host[:port][/path-prefix]";
    /// A target URL is longer than 2048 bytes.
    TargetTooLong = "netgrant::target::too_long", Error, "a target is longer than 2048 bytes";
    /// A target scheme is not `http`, `https`, `ws` or `wss`.
    TargetScheme = "netgrant::target::scheme", Error, "a target scheme is not http, https, ws or wss";
    /// A target's scheme belongs to the other capability.
    WrongCapability = "netgrant::target::wrong_capability", Error, "a target's scheme belongs to the other capability";
    /// A target carries userinfo (`user:pass@`).
    Userinfo = "netgrant::target::userinfo", Error, "a target carries userinfo (credentials)";
    /// A target carries a query or fragment.
    QueryOrFragment = "netgrant::target::query_or_fragment", Error, "a target carries a query or a fragment";
    /// A malformed wildcard (`a*.example.com`, `*.*.x`, `*.1.2.3.4`).
    Wildcard = "netgrant::target::wildcard", Error, "a malformed wildcard host";
    /// A host that is not a valid domain or IP literal.
    Host = "netgrant::target::host", Error, "a host is not a valid domain name or IP literal";
    /// A port that is not 1–65535 or `*`.
    Port = "netgrant::target::port", Error, "a port is not 1-65535 or *";
    /// A path prefix that is not allowed (query, glob, encoded separators, …).
    Path = "netgrant::target::path", Error, "a path prefix is malformed or ambiguous";
    /// A never-reachable address (unspecified, multicast, broadcast, cloud metadata) is declared.
    ForbiddenAddress = "netgrant::target::forbidden_address", Error, "a never-reachable address is declared";
    /// A request target without `methods`.
    MissingMethods = "netgrant::method::missing", Error, "a request target has no methods";
    /// `CONNECT` or `TRACE`.
    ForbiddenMethod = "netgrant::method::forbidden", Error, "CONNECT and TRACE are never allowed";
    /// A method netgrant does not know.
    UnknownMethod = "netgrant::method::unknown", Error, "a method is not GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or *";
    /// A header name that is never allowed or looks like a credential.
    ForbiddenHeader = "netgrant::header::forbidden", Error, "a declared header is never allowed or looks like a credential";
    /// A header name that is not an HTTP token.
    InvalidHeader = "netgrant::header::invalid", Error, "a declared header name is not an HTTP token";
    /// A declared header is always allowed anyway.
    RedundantHeader = "netgrant::header::redundant", Warning, "a declared header is always allowed anyway";
    /// A subprotocol that is not an HTTP token.
    InvalidSubprotocol = "netgrant::subprotocol::invalid", Error, "a subprotocol is not an HTTP token";
    /// A `networks` value that is not a CIDR or IP address.
    InvalidNetwork = "netgrant::network::invalid", Error, "a network is not a CIDR block or IP address";
    /// A network that lies entirely in never-reachable ranges.
    ForbiddenNetwork = "netgrant::network::forbidden", Error, "a network lies entirely in never-reachable ranges";
    /// A credential name that does not match `[a-z0-9][a-z0-9-]{0,63}`.
    CredentialName = "netgrant::credential::name", Error, "a credential name does not match [a-z0-9][a-z0-9-]{0,63}";
    /// The same credential name twice on one target.
    CredentialDuplicateName = "netgrant::credential::duplicate_name", Error, "the same credential name is declared twice on one target";
    /// A credential without exactly one placement (`header` or `message = true`), or `message` on a request target.
    CredentialPlacement = "netgrant::credential::placement", Error, "a credential needs exactly one placement: header = \"…\", or message = true on a websocket target";
    /// A credential header that is never allowed, always allowed, not a token, or also in `headers`.
    CredentialHeader = "netgrant::credential::header", Error, "a credential's header is never allowed, always allowed, not a token, or also declared in headers";
    /// A credential `format` without exactly one `{secret}`, or with characters its placement cannot hold.
    CredentialFormat = "netgrant::credential::format", Error, "a credential format lacks exactly one {secret} or holds characters its placement cannot carry";
    /// A credential on a broad target.
    CredentialBroadTarget = "netgrant::credential::broad_target", Error, "a credential is declared or bound on a broad target";
    /// A credential on plaintext `http`/`ws` to a host that is not loopback.
    CredentialPlaintextTarget = "netgrant::credential::plaintext_target", Error, "a credential is declared or bound on plaintext http/ws to a host that is not loopback";
    /// A credential on a target with port `*`.
    CredentialAnyPortTarget = "netgrant::credential::any_port_target", Error, "a credential is declared or bound on a target with port *";
    /// A SecretRef that does not match `[a-z0-9][a-z0-9._/-]{0,127}` (or holds `://` or whitespace).
    SecretRef = "netgrant::credential::secret_ref", Error, "a secret reference does not match [a-z0-9][a-z0-9._/-]{0,127}";
    /// The grant is for another plugin.
    PluginMismatch = "netgrant::grant::plugin_mismatch", Error, "the grant names another plugin";
    /// `approved_digest` is not `sha256:` and 64 hex digits.
    DigestFormat = "netgrant::grant::digest_format", Error, "approved_digest is not sha256: followed by 64 lowercase hex digits";
    /// The manifest changed since the grant was approved.
    DigestDrift = "netgrant::grant::digest_drift", Warning, "the manifest's requested set changed since the grant was approved";
    /// The same grant entry twice.
    DuplicateGrant = "netgrant::grant::duplicate", Error, "the same target is granted twice";
    /// A grant entry that no request contains (entry-level: dropped, listed under `ignored`).
    NotRequested = "netgrant::grant::not_requested", EntryError, "granted but not requested: no requested target contains this grant entry";
    /// A broad grant entry without `broad = true` (entry-level: dropped, listed under `ignored`).
    BroadNotApproved = "netgrant::grant::broad_not_approved", EntryError, "a broad grant entry lacks broad = true";
    /// A grant entry binds a credential its target does not declare (entry-level: dropped, listed under `ignored`).
    CredentialNotDeclared = "netgrant::grant::credential_not_declared", EntryError, "a grant entry binds a credential the matching manifest target does not declare";
    /// `broad = true` on an entry that is not broad.
    BroadUnneeded = "netgrant::grant::broad_unneeded", Warning, "broad = true on an entry that is not broad";
    /// An IR file that is not valid JSON for the IR schema.
    IrSyntax = "netgrant::ir::syntax", Error, "the IR file is not valid IR JSON";
    /// An IR format version this netgrant does not read.
    IrVersion = "netgrant::ir::version", Error, "the IR format version is not supported";
    /// An IR whose recorded values disagree with recomputation.
    IrTampered = "netgrant::ir::tampered", Error, "the IR disagrees with its own recomputation (hand-edited?)";
    /// `netgrant list` stopped its bounded walk (too many plugins or directory entries).
    ListLimit = "netgrant::list::limit", Error, "netgrant list stopped at its walk limit (plugins or directory entries)";
    /// `netgrant list --grants` found two grants for one plugin.
    ListAmbiguousGrant = "netgrant::list::ambiguous_grant", Error, "two grant files match one plugin under --grants";
    /// A requested target contained in another requested target (lint).
    RedundantTarget = "netgrant::lint::redundant_target", Warning, "a requested target is contained in another requested target";
    /// Two overlapping requested targets give different reasons (lint).
    OverlappingReasons = "netgrant::lint::overlapping_reasons", Warning, "two overlapping requested targets give different reasons";
    /// A grant entry narrower than the request it approves (lint, a note).
    GrantNarrows = "netgrant::lint::grant_narrows", Note, "a grant entry is narrower than the request it approves";
    /// A loopback target without a reason (lint).
    LoopbackWithoutReason = "netgrant::lint::loopback_without_reason", Warning, "a loopback target has no reason";
    /// `ws://` or `http://` to a host that is not loopback (lint).
    Plaintext = "netgrant::lint::plaintext", Warning, "plaintext ws:// or http:// to a host that is not loopback";
    /// A granted entry whose request declares a credential the grant does
    /// not bind (lint).
    CredentialNotBound = "netgrant::lint::credential_not_bound", Warning, "a granted entry does not bind a credential its request declares";
}

impl Code {
    /// Whether this code is a lint (`netgrant::lint::*`): advice about a valid
    /// file, which `check --deny`/`--allow` can promote or silence.
    pub fn is_lint(self) -> bool {
        self.as_str().starts_with("netgrant::lint::")
    }

    /// Finds a code by its full spelling (`netgrant::lint::plaintext`), its
    /// `area::name`, or its bare name when that is unique.
    pub fn lookup(name: &str) -> Option<Code> {
        let name = name.trim();
        let full = Code::ALL.iter().find(|c| c.as_str() == name);
        if full.is_some() {
            return full.copied();
        }
        let tail = |c: &Code, n: usize| {
            c.as_str()
                .split("::")
                .skip(3 - n)
                .collect::<Vec<_>>()
                .join("::")
        };
        let two: Vec<Code> = Code::ALL
            .iter()
            .copied()
            .filter(|c| tail(c, 2) == name)
            .collect();
        if two.len() == 1 {
            return Some(two[0]);
        }
        let one: Vec<Code> = Code::ALL
            .iter()
            .copied()
            .filter(|c| tail(c, 1) == name)
            .collect();
        (one.len() == 1).then(|| one[0])
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A labelled byte range in the source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Byte range in the source.
    pub span: Range<usize>,
    /// What the label says.
    pub text: String,
}

/// One problem, with a code, labelled spans into the source, and a help line.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// The stable code.
    pub code: Code,
    /// A lowercase sentence. Plugin-written text in it is already escaped.
    pub message: String,
    /// What to do about it (a fix-it where one exists).
    pub help: Option<String>,
    /// Labelled spans; the first is the primary one.
    pub labels: Vec<Label>,
    /// Grouped diagnostics (e.g. the first occurrence of a duplicate).
    pub related: Vec<Diagnostic>,
    /// A lint level that overrides the code's severity (`check --deny`).
    level: Option<Severity>,
    source: Option<Arc<NamedSource<String>>>,
}

impl Diagnostic {
    /// A diagnostic with a message and no location.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            help: None,
            labels: Vec::new(),
            related: Vec::new(),
            level: None,
            source: None,
        }
    }

    /// Overrides the severity (a promoted lint or warning). Only warnings and
    /// notes are ever overridden, so a real error can never be demoted.
    pub fn with_severity(mut self, level: Severity) -> Self {
        if !self.code.severity().is_error() {
            self.level = Some(level);
        }
        self
    }

    /// Whether a lint level promoted this diagnostic to an error.
    pub fn is_promoted(&self) -> bool {
        self.level.is_some_and(|l| l.is_error())
    }

    /// Adds a labelled span.
    pub fn with_label(mut self, span: Range<usize>, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a related diagnostic.
    pub fn with_related(mut self, related: Diagnostic) -> Self {
        self.related.push(related);
        self
    }

    /// The severity: the code's, unless a lint level overrides it.
    pub fn severity(&self) -> Severity {
        self.level.unwrap_or(self.code.severity())
    }

    /// The primary span, if any.
    pub fn primary_span(&self) -> Option<Range<usize>> {
        self.labels.first().map(|l| l.span.clone())
    }

    /// Attaches the source file (name and text) so the diagnostic renders with
    /// a snippet. Control and bidi characters in the text are replaced by
    /// same-width placeholders first, so a snippet can never carry terminal
    /// escapes or reorder what a reviewer reads, and spans stay valid.
    pub fn with_source(mut self, source: Arc<NamedSource<String>>) -> Self {
        for r in &mut self.related {
            *r = r.clone().with_source(source.clone());
        }
        // Keep every label inside the text and on char boundaries, whatever
        // the producer computed (e.g. serde_json reports byte columns that
        // can land inside a multi-byte character). The placeholders of
        // `display_safe_source` keep the original boundaries.
        let text = source.inner();
        for l in &mut self.labels {
            let end = floor_char_boundary(text, l.span.end.min(text.len()));
            let start = floor_char_boundary(text, l.span.start.min(end));
            l.span = start..end;
        }
        self.source = Some(source);
        self
    }

    /// The attached file name, if any.
    pub fn file_name(&self) -> Option<&str> {
        self.source.as_ref().map(|s| s.name())
    }

    /// The attached source text, if any.
    pub fn source_text(&self) -> Option<&str> {
        self.source.as_ref().map(|s| s.inner().as_str())
    }

    /// 1-based line and column (in characters) of the primary span's start.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let text = self.source_text()?;
        let span = self.primary_span()?;
        Some(line_col(text, span.start))
    }

    /// 1-based line and column of the primary span's end (exclusive end, as a
    /// position of the last character).
    pub fn end_line_col(&self) -> Option<(usize, usize)> {
        let text = self.source_text()?;
        let span = self.primary_span()?;
        let end = if span.end > span.start {
            span.end - 1
        } else {
            span.end
        };
        Some(line_col(text, end))
    }
}

/// Makes a named source for diagnostics, with control and bidi characters
/// replaced by placeholders of the same UTF-8 length.
pub fn named_source(name: &str, text: &str) -> Arc<NamedSource<String>> {
    Arc::new(NamedSource::new(
        crate::redact::escape_terminal(name),
        display_safe_source(text),
    ))
}

/// The length of the longest prefix of printable ASCII, `\n`, `\t` and
/// `\r\n`. Whole 32-byte blocks are tested without early exit, which the
/// compiler turns into vector instructions; a block that fails is walked
/// byte by byte up to the first byte outside the set (a `\r\n` is stepped
/// over), then blocks resume.
fn plain_prefix_len(bytes: &[u8]) -> usize {
    const BLOCK: usize = 32;
    let plain = |b: u8| (b' '..=b'~').contains(&b) | (b == b'\n') | (b == b'\t');
    let n = bytes.len();
    let mut i = 0;
    loop {
        while i + BLOCK <= n
            && bytes[i..i + BLOCK]
                .iter()
                .fold(true, |all, &b| all & plain(b))
        {
            i += BLOCK;
        }
        match bytes.get(i) {
            None => return n,
            Some(&b) if plain(b) => i += 1,
            Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            Some(_) => return i,
        }
    }
}

/// Replaces characters that could drive a terminal or reorder text with
/// placeholders of equal UTF-8 length, keeping byte offsets valid.
pub fn display_safe_source(text: &str) -> String {
    // Most sources are printable ASCII with `\n`, `\t` or `\r\n` line
    // ends, which stay as they are: copy that prefix in one go and examine
    // only the rest character by character (this runs on every parse,
    // whether or not a diagnostic is ever shown).
    let plain = plain_prefix_len(text.as_bytes());
    let mut out = String::with_capacity(text.len());
    // `plain` is a char boundary: every byte before it is ASCII.
    out.push_str(&text[..plain]);
    let mut chars = text[plain..].chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || c == '\t' {
            out.push(c);
        } else if c == '\r' {
            if chars.peek() == Some(&'\n') {
                out.push('\r');
            } else {
                out.push(' ');
            }
        } else if c.is_control()
            || crate::redact::is_bidi_control(c)
            || matches!(
                c,
                '\u{200B}'..='\u{200D}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
            )
        {
            match c.len_utf8() {
                1 => out.push('?'),
                2 => out.push('¿'),
                3 => out.push('\u{FFFD}'),
                _ => out.push_str("\u{FFFD}?"),
            }
        } else {
            out.push(c);
        }
    }
    debug_assert_eq!(out.len(), text.len());
    out
}

/// 1-based line and character column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity() {
            Severity::Error | Severity::EntryError => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Note => miette::Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        if self.labels.is_empty() {
            return None;
        }
        self.source.as_deref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().enumerate().map(|(i, l)| {
            let span = (l.span.start, l.span.end.saturating_sub(l.span.start));
            if i == 0 {
                LabeledSpan::new_primary_with_span(Some(l.text.clone()), span)
            } else {
                LabeledSpan::new_with_span(Some(l.text.clone()), span)
            }
        })))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|d| d as &dyn miette::Diagnostic),
        ))
    }
}

/// Sorts diagnostics by position (then code) so output is stable.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let ka = a.primary_span().map(|s| (s.start, s.end));
        let kb = b.primary_span().map(|s| (s.start, s.end));
        ka.cmp(&kb)
            .then(a.code.cmp(&b.code))
            .then(a.message.cmp(&b.message))
    });
}

/// Quotes plugin-written text for a diagnostic message: escaped for a terminal
/// and truncated so a hostile value cannot flood output.
pub fn quote(text: &str) -> String {
    const MAX: usize = 80;
    let escaped = crate::redact::escape_terminal(text);
    if escaped.chars().count() <= MAX {
        format!("`{escaped}`")
    } else {
        let head: String = escaped.chars().take(MAX / 2).collect();
        let tail: String = {
            let v: Vec<char> = escaped.chars().collect();
            v[v.len() - MAX / 2..].iter().collect()
        };
        format!("`{head}…{tail}`")
    }
}

/// Renders a diagnostic the way a terminal shows it: unicode, width 80, with
/// or without colour.
#[cfg(feature = "fancy")]
pub fn render(d: &Diagnostic, color: bool) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(80)
        .with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, d).is_err() {
        out = format!("{}: {}\n", d.code, d.message);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            let parts: Vec<&str> = s.split("::").collect();
            assert_eq!(parts.len(), 3, "{s}");
            assert_eq!(parts[0], "netgrant");
            for p in &parts[1..] {
                assert!(
                    p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "{s}"
                );
            }
            assert!(!c.summary().is_empty());
        }
    }

    #[test]
    fn display_safe_source_keeps_offsets() {
        let src = "a = \"\u{1b}[31m\u{202e}x\u{85}\"\r\nb\r";
        let safe = display_safe_source(src);
        assert_eq!(safe.len(), src.len());
        assert!(!safe.contains('\u{1b}'));
        assert!(!safe.contains('\u{202e}'));
        assert!(!safe.contains('\u{85}'));
        assert!(safe.contains("\r\n"));
    }

    /// The character-by-character loop `display_safe_source` used alone
    /// before it copied a plain prefix at once: the reference.
    fn display_safe_source_reference(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\n' || c == '\t' {
                out.push(c);
            } else if c == '\r' {
                out.push(if chars.peek() == Some(&'\n') {
                    '\r'
                } else {
                    ' '
                });
            } else if c.is_control()
                || crate::redact::is_bidi_control(c)
                || matches!(
                    c,
                    '\u{200B}'..='\u{200D}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
                )
            {
                match c.len_utf8() {
                    1 => out.push('?'),
                    2 => out.push('¿'),
                    3 => out.push('\u{FFFD}'),
                    _ => out.push_str("\u{FFFD}?"),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// The plain-prefix copy changes nothing: mostly-ASCII text with
        /// CR, LF, CRLF, tabs, controls, bidi and zero-width characters and
        /// other non-ASCII at random places.
        #[test]
        fn display_safe_source_matches_reference(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => "[ -~]{0,12}",
                    // Runs longer than a block of `plain_prefix_len`.
                    1 => "[ -~\n\t]{32,80}",
                    1 => proptest::sample::select(vec![
                        "\n", "\r", "\r\n", "\t", "\u{1b}", "\u{7f}", "\u{85}", "\u{202e}",
                        "\u{200b}", "\u{feff}", "\u{2028}", "é", "✓", "𝄞", "\u{0}",
                    ]).prop_map(str::to_string),
                ],
                0..24,
            )
        ) {
            let text = parts.concat();
            proptest::prop_assert_eq!(display_safe_source(&text), display_safe_source_reference(&text));
        }
    }

    /// Every position of the first unsafe byte, in and across 32-byte
    /// blocks, after plain text with and without `\r\n`.
    #[test]
    fn plain_prefix_stops_at_the_first_unsafe_byte() {
        for base in ["abc def\tghi\n", "ab\r\ncd\r\n"] {
            let plain: String = base.repeat(20);
            assert_eq!(plain_prefix_len(plain.as_bytes()), plain.len());
            for at in 0..plain.len() {
                // Not inside a `\r\n`: a lone `\r` is unsafe itself.
                if plain.as_bytes()[at] == b'\n' && at > 0 && plain.as_bytes()[at - 1] == b'\r' {
                    continue;
                }
                for bad in ["\u{1b}", "\r", "é", "\u{7f}"] {
                    if bad == "\r" && plain.as_bytes()[at] == b'\n' {
                        continue; // that makes a `\r\n`
                    }
                    let text = format!("{}{bad}{}", &plain[..at], &plain[at..]);
                    assert_eq!(plain_prefix_len(text.as_bytes()), at, "{bad:?} at {at}");
                }
            }
        }
    }

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("ab\ncdé", 5), (2, 3));
        assert_eq!(line_col("ab\ncdéf", 7), (2, 4));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
