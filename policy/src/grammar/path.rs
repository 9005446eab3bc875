//! Path prefixes of targets, and the readings of request paths.
//!
//! A target's path prefix is normalized once, when the manifest is
//! compiled ([`normalize_prefix`]); a request path is matched on segment
//! boundaries ([`prefix_matches`]). Because servers disagree on how to read
//! a path (percent-decoding `%2F` or `%3B`, stripping `;params`, merging
//! `//`, decoding IIS-style `%uXXXX`, folding Unicode look-alikes such as
//! `．` to `.`), a request path is only inside a prefix if it is inside under
//! every plausible reading ([`readings`], [`PathReadings::all_inside`]).
//! Each reading carries a [`Reading`] that says how it was made, so a
//! denial can name the reading that leaves the prefix.

use std::fmt;
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// Decoding rounds allowed before a path counts as hostile: eight layers
/// of percent-encoding is already far beyond any honest client.
const MAX_ROUNDS: usize = 8;

/// Why a path prefix was rejected, with a hint for fixing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(help("{help}"))]
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
/// invalid percent escapes, escapes that do not decode to UTF-8, the
/// escapes `%2F %5C %2E %3B %00 %25`, and Unicode look-alikes of `.`, `/`,
/// `\` and `;` ([`LOOKALIKES`], NFKC): servers read those differently, so a
/// prefix containing them has no single meaning.
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
    let Ok(decoded) = String::from_utf8(percent_decode(raw)) else {
        return Err(PrefixError::new(
            "the percent escapes in a path prefix do not decode to UTF-8",
            "percent-encode each character as the bytes of its UTF-8 form, like `%C3%A9` for `é`",
        ));
    };
    if let Some((c, to)) = decoded.chars().find_map(|c| fold_char(c).map(|to| (c, to))) {
        return Err(PrefixError::new(
            format!(
                "a path prefix cannot contain `{c}` (U+{:04X}), a look-alike of `{to}`",
                u32::from(c)
            ),
            "some servers fold Unicode look-alikes to ASCII, so the prefix would be ambiguous: \
             write the prefix without it",
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
        if matches!(value, 0x2F | 0x5C | 0x2E | 0x3B | 0x00 | 0x25) {
            return Err(PrefixError::new(
                format!("a path prefix cannot contain `%{value:02X}`"),
                "encoded `/`, `\\`, `.`, `;`, `%` and NUL are read differently by different servers: \
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathReadingError {
    /// A percent-encoded NUL byte, possibly under several layers of encoding.
    #[error("the path contains a percent-encoded NUL byte")]
    NulByte,
    /// Percent-encoded bytes that are not valid UTF-8 (overlong forms too).
    #[error("the path's percent-encoded bytes are not valid UTF-8")]
    InvalidUtf8,
    /// More layers of percent-encoding than any honest client produces.
    #[error("the path is percent-encoded in too many layers")]
    TooManyRounds,
}

/// How a server arrives at one reading of a request path: which of the
/// transformations of docs/spec.md §5.5 it applies. Dot segments
/// are resolved in every reading; everything else is named here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Reading {
    /// Rounds of percent-decoding `%25 %2F %5C %2E %3B` (0: as parsed).
    pub rounds: u8,
    /// Whether `;params` were stripped from every segment (servlet
    /// containers).
    pub params_stripped: bool,
    /// Whether runs of `/` were merged before dot segments were resolved
    /// (nginx).
    pub slashes_merged: bool,
    /// Whether IIS/Jetty-style `%uXXXX` escapes were decoded.
    pub percent_u: bool,
    /// Whether Unicode look-alikes of `.`, `/`, `\` and `;` were folded to
    /// ASCII (NFKC plus the look-alike table of docs/spec.md §5.5).
    pub lookalikes_folded: bool,
}

impl Reading {
    /// The path exactly as parsed.
    pub const AS_PARSED: Reading = Reading {
        rounds: 0,
        params_stripped: false,
        slashes_merged: false,
        percent_u: false,
        lookalikes_folded: false,
    };
}

impl Reading {
    /// A verb phrase completing "the reading that …", like "decodes
    /// `%2F %5C %2E %3B %25` once and strips `;params`", naming the
    /// look-alike folded (`lookalike`, from [`PathReadings::lookalike`])
    /// as in "folds Unicode look-alike dots and slashes to ASCII (U+FF0E
    /// `．` → `.`)".
    pub fn describe(&self, lookalike: Option<(char, &str)>) -> String {
        let mut steps: Vec<String> = Vec::new();
        if self.lookalikes_folded {
            let example = lookalike.map_or(String::new(), |(c, to)| {
                format!(" (U+{:04X} `{c}` → `{to}`)", u32::from(c))
            });
            steps.push(format!(
                "folds Unicode look-alike dots and slashes to ASCII{example}"
            ));
        }
        let escapes = if self.percent_u {
            "IIS-style `%uXXXX` and `%2F %5C %2E %3B %25` escapes"
        } else {
            "`%2F %5C %2E %3B %25`"
        };
        match self.rounds {
            0 if self.percent_u => steps.push("decodes IIS-style `%uXXXX` escapes".into()),
            0 => {}
            1 => steps.push(format!("decodes {escapes} once")),
            2 => steps.push(format!("decodes {escapes} twice")),
            n => steps.push(format!("decodes {escapes} {n} times")),
        }
        if self.params_stripped {
            steps.push("strips `;params`".into());
        }
        if self.slashes_merged {
            steps.push("merges `//`".into());
        }
        match steps.split_last() {
            None => "takes the path as parsed".into(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        }
    }
}

/// [`Reading::describe`] without naming a look-alike.
impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(None))
    }
}

/// The readings of one request path that a server might plausibly use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathReadings {
    /// Distinct readings, the as-parsed one first.
    readings: Vec<String>,
    /// How each reading was made (same order; the first, simplest, way
    /// when several give the same string).
    how: Vec<Reading>,
    /// The look-alike behind the first folded reading that was new, and
    /// what it became.
    lookalike: Option<(char, String)>,
    /// The look-alike of the latest fold, until a new reading claims it
    /// (a fold whose reading another reading already gave names nothing).
    /// Always `None` once the readings are built.
    last_fold: Option<(char, String)>,
}

/// Computes the readings of a request path.
///
/// `url_path` is the path of a `url::Url` (so raw dot segments, whole
/// `%2e` segments and backslashes are already resolved per WHATWG). The
/// readings are: the path as parsed; with `;params` stripped from every
/// segment; the results of decoding `%25 %2F %5C %2E %3B` one layer per
/// round (then `\` to `/`, `;params` stripped, dot segments resolved) until
/// nothing changes; and each layer of decoding the path as parsed without
/// resolving in between, with and without `;params`. Where a layer holds a
/// `%uXXXX` escape, the same readings again with `%uXXXX` decoded too (IIS,
/// Jetty); where a layer holds a Unicode look-alike of `.`, `/`, `\` or `;`
/// (raw or percent-encoded UTF-8), the same readings again with look-alikes
/// folded to ASCII ([`LOOKALIKES`] and NFKC). Dot segments are resolved in
/// every reading; where merging `//` would change what a `..` removes, the
/// merged form is a reading too. In every reading percent-escape hex is
/// uppercased and escaped unreserved characters are decoded, the same
/// spelling [`normalize_prefix`] gives prefixes.
///
/// Fails if any reading contains an encoded NUL, if any reading does not
/// percent-decode to UTF-8, or if decoding does not settle within eight
/// rounds.
pub fn readings(url_path: &str) -> Result<PathReadings, PathReadingError> {
    if is_plain(url_path) {
        // `readings_unless_plain` relies on this: a plain path's one
        // reading is itself.
        return Ok(PathReadings {
            readings: vec![url_path.to_owned()],
            how: vec![Reading::AS_PARSED],
            lookalike: None,
            last_fold: None,
        });
    }
    full_readings(url_path)
}

/// [`readings`], or `None` when the path is plain: then its one reading is
/// the path itself, and `all_inside(p)` is `prefix_matches(p, path)` and
/// `ambiguous_for(p)` is false — no need to build anything. Boxed: the
/// plain case (almost every call) then returns and drops one pointer, not
/// a large value (the full readings allocate a dozen times anyway).
pub(crate) fn readings_unless_plain(
    url_path: &str,
) -> Result<Option<Box<PathReadings>>, PathReadingError> {
    if is_plain(url_path) {
        return Ok(None);
    }
    full_readings(url_path).map(|r| Some(Box::new(r)))
}

/// Whether every reading of the path is the path itself: ASCII only, no
/// percent escape, `;`, `\` or NUL, no empty segment (`//`) before the last
/// and no dot segment, so decoding, stripping params, folding look-alikes,
/// merging slashes and resolving dots all leave it unchanged. Most request
/// paths are plain; this spares them [`full_readings`]' dozen or so
/// allocations.
fn is_plain(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    // One pass over the bytes (it runs on every authorization), one table
    // load and one test for an ordinary byte; the current segment's length
    // and its count of dots tell a dot segment (`.`, `..`) at its end.
    let (mut len, mut dots) = (0usize, 0usize);
    for &b in rest.as_bytes() {
        let class = PLAIN_CLASS[usize::from(b)];
        if class == ORDINARY {
            len += 1;
        } else if class == DOT {
            len += 1;
            dots += 1;
        } else if class == SLASH {
            if len == 0 || (dots == len && len <= 2) {
                return false;
            }
            (len, dots) = (0, 0);
        } else {
            return false;
        }
    }
    // The last segment may be empty (a trailing slash), not a dot segment.
    !(len > 0 && dots == len && len <= 2)
}

/// [`is_plain`]'s byte classes.
const ORDINARY: u8 = 0;
const SLASH: u8 = 1;
const DOT: u8 = 2;
/// `%`, `;`, `\`, NUL and every non-ASCII byte: never in a plain path.
const NOT_PLAIN: u8 = 3;

/// The class of every byte, for [`is_plain`].
static PLAIN_CLASS: [u8; 256] = {
    let mut t = [ORDINARY; 256];
    let mut b = 0x80;
    while b < 256 {
        t[b] = NOT_PLAIN;
        b += 1;
    }
    t[0] = NOT_PLAIN;
    t[b'%' as usize] = NOT_PLAIN;
    t[b';' as usize] = NOT_PLAIN;
    t[b'\\' as usize] = NOT_PLAIN;
    t[b'/' as usize] = SLASH;
    t[b'.' as usize] = DOT;
    t
};

/// One way of decoding the layers of a path: the plain one, or with
/// `%uXXXX` decoded, look-alikes folded, or both.
#[derive(Clone, Copy)]
struct Pass {
    percent_u: bool,
    fold: bool,
}

/// [`readings`] without the fast path for plain paths.
fn full_readings(url_path: &str) -> Result<PathReadings, PathReadingError> {
    let as_parsed = normalize_escapes(url_path);
    check_reading(&as_parsed)?;
    let mut out = PathReadings {
        readings: vec![as_parsed.clone()],
        how: vec![Reading::AS_PARSED],
        lookalike: None,
        last_fold: None,
    };
    let mut layers = vec![as_parsed.clone()];
    let plain = Pass {
        percent_u: false,
        fold: false,
    };
    out.pass(&as_parsed, plain, &mut layers)?;
    // The extra passes run only where a layer holds what they decode, so
    // most paths pay for one pass.
    let percent_u = layers.iter().any(|l| has_percent_u(&normalize_escapes(l)));
    if percent_u {
        let pass = Pass {
            percent_u: true,
            fold: false,
        };
        out.pass(&as_parsed, pass, &mut layers)?;
    }
    if layers.iter().any(|l| fold_lookalikes(l).is_some()) {
        for percent_u in [false, true].into_iter().filter(|u| percent_u || !u) {
            let pass = Pass {
                percent_u,
                fold: true,
            };
            out.pass(&as_parsed, pass, &mut layers)?;
        }
    }
    out.last_fold = None;
    Ok(out)
}

impl PathReadings {
    /// Computes the readings of a request path, the path of a parsed
    /// `url::Url`: every way a server may read it (docs/spec.md §5.5). Fails
    /// if a reading holds an encoded NUL or invalid UTF-8, or decoding does
    /// not settle within eight rounds.
    pub fn parse(url_path: &str) -> Result<PathReadings, PathReadingError> {
        readings(url_path)
    }

    /// The path as parsed, with percent-escape hex uppercased and escaped
    /// unreserved characters decoded: what prefix matching compares first.
    pub fn as_parsed(&self) -> &str {
        &self.readings[0]
    }

    /// All distinct readings, the as-parsed one first.
    pub fn all(&self) -> &[String] {
        &self.readings
    }

    /// All distinct readings with how each was made, the as-parsed one
    /// first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Reading)> + '_ {
        self.readings
            .iter()
            .map(String::as_str)
            .zip(self.how.iter().copied())
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

    /// The first (simplest) reading outside the normalized `prefix`, and how
    /// it was made: what explains an `ambiguous_path` denial.
    pub fn outside(&self, prefix: &str) -> Option<(&str, Reading)> {
        self.iter().find(|(r, _)| !prefix_matches(prefix, r))
    }

    /// The first Unicode look-alike a reading folded, and the ASCII it
    /// became (like `('．', ".")`), if any reading folded one.
    pub fn lookalike(&self) -> Option<(char, &str)> {
        self.lookalike.as_ref().map(|(c, to)| (*c, to.as_str()))
    }

    /// Records the readings of one [`Pass`]; every decoded layer goes to
    /// `layers` (for deciding which further passes are needed).
    fn pass(
        &mut self,
        as_parsed: &str,
        pass: Pass,
        layers: &mut Vec<String>,
    ) -> Result<(), PathReadingError> {
        let how = Reading {
            percent_u: pass.percent_u,
            lookalikes_folded: pass.fold,
            ..Reading::AS_PARSED
        };
        let stripped = Reading {
            params_stripped: true,
            ..how
        };
        let start = if pass.fold {
            let folded = self.fold(as_parsed);
            self.add_resolved(&folded, how)?;
            folded
        } else {
            as_parsed.to_owned()
        };
        self.add_resolved(&strip_params(&start), stripped)?;

        // Servers that strip params and resolve dot segments after each
        // decoding layer (named as stripping only once a round had params).
        let mut current = start.clone();
        let mut rounds = 0;
        let mut had_params = false;
        loop {
            let decoded = self.decode(&current, pass);
            let pre = strip_params(&decoded);
            had_params |= pre != decoded;
            let at = Reading {
                rounds: rounds + 1,
                params_stripped: had_params,
                ..how
            };
            let next = self.add_resolved(&pre, at)?;
            if next == current {
                break;
            }
            rounds += 1;
            if usize::from(rounds) > MAX_ROUNDS {
                return Err(PathReadingError::TooManyRounds);
            }
            current = next;
        }
        // Servers that decode one or more layers before they resolve dot
        // segments, with or without stripping params. Resolving between
        // layers is not enough: in `/v1/%252e%252e/..;/x` the `..;` would
        // remove the still-encoded `%2e%2e` before it is decoded (found by
        // fuzzing).
        let mut current = start;
        let mut rounds = 0;
        loop {
            let decoded = self.decode(&current, pass);
            if decoded == current {
                return Ok(());
            }
            rounds += 1;
            let at = Reading { rounds, ..how };
            self.add_resolved(&decoded, at)?;
            let at = Reading { rounds, ..stripped };
            self.add_resolved(&strip_params(&decoded), at)?;
            if usize::from(rounds) > MAX_ROUNDS {
                return Err(PathReadingError::TooManyRounds);
            }
            layers.push(decoded.clone());
            current = decoded;
        }
    }

    /// One decoding layer of `pass`.
    fn decode(&mut self, path: &str, pass: Pass) -> String {
        let decoded = if pass.percent_u {
            decode_layer_percent_u(path)
        } else {
            decode_layer(path)
        };
        if pass.fold {
            self.fold(&decoded)
        } else {
            decoded
        }
    }

    /// Folds look-alikes (then reads `\` as `/`), remembering the first
    /// for the reading it makes.
    fn fold(&mut self, path: &str) -> String {
        match fold_lookalikes(path) {
            Some((folded, c, to)) => {
                self.last_fold = Some((c, to));
                folded.replace('\\', "/")
            }
            None => path.to_owned(),
        }
    }

    /// Resolves dot segments in `pre` and records the result (and the
    /// slash-merged variant where it differs), returning the unmerged one.
    fn add_resolved(&mut self, pre: &str, how: Reading) -> Result<String, PathReadingError> {
        let resolved = normalize_escapes(&remove_dot_segments(pre));
        check_reading(&resolved)?;
        // nginx and others merge `//` before resolving `..`; that only
        // matters when the two orders disagree.
        let merged = normalize_escapes(&remove_dot_segments(&merge_slashes(pre)));
        self.push(resolved.clone(), how);
        if merge_slashes(&resolved) != merged {
            check_reading(&merged)?;
            let how = Reading {
                slashes_merged: true,
                ..how
            };
            self.push(merged, how);
        }
        Ok(resolved)
    }

    fn push(&mut self, reading: String, how: Reading) {
        if !self.readings.contains(&reading) {
            if how.lookalikes_folded && self.lookalike.is_none() {
                self.lookalike.clone_from(&self.last_fold);
            }
            self.readings.push(reading);
            self.how.push(how);
        }
    }
}

/// Decodes one layer of `%25 %2F %5C %2E %3B` and reads `\` as `/`.
fn decode_layer(path: &str) -> String {
    rewrite_escapes(path, |value| match value {
        0x25 => Some('%'),
        0x2F | 0x5C => Some('/'),
        0x2E => Some('.'),
        0x3B => Some(';'),
        _ => None,
    })
    .replace('\\', "/")
}

/// [`decode_layer`] plus IIS/Jetty-style `%uXXXX` escapes (a UTF-16 code
/// unit, `u` in either case; a surrogate pair is one code point, a lone
/// surrogate is left as it is). Escaped unreserved characters are decoded in
/// the same layer, so a `%u` spelled `%%75` is seen. A decoded `. / \ ; %`
/// or unreserved character is kept raw (so it can make a dot segment, a
/// separator, a param or a further escape); anything else is percent-encoded
/// as UTF-8, the spelling of a parsed URL.
fn decode_layer_percent_u(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let decoded = match escape_at(bytes, i) {
                Some(value @ (0x25 | 0x2E | 0x3B)) => Some((char::from(value), 3)),
                Some(0x2F | 0x5C) => Some(('/', 3)),
                Some(value)
                    if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'_' | b'~') =>
                {
                    Some((char::from(value), 3))
                }
                Some(value) => {
                    out.push_str(&path[copied..i]);
                    out.push_str(&format!("%{value:02X}"));
                    i += 3;
                    copied = i;
                    continue;
                }
                None => percent_u_at(bytes, i),
            };
            if let Some((c, len)) = decoded {
                out.push_str(&path[copied..i]);
                if c.is_ascii_alphanumeric()
                    || matches!(c, '-' | '_' | '~' | '.' | '/' | '\\' | ';' | '%')
                {
                    out.push(c);
                } else {
                    push_encoded(&mut out, c);
                }
                i += len;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&path[copied..]);
    out.replace('\\', "/")
}

/// The code point of the `%uXXXX` escape (or surrogate pair of them)
/// starting at `bytes[i]`, and the escape's length.
fn percent_u_at(bytes: &[u8], i: usize) -> Option<(char, usize)> {
    let unit = |at: usize| -> Option<u32> {
        if bytes.get(at) != Some(&b'%') || !matches!(bytes.get(at + 1), Some(b'u' | b'U')) {
            return None;
        }
        let hex = bytes.get(at + 2..at + 6)?;
        hex.iter()
            .try_fold(0u32, |acc, b| Some(acc << 4 | u32::from(hex_value(*b)?)))
    };
    let high = unit(i)?;
    if (0xD800..0xDC00).contains(&high) {
        let low = unit(i + 6).filter(|u| (0xDC00..0xE000).contains(u))?;
        let c = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?;
        return Some((c, 12));
    }
    char::from_u32(high).map(|c| (c, 6))
}

/// Whether `path` holds a `%uXXXX` escape.
fn has_percent_u(path: &str) -> bool {
    let bytes = path.as_bytes();
    (0..bytes.len()).any(|i| percent_u_at(bytes, i).is_some())
}

/// Appends `c` percent-encoded as UTF-8, hex uppercase.
fn push_encoded(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// Unicode look-alikes of `.`, `/`, `\` and `;` that a server may fold to
/// ASCII, and what they fold to: the one table of them (docs/spec.md §5.5;
/// the fuzz reference keeps its own list from the spec).
///
/// Sources: the Windows "best-fit" tables (`WideCharToMultiByte` without
/// `WC_NO_BEST_FIT_CHARS`; unicode.org `MAPPINGS/VENDORS/MICSFT/
/// WindowsBestFit`, bestfit1252, bestfit932, bestfit949), which Orange
/// Tsai and Splitline's "WorstFit" research (2025) turned into path
/// traversal and argument injection; UTS #46 (IDNA), which maps the
/// ideographic full stops to `.`; NFKC (Unicode compatibility
/// decomposition, marked "NFKC" below, which [`fold_char`] also applies to
/// characters not listed); and the Unicode confusables (UTS #39
/// `confusables.txt`) for `.`, `/` and `\`, restricted to punctuation and
/// symbols: confusable letters, digits and ideographs (Katakana `ノ`,
/// Arabic-Indic zero, `丿`) are left out, since no server folds them and
/// folding them would deny honest paths.
pub const LOOKALIKES: &[(char, &str)] = &[
    // Dots.
    ('\u{FF0E}', "."),   // FULLWIDTH FULL STOP: NFKC, best-fit 1252
    ('\u{FE52}', "."),   // SMALL FULL STOP: NFKC
    ('\u{2024}', "."),   // ONE DOT LEADER: NFKC, confusables
    ('\u{2025}', ".."),  // TWO DOT LEADER: NFKC
    ('\u{2026}', "..."), // HORIZONTAL ELLIPSIS: NFKC (`...` is no dot segment)
    ('\u{FE30}', ".."),  // PRESENTATION FORM FOR VERTICAL TWO DOT LEADER: NFKC
    ('\u{3002}', "."),   // IDEOGRAPHIC FULL STOP: UTS #46
    ('\u{FF61}', "."),   // HALFWIDTH IDEOGRAPHIC FULL STOP: UTS #46 (NFKC gives U+3002)
    ('\u{0701}', "."),   // SYRIAC SUPRALINEAR FULL STOP: confusables
    ('\u{0702}', "."),   // SYRIAC SUBLINEAR FULL STOP: confusables
    ('\u{A60E}', "."),   // VAI FULL STOP: confusables
    ('\u{10A50}', "."),  // KHAROSHTHI PUNCTUATION DOT: confusables
    // Slashes.
    ('\u{FF0F}', "/"), // FULLWIDTH SOLIDUS: NFKC, best-fit 1252
    ('\u{2215}', "/"), // DIVISION SLASH: best-fit 1252, confusables
    ('\u{2044}', "/"), // FRACTION SLASH: best-fit 1252, confusables
    ('\u{29F8}', "/"), // BIG SOLIDUS: confusables
    ('\u{27CB}', "/"), // MATHEMATICAL RISING DIAGONAL: confusables
    ('\u{2571}', "/"), // BOX DRAWINGS LIGHT DIAGONAL UPPER RIGHT TO LOWER LEFT: confusables
    ('\u{1735}', "/"), // PHILIPPINE SINGLE PUNCTUATION: confusables
    ('\u{2041}', "/"), // CARET INSERTION POINT: confusables
    // Backslashes.
    ('\u{FF3C}', "\\"), // FULLWIDTH REVERSE SOLIDUS: NFKC, best-fit
    ('\u{FE68}', "\\"), // SMALL REVERSE SOLIDUS: NFKC
    ('\u{2216}', "\\"), // SET MINUS: confusables
    ('\u{29F5}', "\\"), // REVERSE SOLIDUS OPERATOR: confusables
    ('\u{29F9}', "\\"), // BIG REVERSE SOLIDUS: confusables
    ('\u{27CD}', "\\"), // MATHEMATICAL FALLING DIAGONAL: confusables
    ('\u{2572}', "\\"), // BOX DRAWINGS LIGHT DIAGONAL UPPER LEFT TO LOWER RIGHT: confusables
    ('\u{00A5}', "\\"), // YEN SIGN: best-fit 932 (0x5C), WorstFit
    ('\u{20A9}', "\\"), // WON SIGN: best-fit 949 (0x5C), WorstFit
    // Semicolons (a folded `;` starts a param that servlet containers strip).
    ('\u{FF1B}', ";"), // FULLWIDTH SEMICOLON: NFKC
    ('\u{FE54}', ";"), // SMALL SEMICOLON: NFKC
    ('\u{037E}', ";"), // GREEK QUESTION MARK: NFC and NFKC
];

/// What a server that folds look-alikes reads for `c`: the [`LOOKALIKES`]
/// entry, else its NFKC form (each resulting character mapped through the
/// table) when that holds `.`, `/`, `\` or `;` and no `%`. `None` for every
/// other character (letters, digits, ligatures, accents), so folding never
/// changes what cannot move a path out of its prefix.
fn fold_char(c: char) -> Option<String> {
    if c.is_ascii() {
        return None;
    }
    let table = |c: char| LOOKALIKES.iter().find(|(from, _)| *from == c).map(|e| e.1);
    if let Some(to) = table(c) {
        return Some(to.to_owned());
    }
    if is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes {
        return None;
    }
    let mut folded = String::new();
    for d in std::iter::once(c).nfkc() {
        match table(d) {
            Some(to) => folded.push_str(to),
            None => folded.push(d),
        }
    }
    (folded.contains(['.', '/', '\\', ';']) && !folded.contains('%')).then_some(folded)
}

/// Folds every look-alike in `path`, raw or percent-encoded as UTF-8 (the
/// result's other non-ASCII characters percent-encoded). `None` when there
/// is none; else the folded path and the first look-alike with what it
/// became.
fn fold_lookalikes(path: &str) -> Option<(String, char, String)> {
    let bytes = path.as_bytes();
    let mut out = String::new();
    let mut first = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (c, len) = if bytes[i] == b'%' {
            match escaped_char_at(bytes, i) {
                Some(found) => found,
                None => {
                    i += 1;
                    continue;
                }
            }
        } else if bytes[i].is_ascii() {
            i += 1;
            continue;
        } else {
            let c = path[i..].chars().next()?;
            (c, c.len_utf8())
        };
        i += len;
        if let Some(to) = fold_char(c) {
            out.push_str(&path[copied..i - len]);
            for d in to.chars() {
                if d.is_ascii_graphic() && !matches!(d, '%' | '?' | '#') {
                    out.push(d);
                } else {
                    push_encoded(&mut out, d);
                }
            }
            copied = i;
            first.get_or_insert((c, to));
        }
    }
    let (c, to) = first?;
    out.push_str(&path[copied..]);
    Some((out, c, to))
}

/// The character percent-encoded as UTF-8 at `bytes[i]` (a run of two to
/// four escapes), and the run's length.
fn escaped_char_at(bytes: &[u8], i: usize) -> Option<(char, usize)> {
    let lead = escape_at(bytes, i)?;
    let n = match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let mut buf = [lead, 0, 0, 0];
    for (k, slot) in buf.iter_mut().enumerate().take(n).skip(1) {
        *slot = escape_at(bytes, i + 3 * k)?;
    }
    let c = std::str::from_utf8(&buf[..n]).ok()?.chars().next()?;
    Some((c, 3 * n))
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
            // An encoded `;` is decoded, then its param stripped (servlet
            // containers behind a decoding front end).
            ("/v1/..%3b/admin", "/v1/", Ambiguous),
            ("/v1/..%3Bjsessionid=1/admin", "/v1/", Ambiguous),
            ("/v1/..%253b/admin", "/v1/", Ambiguous),
            ("/v1/x/..%3b/..%3b/admin", "/v1/", Ambiguous),
            ("/v1/a%3Bb/c", "/v1/", Inside),
            ("/v1/x/..%3B/y", "/v1/", Inside),
            ("/v1/x%3Bjsessionid=1", "/v1/", Inside),
            // `%uXXXX` (IIS, Jetty; Openfire CVE-2023-32315).
            ("/v1/%u002e%u002e/admin", "/v1/", Ambiguous),
            ("/v1/%U002E%U002E/admin", "/v1/", Ambiguous),
            ("/v1/%25u002e%25u002e/admin", "/v1/", Ambiguous),
            ("/v1/..%u002fadmin", "/v1/", Ambiguous),
            ("/v1/..%u005cadmin", "/v1/", Ambiguous),
            ("/v1/..%u003b/admin", "/v1/", Ambiguous),
            ("/v1/%uFF0E%uFF0E/admin", "/v1/", Ambiguous),
            ("/v1/..%u2215admin", "/v1/", Ambiguous),
            ("/v1/%u0041bc/x", "/v1/", Inside),
            ("/v1/%u00e9t%u00e9", "/v1/", Inside),
            ("/v1/x/%u002e%u002e/y", "/v1/", Inside),
            ("/v1/%uD800/x", "/v1/", Inside),
            ("/v1/%u0000", "/v1/", Fails(NulByte)),
            ("/v1/%u00", "/v1/", Inside),
            // Unicode look-alikes, raw and percent-encoded.
            ("/v1/．．/admin", "/v1/", Ambiguous),
            ("/v1/%EF%BC%8E%EF%BC%8E/admin", "/v1/", Ambiguous),
            ("/v1/%E3%80%82%E3%80%82/admin", "/v1/", Ambiguous),
            ("/v1/%e3%80%82%e3%80%82/admin", "/v1/", Ambiguous),
            ("/v1/。。/admin", "/v1/", Ambiguous),
            ("/v1/｡｡/admin", "/v1/", Ambiguous),
            ("/v1/﹒﹒/admin", "/v1/", Ambiguous),
            ("/v1/․․/admin", "/v1/", Ambiguous),
            ("/v1/‥/admin", "/v1/", Ambiguous),
            ("/v1/..／admin", "/v1/", Ambiguous),
            ("/v1/..∕admin", "/v1/", Ambiguous),
            ("/v1/..⁄admin", "/v1/", Ambiguous),
            ("/v1/..⧸admin", "/v1/", Ambiguous),
            ("/v1/..＼admin", "/v1/", Ambiguous),
            ("/v1/..﹨admin", "/v1/", Ambiguous),
            ("/v1/..∖admin", "/v1/", Ambiguous),
            ("/v1/..⧵admin", "/v1/", Ambiguous),
            ("/v1/..⧹admin", "/v1/", Ambiguous),
            ("/v1/..¥admin", "/v1/", Ambiguous),
            ("/v1/..；/admin", "/v1/", Ambiguous),
            (
                "/v1/%25EF%25BC%258E%25EF%25BC%258E/admin",
                "/v1/",
                Ambiguous,
            ),
            ("/v1/．%2e/admin", "/v1/", Ambiguous),
            // Non-ASCII that folds to nothing structural, or stays inside.
            ("/v1/café/ß/日本語", "/v1/", Inside),
            ("/v1/Ünïcödé/Ελληνικά/кириллица/العربية", "/v1/", Inside),
            ("/v1/ﬁle/½/℀", "/v1/", Inside),
            ("/v1/…/x", "/v1/", Inside),
            ("/v1/a．b/c。d", "/v1/", Inside),
            ("/v1/x/．．/y", "/v1/", Inside),
            ("/v1/price/¥100", "/v1/", Inside),
            ("/v1/ノ/丿/٠٠", "/v1/", Inside),
            ("/v1/cafe%CC%81", "/v1/", Inside),
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
    fn url_parse_keeps_percent_u_and_lookalikes_encoded() {
        // `%u0` is no escape: WHATWG keeps the `%` as it is.
        assert_eq!(url_path("/v1/%u002e%u002e/admin"), "/v1/%u002e%u002e/admin");
        assert_eq!(url_path("/v1/．．/admin"), "/v1/%EF%BC%8E%EF%BC%8E/admin");
        assert_eq!(url_path("/v1/..%3b/admin"), "/v1/..%3b/admin");
    }

    #[test]
    fn readings_name_how_they_were_made() {
        let how = |path: &str, prefix: &str| {
            let r = readings(&url_path(path)).unwrap();
            let (reading, how) = r.outside(prefix).expect("a reading outside");
            (reading.to_owned(), how)
        };
        let (r, h) = how("/v1/..%2Fadmin", "/v1/");
        assert_eq!(r, "/admin");
        assert_eq!(h.rounds, 1);
        assert!(!h.percent_u && !h.lookalikes_folded);
        assert_eq!(h.to_string(), "decodes `%2F %5C %2E %3B %25` once");
        let (_, h) = how("/v1/..%3Bx/admin", "/v1/");
        assert_eq!(
            h.to_string(),
            "decodes `%2F %5C %2E %3B %25` once and strips `;params`"
        );
        let (_, h) = how("/v1/..;/admin", "/v1/");
        assert_eq!(h.to_string(), "strips `;params`");
        let (r, h) = how("/v1/%u002e%u002e/admin", "/v1/");
        assert_eq!(r, "/admin");
        assert!(h.percent_u && !h.lookalikes_folded);
        let (r, h) = how("/v1/．．/admin", "/v1/");
        assert_eq!(r, "/admin");
        assert!(h.lookalikes_folded && !h.percent_u && h.rounds == 0);
        assert_eq!(
            h.to_string(),
            "folds Unicode look-alike dots and slashes to ASCII"
        );
        let r = readings(&url_path("/v1/．．/admin")).unwrap();
        assert_eq!(r.lookalike(), Some(('\u{FF0E}', ".")));
        assert_eq!(
            h.describe(r.lookalike()),
            "folds Unicode look-alike dots and slashes to ASCII (U+FF0E `．` → `.`)"
        );
        let (_, h) = how("/v1/%u002e%u002e;x/admin", "/v1/");
        assert_eq!(
            h.to_string(),
            "decodes IIS-style `%uXXXX` and `%2F %5C %2E %3B %25` escapes once and strips `;params`"
        );
        let (_, h) = how("/v1/%uFF0E%uFF0E/admin", "/v1/");
        assert!(h.lookalikes_folded && h.percent_u);
        assert_eq!(Reading::AS_PARSED.to_string(), "takes the path as parsed");
        // Folding `．` here gives only readings the `%uXXXX` pass already
        // gave, so no reading is named for the look-alike (found by the
        // property below).
        let r = readings(&url_path("/%uFF0E%u002F../")).unwrap();
        assert!(r.iter().all(|(_, h)| !h.lookalikes_folded));
        assert_eq!(r.lookalike(), None);
        let r = readings(&url_path("/v1/x")).unwrap();
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            [("/v1/x", Reading::AS_PARSED)]
        );
        assert_eq!(r.outside("/v1/"), None);
    }

    #[test]
    fn lookalike_table_agrees_with_nfkc() {
        let mut nfkc_covered = 0;
        for (i, (from, to)) in LOOKALIKES.iter().enumerate() {
            assert!(!from.is_ascii(), "{from:?}");
            assert!(
                to.chars().all(|c| matches!(c, '.' | '/' | '\\' | ';')),
                "{from:?} folds to {to:?}"
            );
            assert!(
                LOOKALIKES[..i].iter().all(|(f, _)| f != from),
                "{from:?} is listed twice"
            );
            let n: String = std::iter::once(*from).nfkc().collect();
            if n.is_ascii() {
                assert_eq!(&n, to, "NFKC folds {from:?} differently");
                nfkc_covered += 1;
            }
            assert_eq!(fold_char(*from).as_deref(), Some(*to));
        }
        assert!(nfkc_covered >= 10, "{nfkc_covered}");
        // NFKC catches what the table does not list.
        assert_eq!(fold_char('\u{FE19}').as_deref(), Some("..."));
        assert_eq!(fold_char('\u{00BD}').as_deref(), Some("1/2"));
        assert_eq!(fold_char('\u{2100}').as_deref(), Some("a/c"));
        // Letters, ligatures, accents, digits and `%` look-alikes stay.
        for c in ['é', 'ß', '日', 'ﬁ', 'Ａ', '²', '％', '\u{0301}', 'ノ', '٠'] {
            assert_eq!(fold_char(c), None, "{c:?}");
        }
    }

    #[test]
    fn prefixes_reject_encoded_semicolons_and_lookalikes() {
        for raw in [
            "/v1/a%3Bb/",
            "/v1/a%3bb",
            "/v1/．/",
            "/v1/a%EF%BC%8Fb",
            "/v1/¥/",
            "/v1/½",
        ] {
            let err = normalize_prefix(raw).expect_err(raw);
            assert!(
                err.message.starts_with(char::is_lowercase),
                "{raw}: {err:?}"
            );
        }
        for (raw, want) in [
            ("/v1/café/", "/v1/caf%C3%A9/"),
            ("/v1/日本語", "/v1/%E6%97%A5%E6%9C%AC%E8%AA%9E"),
            ("/v1/ﬁle", "/v1/%EF%AC%81le"),
            ("/v1/cafe%CC%81", "/v1/cafe%CC%81"),
        ] {
            assert_eq!(normalize_prefix(raw).as_deref(), Ok(want), "{raw}");
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
    fn percent_u_rounds_are_bounded() {
        let layers = |n: usize| format!("/v1/%{}u002e", "25".repeat(n));
        assert!(readings(&url_path(&layers(MAX_ROUNDS - 1))).is_ok());
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
            8 => "[a-z0-9]{1,2}",
            4 => Just("v1".to_owned()),
            8 => Just("/".to_owned()),
            2 => Just(".".to_owned()),
            3 => Just("..".to_owned()),
            1 => Just(";x".to_owned()),
            1 => Just("\\".to_owned()),
            2 => "%(2[eEfF5]|5[cC]|41|7[eE]|3[bB])",
            // `%uXXXX`, plain or behind `%25`.
            2 => "%(25)?[uU]00(2[eEfF]|5[cC]|3[bB]|41)",
            1 => "%[uU](FF0[eEfF]|2215)",
            // Look-alikes, raw and percent-encoded, and letters that are
            // not look-alikes.
            1 => "[．。｡․‥／∕⁄＼﹨∖¥；]",
            1 => "%(EF%BC%8[eEfF]|E3%80%82|E2%80%A5|EF%BC%BC)",
            1 => "[éß日ﬁ½…]",
        ]
    }

    /// The byte-by-byte `is_plain` the table replaced, kept as the reference:
    /// whether every reading of the path is the path itself: ASCII only, no
    /// percent escape, `;`, `\` or NUL, no empty segment (`//`) before the last
    /// and no dot segment, so decoding, stripping params, folding look-alikes,
    /// merging slashes and resolving dots all leave it unchanged. Most request
    /// paths are plain; this spares them [`full_readings`]' dozen or so
    /// allocations.
    fn is_plain_bytewise(path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        // One pass over the bytes (it runs on every authorization); `start` is
        // where the current segment begins.
        let bytes = rest.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'%' | b';' | b'\\' | 0 => return false,
                b'/' => {
                    let segment = &bytes[start..i];
                    if segment.is_empty() || segment == b"." || segment == b".." {
                        return false;
                    }
                    start = i + 1;
                }
                _ if !b.is_ascii() => return false,
                _ => {}
            }
        }
        // The last segment may be empty (a trailing slash), not a dot segment.
        let last = &bytes[start..];
        last != b"." && last != b".."
    }

    /// The table-driven [`is_plain`] agrees with the byte-by-byte reference
    /// on every path of up to four bytes after the `/` over an alphabet of
    /// each class and bytes next to them (so every segment shape), with and
    /// without the leading `/`.
    #[test]
    fn is_plain_agrees_with_the_bytewise_reference() {
        let alphabet = [
            b'/', b'.', b'a', b'%', b';', b'\\', 0, 0x80, 0xff, b'-', b'0',
        ];
        let (mut plain, mut checked) = (0, 0);
        let mut s = vec![b'/'];
        for len in 0..=4u32 {
            for mut n in 0..alphabet.len().pow(len) {
                s.truncate(1);
                for _ in 0..len {
                    s.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                for path in [&s[..], &s[1..]] {
                    // Non-UTF-8 bytes stand for any non-ASCII text.
                    let text = String::from_utf8_lossy(path);
                    assert_eq!(is_plain(&text), is_plain_bytewise(&text), "{text:?}");
                    plain += usize::from(is_plain(&text));
                    checked += 1;
                }
            }
        }
        // Both answers occur hundreds of times (the premise of the comparison).
        assert!(plain > 500 && checked - plain > 500, "{plain} of {checked}");
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
        fn readings_are_named_and_first_is_as_parsed(tokens in prop::collection::vec(path_token(), 0..10)) {
            let path = url_path(&format!("/{}", tokens.concat()));
            if let Ok(r) = readings(&path) {
                let all: Vec<(&str, Reading)> = r.iter().collect();
                prop_assert_eq!(all.len(), r.all().len());
                prop_assert_eq!(all[0], (r.as_parsed(), Reading::AS_PARSED));
                prop_assert!(all[1..].iter().all(|(_, h)| *h != Reading::AS_PARSED));
                prop_assert_eq!(r.lookalike().is_some(), all.iter().any(|(_, h)| h.lookalikes_folded));
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

    /// The property tests above only say something if their premises hold
    /// often: sample the path generator and count.
    #[test]
    fn path_generator_meets_the_premises() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let strategy = prop::collection::vec(path_token(), 0..10);
        let (mut plain, mut percent_u, mut folded, mut ambiguous, mut failed) = (0, 0, 0, 0, 0);
        let total = 2000;
        for _ in 0..total {
            let raw = format!(
                "/{}",
                strategy.new_tree(&mut runner).unwrap().current().concat()
            );
            let path = url_path(&raw);
            plain += usize::from(is_plain(&path));
            match readings(&path) {
                Err(_) => failed += 1,
                Ok(r) => {
                    percent_u += usize::from(r.iter().any(|(_, h)| h.percent_u));
                    folded += usize::from(r.iter().any(|(_, h)| h.lookalikes_folded));
                    // The as-parsed path's first directory, as a prefix.
                    let first = r.as_parsed()[1..]
                        .find('/')
                        .map_or("/", |at| &r.as_parsed()[..at + 2]);
                    ambiguous += usize::from(r.ambiguous_for(first));
                }
            }
        }
        let share = |n: usize| n * 100 / total;
        eprintln!(
            "plain {}%, %u {}%, folded {}%, ambiguous {}%, failed {}%",
            share(plain),
            share(percent_u),
            share(folded),
            share(ambiguous),
            share(failed)
        );
        assert!(share(plain) >= 10, "plain {plain}");
        assert!(share(percent_u) >= 10, "%u {percent_u}");
        assert!(share(folded) >= 10, "folded {folded}");
        assert!(share(ambiguous) >= 10, "ambiguous {ambiguous}");
        assert!(share(failed) <= 30, "failed {failed}");
    }
}
