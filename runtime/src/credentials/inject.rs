//! Writing a value into outgoing data: placeholder substitution in text
//! messages (`message = true`) and header formatting (`header = "…"`).
//! The only code that copies a value into a message or header, and it
//! copies into zeroizing memory.
//!
//! Uses nothing else from this crate (the fuzz crate builds it alone).

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// What starts a placeholder: `{{credential:`.
pub const PLACEHOLDER_PREFIX: &str = "{{credential:";
/// What ends a placeholder: `}}`.
pub const PLACEHOLDER_SUFFIX: &str = "}}";
/// Longest credential name (docs/spec.md §9: `[a-z0-9][a-z0-9-]{0,63}`).
const MAX_NAME_BYTES: usize = 64;
/// The marker in a header format.
const SECRET_MARKER: &str = "{secret}";

/// The placeholder of a credential: `{{credential:NAME}}`, what the plugin
/// writes in place of a value and what it reads where a value was.
pub fn placeholder(name: &str) -> String {
    format!("{PLACEHOLDER_PREFIX}{name}{PLACEHOLDER_SUFFIX}")
}

/// Why a text message could not be sent. Names a credential at most, never
/// a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubstituteError {
    /// A placeholder names a credential that is not bound to this
    /// connection's rule (undeclared, unbound or not requested).
    #[error("credential `{0}` is not bound to this connection")]
    NotBound(String),
    /// `{{credential:` not followed by a valid name and `}}`. Fails closed:
    /// the plugin meant a placeholder, and sending it half-substituted or
    /// literally would be a guess.
    #[error("malformed credential placeholder at byte {0}")]
    Malformed(usize),
}

impl SubstituteError {
    /// A stable code: `credential_not_granted`, `malformed_placeholder`.
    pub fn code(&self) -> &'static str {
        match self {
            SubstituteError::NotBound(_) => "credential_not_granted",
            SubstituteError::Malformed(_) => "malformed_placeholder",
        }
    }
}

/// Replaces each `{{credential:NAME}}` in an outgoing text message with the
/// value bound to `NAME` in `bound` (the credentials of this connection's
/// rule with `message = true`, and their values).
///
/// A placeholder naming anything else fails the whole send
/// ([`SubstituteError::NotBound`]); so does every `{{credential:` that does
/// not start a well-formed placeholder ([`SubstituteError::Malformed`]).
/// Nothing else is touched. The result is allocated once at its exact size
/// and zeroized on drop.
///
/// ```
/// use netgrant_runtime::substitute_placeholders;
/// use secrecy::SecretString;
/// let token = SecretString::from("t0ken");
/// let bound = [("bot-token", &token)];
/// let out = substitute_placeholders(r#"{"op":2,"d":{"token":"{{credential:bot-token}}"}}"#, &bound).unwrap();
/// assert_eq!(out.as_str(), r#"{"op":2,"d":{"token":"t0ken"}}"#);
/// let err = substitute_placeholders("{{credential:other}}", &bound).unwrap_err();
/// assert_eq!(err.to_string(), "credential `other` is not bound to this connection");
/// ```
pub fn substitute_placeholders(
    text: &str,
    bound: &[(&str, &SecretString)],
) -> Result<Zeroizing<String>, SubstituteError> {
    // Two passes: the first checks every placeholder and sizes the result,
    // so the second never reallocates (a reallocation would leave a copy of
    // a value behind, unzeroized).
    let mut len = 0;
    let mut parts = Vec::new();
    let mut rest = 0;
    for (at, name, end) in placeholders(text) {
        let name = name.map_err(|()| SubstituteError::Malformed(at))?;
        let value = bound
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| SubstituteError::NotBound(name.to_string()))?;
        len += at - rest + value.expose_secret().len();
        parts.push((rest, at, value));
        rest = end;
    }
    len += text.len() - rest;
    let mut out = Zeroizing::new(String::with_capacity(len));
    for (from, to, value) in parts {
        out.push_str(&text[from..to]);
        out.push_str(value.expose_secret());
    }
    out.push_str(&text[rest..]);
    debug_assert_eq!(out.len(), len);
    Ok(out)
}

/// Every `{{credential:` in `text`, in order: its offset, its name (or
/// `Err` when no valid name and `}}` follow) and the offset after it.
fn placeholders(text: &str) -> impl Iterator<Item = (usize, Result<&str, ()>, usize)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = from + text[from..].find(PLACEHOLDER_PREFIX)?;
        let after = at + PLACEHOLDER_PREFIX.len();
        let name_len = text[after..]
            .bytes()
            .take(MAX_NAME_BYTES + 1)
            .take_while(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
            .count();
        let name = &text[after..after + name_len];
        let ok = (1..=MAX_NAME_BYTES).contains(&name_len)
            && !name.starts_with('-')
            && text[after + name_len..].starts_with(PLACEHOLDER_SUFFIX);
        if ok {
            from = after + name_len + PLACEHOLDER_SUFFIX.len();
            Some((at, Ok(name), from))
        } else {
            from = after;
            Some((at, Err(()), after))
        }
    })
}

/// Why a header value could not be built. Never carries the value or the
/// format (which may hold a literal secret prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderValueError {
    /// The format does not hold exactly one `{secret}`.
    #[error("credential header format must contain `{{secret}}` exactly once")]
    Format,
    /// The resulting value is empty, has a character other than visible
    /// ASCII, space or tab, or starts or ends with a space or tab (which a
    /// server would strip, sending a different credential).
    #[error("credential value cannot be sent in a header (visible ASCII, space and tab only, no leading or trailing space)")]
    InvalidValue,
}

impl HeaderValueError {
    /// A stable code: `credential_format`, `credential_not_header_safe`.
    pub fn code(&self) -> &'static str {
        match self {
            HeaderValueError::Format => "credential_format",
            HeaderValueError::InvalidValue => "credential_not_header_safe",
        }
    }
}

/// Builds a header value from a credential's `format` (exactly one
/// `{secret}`; `{secret}` alone by default) and the value, into zeroizing
/// memory. The whole result must be visible ASCII, SP or HTAB, non-empty,
/// with no leading or trailing SP/HTAB (RFC 9110 field-value, checked
/// here and not at load: a value that only goes into messages may hold
/// more).
///
/// ```
/// use netgrant_runtime::format_header_value;
/// use secrecy::SecretString;
/// let v = format_header_value("Bot {secret}", &SecretString::from("t0ken")).unwrap();
/// assert_eq!(v.as_str(), "Bot t0ken");
/// assert!(format_header_value("Bot {secret}", &SecretString::from("tök")).is_err());
/// ```
pub fn format_header_value(
    format: &str,
    value: &SecretString,
) -> Result<Zeroizing<String>, HeaderValueError> {
    let out = apply_format(format, value)?;
    let b = out.as_bytes();
    let ok = !b.is_empty()
        && b.iter().all(|&c| c == b'\t' || (b' '..=b'~').contains(&c))
        && ![b[0], b[b.len() - 1]]
            .iter()
            .any(|c| matches!(c, b' ' | b'\t'));
    if ok {
        Ok(out)
    } else {
        Err(HeaderValueError::InvalidValue)
    }
}

/// A `message = true` credential's value as its declaration's `format`
/// places it (`Bot {secret}` → `Bot t0ken`), into zeroizing memory: what
/// `{{credential:NAME}}` in a text message becomes, as review shows it
/// ("formatted `Bot {secret}`"). The format was checked when the policy
/// was compiled (one `{secret}`, no control or bidi characters); the value
/// may hold anything a text message may.
///
/// ```
/// use netgrant_runtime::format_message_value;
/// use secrecy::{ExposeSecret, SecretString};
/// let v = format_message_value("Bot {secret}", &SecretString::from("t0ken")).unwrap();
/// assert_eq!(v.expose_secret(), "Bot t0ken");
/// assert!(format_message_value("no marker", &SecretString::from("t0ken")).is_err());
/// ```
pub fn format_message_value(
    format: &str,
    value: &SecretString,
) -> Result<SecretString, HeaderValueError> {
    let mut out = apply_format(format, value)?;
    // Moved, not copied: the only buffer holding the result is the one the
    // secret owns (the emptied `Zeroizing` has nothing left to clear).
    Ok(SecretString::from(std::mem::take(&mut *out)))
}

/// `format` with its one `{secret}` replaced by the value, sized once (a
/// reallocation would leave a copy of the value behind, unzeroized).
fn apply_format(format: &str, value: &SecretString) -> Result<Zeroizing<String>, HeaderValueError> {
    let Some((before, after)) = format.split_once(SECRET_MARKER) else {
        return Err(HeaderValueError::Format);
    };
    if after.contains(SECRET_MARKER) {
        return Err(HeaderValueError::Format);
    }
    let value = value.expose_secret();
    let mut out = Zeroizing::new(String::with_capacity(
        before.len() + value.len() + after.len(),
    ));
    out.push_str(before);
    out.push_str(value);
    out.push_str(after);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SecretString {
        SecretString::from(v)
    }

    #[test]
    fn substitutes_bound_names_only() {
        let (a, b) = (s("AAA"), s("b{{credential:a}}"));
        let bound = [("a", &a), ("b-2", &b)];
        let ok = |t: &str| substitute_placeholders(t, &bound).unwrap().to_string();
        assert_eq!(ok(""), "");
        assert_eq!(
            ok("plain {{ text }} {credential:a}"),
            "plain {{ text }} {credential:a}"
        );
        assert_eq!(ok("{{credential:a}}"), "AAA");
        assert_eq!(ok("x{{credential:a}}{{credential:a}}y"), "xAAAAAAy");
        // A value is inserted as it is and never re-scanned.
        assert_eq!(ok("{{credential:b-2}}"), "b{{credential:a}}");
        assert_eq!(ok("é{{credential:a}}ü"), "éAAAü");
        assert_eq!(ok("{{{credential:a}}}"), "{AAA}");
    }

    #[test]
    fn unbound_names_fail_with_the_name() {
        let a = s("SENTINEL");
        let bound = [("a", &a)];
        for (t, name) in [
            ("{{credential:b}}", "b"),
            ("{{credential:a}} {{credential:ab}}", "ab"),
            ("{{credential:a-}}", "a-"),
        ] {
            let e = substitute_placeholders(t, &bound).unwrap_err();
            assert_eq!(e, SubstituteError::NotBound(name.into()), "{t}");
            assert!(!format!("{e} {e:?}").contains("SENTINEL"));
        }
        assert!(substitute_placeholders("{{credential:a}}", &[]).is_err());
    }

    #[test]
    fn malformed_placeholders_fail_closed() {
        let a = s("SENTINEL");
        let bound = [("a", &a)];
        for (t, at) in [
            ("{{credential:", 0),
            ("{{credential:a", 0),
            ("{{credential:a}", 0),
            ("x {{credential:}}", 2),
            ("{{credential:-a}}", 0),
            ("{{credential:A}}", 0),
            ("{{credential: a}}", 0),
            ("{{credential:a }}", 0),
            ("{{credential:a}} {{credential:a.b}}", 17),
            ("{{credential:{{credential:a}}", 0),
        ] {
            let e = substitute_placeholders(t, &bound).unwrap_err();
            assert_eq!(e, SubstituteError::Malformed(at), "{t}");
        }
        let long = format!("{{{{credential:{}}}}}", "a".repeat(65));
        assert_eq!(
            substitute_placeholders(&long, &bound),
            Err(SubstituteError::Malformed(0))
        );
        let max = format!("{{{{credential:{}}}}}", "a".repeat(64));
        assert_eq!(
            substitute_placeholders(&max, &bound),
            Err(SubstituteError::NotBound("a".repeat(64)))
        );
    }

    #[test]
    fn result_is_exactly_sized() {
        let a = s("0123456789");
        let out = substitute_placeholders("<{{credential:a}}>", &[("a", &a)]).unwrap();
        assert_eq!(out.capacity(), out.len());
    }

    #[test]
    fn header_values() {
        let ok = |f: &str, v: &str| format_header_value(f, &s(v)).map(|z| z.to_string());
        assert_eq!(ok("{secret}", "abc").unwrap(), "abc");
        assert_eq!(ok("Bearer {secret}", "a b\tc").unwrap(), "Bearer a b\tc");
        assert_eq!(ok("{secret}!", "x").unwrap(), "x!");
        assert_eq!(ok("x", "v"), Err(HeaderValueError::Format));
        assert_eq!(ok("{secret}{secret}", "v"), Err(HeaderValueError::Format));
        assert_eq!(ok("{Secret}", "v"), Err(HeaderValueError::Format));
        for bad in [
            "",
            "a\r\nX-Evil: 1",
            "a\n",
            "tök",
            "a\0",
            "a\x7f",
            " a",
            "a\t",
        ] {
            let e = ok("{secret}", bad).unwrap_err();
            assert_eq!(e, HeaderValueError::InvalidValue, "{bad:?}");
        }
        assert_eq!(ok("Bot {secret}", ""), Err(HeaderValueError::InvalidValue));
        let e = format_header_value("Bot {secret}", &s("SENTINEL\n")).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("SENTINEL"));
    }
}
