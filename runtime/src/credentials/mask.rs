//! "The plugin never sees a value" (docs/spec.md §9): every occurrence of an
//! injected value in what goes back to the plugin becomes its placeholder.
//!
//! Uses nothing else from this crate (the fuzz crate builds it alone).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::borrow::Cow;
use std::fmt;
use zeroize::Zeroizing;

/// Longest value a [`Masker`] takes, in bytes (its percent-encoded form is
/// up to three times as long, and a [`StreamMasker`] holds back up to that
/// much).
pub const MAX_MASKED_VALUE_BYTES: usize = 16 * 1024;

/// Why a [`Masker`] could not be built. Never carries a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaskError {
    /// An empty value would match everywhere.
    #[error("a masked value is empty")]
    EmptyValue,
    /// Longer than [`MAX_MASKED_VALUE_BYTES`].
    #[error("a masked value is longer than {MAX_MASKED_VALUE_BYTES} bytes")]
    TooLong,
    /// The automaton could not be built (too many or too long patterns).
    #[error("masking automaton could not be built")]
    Build,
}

/// Replaces every occurrence of each injected value — and of its
/// percent-encoded and JSON-escaped spellings — with that value's
/// placeholder, in bytes and text handed back to the plugin.
///
/// Built from the `(value, placeholder)` pairs injected on one connection or
/// request. Matching is leftmost-longest: where values overlap, the one that
/// starts first wins, and of those the longest. Equal values take the first
/// pair's placeholder. Text stays valid UTF-8 (a value is UTF-8, so each
/// match starts and ends on a character boundary; the encoded spellings are
/// ASCII).
///
/// What it cannot promise: that a value split across two calls is found (use
/// a [`StreamMasker`] for data in pieces), that other encodings (base64,
/// `\u`-escaped letters, HTML entities, compression) are found, or that text
/// which merely overlaps a placeholder — a value such as `credential` —
/// does not appear inside one (docs/decisions.md, 134).
///
/// The automaton holds the values' bytes in memory that is not zeroized on
/// drop (the `aho-corasick` crate's tables); the masker lives as long as the
/// connection or request that injected them, as the values do.
///
/// ```
/// use netgrant_runtime::{placeholder, Masker};
/// let m = Masker::new([("t0k/en", placeholder("bot-token"))]).unwrap();
/// assert_eq!(m.mask_str("echo: t0k/en"), "echo: {{credential:bot-token}}");
/// assert_eq!(m.mask_str("?q=t0k%2Fen"), "?q={{credential:bot-token}}");
/// assert_eq!(m.mask_bytes(b"nothing here").as_ref(), b"nothing here");
/// ```
#[derive(Clone)]
pub struct Masker {
    /// `None` when there is nothing to mask.
    automaton: Option<AhoCorasick>,
    /// Per pattern (value or spelling), its placeholder.
    replacements: Vec<Box<str>>,
    /// Longest pattern, in bytes.
    max_len: usize,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("patterns", &self.replacements.len())
            .finish_non_exhaustive()
    }
}

impl Masker {
    /// A masker for these `(value, placeholder)` pairs (values from
    /// `SecretString::expose_secret`).
    pub fn new<V, P>(pairs: impl IntoIterator<Item = (V, P)>) -> Result<Self, MaskError>
    where
        V: AsRef<str>,
        P: AsRef<str>,
    {
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut replacements = Vec::new();
        for (value, ph) in pairs {
            let value = value.as_ref();
            if value.is_empty() {
                return Err(MaskError::EmptyValue);
            }
            if value.len() > MAX_MASKED_VALUE_BYTES {
                return Err(MaskError::TooLong);
            }
            for spelling in spellings(value) {
                if !patterns.iter().any(|p| **p == *spelling) {
                    patterns.push(spelling);
                    replacements.push(Box::from(ph.as_ref()));
                }
            }
        }
        if patterns.is_empty() {
            return Ok(Masker {
                automaton: None,
                replacements,
                max_len: 0,
            });
        }
        let max_len = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns.iter().map(|p| p.as_slice()))
            .map_err(|_| MaskError::Build)?;
        Ok(Masker {
            automaton: Some(automaton),
            replacements,
            max_len,
        })
    }

    /// A masker that masks nothing.
    pub fn empty() -> Self {
        Masker {
            automaton: None,
            replacements: Vec::new(),
            max_len: 0,
        }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.automaton.is_none()
    }

    /// The longest byte sequence it looks for (0 when empty).
    pub fn max_pattern_len(&self) -> usize {
        self.max_len
    }

    /// Masks bytes (a body, a header value, a binary message).
    pub fn mask_bytes<'a>(&self, data: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(ac) = &self.automaton else {
            return Cow::Borrowed(data);
        };
        if ac.find(data).is_none() {
            return Cow::Borrowed(data);
        }
        let mut out = Vec::with_capacity(data.len());
        ac.replace_all_with_bytes(data, &mut out, |m, _, out| {
            out.extend_from_slice(self.replacements[m.pattern()].as_bytes());
            true
        });
        Cow::Owned(out)
    }

    /// Masks text (a text message, a close reason).
    pub fn mask_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.mask_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Matches start and end on character boundaries (see the type's
            // docs), and placeholders are UTF-8.
            Cow::Owned(v) => Cow::Owned(String::from_utf8(v).expect("masking keeps UTF-8")),
        }
    }

    /// A streaming masker over this one.
    pub fn stream(&self) -> StreamMasker {
        StreamMasker {
            masker: self.clone(),
            held: Zeroizing::new(Vec::new()),
        }
    }
}

/// The spellings of a value that are masked: the value, its
/// percent-encoding (every byte outside RFC 3986 unreserved, upper- and
/// lower-case hex, and with `+` for space as in forms) and its JSON string
/// escaping (`\"`, `\\`, control characters, optionally `\/`). Duplicates
/// are dropped by the caller.
pub(crate) fn spellings(value: &str) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out = vec![Zeroizing::new(value.as_bytes().to_vec())];
    for (upper, plus) in [(true, false), (false, false), (true, true), (false, true)] {
        out.push(percent_encode(value.as_bytes(), upper, plus));
    }
    for slash in [false, true] {
        out.push(json_escape(value, slash));
    }
    out
}

fn percent_encode(v: &[u8], upper: bool, plus: bool) -> Zeroizing<Vec<u8>> {
    let hex: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Zeroizing::new(Vec::with_capacity(v.len() * 3));
    for &b in v {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b),
            b' ' if plus => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]),
        }
    }
    out
}

fn json_escape(v: &str, slash: bool) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(v.len() * 2));
    for &b in v.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' if slash => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                let hex = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.extend_from_slice(&[hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]);
            }
            _ => out.push(b),
        }
    }
    out
}

/// Masks data that arrives in pieces (body chunks, frames): a value split
/// across pieces is still masked. Each [`push`](Self::push) returns what is
/// final and holds back at most the longest pattern's length minus one
/// bytes (a possible start of a value); [`finish`](Self::finish) returns the
/// rest. The output, concatenated, equals [`Masker::mask_bytes`] of the
/// input, concatenated, for any split. The held bytes are zeroized.
///
/// A piece boundary may fall inside a UTF-8 character: stream bytes, and
/// decode the whole.
///
/// ```
/// use netgrant_runtime::{placeholder, Masker};
/// let m = Masker::new([("t0ken", placeholder("a"))]).unwrap();
/// let mut s = m.stream();
/// let mut out = s.push(b"x t0");
/// out.extend(s.push(b"ken y"));
/// out.extend(s.finish());
/// assert_eq!(out, b"x {{credential:a}} y");
/// ```
pub struct StreamMasker {
    masker: Masker,
    held: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for StreamMasker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamMasker")
            .field("held_bytes", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl StreamMasker {
    /// Masks the next piece: returns the masked output that no later piece
    /// can change.
    pub fn push(&mut self, piece: &[u8]) -> Vec<u8> {
        let Some(ac) = &self.masker.automaton else {
            return piece.to_vec();
        };
        // held ++ piece, in zeroized memory (it may hold a value).
        let mut buf = Zeroizing::new(Vec::with_capacity(self.held.len() + piece.len()));
        buf.extend_from_slice(&self.held);
        buf.extend_from_slice(piece);
        // A match that starts before `safe` is complete and final: any
        // pattern starting there ends inside `buf`, so no later byte can
        // make a longer or an earlier one. From `safe` on, a match may
        // still grow, so those bytes wait.
        let safe = buf.len().saturating_sub(self.masker.max_len - 1);
        let mut out = Vec::with_capacity(buf.len());
        let mut pos = 0;
        for m in ac.find_iter(&buf[..]) {
            if m.start() >= safe {
                break;
            }
            out.extend_from_slice(&buf[pos..m.start()]);
            out.extend_from_slice(self.masker.replacements[m.pattern()].as_bytes());
            pos = m.end();
        }
        let keep_from = pos.max(safe);
        out.extend_from_slice(&buf[pos..keep_from]);
        self.held.clear();
        self.held.extend_from_slice(&buf[keep_from..]);
        out
    }

    /// Masks what is still held: the end of the data.
    pub fn finish(self) -> Vec<u8> {
        self.masker.mask_bytes(&self.held).into_owned()
    }

    /// Bytes held back (never more than the longest pattern minus one).
    pub fn held(&self) -> usize {
        self.held.len()
    }
}
