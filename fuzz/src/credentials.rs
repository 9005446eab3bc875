//! Credential substitution and masking (`runtime/src/credentials/`,
//! `mask.rs` and `inject.rs` built here on their own, without the rest of
//! the runtime): the input type and every invariant of the `credentials`
//! target.
//!
//! Invariants: no panic; masking equals a naive leftmost-longest reference
//! over every masked spelling, and no spelling of a value survives outside
//! the placeholders it wrote; streaming, for any split, equals one-shot;
//! substitution agrees with a plain expansion of a template built from
//! pieces (unbound names and malformed placeholders fail, naming what the
//! reference names); substitute-then-mask gives the template back when the
//! values cannot run together, and mask-then-substitute gives the text back
//! with encoded spellings decoded.

use crate::cred_inject::{
    placeholder, substitute_placeholders, SubstituteError, PLACEHOLDER_PREFIX,
};
use crate::cred_mask::{spellings, Masker};
use arbitrary::Arbitrary;
use secrecy::SecretString;

/// A fuzz case.
#[derive(Arbitrary, Debug)]
pub struct Input {
    /// Credential values (names `c0`, `c1`, …; at most 4 used).
    pub values: Vec<String>,
    /// Force values to `[A-Z]` so that they cannot overlap the template's
    /// text or the placeholders (the exact round trip).
    pub upper: bool,
    /// The outgoing template.
    pub pieces: Vec<Piece>,
    /// Incoming text to mask, in pieces.
    pub incoming: Vec<Incoming>,
    /// Where the incoming bytes are split for streaming (modulo its length).
    pub cuts: Vec<u16>,
}

/// A piece of incoming text.
#[derive(Arbitrary, Debug)]
pub enum Incoming {
    /// Any text.
    Text(String),
    /// A value, as it is.
    Value(u8),
    /// A masked spelling of a value (percent-encoded, JSON-escaped, …).
    Spelling(u8, u8),
    /// The first bytes of a value (on a character boundary).
    Prefix(u8, u8),
}

/// A piece of a template.
#[derive(Arbitrary, Debug)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// `{{credential:cN}}` (N ≥ number of values: unbound).
    Placeholder(u8),
    /// A raw name between the braces (may be malformed).
    Raw(String),
}

/// Runs every invariant on one input.
pub fn run(input: &Input) {
    let values: Vec<String> = input
        .values
        .iter()
        .take(4)
        .map(|v| {
            let v: String = if input.upper {
                v.bytes().map(|b| char::from(b'A' + b % 26)).collect()
            } else {
                v.clone()
            };
            v.chars().take(32).collect::<String>()
        })
        .filter(|v| !v.is_empty())
        .collect();
    let names: Vec<String> = (0..values.len()).map(|i| format!("c{i}")).collect();
    let pairs: Vec<(&str, String)> = values
        .iter()
        .zip(&names)
        .map(|(v, n)| (v.as_str(), placeholder(n)))
        .collect();
    let masker = Masker::new(pairs.iter().map(|(v, p)| (*v, p.as_str()))).expect("masker");
    let pats = patterns(&pairs);

    let incoming = incoming_text(&input.incoming, &values);
    check_mask(&masker, &pats, incoming.as_bytes(), &input.cuts);
    if !incoming.contains(PLACEHOLDER_PREFIX) {
        // mask, then substitute: the text back, spellings decoded.
        let masked = masker.mask_str(&incoming);
        let secrets: Vec<SecretString> = values
            .iter()
            .map(|v| SecretString::from(v.as_str()))
            .collect();
        let bound: Vec<(&str, &SecretString)> =
            names.iter().map(|n| n.as_str()).zip(&secrets).collect();
        let back = substitute_placeholders(&masked, &bound)
            .unwrap_or_else(|e| panic!("masked text does not substitute: {e}"));
        let (_, _, decoded) = reference(incoming.as_bytes(), &pats);
        assert_eq!(back.as_bytes(), decoded.as_slice());
    }
    check_substitute(input, &values, &names, &masker, &pats);
}

/// The incoming text: pieces of text, values, their spellings and prefixes.
fn incoming_text(pieces: &[Incoming], values: &[String]) -> String {
    let mut out = String::new();
    let pick = |i: &u8| values.get(usize::from(*i) % values.len().max(1));
    for p in pieces.iter().take(32) {
        match p {
            Incoming::Text(t) => out.extend(t.chars().take(32)),
            Incoming::Value(i) => out.push_str(pick(i).map_or("", |v| v.as_str())),
            Incoming::Spelling(i, k) => {
                if let Some(v) = pick(i) {
                    let all = spellings(v);
                    let s = &all[usize::from(*k) % all.len()];
                    out.push_str(&String::from_utf8_lossy(s));
                }
            }
            Incoming::Prefix(i, n) => {
                if let Some(v) = pick(i) {
                    out.extend(v.chars().take(usize::from(*n) % v.chars().count().max(1)));
                }
            }
        }
    }
    out
}

/// Every masked spelling with its placeholder and raw value, first wins.
fn patterns(pairs: &[(&str, String)]) -> Vec<(Vec<u8>, String, String)> {
    let mut out: Vec<(Vec<u8>, String, String)> = Vec::new();
    for (v, p) in pairs {
        for s in spellings(v) {
            if !out.iter().any(|(q, _, _)| *q == *s) {
                out.push((s.to_vec(), p.clone(), v.to_string()));
            }
        }
    }
    out
}

/// Naive leftmost-longest masking: the output, the placeholder spans in it,
/// and the input with each match replaced by its raw value.
fn reference(
    input: &[u8],
    pats: &[(Vec<u8>, String, String)],
) -> (Vec<u8>, Vec<(usize, usize)>, Vec<u8>) {
    let (mut out, mut spans, mut decoded, mut i) = (Vec::new(), Vec::new(), Vec::new(), 0);
    while i < input.len() {
        let mut best: Option<&(Vec<u8>, String, String)> = None;
        for p in pats {
            if input[i..].starts_with(&p.0) && best.is_none_or(|b| b.0.len() < p.0.len()) {
                best = Some(p);
            }
        }
        match best {
            Some((pat, ph, raw)) => {
                spans.push((out.len(), out.len() + ph.len()));
                out.extend_from_slice(ph.as_bytes());
                decoded.extend_from_slice(raw.as_bytes());
                i += pat.len();
            }
            None => {
                out.push(input[i]);
                decoded.push(input[i]);
                i += 1;
            }
        }
    }
    (out, spans, decoded)
}

fn check_mask(masker: &Masker, pats: &[(Vec<u8>, String, String)], input: &[u8], cuts: &[u16]) {
    let one = masker.mask_bytes(input).into_owned();
    let (want, spans, _) = reference(input, pats);
    assert_eq!(one, want, "masking differs from the reference");
    for (p, _, _) in pats {
        if p.len() > one.len() {
            continue;
        }
        for at in 0..=one.len() - p.len() {
            if one[at..].starts_with(p) {
                let end = at + p.len();
                assert!(
                    spans.iter().any(|&(s, e)| at < e && s < end),
                    "a value survives masking at {at}"
                );
            }
        }
    }
    let mut cuts: Vec<usize> = cuts
        .iter()
        .take(16)
        .map(|&c| usize::from(c) % (input.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut s = masker.stream();
    let (mut out, mut from) = (Vec::new(), 0);
    for c in cuts.into_iter().chain([input.len()]) {
        out.extend(s.push(&input[from..c]));
        assert!(
            s.held() < masker.max_pattern_len().max(1),
            "held back too much"
        );
        from = c;
    }
    out.extend(s.finish());
    assert_eq!(out, one, "streaming differs from one-shot");
}

fn check_substitute(
    input: &Input,
    values: &[String],
    names: &[String],
    masker: &Masker,
    pats: &[(Vec<u8>, String, String)],
) {
    let secrets: Vec<SecretString> = values
        .iter()
        .map(|v| SecretString::from(v.as_str()))
        .collect();
    let bound: Vec<(&str, &SecretString)> =
        names.iter().map(|n| n.as_str()).zip(&secrets).collect();

    // The template as text, and what the reference expects of it.
    let mut text = String::new();
    let mut expanded = String::new();
    let mut unbound: Option<String> = None;
    let mut malformed = false;
    // Whether values can run into each other or into text (then the
    // round trip may legitimately split them differently).
    let mut clean = input.upper;
    let mut last_was_value = false;
    for piece in input.pieces.iter().take(32) {
        match piece {
            Piece::Text(t) => {
                // Keep literal text free of braces and of value letters, so
                // the reference expansion is exact.
                let t: String = t
                    .chars()
                    .filter(|c| !matches!(c, '{' | '}' | 'A'..='Z'))
                    .take(16)
                    .collect();
                text.push_str(&t);
                expanded.push_str(&t);
                last_was_value &= t.is_empty();
            }
            Piece::Placeholder(i) => {
                let name = format!("c{}", i % 6);
                text.push_str(&placeholder(&name));
                match names.iter().position(|n| *n == name) {
                    Some(k) => expanded.push_str(&values[k]),
                    None => {
                        unbound.get_or_insert(name);
                    }
                }
                clean &= !last_was_value;
                last_was_value = true;
            }
            Piece::Raw(r) => {
                let r: String = r
                    .chars()
                    .filter(|c| !matches!(c, '{' | '}'))
                    .take(70)
                    .collect();
                let ok_name = !r.is_empty()
                    && r.len() <= 64
                    && !r.starts_with('-')
                    && r.bytes()
                        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'));
                text.push_str(PLACEHOLDER_PREFIX);
                text.push_str(&r);
                text.push_str("}}");
                if !ok_name {
                    malformed = true;
                    // Stop here: after a malformed placeholder the reference
                    // would have to re-scan.
                    break;
                }
                match names.iter().position(|n| *n == r) {
                    Some(k) => expanded.push_str(&values[k]),
                    None => {
                        unbound.get_or_insert(r);
                    }
                }
                clean &= !last_was_value;
                last_was_value = true;
            }
        }
        if unbound.is_some() {
            break;
        }
    }
    let distinct = values
        .iter()
        .enumerate()
        .all(|(i, v)| !values[..i].contains(v));
    match substitute_placeholders(&text, &bound) {
        Ok(out) => {
            assert!(unbound.is_none() && !malformed, "{text:?} substituted");
            assert_eq!(out.as_str(), expanded);
            // Masking what was sent gives the template back.
            let (masked, _, _) = reference(out.as_bytes(), pats);
            assert_eq!(
                masker.mask_bytes(out.as_bytes()).as_ref(),
                masked.as_slice()
            );
            if clean && distinct {
                assert_eq!(masker.mask_str(&out), text, "no round trip");
            }
        }
        Err(SubstituteError::NotBound(n)) => {
            assert_eq!(Some(&n), unbound.as_ref(), "{text:?}");
            assert!(!malformed);
        }
        Err(SubstituteError::Malformed(at)) => {
            assert!(malformed, "{text:?}");
            assert!(text[at..].starts_with(PLACEHOLDER_PREFIX));
        }
    }
}
