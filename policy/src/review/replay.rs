//! Replay: dry-run a policy against recorded traffic, streaming.
//!
//! The input is read line by line from any [`BufRead`] (no file or network
//! access here). A line is either a JSON object
//! (`{"capability":"websocket","url":"…","method":null,"headers":[],"resolved":["…"]}`)
//! or a plain URL (decided with [`ReplayOptions::default_capability`]); the
//! two may be mixed. Blank lines and lines starting with `#` are skipped.
//! A line that cannot be read as a request — bad JSON, an unknown field,
//! invalid UTF-8, longer than [`ReplayOptions::max_line_bytes`] — is counted
//! as `invalid_input` with its line number; replay never stops on one.
//!
//! Memory is bounded whatever the input size: one line buffer of at most
//! `max_line_bytes`, a decision cache of at most `cache_entries` entries and
//! `cache_bytes` bytes (cleared when full), and top-N tables of at most
//! `top_capacity` keys each (the Space-Saving algorithm: when full, the
//! smallest key is evicted and its count inherited, so reported counts are
//! upper bounds with a known error). Recorded traffic repeats, so the cache
//! (keyed on the exact line bytes) turns most lines into one hash lookup.

use crate::authorize::{Authorizer, FastMap, Request};
use crate::capability::Capability;
use crate::decision::{Decision, DecisionCode, DenyCode};
use crate::redact;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::{self, BufRead, Write};
use std::net::IpAddr;

/// Limits and defaults of a replay.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The capability of plain-URL lines and of JSON lines without one.
    pub default_capability: Option<Capability>,
    /// Longest line, in bytes (without the newline); longer lines are
    /// counted as invalid and skipped.
    pub max_line_bytes: usize,
    /// Most cached decisions.
    pub cache_entries: usize,
    /// Most bytes held by cached decisions (keys, targets, rendered records).
    pub cache_bytes: usize,
    /// Most keys each top-N table tracks.
    pub top_capacity: usize,
    /// Rows each top-N table reports.
    pub top_shown: usize,
    /// Invalid lines reported with their line number.
    pub invalid_shown: usize,
    /// Whether to render one JSON record per line (for `--format json`).
    pub records: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            default_capability: None,
            max_line_bytes: 64 * 1024,
            cache_entries: 16 * 1024,
            cache_bytes: 8 * 1024 * 1024,
            top_capacity: 1024,
            top_shown: 10,
            invalid_shown: 10,
            records: false,
        }
    }
}

/// Number of outcome slots: `allowed`, then every deny code.
const SLOTS: usize = 1 + DenyCode::ALL.len();

fn slot(d: &Decision) -> u8 {
    code_slot(d.code)
}

/// The outcome slot of a code: 0 for `allowed`, then the deny codes in order.
fn code_slot(code: DecisionCode) -> u8 {
    match code {
        DecisionCode::Allowed => 0,
        DecisionCode::Denied(c) => {
            1 + DenyCode::ALL.iter().position(|x| *x == c).unwrap_or(0) as u8
        }
    }
}

fn slot_code(s: u8) -> &'static str {
    match s {
        0 => "allowed",
        n => DenyCode::ALL[(n - 1) as usize].as_str(),
    }
}

/// The code for lines that are not requests.
pub const INVALID_INPUT: &str = "invalid_input";

// ---------------------------------------------------------------------------
// Bounded top-N (Space-Saving)
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Counted {
    count: u64,
    error: u64,
    example: Box<str>,
}

/// A count map that never holds more than `cap` keys: a new key arriving
/// when full replaces the smallest one and starts from its count (so counts
/// are upper bounds, over by at most `error`).
#[derive(Debug)]
struct TopK<K> {
    map: FastMap<K, Counted>,
    cap: usize,
    evictions: u64,
}

impl<K: std::hash::Hash + Eq + Ord + Clone> TopK<K> {
    fn new(cap: usize) -> Self {
        TopK {
            map: FastMap::default(),
            cap: cap.max(1),
            evictions: 0,
        }
    }

    fn add(&mut self, key: K, weight: u64, example: &str) {
        if let Some(c) = self.map.get_mut(&key) {
            c.count += weight;
            return;
        }
        let mut floor = 0;
        if self.map.len() >= self.cap {
            let min = self
                .map
                .iter()
                .min_by(|a, b| a.1.count.cmp(&b.1.count).then_with(|| b.0.cmp(a.0)))
                .map(|(k, c)| (k.clone(), c.count));
            if let Some((k, c)) = min {
                self.map.remove(&k);
                floor = c;
                self.evictions += 1;
            }
        }
        self.map.insert(
            key,
            Counted {
                count: floor + weight,
                error: floor,
                example: example.into(),
            },
        );
    }

    /// The `n` largest, count descending then key ascending.
    fn top(&self, n: usize) -> Vec<(&K, &Counted)> {
        let mut v: Vec<(&K, &Counted)> = self.map.iter().collect();
        v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

// ---------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------

/// How many lines ended with one code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CodeCount {
    /// `allowed`, a deny code, or `invalid_input`.
    pub code: String,
    /// Lines.
    pub count: u64,
}

/// A denied destination and how often it was denied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopTarget {
    /// Lines (an upper bound when `error` > 0).
    pub count: u64,
    /// How much `count` may overstate (0: exact).
    pub error: u64,
    /// The deny code.
    pub code: String,
    /// `scheme://host[:port]` (no path, query or userinfo).
    pub target: String,
    /// The first URL seen for it, redacted.
    pub example: String,
}

/// A line that could not be read as a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvalidLine {
    /// 1-based line number.
    pub line: u64,
    /// Why.
    pub message: String,
}

/// Old → new for one pair of codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The code under the replayed policy.
    pub from: String,
    /// The code under the `against` policy.
    pub to: String,
    /// Lines.
    pub count: u64,
}

/// A destination whose decision changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopChange {
    /// Lines (an upper bound when `error` > 0).
    pub count: u64,
    /// How much `count` may overstate.
    pub error: u64,
    /// Old code.
    pub from: String,
    /// New code.
    pub to: String,
    /// `scheme://host[:port]`.
    pub target: String,
    /// The first URL seen for it, redacted.
    pub example: String,
}

/// What changes under the `against` policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Lines allowed by the `against` policy.
    pub allowed: u64,
    /// Lines denied by the `against` policy.
    pub denied: u64,
    /// Lines whose code differs.
    pub changed: u64,
    /// Exact counts per (old, new) pair, most frequent first.
    pub transitions: Vec<Transition>,
    /// The destinations that change most.
    pub top_changed: Vec<TopChange>,
    /// Distinct changed destinations tracked beyond the ones listed.
    pub more_changed: u64,
    /// Whether the table dropped keys (counts are then upper bounds).
    pub approximate: bool,
}

/// Replayed decisions compared with the decisions audit records carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedChanges {
    /// Lines that carried a recorded decision.
    pub lines: u64,
    /// Lines whose replayed code differs from the recorded one.
    pub changed: u64,
    /// Exact counts per (recorded, replayed) pair that differ, most
    /// frequent first.
    pub transitions: Vec<Transition>,
}

/// Cache behaviour, for judging throughput.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Lines answered from the cache.
    pub hits: u64,
    /// Lines decided afresh.
    pub misses: u64,
    /// Times the cache was full and cleared.
    pub clears: u64,
}

/// The result of a replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Lines read (skipped and invalid ones included).
    pub lines: u64,
    /// Blank and `#` comment lines, and audit records of finished
    /// connections (not decisions).
    pub skipped: u64,
    /// Lines decided.
    pub decided: u64,
    /// Allowed lines.
    pub allowed: u64,
    /// Denied lines.
    pub denied: u64,
    /// Lines that are not requests (`invalid_input`).
    pub invalid: u64,
    /// Lines per code: `allowed`, deny codes in check order, `invalid_input`
    /// (only codes that occurred).
    pub codes: Vec<CodeCount>,
    /// The most denied destinations.
    pub top_denied: Vec<TopTarget>,
    /// Distinct denied destinations tracked beyond the ones listed.
    pub more_denied: u64,
    /// Whether the denied table dropped keys (counts are then upper bounds).
    pub top_denied_approximate: bool,
    /// The first invalid lines.
    pub invalid_lines: Vec<InvalidLine>,
    /// With an `against` policy: what changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against: Option<Changes>,
    /// When the log holds audit decision records: how the replayed
    /// decisions compare with the recorded ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<RecordedChanges>,
    /// Cache behaviour.
    pub cache: CacheStats,
}

// ---------------------------------------------------------------------------
// Lines
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(untagged)]
enum LogHeader {
    Line(String),
    Pair(String, String),
}

/// One JSON line: a request, or an audit record of the runtime
/// (docs/spec.md §11). Unknown fields are errors: a misspelt `headers` would
/// otherwise replay a request without its headers, and allow what the real
/// one would not. The audit fields are listed one by one for the same
/// reason; those that do not bear on the decision are read and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogLine<'a> {
    /// `decision` or `finished` (audit records only).
    #[serde(default, borrow)]
    record: Option<Cow<'a, str>>,
    /// Header names of an audit record (values are never recorded; each is
    /// replayed with an empty value).
    #[serde(default)]
    header_names: Vec<String>,
    /// The recorded outcome of an audit decision record.
    #[serde(default, borrow)]
    decision: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
    // Audit fields that do not bear on the decision (those of finished
    // records included): read, so a misspelt one is still an error.
    #[serde(default, rename = "time")]
    _time: Option<IgnoredAny>,
    #[serde(default, rename = "plugin")]
    _plugin: Option<IgnoredAny>,
    #[serde(default, rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(default, rename = "rule")]
    _rule: Option<IgnoredAny>,
    #[serde(default, rename = "digest")]
    _digest: Option<IgnoredAny>,
    #[serde(default, rename = "outcome")]
    _outcome: Option<IgnoredAny>,
    #[serde(default, rename = "close_code")]
    _close_code: Option<IgnoredAny>,
    #[serde(default, rename = "status")]
    _status: Option<IgnoredAny>,
    #[serde(default, rename = "bytes_in")]
    _bytes_in: Option<IgnoredAny>,
    #[serde(default, rename = "bytes_out")]
    _bytes_out: Option<IgnoredAny>,
    #[serde(default, rename = "messages_in")]
    _messages_in: Option<IgnoredAny>,
    #[serde(default, rename = "messages_out")]
    _messages_out: Option<IgnoredAny>,
    #[serde(default, rename = "duration_ms")]
    _duration_ms: Option<IgnoredAny>,
    #[serde(default, borrow)]
    capability: Option<Cow<'a, str>>,
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    headers: Vec<LogHeader>,
    #[serde(default)]
    subprotocols: Vec<String>,
    #[serde(default)]
    resolved: Option<Vec<String>>,
    /// Names of the credentials asked for (docs/spec.md §9.3): a request
    /// line's, or an audit record's (names only, never values). Replayed,
    /// so a recorded `credential_not_granted` stays a deny.
    #[serde(default)]
    credentials: Option<Vec<String>>,
}

/// A request read from one line (the URL and method borrowed from it when
/// they need no unescaping).
struct Parsed<'a> {
    capability: Capability,
    url: Cow<'a, str>,
    method: Option<Cow<'a, str>>,
    headers: Vec<(String, String)>,
    subprotocols: Vec<String>,
    answers: Option<Vec<IpAddr>>,
    /// Credential names asked for.
    credentials: Vec<String>,
    /// The slot of the decision an audit record carries.
    recorded: Option<u8>,
}

/// A line read: a request to decide, or an audit record of a finished
/// connection (not a decision; skipped).
enum Line<'a> {
    Request(Parsed<'a>),
    Finished,
}

impl Parsed<'_> {
    fn request(&self) -> Request<'_> {
        Request {
            capability: self.capability,
            url: &self.url,
            method: self.method.as_deref(),
            headers: &self.headers,
            subprotocols: &self.subprotocols,
            credentials: &self.credentials,
        }
    }
}

/// `url` with a placeholder user name (`redacted`) in its authority, as the
/// `url` crate serializes it; unchanged if it does not parse or cannot have
/// userinfo: it then replays as whatever it is, and a difference shows.
fn with_placeholder_userinfo(url: Cow<'_, str>) -> Cow<'_, str> {
    let Ok(mut u) = url::Url::parse(&url) else {
        return url;
    };
    match u.set_username("redacted") {
        Ok(()) => Cow::Owned(u.into()),
        Err(()) => url,
    }
}

/// Reads one line as a request (or a finished-connection audit record).
fn parse_line(text: &str, default: Option<Capability>) -> Result<Line<'_>, String> {
    let no_capability =
        || "no capability: give --capability, or write JSON lines with \"capability\"".to_string();
    if !text.starts_with('{') {
        return Ok(Line::Request(Parsed {
            capability: default.ok_or_else(no_capability)?,
            url: Cow::Borrowed(text),
            method: None,
            headers: Vec::new(),
            subprotocols: Vec::new(),
            answers: None,
            credentials: Vec::new(),
            recorded: None,
        }));
    }
    let l: LogLine = serde_json::from_str(text).map_err(|e| {
        let m = e.to_string();
        // serde lists every field, audit ones included; name the request's.
        match m
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
        {
            Some((field, _)) => format!(
                "not a request record: unknown field {} (a request has `capability`, `url`, \
                 `method`, `headers`, `subprotocols`, `resolved`, `credentials`; an audit record \
                 also its own, \
                 docs/spec.md §11)",
                crate::diagnostics::quote(field)
            ),
            None => format!("not a request record: {m}"),
        }
    })?;
    // A recorded `credentials_in_url` says the URL had userinfo, which
    // redaction removed from the record: a placeholder is put back,
    // or the line would replay as allowed, a false change. Every check
    // before that one is independent of the policy (docs/spec.md §5.3), so
    // no other record can have lost userinfo that mattered (decision 198).
    let had_userinfo = l.record.as_deref() == Some("decision")
        && l.code.as_deref() == Some(DenyCode::CredentialsInUrl.as_str());
    let recorded = match l.record.as_deref() {
        None => {
            let audit_only = [
                &l._time,
                &l._plugin,
                &l._id,
                &l._rule,
                &l._digest,
                &l._outcome,
                &l._close_code,
                &l._status,
                &l._bytes_in,
                &l._bytes_out,
                &l._messages_in,
                &l._messages_out,
                &l._duration_ms,
            ];
            if l.decision.is_some()
                || l.code.is_some()
                || !l.header_names.is_empty()
                || audit_only.iter().any(|f| f.is_some())
            {
                return Err("a line with audit fields needs \"record\": \"decision\" \
                            or \"finished\""
                    .into());
            }
            None
        }
        Some("finished") => return Ok(Line::Finished),
        Some("decision") => {
            // A record of a credential deny without the names asked for
            // (written before audit records carried them) cannot be
            // replayed: without them it would replay as allowed, a false
            // change.
            if l.code.as_deref() == Some(DenyCode::CredentialNotGranted.as_str())
                && l.credentials.is_none()
            {
                return Err(
                    "a `credential_not_granted` record needs `credentials` (the names \
                            asked for) to be replayed"
                        .into(),
                );
            }
            Some(recorded_slot(l.decision.as_deref(), l.code.as_deref())?)
        }
        Some(other) => {
            return Err(format!(
                "record {} is not `decision` or `finished`",
                crate::diagnostics::quote(other)
            ))
        }
    };
    let capability = match &l.capability {
        None => default.ok_or_else(no_capability)?,
        Some(c) => Capability::parse(c).ok_or_else(|| {
            format!(
                "capability {} is not `websocket` or `request`",
                crate::diagnostics::quote(c)
            )
        })?,
    };
    let mut headers = Vec::with_capacity(l.headers.len() + l.header_names.len());
    headers.extend(l.header_names.into_iter().map(|n| (n, String::new())));
    for h in l.headers {
        headers.push(match h {
            LogHeader::Pair(k, v) => (k, v),
            LogHeader::Line(s) => match s.split_once(':') {
                Some((k, v)) if !k.is_empty() => {
                    (k.to_string(), v.trim_start_matches([' ', '\t']).to_string())
                }
                _ => {
                    return Err(format!(
                        "header {} is not \"Name: value\" or [name, value]",
                        crate::diagnostics::quote(&s)
                    ))
                }
            },
        });
    }
    let answers = match l.resolved {
        None => None,
        Some(v) => Some(
            v.iter()
                .map(|a| {
                    a.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse()
                        .map_err(|_| {
                            format!(
                                "resolved address {} is not an IP address",
                                crate::diagnostics::quote(a)
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let url = match had_userinfo {
        true => with_placeholder_userinfo(l.url),
        false => l.url,
    };
    Ok(Line::Request(Parsed {
        capability,
        url,
        method: l.method,
        headers,
        subprotocols: l.subprotocols,
        answers,
        credentials: l.credentials.unwrap_or_default(),
        recorded,
    }))
}

/// The slot of an audit record's `decision` and `code`, which must agree.
fn recorded_slot(decision: Option<&str>, code: Option<&str>) -> Result<u8, String> {
    let (Some(decision), Some(code)) = (decision, code) else {
        return Err("an audit decision record needs `decision` and `code`".into());
    };
    let slot = match DecisionCode::parse(code) {
        Some(c) => code_slot(c),
        None => {
            return Err(format!(
                "recorded code {} is not a decision code",
                crate::diagnostics::quote(code)
            ))
        }
    };
    match (decision, slot) {
        ("allow", 0) => Ok(slot),
        ("deny", 1..) => Ok(slot),
        _ => Err(format!(
            "recorded decision {} does not agree with code {}",
            crate::diagnostics::quote(decision),
            crate::diagnostics::quote(code)
        )),
    }
}

/// `scheme://host[:port]` of a decided URL, the key of the top-N tables.
/// Taken from the decision's redacted URL (already parsed, normalized and
/// stripped of userinfo by the authorizer), so the URL is not parsed again.
fn origin_of(d: &Decision) -> String {
    const INVALID: &str = "(invalid URL)";
    if d.deny_code() == Some(DenyCode::InvalidUrl) {
        return INVALID.to_string();
    }
    let url = d.url();
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            url[..i + 3 + end].to_string()
        }
        None => INVALID.to_string(),
    }
}

// ---------------------------------------------------------------------------
// The replayer
// ---------------------------------------------------------------------------

/// A cached decision for one exact line.
struct Cached {
    slot: u8,
    against: Option<u8>,
    /// The slot an audit record says production decided.
    recorded: Option<u8>,
    origin: Box<str>,
    example: Box<str>,
    /// The record after `"line":N,` (with `--format json`).
    record: Option<Box<str>>,
    /// Lines counted since the last flush into the top-N tables.
    hits: u64,
}

#[derive(Serialize)]
struct Outcome<'a> {
    decision: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    message: std::borrow::Cow<'a, str>,
}

impl<'a> Outcome<'a> {
    fn of(d: &'a Decision) -> Self {
        Outcome {
            decision: if d.is_allowed() { "allow" } else { "deny" },
            code: d.code.as_str(),
            rule: d.rule(),
            message: d.message(),
        }
    }
}

/// One decision record; `kind` and `line` are written before it.
#[derive(Serialize)]
struct Record<'a> {
    capability: Capability,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    url: &'a str,
    decision: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    message: &'a str,
    addresses_checked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    against: Option<Outcome<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<bool>,
    /// What an audit record says production decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded: Option<Recorded<'a>>,
}

/// The decision an audit record carries, and whether the replay differs.
#[derive(Serialize)]
struct Recorded<'a> {
    decision: &'a str,
    code: &'a str,
    changed: bool,
}

#[derive(Serialize)]
struct InvalidRecord<'a> {
    kind: &'static str,
    line: u64,
    code: &'static str,
    message: &'a str,
}

/// Runs a policy (and optionally a second one) over recorded traffic.
pub struct Replayer<'a> {
    primary: &'a Authorizer,
    against: Option<&'a Authorizer>,
    opts: ReplayOptions,
    cache: FastMap<Box<[u8]>, Cached>,
    cache_used: usize,
    peak_cache_entries: usize,
    peak_cache_bytes: usize,
    counts: [u64; SLOTS],
    against_counts: [u64; SLOTS],
    transitions: [[u64; SLOTS]; SLOTS],
    /// Recorded slot → replayed slot, for lines that are audit records.
    recorded: [[u64; SLOTS]; SLOTS],
    top_denied: TopK<(u8, Box<str>)>,
    top_changed: TopK<(u8, u8, Box<str>)>,
    lines: u64,
    skipped: u64,
    invalid: u64,
    invalid_lines: Vec<InvalidLine>,
    stats: CacheStats,
}

/// Bytes a cache entry holds besides its strings (map slot, struct).
const ENTRY_OVERHEAD: usize = 96;

impl<'a> Replayer<'a> {
    /// A replay of `primary`, compared with `against` when given.
    pub fn new(
        primary: &'a Authorizer,
        against: Option<&'a Authorizer>,
        opts: ReplayOptions,
    ) -> Replayer<'a> {
        Replayer {
            primary,
            against,
            top_denied: TopK::new(opts.top_capacity),
            top_changed: TopK::new(opts.top_capacity),
            opts,
            cache: FastMap::default(),
            cache_used: 0,
            peak_cache_entries: 0,
            peak_cache_bytes: 0,
            counts: [0; SLOTS],
            against_counts: [0; SLOTS],
            transitions: [[0; SLOTS]; SLOTS],
            recorded: [[0; SLOTS]; SLOTS],
            lines: 0,
            skipped: 0,
            invalid: 0,
            invalid_lines: Vec::new(),
            stats: CacheStats::default(),
        }
    }

    /// Most cache entries held at once so far.
    pub fn peak_cache_entries(&self) -> usize {
        self.peak_cache_entries
    }

    /// Most cache bytes held at once so far.
    pub fn peak_cache_bytes(&self) -> usize {
        self.peak_cache_bytes
    }

    /// Keys held by the two top-N tables now (each at most `top_capacity`).
    pub fn top_keys(&self) -> (usize, usize) {
        (self.top_denied.map.len(), self.top_changed.map.len())
    }

    /// Reads every line of `input`; with [`ReplayOptions::records`], writes
    /// one JSON record per non-skipped line to `out`. Returns the summary
    /// of everything read so far (call again to continue with more input).
    /// `Err` only for I/O errors reading `input` or writing `out`.
    pub fn run<R: BufRead, W: Write>(
        &mut self,
        mut input: R,
        mut out: Option<&mut W>,
    ) -> io::Result<Summary> {
        let max = self.opts.max_line_bytes;
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        loop {
            buf.clear();
            let n = <&mut R as io::Read>::take(&mut input, max as u64 + 1)
                .read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            self.lines += 1;
            let line_no = self.lines;
            let mut line: &[u8] = &buf;
            if line.last() == Some(&b'\n') {
                line = &line[..line.len() - 1];
            } else if line.len() > max {
                skip_line(&mut input)?;
                let msg = format!("line is longer than {max} bytes");
                self.invalid(line_no, msg, out.as_deref_mut())?;
                continue;
            }
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            // Hot path: a line seen before.
            if let Some(c) = self.cache.get_mut(line) {
                self.stats.hits += 1;
                c.hits += 1;
                self.counts[c.slot as usize] += 1;
                if let Some(a) = c.against {
                    self.against_counts[a as usize] += 1;
                    self.transitions[c.slot as usize][a as usize] += 1;
                }
                if let Some(r) = c.recorded {
                    self.recorded[r as usize][c.slot as usize] += 1;
                }
                if let (Some(w), Some(r)) = (out.as_deref_mut(), &c.record) {
                    write!(w, "{{\"kind\":\"decision\",\"line\":{line_no},{r}")?;
                }
                continue;
            }
            self.decide_new(line, line_no, out.as_deref_mut())?;
        }
        self.flush();
        Ok(self.summary())
    }

    fn invalid<W: Write>(
        &mut self,
        line: u64,
        message: String,
        out: Option<&mut W>,
    ) -> io::Result<()> {
        self.invalid += 1;
        let message: String = redact::escape_terminal(&message)
            .chars()
            .take(300)
            .collect();
        if let Some(w) = out {
            let r = InvalidRecord {
                kind: "invalid",
                line,
                code: INVALID_INPUT,
                message: &message,
            };
            serde_json::to_writer(&mut *w, &r)?;
            w.write_all(b"\n")?;
        }
        if self.invalid_lines.len() < self.opts.invalid_shown {
            self.invalid_lines.push(InvalidLine { line, message });
        }
        Ok(())
    }

    fn decide_new<W: Write>(
        &mut self,
        line: &[u8],
        line_no: u64,
        out: Option<&mut W>,
    ) -> io::Result<()> {
        let Ok(text) = std::str::from_utf8(line) else {
            return self.invalid(line_no, "line is not UTF-8".into(), out);
        };
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            self.skipped += 1;
            return Ok(());
        }
        let parsed = match parse_line(text, self.opts.default_capability) {
            Ok(Line::Request(p)) => p,
            Ok(Line::Finished) => {
                self.skipped += 1;
                return Ok(());
            }
            Err(m) => return self.invalid(line_no, m, out),
        };
        self.stats.misses += 1;
        let req = parsed.request();
        let d = self.primary.authorize(&req, parsed.answers.as_deref());
        let a = self
            .against
            .map(|x| x.authorize(&req, parsed.answers.as_deref()));
        let s = slot(&d);
        let sa = a.as_ref().map(slot);
        let url = d.url();
        let record = if self.opts.records {
            let message = d.message();
            let r = Record {
                capability: parsed.capability,
                method: match parsed.capability {
                    Capability::Request => Some(parsed.method.as_deref().unwrap_or("GET")),
                    Capability::Websocket => None,
                },
                url: &url,
                decision: if d.is_allowed() { "allow" } else { "deny" },
                code: d.code.as_str(),
                rule: d.rule(),
                message: &message,
                addresses_checked: d.addresses_checked,
                against: a.as_ref().map(Outcome::of),
                changed: sa.map(|x| x != s),
                recorded: parsed.recorded.map(|r| Recorded {
                    decision: if r == 0 { "allow" } else { "deny" },
                    code: slot_code(r),
                    changed: r != s,
                }),
            };
            let json = serde_json::to_string(&r).expect("record serializes");
            // Everything after the opening brace, plus the newline.
            let mut tail = String::with_capacity(json.len() + 1);
            tail.push_str(&json[1..]);
            tail.push('\n');
            Some(tail.into_boxed_str())
        } else {
            None
        };
        let c = Cached {
            slot: s,
            against: sa,
            recorded: parsed.recorded,
            origin: origin_of(&d).into_boxed_str(),
            example: url.into(),
            record,
            hits: 1,
        };
        self.counts[s as usize] += 1;
        if let Some(x) = sa {
            self.against_counts[x as usize] += 1;
            self.transitions[s as usize][x as usize] += 1;
        }
        if let Some(r) = parsed.recorded {
            self.recorded[r as usize][s as usize] += 1;
        }
        if let (Some(w), Some(r)) = (out, &c.record) {
            write!(w, "{{\"kind\":\"decision\",\"line\":{line_no},{r}")?;
        }
        let size = line.len()
            + c.origin.len()
            + c.example.len()
            + c.record.as_ref().map_or(0, |r| r.len())
            + ENTRY_OVERHEAD;
        if self.cache.len() + 1 > self.opts.cache_entries
            || self.cache_used + size > self.opts.cache_bytes
        {
            self.flush();
            self.cache.clear();
            self.cache_used = 0;
            self.stats.clears += 1;
        }
        if size <= self.opts.cache_bytes && self.opts.cache_entries > 0 {
            self.cache.insert(line.into(), c);
            self.cache_used += size;
            self.peak_cache_entries = self.peak_cache_entries.max(self.cache.len());
            self.peak_cache_bytes = self.peak_cache_bytes.max(self.cache_used);
        } else {
            self.count_top(&c, 1);
        }
        Ok(())
    }

    fn count_top(&mut self, c: &Cached, n: u64) {
        if c.slot != 0 {
            self.top_denied
                .add((c.slot, c.origin.clone()), n, &c.example);
        }
        if let Some(a) = c.against {
            if a != c.slot {
                self.top_changed
                    .add((c.slot, a, c.origin.clone()), n, &c.example);
            }
        }
    }

    /// Moves the cache's pending counts into the top-N tables.
    fn flush(&mut self) {
        // (slot, against slot, origin, example, hits)
        type Pending = (u8, Option<u8>, Box<str>, Box<str>, u64);
        let mut pending: Vec<Pending> = Vec::new();
        for c in self.cache.values_mut() {
            if c.hits > 0 && (c.slot != 0 || c.against.is_some_and(|a| a != c.slot)) {
                pending.push((
                    c.slot,
                    c.against,
                    c.origin.clone(),
                    c.example.clone(),
                    c.hits,
                ));
            }
            c.hits = 0;
        }
        // A fixed order, so eviction (and the reported example) does not
        // depend on hash-map iteration order.
        pending.sort();
        for (slot, against, origin, example, hits) in pending {
            let c = Cached {
                slot,
                against,
                recorded: None,
                origin,
                example,
                record: None,
                hits,
            };
            self.count_top(&c, hits);
        }
    }

    fn summary(&self) -> Summary {
        let decided: u64 = self.counts.iter().sum();
        let mut codes: Vec<CodeCount> = (0..SLOTS)
            .filter(|&i| self.counts[i] > 0)
            .map(|i| CodeCount {
                code: slot_code(i as u8).to_string(),
                count: self.counts[i],
            })
            .collect();
        if self.invalid > 0 {
            codes.push(CodeCount {
                code: INVALID_INPUT.to_string(),
                count: self.invalid,
            });
        }
        let shown = self.opts.top_shown;
        let top_denied: Vec<TopTarget> = self
            .top_denied
            .top(shown)
            .into_iter()
            .map(|((s, origin), c)| TopTarget {
                count: c.count,
                error: c.error,
                code: slot_code(*s).to_string(),
                target: origin.to_string(),
                example: c.example.to_string(),
            })
            .collect();
        let against = self.against.map(|_| {
            let transitions = transitions_of(&self.transitions);
            let top = self.top_changed.top(shown);
            Changes {
                allowed: self.against_counts[0],
                denied: self.against_counts[1..].iter().sum(),
                changed: transitions.iter().map(|t| t.count).sum(),
                transitions,
                more_changed: (self.top_changed.map.len() - top.len()) as u64,
                top_changed: top
                    .into_iter()
                    .map(|((f, t, origin), c)| TopChange {
                        count: c.count,
                        error: c.error,
                        from: slot_code(*f).to_string(),
                        to: slot_code(*t).to_string(),
                        target: origin.to_string(),
                        example: c.example.to_string(),
                    })
                    .collect(),
                approximate: self.top_changed.evictions > 0,
            }
        });
        Summary {
            lines: self.lines,
            skipped: self.skipped,
            decided,
            allowed: self.counts[0],
            denied: decided - self.counts[0],
            invalid: self.invalid,
            codes,
            more_denied: (self.top_denied.map.len() - top_denied.len()) as u64,
            top_denied,
            top_denied_approximate: self.top_denied.evictions > 0,
            invalid_lines: self.invalid_lines.clone(),
            against,
            recorded: {
                let lines: u64 = self.recorded.iter().flatten().sum();
                (lines > 0).then(|| {
                    let transitions = transitions_of(&self.recorded);
                    RecordedChanges {
                        lines,
                        changed: transitions.iter().map(|t| t.count).sum(),
                        transitions,
                    }
                })
            },
            cache: self.stats.clone(),
        }
    }
}

/// The pairs of a slot → slot count matrix that differ, most frequent first.
fn transitions_of(matrix: &[[u64; SLOTS]; SLOTS]) -> Vec<Transition> {
    let mut transitions: Vec<Transition> = Vec::new();
    for (i, row) in matrix.iter().enumerate() {
        for (j, &n) in row.iter().enumerate() {
            if i != j && n > 0 {
                transitions.push(Transition {
                    from: slot_code(i as u8).to_string(),
                    to: slot_code(j as u8).to_string(),
                    count: n,
                });
            }
        }
    }
    transitions.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
    transitions
}

/// Discards input up to and including the next newline.
fn skip_line<R: BufRead>(input: &mut R) -> io::Result<()> {
    loop {
        let avail = input.fill_buf()?;
        if avail.is_empty() {
            return Ok(());
        }
        match avail.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = avail.len();
                input.consume(n);
            }
        }
    }
}

/// Writes the summary as the last JSON record (`"kind":"summary"`).
pub fn write_summary_record(out: &mut dyn Write, s: &Summary) -> io::Result<()> {
    #[derive(Serialize)]
    struct Wrapped<'a> {
        kind: &'static str,
        #[serde(flatten)]
        summary: &'a Summary,
    }
    serde_json::to_writer(
        &mut *out,
        &Wrapped {
            kind: "summary",
            summary: s,
        },
    )?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_heavy_hitters_within_capacity() {
        let mut t: TopK<u32> = TopK::new(3);
        for (k, n) in [(1, 100), (2, 50), (3, 10), (4, 1), (5, 1), (6, 1), (1, 5)] {
            t.add(k, n, "x");
        }
        assert!(t.map.len() <= 3);
        let top = t.top(2);
        assert_eq!(*top[0].0, 1);
        assert_eq!(top[0].1.count, 105);
        assert_eq!(top[0].1.error, 0);
        assert_eq!(*top[1].0, 2);
        assert!(t.evictions >= 3);
    }

    #[test]
    fn plain_and_json_lines() {
        let request = |text, default| match parse_line(text, default) {
            Ok(Line::Request(p)) => Ok(p),
            Ok(Line::Finished) => Err("a finished record".to_string()),
            Err(e) => Err(e),
        };
        let p = request("https://a.example/", Some(Capability::Request)).unwrap();
        assert_eq!(p.capability, Capability::Request);
        assert!(request("https://a.example/", None).is_err());
        let p = request(
            r#"{"capability":"websocket","url":"wss://a/","headers":["X-A: 1",["X-B","2"]],"resolved":["10.0.0.1","[::1]"]}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            p.headers,
            vec![("X-A".into(), "1".into()), ("X-B".into(), "2".into())]
        );
        assert_eq!(p.answers.unwrap().len(), 2);
        assert_eq!(p.recorded, None);
        let e = request(
            r#"{"url":"https://a/","header":["X: 1"]}"#,
            Some(Capability::Request),
        )
        .err()
        .unwrap();
        assert!(e.contains("unknown field `header`"), "{e}");
        assert!(request(r#"{"url":"https://a/","capability":"ftp"}"#, None).is_err());
        assert!(request(
            r#"{"url":"https://a/","resolved":["nope"]}"#,
            Some(Capability::Request)
        )
        .is_err());
    }

    #[test]
    fn audit_records() {
        fn request(text: &str) -> Result<Parsed<'_>, String> {
            match parse_line(text, None) {
                Ok(Line::Request(p)) => Ok(p),
                Ok(Line::Finished) => Err("a finished record".to_string()),
                Err(e) => Err(e),
            }
        }
        let p = request(
            r#"{"record":"decision","time":"2026-12-06T06:10:45.655Z","plugin":"t","id":"ws-1-1","capability":"websocket","url":"wss://a/","header_names":["X-Trace"],"subprotocols":[],"resolved":["10.0.0.1"],"decision":"deny","code":"non_public_address","rule":"r","digest":"sha256:x","credentials":[]}"#,
        )
        .unwrap();
        // Header values are never recorded: replayed empty.
        assert_eq!(p.headers, vec![("X-Trace".into(), String::new())]);
        let want = 1 + DenyCode::ALL
            .iter()
            .position(|c| *c == DenyCode::NonPublicAddress)
            .unwrap() as u8;
        assert_eq!(p.recorded, Some(want));
        let p = request(r#"{"record":"decision","url":"wss://a/","capability":"websocket","decision":"allow","code":"allowed"}"#).unwrap();
        assert_eq!(p.recorded, Some(0));
        assert!(matches!(
            parse_line(
                r#"{"record":"finished","time":"t","plugin":"t","id":"ws-1-1","capability":"websocket","url":"wss://a/","outcome":"closed","close_code":1000,"bytes_in":1,"bytes_out":1,"messages_in":1,"messages_out":1,"duration_ms":3}"#,
                None
            ),
            Ok(Line::Finished)
        ));
        for (bad, why) in [
            (
                r#"{"record":"decision","url":"wss://a/","capability":"websocket"}"#,
                "needs `decision` and `code`",
            ),
            (
                r#"{"record":"decision","url":"wss://a/","capability":"websocket","decision":"allow","code":"not_granted"}"#,
                "does not agree",
            ),
            (
                r#"{"record":"decision","url":"wss://a/","capability":"websocket","decision":"deny","code":"nope"}"#,
                "not a decision code",
            ),
            (
                r#"{"record":"opened","url":"wss://a/","capability":"websocket"}"#,
                "not `decision` or `finished`",
            ),
            // Audit fields without a record tag are a mistake, not a request.
            (
                r#"{"url":"wss://a/","capability":"websocket","code":"allowed"}"#,
                "needs \"record\"",
            ),
            (
                r#"{"url":"wss://a/","capability":"websocket","header_names":["X"]}"#,
                "needs \"record\"",
            ),
            (
                r#"{"url":"wss://a/","capability":"websocket","time":"t"}"#,
                "needs \"record\"",
            ),
            (
                r#"{"record":"decision","url":"wss://a/","capability":"websocket","decision":"allow","code":"allowed","tim":"t"}"#,
                "unknown field `tim`",
            ),
        ] {
            let e = request(bad)
                .err()
                .unwrap_or_else(|| panic!("accepted: {bad}"));
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn origins() {
        let m = "[plugin]\nname = \"x\"\nversion = \"1.0.0\"\n";
        let m = crate::Manifest::parse("m", m).value.unwrap();
        let p = crate::compile(&m, None).policy.unwrap();
        let a = Authorizer::new(&p);
        let o = |capability, url: &str| {
            let req = Request {
                capability,
                url,
                method: None,
                headers: &[],
                subprotocols: &[],
                credentials: &[],
            };
            origin_of(&a.authorize(&req, None))
        };
        use Capability::{Request as R, Websocket as W};
        assert_eq!(
            o(R, "https://u:p@A.example:8443/x?y=1"),
            "https://a.example:8443"
        );
        assert_eq!(o(R, "https://[::1]:443#x"), "https://[::1]");
        assert_eq!(o(W, "wss://a.example?q"), "wss://a.example");
        assert_eq!(o(R, "wss://a.example/"), "wss://a.example");
        assert_eq!(o(R, "not a url"), "(invalid URL)");
        assert_eq!(o(R, "ftp://a.example/"), "(invalid URL)");
    }
}
