//! Path prefixes of targets, and the readings of request paths.
//!
//! A target's path prefix is normalized once, when the manifest is
//! compiled ([`normalize_prefix`]); a request path is matched on segment
//! boundaries ([`prefix_matches`]). Because servers disagree on how to read
//! a path (percent-decoding `%2F`, stripping `;params`, merging `//`), a
//! request path is only inside a prefix if it is inside under every
//! plausible reading ([`readings`], [`PathReadings::all_inside`]).

use std::fmt;

/// Decoding rounds allowed before a path counts as hostile: eight layers
/// of percent-encoding is already far beyond any honest client.
const MAX_ROUNDS: usize = 8;

/// Why a path prefix was rejected, with a hint for fixing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixError {
    /// What is wrong, as a lowercase sentence.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl PrefixError {
    fn new(message: impl Into<String>, help: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            help: help.into(),
        }
    }
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PrefixError {}

/// Normalizes a path prefix as written in a target (the part after the
/// host and port).
///
/// The prefix must start with `/`. Percent-escape hex digits are
/// uppercased, escaped unreserved characters (`ALPHA DIGIT - _ ~`) are
/// decoded, raw `.` and `..` segments are resolved (never above `/`), and
/// characters outside the URL path set are percent-encoded the way the
/// `url` crate encodes a path.
///
/// Rejected: `?`, `#`, `\`, `;`, `*`, control characters, whitespace,
/// invalid percent escapes, escapes that do not decode to UTF-8, and the
/// escapes `%2F %5C %2E %00 %25` (servers read those differently, so a
/// prefix containing them has no single meaning).
pub fn normalize_prefix(raw: &str) -> Result<String, PrefixError> {
    if is_plain_prefix(raw) {
        return Ok(raw.to_owned());
    }
    normalize_prefix_full(raw)
}

/// Whether a prefix is already normalized as written: it starts with `/`,
/// has only unreserved characters and sub-delimiters that neither the checks
/// below reject nor the `url` crate encodes (no `%`, `;`, `*`, `\`, space,
/// quote, `<>`, backquote, braces or non-ASCII), and no dot segment. Most
/// prefixes are; they skip the escape handling and the URL parse.
fn is_plain_prefix(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix('/') else {
        return false;
    };
    rest.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            )
    }) && rest
        .split('/')
        .all(|segment| segment != "." && segment != "..")
}

/// [`normalize_prefix`] without the fast path for plain prefixes.
fn normalize_prefix_full(raw: &str) -> Result<String, PrefixError> {
    if !raw.starts_with('/') {
        return Err(PrefixError::new(
            "a path prefix must start with `/`",
            "write the prefix right after the host or port, like `https://api.example.com/v1/`",
        ));
    }
    for c in raw.chars() {
        let err = match c {
            '?' | '#' => PrefixError::new(
                format!("a target cannot have a query or fragment (found `{c}`)"),
                "drop everything from the `?` or `#` on: a target matches paths, whatever the query",
            ),
            '\\' => PrefixError::new(
                "a path prefix cannot contain `\\`",
                "separate segments with `/`: servers disagree on what `\\` means",
            ),
            ';' => PrefixError::new(
                "a path prefix cannot contain `;`",
                "drop the `;params`: some servers strip them, so the prefix would be ambiguous",
            ),
            '*' => PrefixError::new(
                "a path prefix cannot contain `*`",
                "a path prefix is a literal prefix, not a glob: drop the `*`",
            ),
            c if c.is_control() => PrefixError::new(
                format!(
                    "a path prefix cannot contain the control character U+{:04X}",
                    u32::from(c)
                ),
                "remove the control character from the prefix",
            ),
            c if c.is_whitespace() => PrefixError::new(
                format!(
                    "a path prefix cannot contain whitespace (found U+{:04X})",
                    u32::from(c)
                ),
                "percent-encode a space as `%20`",
            ),
            _ => continue,
        };
        return Err(err);
    }
    check_prefix_escapes(raw)?;
    if std::str::from_utf8(&percent_decode(raw)).is_err() {
        return Err(PrefixError::new(
            "the percent escapes in a path prefix do not decode to UTF-8",
            "percent-encode each character as the bytes of its UTF-8 form, like `%C3%A9` for `é`",
        ));
    }
    let resolved = remove_dot_segments(&normalize_escapes(raw));
    // Let the `url` crate encode the rest, so prefixes and request paths
    // (which it parsed) use exactly the same spelling.
    let url = url::Url::parse(&format!("http://h{resolved}")).map_err(|e| {
        PrefixError::new(
            format!("the path prefix is not a valid URL path: {e}"),
            "write the prefix as a plain URL path, like `/api/v1/`",
        )
    })?;
    Ok(url.path().to_owned())
}

/// Rejects invalid escapes and the escapes that make a prefix ambiguous.
fn check_prefix_escapes(raw: &str) -> Result<(), PrefixError> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        let Some(value) = escape_at(bytes, i) else {
            let shown: String = raw[i..].chars().take(3).collect();
            return Err(PrefixError::new(
                format!("invalid percent escape `{shown}` in a path prefix"),
                "`%` must start an escape of two hex digits, like `%20`",
            ));
        };
        if matches!(value, 0x2F | 0x5C | 0x2E | 0x00 | 0x25) {
            return Err(PrefixError::new(
                format!("a path prefix cannot contain `%{value:02X}`"),
                "encoded `/`, `\\`, `.`, `%` and NUL are read differently by different servers: \
                 write the prefix without them",
            ));
        }
        i += 3;
    }
    Ok(())
}

/// Whether `path` is inside `prefix`, on segment boundaries.
///
/// True when `path == prefix`, or `path` starts with `prefix` and either
/// the prefix ends with `/` or the next character of `path` is `/`. So
/// `/v1` matches `/v1` and `/v1/x` but not `/v10`; `/v1/` matches `/v1/x`
/// but not `/v1`; `/` matches every path. Case-sensitive. Both sides are
/// expected in normalized form ([`normalize_prefix`],
/// [`PathReadings::all`]).
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
    }
}

/// Whether every path inside the normalized prefix `inner` is also inside
/// the normalized prefix `outer` (used to check that a grant stays within
/// what was requested).
pub fn prefix_contains(outer: &str, inner: &str) -> bool {
    prefix_matches(outer, inner)
}

/// Why a request path cannot be read safely at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathReadingError {
    /// A percent-encoded NUL byte, possibly under several layers of encoding.
    NulByte,
    /// Percent-encoded bytes that are not valid UTF-8 (overlong forms too).
    InvalidUtf8,
    /// More layers of percent-encoding than any honest client produces.
    TooManyRounds,
}

impl fmt::Display for PathReadingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NulByte => "the path contains a percent-encoded NUL byte",
            Self::InvalidUtf8 => "the path's percent-encoded bytes are not valid UTF-8",
            Self::TooManyRounds => "the path is percent-encoded in too many layers",
        })
    }
}

impl std::error::Error for PathReadingError {}

/// The readings of one request path that a server might plausibly use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathReadings {
    /// Distinct readings, the as-parsed one first.
    readings: Vec<String>,
}

/// Computes the readings of a request path.
///
/// `url_path` is the path of a `url::Url` (so raw dot segments, whole
/// `%2e` segments and backslashes are already resolved per WHATWG). The
/// readings are: the path as parsed; with `;params` stripped from every
/// segment; the results of decoding `%25 %2F %5C %2E` one layer per round
/// (then `\` to `/`, `;params` stripped, dot segments resolved) until
/// nothing changes; and each layer of decoding the path as parsed without
/// resolving in between, with and without `;params`. Dot
/// segments are resolved in every reading; where merging `//` would change
/// what a `..` removes, the merged form is a reading too. In every reading
/// percent-escape hex is uppercased and escaped unreserved characters are
/// decoded, the same spelling [`normalize_prefix`] gives prefixes.
///
/// Fails if any reading contains an encoded NUL, if any reading does not
/// percent-decode to UTF-8, or if decoding does not settle within eight
/// rounds.
pub fn readings(url_path: &str) -> Result<PathReadings, PathReadingError> {
    if is_plain(url_path) {
        return Ok(PathReadings {
            readings: vec![url_path.to_owned()],
        });
    }
    full_readings(url_path)
}

/// Whether every reading of the path is the path itself: no percent
/// escape, `;`, `\` or NUL, no empty segment (`//`) before the last and no
/// dot segment, so decoding, stripping params, merging slashes and
/// resolving dots all leave it unchanged. Most request paths are plain;
/// this spares them [`full_readings`]' dozen or so allocations.
fn is_plain(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.bytes().any(|b| matches!(b, b'%' | b';' | b'\\' | 0)) {
        return false;
    }
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if segment == "." || segment == ".." || (segment.is_empty() && !last) {
            return false;
        }
    }
    true
}

/// [`readings`] without the fast path for plain paths.
fn full_readings(url_path: &str) -> Result<PathReadings, PathReadingError> {
    let as_parsed = normalize_escapes(url_path);
    check_reading(&as_parsed)?;
    let mut out = PathReadings {
        readings: vec![as_parsed.clone()],
    };
    out.add_resolved(&strip_params(&as_parsed))?;

    // Servers that strip params and resolve dot segments after each
    // decoding layer.
    let mut current = as_parsed.clone();
    let mut rounds = 0;
    loop {
        let next = out.add_resolved(&strip_params(&decode_layer(&current)))?;
        if next == current {
            break;
        }
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(PathReadingError::TooManyRounds);
        }
        current = next;
    }
    // Servers that decode one or more layers before they resolve dot
    // segments, with or without stripping params. Resolving between layers
    // is not enough: in `/v1/%252e%252e/..;/x` the `..;` would remove the
    // still-encoded `%2e%2e` before it is decoded (found by fuzzing).
    let mut current = as_parsed;
    let mut rounds = 0;
    loop {
        let decoded = decode_layer(&current);
        if decoded == current {
            return Ok(out);
        }
        out.add_resolved(&decoded)?;
        out.add_resolved(&strip_params(&decoded))?;
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(PathReadingError::TooManyRounds);
        }
        current = decoded;
    }
}

/// Decodes one layer of `%25 %2F %5C %2E` and reads `\` as `/`.
fn decode_layer(path: &str) -> String {
    rewrite_escapes(path, |value| match value {
        0x25 => Some('%'),
        0x2F | 0x5C => Some('/'),
        0x2E => Some('.'),
        _ => None,
    })
    .replace('\\', "/")
}

impl PathReadings {
    /// The path as parsed, with percent-escape hex uppercased and escaped
    /// unreserved characters decoded: what prefix matching compares first.
    pub fn as_parsed(&self) -> &str {
        &self.readings[0]
    }

    /// All distinct readings, the as-parsed one first.
    pub fn all(&self) -> &[String] {
        &self.readings
    }

    /// Whether the path is inside the normalized `prefix` under every
    /// reading.
    pub fn all_inside(&self, prefix: &str) -> bool {
        self.readings.iter().all(|r| prefix_matches(prefix, r))
    }

    /// Whether the path is inside the normalized `prefix` as parsed but
    /// outside under another reading: the `ambiguous_path` case.
    pub fn ambiguous_for(&self, prefix: &str) -> bool {
        prefix_matches(prefix, self.as_parsed())
            && self.readings[1..]
                .iter()
                .any(|r| !prefix_matches(prefix, r))
    }

    /// Resolves dot segments in `pre` and records the result (and the
    /// slash-merged variant where it differs), returning the unmerged one.
    fn add_resolved(&mut self, pre: &str) -> Result<String, PathReadingError> {
        let resolved = normalize_escapes(&remove_dot_segments(pre));
        check_reading(&resolved)?;
        // nginx and others merge `//` before resolving `..`; that only
        // matters when the two orders disagree.
        let merged = normalize_escapes(&remove_dot_segments(&merge_slashes(pre)));
        self.push(resolved.clone());
        if merge_slashes(&resolved) != merged {
            check_reading(&merged)?;
            self.push(merged);
        }
        Ok(resolved)
    }

    fn push(&mut self, reading: String) {
        if !self.readings.contains(&reading) {
            self.readings.push(reading);
        }
    }
}

/// Rejects a reading with an encoded NUL or bytes that are not UTF-8.
fn check_reading(reading: &str) -> Result<(), PathReadingError> {
    let bytes = percent_decode(reading);
    if bytes.contains(&0) {
        return Err(PathReadingError::NulByte);
    }
    std::str::from_utf8(&bytes).map_err(|_| PathReadingError::InvalidUtf8)?;
    Ok(())
}

/// The value of the percent escape starting at `bytes[i]`, if it is one.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    let hi = hex_value(*bytes.get(i + 1)?)?;
    let lo = hex_value(*bytes.get(i + 2)?)?;
    Some((hi << 4) | lo)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Rewrites every valid percent escape: to the character `decode` gives
/// for its value, else to the escape with uppercase hex. Everything else,
/// invalid escapes included, is kept as it is.
fn rewrite_escapes(s: &str, decode: impl Fn(u8) -> Option<char>) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(value) = escape_at(bytes, i) {
                out.push_str(&s[copied..i]);
                match decode(value) {
                    Some(c) => out.push(c),
                    None => out.push_str(&format!("%{value:02X}")),
                }
                i += 3;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

/// Uppercases escape hex and decodes escaped unreserved characters other
/// than `.` (RFC 3986 §6.2.2), so equal paths are spelled alike; `%2E` is
/// left alone because decoding it can create a dot segment.
fn normalize_escapes(s: &str) -> String {
    rewrite_escapes(s, |value| {
        (value.is_ascii_alphanumeric() || matches!(value, b'-' | b'_' | b'~'))
            .then_some(char::from(value))
    })
}

/// Decodes every valid percent escape to its byte.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(value) = escape_at(bytes, i) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Drops `;params` from every segment (`/a;x/b;y` becomes `/a/b`), the
/// way servlet containers read paths.
fn strip_params(path: &str) -> String {
    path.split('/')
        .map(|segment| segment.find(';').map_or(segment, |at| &segment[..at]))
        .collect::<Vec<_>>()
        .join("/")
}

/// Collapses runs of `/` into one.
fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c != '/' || !out.ends_with('/') {
            out.push(c);
        }
    }
    out
}

/// Resolves `.` and `..` segments as RFC 3986 §5.2.4 does for an absolute
/// path; `..` never climbs above `/`.
fn remove_dot_segments(path: &str) -> String {
    let Some(rest) = path.strip_prefix('/') else {
        return path.to_owned();
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.into_iter().enumerate() {
        match segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        // A trailing dot segment leaves the path ending in `/`.
        if i == last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url_path(input: &str) -> String {
        url::Url::parse(&format!("http://h{input}"))
            .expect("test URL parses")
            .path()
            .to_owned()
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Expect {
        Inside,
        Outside,
        Ambiguous,
        Fails(PathReadingError),
    }

    fn classify(input: &str, prefix: &str) -> Expect {
        match readings(&url_path(input)) {
            Err(e) => Expect::Fails(e),
            Ok(r) if r.all_inside(prefix) => Expect::Inside,
            Ok(r) if r.ambiguous_for(prefix) => Expect::Ambiguous,
            Ok(_) => Expect::Outside,
        }
    }

    #[test]
    fn table_through_url_parse() {
        use Expect::*;
        use PathReadingError::*;
        let cases: &[(&str, &str, Expect)] = &[
            ("/api/v4/projects/group%2Fname", "/api/v4/", Inside),
            ("/v1/..%2Fadmin", "/v1/", Ambiguous),
            ("/v1/%2e%2e%2fadmin", "/v1/", Ambiguous),
            ("/v1/%2E%2E%2Fadmin", "/v1/", Ambiguous),
            // `url` resolves a whole `%2e%2e` segment itself.
            ("/v1/%2e%2e/admin", "/v1/", Outside),
            ("/v1/.%2e/admin", "/v1/", Outside),
            ("/v1/..;/admin", "/v1/", Ambiguous),
            ("/v1/x/..;/..;/admin", "/v1/", Ambiguous),
            ("/v1/x/..;/y", "/v1/", Inside),
            ("/v1/%2e%2e;x/admin", "/v1/", Ambiguous),
            ("/v1/%252e%252e%252fadmin", "/v1/", Ambiguous),
            ("/v1/..%252fadmin", "/v1/", Ambiguous),
            ("/v1/%25252e%25252e%25252fadmin", "/v1/", Ambiguous),
            ("/v1/..%5cadmin", "/v1/", Ambiguous),
            ("/v1/..%5Cadmin", "/v1/", Ambiguous),
            // `url` turns `\` into `/` for http, then resolves `..`.
            ("/v1/..\\admin", "/v1/", Outside),
            ("/v1/x%2F..%2F..%2Fadmin", "/v1/", Ambiguous),
            ("/v1/x%2F..%2Fy", "/v1/", Inside),
            ("/v1//%252E%252E/admin", "/v1/", Ambiguous),
            ("/v1//..%2Fadmin", "/v1/", Ambiguous),
            ("/v1/a%00", "/v1/", Fails(NulByte)),
            ("/v1/a%2500", "/v1/", Fails(NulByte)),
            ("/v1/%c0%ae%c0%ae/", "/v1/", Fails(InvalidUtf8)),
            ("/v1/%e0%80%ae", "/v1/", Fails(InvalidUtf8)),
            ("/v1/%ff", "/v1/", Fails(InvalidUtf8)),
            ("/v1/%25ff", "/v1/", Fails(InvalidUtf8)),
            ("/v10", "/v1", Outside),
            ("/v1", "/v1", Inside),
            ("/v1/x", "/v1", Inside),
            ("/v1", "/v1/", Outside),
            ("/V1/x", "/v1/", Outside),
            ("/v1/x;jsessionid=1", "/v1/", Inside),
            ("/v1;x/admin", "/v1/", Outside),
            ("/v1/x/../../admin", "/v1/", Outside),
            ("/v1/./x", "/v1/", Inside),
            ("/v1/%2e/x", "/v1/", Inside),
            ("/v1/%7e/x", "/v1/~/", Inside),
            ("/%76%31/x", "/v1/", Inside),
            ("/v1/café", "/v1/caf%C3%A9", Inside),
            ("/v1/x?q=..%2F..%2Fadmin", "/v1/", Inside),
            ("/anything/at/all", "/", Inside),
            ("/", "/", Inside),
        ];
        assert!(cases.len() >= 30);
        for (input, prefix, expect) in cases {
            assert_eq!(
                classify(input, prefix),
                *expect,
                "{input} under {prefix} (parsed as {})",
                url_path(input)
            );
        }
    }

    #[test]
    fn decoding_rounds_are_bounded() {
        let layers = |n: usize| format!("/v1/%{}2e", "25".repeat(n - 1));
        assert!(readings(&url_path(&layers(MAX_ROUNDS))).is_ok());
        assert_eq!(
            readings(&url_path(&layers(MAX_ROUNDS + 1))),
            Err(PathReadingError::TooManyRounds)
        );
    }

    #[test]
    fn readings_keep_every_round() {
        let r = readings(&url_path("/v1/%252e%252e%252fadmin")).unwrap();
        assert_eq!(
            r.all(),
            ["/v1/%252e%252e%252fadmin", "/v1/%2E%2E%2Fadmin", "/admin"]
        );
        // Only escape hex is uppercased; the `2e` after `%25` is plain text.
        assert_eq!(r.as_parsed(), "/v1/%252e%252e%252fadmin");
    }

    #[test]
    fn normalizes_prefixes() {
        for (raw, want) in [
            ("/", "/"),
            ("/api/v10/", "/api/v10/"),
            ("/v1/./x/../y", "/v1/y"),
            ("/v1/x/.", "/v1/x/"),
            ("/v1/x/..", "/v1/"),
            ("/..", "/"),
            ("/../../a", "/a"),
            ("/a/%7e%41%2d", "/a/~A-"),
            ("/a/%c3%a9", "/a/%C3%A9"),
            ("/a/é", "/a/%C3%A9"),
            ("/a/%3a", "/a/%3A"),
            ("/a/{x}", "/a/%7Bx%7D"),
            ("/a/.b/..c", "/a/.b/..c"),
        ] {
            assert_eq!(normalize_prefix(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn rejects_bad_prefixes() {
        for raw in [
            "",
            "v1/",
            "/a?b",
            "/a#b",
            "/a\\b",
            "/a;b",
            "/a%2Fb",
            "/a%2fb",
            "/a%5C",
            "/a/%2e",
            "/a/%2E%2E/",
            "/a%00",
            "/a%25",
            "/a%zz",
            "/a%4",
            "/a%",
            "/a%ff",
            "/a%c0%ae",
            "/a%C3",
            "/a\tb",
            "/a b",
            "/a\u{a0}b",
            "/a\u{7f}",
            "/a\u{85}",
        ] {
            let err = normalize_prefix(raw).expect_err(raw);
            assert!(
                err.message.starts_with(char::is_lowercase),
                "{raw}: {err:?}"
            );
            assert!(!err.help.is_empty());
        }
        assert_eq!(
            normalize_prefix("/v1/*").unwrap_err().help,
            "a path prefix is a literal prefix, not a glob: drop the `*`"
        );
    }

    #[test]
    fn segment_boundaries() {
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/v1", "/v1"));
        assert!(prefix_matches("/v1", "/v1/x"));
        assert!(!prefix_matches("/v1", "/v10"));
        assert!(prefix_matches("/v1/", "/v1/x"));
        assert!(!prefix_matches("/v1/", "/v1"));
        assert!(!prefix_matches("/v1/", "/V1/x"));
        assert!(prefix_contains("/v1", "/v1/x/"));
        assert!(prefix_contains("/v1/", "/v1/"));
        assert!(!prefix_contains("/v1/", "/v1"));
        assert!(!prefix_contains("/v1/x", "/v1"));
    }

    #[test]
    fn errors_display_lowercase_sentences() {
        for e in [
            PathReadingError::NulByte,
            PathReadingError::InvalidUtf8,
            PathReadingError::TooManyRounds,
        ] {
            assert!(e.to_string().starts_with(char::is_lowercase));
        }
    }

    fn prefix_token() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9._~-]{1,3}",
            Just("/".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            "%[0-9a-fA-F]{2}",
            "[é€\"<>{}^|!$&'()+,=:@`]",
        ]
    }

    fn path_token() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9]{1,2}",
            Just("v1".to_owned()),
            Just("/".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just(";x".to_owned()),
            Just("\\".to_owned()),
            "%(2[eEfF5]|5[cC]|41|7[eE])",
        ]
    }

    proptest! {
        #[test]
        fn plain_prefix_fast_path_agrees(tokens in prop::collection::vec(prefix_token(), 0..8), plain in "(/[a-zA-Z0-9._~!$&'()+,=:@-]{0,4}){1,5}") {
            for raw in [format!("/{}", tokens.concat()), plain] {
                if is_plain_prefix(&raw) {
                    prop_assert_eq!(normalize_prefix(&raw), normalize_prefix_full(&raw));
                }
            }
        }

        #[test]
        fn normalize_prefix_is_idempotent(tokens in prop::collection::vec(prefix_token(), 0..8)) {
            let raw = format!("/{}", tokens.concat());
            if let Ok(once) = normalize_prefix(&raw) {
                prop_assert_eq!(normalize_prefix(&once), Ok(once.clone()));
                prop_assert!(prefix_matches(&once, &once));
            }
        }

        #[test]
        fn plain_fast_path_agrees_with_full_readings(tokens in prop::collection::vec(path_token(), 0..10)) {
            for raw in [format!("/{}", tokens.concat()), url_path(&format!("/{}", tokens.concat()))] {
                if is_plain(&raw) {
                    prop_assert_eq!(readings(&raw), full_readings(&raw));
                    prop_assert_eq!(readings(&raw).unwrap().all().len(), 1);
                }
            }
        }

        #[test]
        fn unreserved_paths_have_one_reading(raw in "(/[a-zA-Z0-9._~-]{0,4}){1,6}") {
            let r = readings(&url_path(&raw)).unwrap();
            prop_assert_eq!(r.all().len(), 1);
            prop_assert_eq!(Ok(r), full_readings(&url_path(&raw)));
            prop_assert_eq!(readings(&raw), full_readings(&raw));
        }

        #[test]
        fn all_inside_implies_as_parsed_inside(base in prop::sample::select(vec!["/", "/v1/", "/a/", "/v1/v1/"]), tokens in prop::collection::vec(path_token(), 0..10)) {
            // Paths start under a prefix often, so `all_inside` holds for more than `/`.
            let path = url_path(&format!("{base}{}", tokens.concat()));
            if let Ok(r) = readings(&path) {
                prop_assert_eq!(r.all()[0].as_str(), r.as_parsed());
                for prefix in ["/", "/v1", "/v1/", "/a/", "/v1/v1/"] {
                    if r.all_inside(prefix) {
                        prop_assert!(prefix_matches(prefix, r.as_parsed()));
                    }
                    if r.ambiguous_for(prefix) {
                        prop_assert!(!r.all_inside(prefix));
                    }
                }
                for reading in r.all() {
                    prop_assert!(reading.starts_with('/'));
                }
            }
        }
    }
}
