//! Tests of `mask.rs`, outside it: the fuzz crate builds `mask.rs` alone
//! and has no proptest.

use super::mask::*;
use proptest::prelude::*;

fn ph(n: &str) -> String {
    format!("{{{{credential:{n}}}}}")
}

#[test]
fn masks_values_and_their_spellings() {
    let m = Masker::new([("a b/c\"d", ph("x")), ("zz", ph("y"))]).unwrap();
    for (input, want) in [
        ("a b/c\"d", "{{credential:x}}"),
        ("1a b/c\"d2zz3", "1{{credential:x}}2{{credential:y}}3"),
        ("a%20b%2Fc%22d", "{{credential:x}}"),
        ("a%20b%2fc%22d", "{{credential:x}}"),
        ("a+b%2Fc%22d", "{{credential:x}}"),
        (r#"{"t":"a b/c\"d"}"#, r#"{"t":"{{credential:x}}"}"#),
        (r#""a b\/c\"d""#, r#""{{credential:x}}""#),
        ("a b/c", "a b/c"),
        ("", ""),
    ] {
        assert_eq!(m.mask_str(input), want, "{input:?}");
    }
}

#[test]
fn longest_wins_and_equal_values_take_the_first() {
    let m = Masker::new([("abc", ph("s")), ("abcdef", ph("l")), ("abc", ph("t"))]).unwrap();
    assert_eq!(
        m.mask_str("abcdef abc abcde"),
        "{{credential:l}} {{credential:s}} {{credential:s}}de"
    );
    // Leftmost first: "xab" starts before "abcdef".
    let m = Masker::new([("xab", ph("a")), ("abcdef", ph("b"))]).unwrap();
    assert_eq!(m.mask_str("xabcdef"), "{{credential:a}}cdef");
}

#[test]
fn text_stays_utf8() {
    let m = Masker::new([("ü€", ph("x")), ("é", ph("y"))]).unwrap();
    assert_eq!(m.mask_str("aü€é€"), "a{{credential:x}}{{credential:y}}€");
    assert_eq!(m.mask_str("%C3%BC%E2%82%AC"), "{{credential:x}}");
}

#[test]
fn refuses_empty_and_huge_values() {
    assert_eq!(Masker::new([("", "p")]).unwrap_err(), MaskError::EmptyValue);
    let big = "a".repeat(MAX_MASKED_VALUE_BYTES + 1);
    assert_eq!(
        Masker::new([(big.as_str(), "p")]).unwrap_err(),
        MaskError::TooLong
    );
    let none: [(&str, &str); 0] = [];
    let m = Masker::new(none).unwrap();
    assert!(m.is_empty());
    assert_eq!(m.mask_str("x"), "x");
}

#[test]
fn debug_shows_no_value() {
    let m = Masker::new([("SENTINEL", ph("x"))]).unwrap();
    let mut s = m.stream();
    let _ = s.push(b"SENTI");
    assert!(!format!("{m:?} {s:?}").contains("SENTI"));
}

#[test]
fn stream_holds_back_a_bounded_tail() {
    let m = Masker::new([("abcd", ph("x"))]).unwrap();
    assert_eq!(m.max_pattern_len(), 4);
    let mut s = m.stream();
    assert_eq!(s.push(b"0123ab"), b"012");
    assert_eq!(s.held(), 3);
    assert_eq!(s.push(b"c"), b"3");
    assert_eq!(s.held(), 3);
    assert_eq!(s.push(b"d!"), b"{{credential:x}}");
    assert_eq!(s.finish(), b"!");
}

/// The one-shot reference: at each position the longest pattern that
/// starts there (the first on a tie), else one byte. Also returns the
/// spans of the placeholders it wrote.
fn reference(input: &[u8], pats: &[(Vec<u8>, String)]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let (mut out, mut spans, mut i) = (Vec::new(), Vec::new(), 0);
    while i < input.len() {
        let best = pats.iter().filter(|(p, _)| input[i..].starts_with(p)).fold(
            None::<&(Vec<u8>, String)>,
            |b, p| match b {
                Some(b) if b.0.len() >= p.0.len() => Some(b),
                _ => Some(p),
            },
        );
        match best {
            Some((p, r)) => {
                spans.push((out.len(), out.len() + r.len()));
                out.extend_from_slice(r.as_bytes());
                i += p.len();
            }
            None => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    (out, spans)
}

fn occurrences(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    (0..=hay.len().saturating_sub(needle.len()))
        .filter(|&i| hay.len() >= needle.len() && hay[i..].starts_with(needle))
        .collect()
}

/// Values over a small alphabet that shares characters with the
/// placeholders, so values overlap each other, the text and the
/// placeholders; the input is pieces of values and noise.
fn case() -> impl Strategy<Value = (Vec<String>, String, Vec<usize>)> {
    let value = "[ab{}:%/\" ]{1,6}";
    (
        proptest::collection::vec(value, 1..4),
        proptest::collection::vec((0usize..4, "[abc{}%2F:x\" ]{0,4}"), 0..12),
        proptest::collection::vec(0usize..64, 0..6),
    )
        .prop_map(|(values, parts, cuts)| {
            let mut input = String::new();
            for (i, noise) in parts {
                if let Some(v) = values.get(i) {
                    input.push_str(v);
                }
                input.push_str(&noise);
            }
            (values, input, cuts)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn streaming_equals_one_shot_and_no_value_survives((values, input, cuts) in case()) {
        let pairs: Vec<(String, String)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), ph(&format!("c{i}"))))
            .collect();
        let m = Masker::new(pairs.iter().map(|(v, p)| (v, p))).unwrap();
        let one = m.mask_bytes(input.as_bytes()).into_owned();

        // Against the reference, over every spelling.
        let pats: Vec<(Vec<u8>, String)> = {
            let mut v: Vec<(Vec<u8>, String)> = Vec::new();
            for (val, p) in &pairs {
                for s in spellings(val) {
                    if !v.iter().any(|(q, _)| *q == *s) {
                        v.push((s.to_vec(), p.clone()));
                    }
                }
            }
            v
        };
        let (want, spans) = reference(input.as_bytes(), &pats);
        prop_assert_eq!(&one, &want);

        // No value (or spelling) outside the placeholders it wrote.
        for (p, _) in &pats {
            for at in occurrences(&one, p) {
                let end = at + p.len();
                prop_assert!(
                    spans.iter().any(|&(s, e)| at < e && s < end),
                    "{:?} survives at {} in {:?}", String::from_utf8_lossy(p), at,
                    String::from_utf8_lossy(&one)
                );
            }
        }

        // Streaming, cut at the given offsets.
        let bytes = input.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort();
        let mut s = m.stream();
        let (mut out, mut from) = (Vec::new(), 0);
        for c in cuts.into_iter().chain([bytes.len()]) {
            out.extend(s.push(&bytes[from..c]));
            prop_assert!(s.held() < m.max_pattern_len());
            from = c;
        }
        out.extend(s.finish());
        prop_assert_eq!(out, one);
    }
}

#[test]
fn the_property_is_not_vacuous() {
    // Runs the property's generator: most inputs must contain a value.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut with, n) = (0, 500);
    for _ in 0..n {
        let (values, input, _) = case().new_tree(&mut runner).unwrap().current();
        if values.iter().any(|v| input.contains(v.as_str())) {
            with += 1;
        }
    }
    assert!(with * 2 > n, "only {with} of {n} inputs contain a value");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// Substitute, then mask what the peer echoes: the template comes back.
    /// Values are distinct `[A-Z]` strings and the text between placeholders
    /// is non-empty lower case, so values cannot run together.
    #[test]
    fn substitute_then_mask_round_trips(
        values in proptest::collection::hash_set("[A-Z]{1,8}", 1..4),
        pieces in proptest::collection::vec((0usize..4, "[a-z \"%/]{1,6}"), 0..8),
    ) {
        use super::inject::{placeholder, substitute_placeholders};
        use secrecy::SecretString;
        let values: Vec<String> = values.into_iter().collect();
        let names: Vec<String> = (0..values.len()).map(|i| format!("c{i}")).collect();
        let secrets: Vec<SecretString> = values.iter().map(|v| SecretString::from(v.as_str())).collect();
        let bound: Vec<(&str, &SecretString)> = names.iter().map(|n| n.as_str()).zip(&secrets).collect();
        let mut template = String::new();
        for (i, text) in pieces {
            template.push_str(&text);
            if i < names.len() {
                template.push_str(&placeholder(&names[i]));
            }
            template.push('.');
        }
        let sent = substitute_placeholders(&template, &bound).unwrap();
        let m = Masker::new(values.iter().zip(&names).map(|(v, n)| (v.as_str(), placeholder(n)))).unwrap();
        prop_assert_eq!(m.mask_str(&sent), template.as_str());
    }
}
