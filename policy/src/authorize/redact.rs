//! Redaction and escaping for every output medium.
//!
//! URLs in messages lose their userinfo, query values and fragments, and every
//! piece of plugin-written text is escaped for where it is shown (terminal,
//! markdown, GitHub workflow commands), so a manifest can neither leak a
//! secret into logs nor forge or hide review output.

use std::borrow::Cow;
use std::fmt::Write as _;
use url::{Position, Url};

/// Redacted URLs are at most this many chars.
pub const MAX_REDACTED_LEN: usize = 2048;

/// Stands in for everything redaction removes.
const HIDDEN: &str = "…";

/// Whether `c` is a bidirectional control (U+202A–U+202E, U+2066–U+2069,
/// U+200E, U+200F, U+061C), which can reorder how text is displayed.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Invisible formatting characters that can hide or smuggle text: zero-width
/// characters, line/paragraph separators, the BOM, soft hyphen, word joiner
/// and invisible operators, interlinear annotations and tag characters.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Whether [`escape_terminal`] rewrites `c`: controls (C0, DEL, C1), bidi
/// controls and invisible formatting characters.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || is_invisible_format(c)
}

fn push_escaped(out: &mut String, c: char) {
    if needs_escape(c) {
        // Writing to a String cannot fail.
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    } else {
        out.push(c);
    }
}

/// How many chars `c` takes once escaped.
fn escaped_len(c: char) -> usize {
    if needs_escape(c) {
        // `\u{` + hex digits + `}`
        let bits = 32 - (c as u32).leading_zeros() as usize;
        4 + bits.div_ceil(4).max(1)
    } else {
        1
    }
}

/// Escapes text for a terminal: every control, bidi control and invisible
/// formatting char becomes `\u{..}` text, so ANSI escapes, reordering and
/// hidden text cannot reach the screen. Everything else is unchanged.
pub fn escape_terminal(s: &str) -> String {
    // Printable ASCII (most text, every constant reason) has nothing to
    // escape: one test per byte, one copy.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s.to_owned();
    }
    escape_each(s)
}

/// [`escape_terminal`] char by char.
fn escape_each(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// Escapes text for markdown (and the HTML markdown allows): first
/// [`escape_terminal`], then a backslash before `` \ ` * _ { } [ ] < > ( ) # + - ! | ~ ``
/// and `&` as `&amp;`. The result has no newline, so it is safe in a table
/// cell.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in escape_terminal(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '<' | '>' | '(' | ')' | '#' | '+'
            | '-' | '!' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for a Markdown code span inside a table cell (`` `…` ``):
/// backslash escapes do not work in code spans, so backticks become `%60`
/// (their URL encoding) and pipes are escaped as GFM tables require; control
/// and bidi characters are escaped as for a terminal.
pub fn escape_markdown_code(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in escape_terminal(s).chars() {
        match c {
            '`' => out.push_str("%60"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

fn escape_github(s: &str, property: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' if property => out.push_str("%3A"),
            ',' if property => out.push_str("%2C"),
            _ => push_escaped(&mut out, c),
        }
    }
    out
}

/// Escapes the message of a GitHub workflow command (`::error::message`):
/// `%` as `%25`, CR as `%0D`, LF as `%0A`, then [`escape_terminal`] on the
/// rest. With no newline left, the text cannot start a command of its own.
pub fn escape_github_data(s: &str) -> String {
    escape_github(s, false)
}

/// Escapes a property of a GitHub workflow command (`file=`, `title=`): as
/// [`escape_github_data`], plus `:` as `%3A` and `,` as `%2C`.
pub fn escape_github_property(s: &str) -> String {
    escape_github(s, true)
}

/// Replaces every non-empty query value by `…`, keeping the keys. A
/// non-empty part with no `=` is replaced whole: it may as well be a value
/// (an API key passed bare, `?sk-…`) as a key, and only keys are shown
/// (decision 200).
fn redact_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    push_redacted_query(&mut out, query);
    out
}

/// [`redact_query`] onto the end of `out`.
fn push_redacted_query(out: &mut String, query: &str) {
    for (i, part) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match part.split_once('=') {
            Some((key, value)) if !value.is_empty() => {
                out.push_str(key);
                out.push('=');
                out.push_str(HIDDEN);
            }
            Some(_) => out.push_str(part),
            None if part.is_empty() => {}
            None => out.push_str(HIDDEN),
        }
    }
}

fn redact_fragment(fragment: &str) -> &'static str {
    if fragment.is_empty() {
        "#"
    } else {
        "#…"
    }
}

/// Escapes `s`, cutting out its middle (replaced by `…`) so the result is at
/// most `max` chars. Escapes are never cut in half.
fn truncate_middle(s: &str, max: usize) -> String {
    let total: usize = s.chars().map(escaped_len).sum();
    if total <= max {
        return escape_terminal(s);
    }
    if max == 0 {
        return String::new();
    }
    let budget = max - 1;
    let (head_budget, tail_budget) = (budget - budget / 2, budget / 2);
    let mut head_end = 0;
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += escaped_len(c);
        if used > head_budget {
            break;
        }
        head_end = i + c.len_utf8();
    }
    let mut tail_start = s.len();
    used = 0;
    for (i, c) in s.char_indices().rev() {
        used += escaped_len(c);
        if used > tail_budget {
            break;
        }
        tail_start = i;
    }
    // Head and tail cannot meet: together they are shorter than the whole.
    let mut out = escape_terminal(&s[..head_end]);
    out.push_str(HIDDEN);
    out.push_str(&escape_terminal(&s[tail_start..]));
    out
}

/// Redacts a parsed URL for display: userinfo dropped, query values `…`, a
/// fragment `#…`, then escaped for terminals and bounded to
/// [`MAX_REDACTED_LEN`] chars. The scheme, host and port are kept whole
/// (unless they alone exceed the bound); the rest is cut in the middle.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    // These fail only for URLs that cannot have userinfo anyway.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    // Up to the path, not the port: a URL without a host whose path starts
    // with `//` serializes as `scheme:/.//…`, and the `/.` between the two
    // positions keeps `//` from reading as an authority.
    let origin = &u[..Position::BeforePath];
    let mut rest = u[Position::BeforePath..Position::AfterPath].to_string();
    if let Some(q) = u.query() {
        rest.push('?');
        push_redacted_query(&mut rest, q);
    }
    if let Some(f) = u.fragment() {
        rest.push_str(redact_fragment(f));
    }
    let origin_len: usize = origin.chars().map(escaped_len).sum();
    // Keep room for at least a short path around the ellipsis.
    if origin_len + 16 <= MAX_REDACTED_LEN {
        let mut out = escape_terminal(origin);
        out.push_str(&truncate_middle(&rest, MAX_REDACTED_LEN - origin_len));
        out
    } else {
        truncate_middle(&format!("{origin}{rest}"), MAX_REDACTED_LEN)
    }
}

/// [`redact`], without its copy and re-serialization of the URL in the
/// common case — no userinfo, and a serialization (ASCII, no controls) short
/// enough not to be cut. Then only query values and the fragment are hidden,
/// by the same rules (`key=value` → `key=…`, `#fragment` → `#…`), and a URL
/// with neither is returned borrowed. Debug builds check the result against
/// [`redact`] on every call.
pub(crate) fn redact_parsed(url: &Url) -> Cow<'_, str> {
    let s = url.as_str();
    let simple = url.username().is_empty()
        && url.password().is_none()
        && s.len() + 16 <= MAX_REDACTED_LEN
        && s.bytes().all(|b| b.is_ascii() && !b.is_ascii_control());
    if !simple {
        return Cow::Owned(redact(url));
    }
    let shown = match (url.query(), url.fragment()) {
        (None, None) => Cow::Borrowed(s),
        (query, fragment) => {
            let mut out = String::with_capacity(s.len() + 8);
            out.push_str(&url[..Position::AfterPath]);
            if let Some(query) = query {
                out.push('?');
                push_redacted_query(&mut out, query);
            }
            if let Some(fragment) = fragment {
                out.push_str(if fragment.is_empty() { "#" } else { "#…" });
            }
            Cow::Owned(out)
        }
    };
    debug_assert_eq!(shown, redact(url));
    shown
}

/// Where the authority of a URL with a special scheme (`http`, `https`,
/// `ws`, `wss`) starts: WHATWG reads `wss:host`, `wss:/host` and `wss:\\host`
/// like `wss://host`, so userinfo can follow the colon without `//`.
fn special_authority_start(text: &str) -> Option<usize> {
    let colon = text.find(':')?;
    let scheme = text[..colon].trim_start_matches(|c: char| c <= ' ');
    if !["http", "https", "ws", "wss"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return None;
    }
    let rest = &text[colon + 1..];
    Some(colon + 1 + (rest.len() - rest.trim_start_matches(['/', '\\']).len()))
}

/// Redacts a URL given as text. If it parses, see [`redact`]. Otherwise, best
/// effort on the text: everything between the authority start (after
/// `http:`, `https:`, `ws:` or `wss:` and any slashes, else after `://`) and
/// the last `@` before the next `/` is removed, query values and the
/// fragment are hidden the same way, controls are escaped and the output is
/// cut in the middle to at most [`MAX_REDACTED_LEN`] chars.
pub fn redact_url(raw: &str) -> String {
    if let Ok(url) = Url::parse(raw) {
        return redact(&url);
    }
    let mut text = raw.to_string();
    let start = special_authority_start(&text).or_else(|| text.find("://").map(|i| i + 3));
    if let Some(start) = start {
        let end = text[start..].find('/').map_or(text.len(), |j| start + j);
        if let Some(at) = text[start..end].rfind('@') {
            text.replace_range(start..start + at + 1, "");
        }
    }
    let (before_fragment, fragment) = match text.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = match before_fragment.split_once('?') {
        Some((base, q)) => format!("{base}?{}", redact_query(q)),
        None => before_fragment.to_string(),
    };
    if let Some(f) = fragment {
        out.push_str(redact_fragment(f));
    }
    truncate_middle(&out, MAX_REDACTED_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redact_url_table() {
        #[rustfmt::skip]
        let cases = [
            // userinfo tricks
            ("wss://user:pass@host/", "wss://host/"),
            ("wss://user@host/", "wss://host/"),
            ("wss://:pass@host/", "wss://host/"),
            ("wss://a@b@host/", "wss://host/"),
            ("wss://us%40er:pa%40ss@host/x", "wss://host/x"),
            ("https://user:pass@host:8443/p", "https://host:8443/p"),
            // query values and fragments
            ("https://host/?token=abc&x=1", "https://host/?token=…&x=…"),
            ("https://host/p?a=1&b&c=", "https://host/p?a=…&…&c="),
            ("https://host/p?sk-live-abc", "https://host/p?…"),
            ("https://host/p?&&x", "https://host/p?&&…"),
            ("https://host/p?a=1=2", "https://host/p?a=…"),
            ("https://host/p?", "https://host/p?"),
            ("https://host/p#secret", "https://host/p#…"),
            ("https://host/p#", "https://host/p#"),
            ("wss://u:p@host/p?k=v#f", "wss://host/p?k=…#…"),
            ("https://host/?a=x%0Ay", "https://host/?a=…"),
            ("https://host/?%1B%5B31m=1", "https://host/?%1B%5B31m=…"),
            ("https://Example.COM/A", "https://example.com/A"),
            ("https://[::1]:9000/", "https://[::1]:9000/"),
            // unparseable: best effort on the text
            ("wss://user:pass@ho st/x?token=abc#frag", "wss://ho st/x?token=…#…"),
            ("wss://a@b@ho st/", "wss://ho st/"),
            ("wss://user:pass@host:99999/", "wss://host:99999/"),
            ("wss://user:pa?ss@host:x/p", "wss://host:x/p"),
            ("not a url?secret=1", "not a url?secret=…"),
            ("user:pass@host/path", "user:pass@host/path"),
            ("ws://bad host/\u{1b}[31m", "ws://bad host/\\u{1b}[31m"),
            ("ws://bad host/\u{202e}txt", "ws://bad host/\\u{202e}txt"),
            ("", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_url(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn redacted_urls_are_bounded_and_keep_the_host() {
        let long = format!("https://api.example.com/{}/end?k=v", "a".repeat(5000));
        let r = redact_url(&long);
        assert_eq!(r.chars().count(), MAX_REDACTED_LEN);
        assert!(r.starts_with("https://api.example.com/aaa"), "{r}");
        assert!(r.ends_with("aaa/end?k=…"), "{r}");
        assert!(r.contains("a…a"));

        let long_text = format!("wss://u:p@bad host/{}?k=v", "\u{1b}".repeat(3000));
        let r = redact_url(&long_text);
        assert!(r.chars().count() <= MAX_REDACTED_LEN);
        assert!(r.starts_with("wss://bad host/\\u{1b}"), "{}", &r[..40]);
        assert!(r.ends_with("\\u{1b}?k=…"), "{}", &r[r.len() - 40..]);
        assert!(!r.contains('\u{1b}'));

        // exactly at the bound: unchanged
        let path = "b".repeat(MAX_REDACTED_LEN - "https://h/".len());
        let exact = format!("https://h/{path}");
        assert_eq!(redact_url(&exact), exact);
    }

    #[test]
    fn truncate_middle_respects_the_budget() {
        for max in 0..40 {
            let s = "ab\u{1b}cd\u{202e}ef".repeat(3);
            let out = truncate_middle(&s, max);
            assert!(out.chars().count() <= max, "{max}: {out}");
            assert!(!out.contains('\u{1b}'));
        }
        assert_eq!(truncate_middle("abcdef", 6), "abcdef");
        assert_eq!(truncate_middle("abcdefg", 6), "abc…fg");
    }

    #[test]
    fn escape_terminal_table() {
        let cases = [
            ("plain text", "plain text"),
            ("\u{1b}[31mred\u{1b}[0m", "\\u{1b}[31mred\\u{1b}[0m"),
            ("a\nb\rc\td", "a\\u{a}b\\u{d}c\\u{9}d"),
            (
                "nul\0del\u{7f}c1\u{85}\u{9b}",
                "nul\\u{0}del\\u{7f}c1\\u{85}\\u{9b}",
            ),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            (
                "\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}",
                "\\u{2066}\\u{2069}\\u{200e}\\u{200f}\\u{61c}",
            ),
            (
                "zero\u{200b}width\u{200d}\u{feff}",
                "zero\\u{200b}width\\u{200d}\\u{feff}",
            ),
            ("line\u{2028}para\u{2029}", "line\\u{2028}para\\u{2029}"),
            ("tag\u{e0041}", "tag\\u{e0041}"),
            ("unicode é ✓ 日本", "unicode é ✓ 日本"),
            ("back\\slash", "back\\slash"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_terminal(input), want, "{input:?}");
        }
    }

    /// The printable-ASCII shortcut says what the char-by-char escape says,
    /// for every char up to U+00FF alone and inside plain text.
    #[test]
    fn escape_terminal_shortcut_agrees() {
        let mut shortcut = 0;
        for c in (0..=0xffu32).filter_map(char::from_u32) {
            for s in [c.to_string(), format!("ab{c}cd")] {
                assert_eq!(escape_terminal(&s), escape_each(&s), "{s:?}");
                shortcut += usize::from(s.bytes().all(|b| (0x20..0x7f).contains(&b)));
            }
        }
        // The premise is met: both sides of the shortcut are exercised.
        assert_eq!(shortcut, 2 * 95);
    }

    #[test]
    fn bidi_controls() {
        for c in [
            '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{61c}',
        ] {
            assert!(is_bidi_control(c), "{c:?}");
        }
        for c in [
            'a', '\u{2029}', '\u{2065}', '\u{206a}', '\u{200d}', '\u{1b}',
        ] {
            assert!(!is_bidi_control(c), "{c:?}");
        }
    }

    #[test]
    fn escape_markdown_table() {
        let cases = [
            ("plain", "plain"),
            ("a|b", "a\\|b"),
            ("<!-- hidden -->", "\\<\\!\\-\\- hidden \\-\\-\\>"),
            ("<script>x</script>", "\\<script\\>x\\</script\\>"),
            ("[link](http://x)", "\\[link\\]\\(http://x\\)"),
            (
                "**bold** _it_ `code` ~s~",
                "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\~s\\~",
            ),
            ("# h + {x}", "\\# h \\+ \\{x\\}"),
            ("a & b &amp;", "a &amp; b &amp;amp;"),
            ("back\\slash", "back\\\\slash"),
            ("line\nbreak", "line\\\\u\\{a\\}break"),
            ("\u{1b}[2J", "\\\\u\\{1b\\}\\[2J"),
        ];
        for (input, want) in cases {
            let got = escape_markdown(input);
            assert_eq!(got, want, "{input:?}");
            assert!(!got.contains(['\n', '\r']));
        }
    }

    #[test]
    fn escape_github_table() {
        let data = [
            ("plain", "plain"),
            ("x\n::error::forged", "x%0A::error::forged"),
            ("x\r\n::warning::y", "x%0D%0A::warning::y"),
            ("already %0A encoded", "already %250A encoded"),
            ("100%", "100%25"),
            ("\u{1b}[31m", "\\u{1b}[31m"),
            ("a\u{2028}b\u{85}c", "a\\u{2028}b\\u{85}c"),
            ("a:b,c", "a:b,c"),
        ];
        for (input, want) in data {
            let got = escape_github_data(input);
            assert_eq!(got, want, "{input:?}");
            assert!(!got.contains(['\n', '\r']));
        }
        let property = [
            ("plugin.toml", "plugin.toml"),
            ("a:b,c", "a%3Ab%2Cc"),
            (
                "x\n::error file=a::forged",
                "x%0A%3A%3Aerror file=a%3A%3Aforged",
            ),
            ("50%,", "50%25%2C"),
        ];
        for (input, want) in property {
            assert_eq!(escape_github_property(input), want, "{input:?}");
        }
    }

    proptest! {
        #[test]
        fn escape_terminal_is_escape_each(s in "(\\PC|\\pC| |[a-z]){0,12}") {
            prop_assert_eq!(escape_terminal(&s), escape_each(&s));
        }

        #[test]
        fn secrets_never_survive_redaction(
            user in "[A-Z][A-Za-z0-9]{3,11}",
            pass in "[A-Z][A-Za-z0-9]{3,11}",
            v1 in "[A-Z][A-Za-z0-9]{3,11}",
            v2 in "[A-Z][A-Za-z0-9]{3,11}",
            frag in "[A-Z][A-Za-z0-9]{3,11}",
            port in prop_oneof![Just(""), Just(":8080"), Just(":99999")],
            host in prop_oneof![Just("example.com"), Just("bad host"), Just("[::1]")],
        ) {
            let raw = format!("wss://{user}:{pass}@{host}{port}/p?k1={v1}&k2={v2}#{frag}");
            let out = redact_url(&raw);
            for secret in [&user, &pass, &v1, &v2, &frag] {
                prop_assert!(!out.contains(secret.as_str()), "{raw} -> {out}");
            }
            prop_assert!(out.contains("k1=…&k2=…#…"), "{raw} -> {out}");
        }

        #[test]
        fn escaped_text_has_no_unsafe_chars(s in any::<String>()) {
            for out in [
                escape_terminal(&s),
                escape_markdown(&s),
                escape_github_data(&s),
                escape_github_property(&s),
                redact_url(&s),
            ] {
                prop_assert!(!out.chars().any(needs_escape), "{s:?} -> {out:?}");
            }
            prop_assert_eq!(
                escape_terminal(&s).chars().count(),
                s.chars().map(escaped_len).sum::<usize>()
            );
        }
    }
}
