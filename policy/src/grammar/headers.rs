//! The header allow-list (docs/spec.md §5.6).
//!
//! A few headers are always allowed; anything else must be declared by the
//! matched target, and some headers can never be declared at all, because the
//! host sets them, they change how the message is framed or routed, or they
//! carry credentials.

use crate::capability::Capability;
use crate::decision::DenyCode;

/// Headers any request may send without declaring them (lowercase).
pub const ALWAYS_ALLOWED: &[&str] = &[
    "accept",
    "accept-language",
    "content-type",
    "content-language",
    "cache-control",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "user-agent",
];

/// At most this many headers per request.
pub const MAX_HEADERS: usize = 32;

/// At most this many bytes of header names plus values per request.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// How long a header name may get in a [`HeaderViolation`], in chars.
const MAX_SHOWN_NAME: usize = 64;

/// Fragments that make a header name credential-like, in reporting order.
/// `api_key` is the same fragment spelled with a (token-legal) underscore.
const CREDENTIAL_FRAGMENTS: &[&str] = &[
    "token", "secret", "password", "api-key", "apikey", "api_key", "auth", "session",
];

/// Why a header name cannot appear in a target's `headers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeclareError {
    /// Not an RFC 9110 token.
    Invalid,
    /// Never allowed; the text says why (e.g. `hop-by-hop header`).
    NeverAllowed(&'static str),
    /// Looks like a credential; the text is the fragment that matched.
    CredentialLike(&'static str),
    /// Always allowed, so declaring it is redundant (callers warn).
    AlwaysAllowed,
}

/// Whether `s` is an RFC 9110 token (`1*tchar`), the grammar of header names.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Whether a header name (any case) is always allowed.
pub fn is_always_allowed(name: &str) -> bool {
    ALWAYS_ALLOWED.iter().any(|h| h.eq_ignore_ascii_case(name))
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Why a header name (any case) is never allowed, if it is one of the fixed
/// never-allowed names or prefixes. Credential-like names are separate, see
/// [`credential_fragment`].
pub fn never_allowed_reason(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let why = match lower.as_str() {
        "host" => "set by the HTTP client from the URL",
        "authorization" | "proxy-authorization" | "cookie" => "credential header",
        "connection" | "keep-alive" | "upgrade" | "te" | "trailer" | "transfer-encoding" => {
            "hop-by-hop header"
        }
        "content-length" => "message framing, set by the HTTP client",
        "forwarded" => "proxy header",
        "x-http-method-override" | "x-method-override" | "x-http-method" => "method override",
        _ if lower.starts_with("x-forwarded-") || lower.starts_with("proxy-") => "proxy header",
        _ if lower.starts_with("sec-websocket-") => "reserved for the WebSocket handshake",
        _ if lower.starts_with("sec-") => "reserved for the user agent",
        _ => return None,
    };
    Some(why)
}

/// The credential-like fragment a header name (any case) contains, if any.
pub fn credential_fragment(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    CREDENTIAL_FRAGMENTS
        .iter()
        .copied()
        .find(|f| lower.contains(f))
}

/// Checks a header name declared in a target's `headers` and returns its
/// lowercase canonical form.
pub fn check_declared(name: &str) -> Result<String, DeclareError> {
    if !is_token(name) {
        return Err(DeclareError::Invalid);
    }
    if let Some(why) = never_allowed_reason(name) {
        return Err(DeclareError::NeverAllowed(why));
    }
    if let Some(frag) = credential_fragment(name) {
        return Err(DeclareError::CredentialLike(frag));
    }
    if is_always_allowed(name) {
        return Err(DeclareError::AlwaysAllowed);
    }
    Ok(name.to_ascii_lowercase())
}

/// Why a header name cannot be a credential's placement (docs/spec.md §9.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialHeaderError {
    /// Not an RFC 9110 token, or longer than 128 characters.
    Invalid,
    /// Never allowed even for the host's own credentials (`Host`, hop-by-hop,
    /// `Cookie`, `Sec-*`, `Proxy-*`, `Content-Length`, …); the text says why.
    NeverAllowed(&'static str),
    /// Always allowed, so a plugin may send it too: the host could not own it.
    AlwaysAllowed,
}

/// Checks a credential's `header` placement and returns its lowercase form.
///
/// Credential-like and never-allowed names (`Authorization`, `X-Api-Key`,
/// `X-Forwarded-Access-Token`) are legal here and only here (docs/spec.md
/// §9.1); `Host`, hop-by-hop names, `Cookie`, `Sec-*`, `Proxy-*` and
/// `Content-Length` stay errors, and so do the method overrides (a stored
/// value must not choose the method a grant allows; docs/decisions.md,
/// 207) and the always-allowed names (the plugin may set those itself).
pub fn check_credential_header(name: &str) -> Result<String, CredentialHeaderError> {
    if !is_token(name) || name.len() > 128 {
        return Err(CredentialHeaderError::Invalid);
    }
    if let Some(why) = never_allowed_reason(name) {
        let lower = name.to_ascii_lowercase();
        let legal_for_credentials =
            lower == "authorization" || lower == "forwarded" || lower.starts_with("x-forwarded-");
        if !legal_for_credentials {
            return Err(CredentialHeaderError::NeverAllowed(why));
        }
    }
    if is_always_allowed(name) {
        return Err(CredentialHeaderError::AlwaysAllowed);
    }
    Ok(name.to_ascii_lowercase())
}

/// A header that a request may not send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderViolation {
    /// [`DenyCode::WrongCapability`] for streaming attempts through `request`,
    /// else [`DenyCode::ForbiddenHeader`].
    pub code: DenyCode,
    /// The header name, control characters escaped, at most 64 chars.
    pub header: String,
    /// A lowercase human sentence; never contains a header value.
    pub message: String,
}

/// The header name as it may be shown: escaped for terminals (the name may
/// be attacker-chosen) and bounded.
fn shown_name(name: &str) -> String {
    let mut out = String::new();
    let mut len = 0;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = crate::redact::escape_terminal(c.encode_utf8(&mut [0; 4]));
        let n = piece.chars().count();
        // Keep one char for the ellipsis unless this is the last piece.
        let room = if chars.peek().is_some() {
            MAX_SHOWN_NAME - 1
        } else {
            MAX_SHOWN_NAME
        };
        if len + n > room {
            out.push('…');
            break;
        }
        out.push_str(&piece);
        len += n;
    }
    out
}

/// What an `Accept: text/event-stream` attempts; not a handshake header.
const EVENT_STREAM: &str = "a server-sent event stream";

/// What a header attempts if it asks for a websocket or a streaming
/// response, else `None`.
fn streaming_kind(name: &str, value: &str) -> Option<&'static str> {
    if name.eq_ignore_ascii_case("upgrade") {
        return Some("a protocol upgrade");
    }
    if name.eq_ignore_ascii_case("connection")
        && value
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    {
        return Some("a protocol upgrade");
    }
    if starts_with_ignore_case(name, "sec-websocket-") {
        return Some("a websocket handshake");
    }
    if name.eq_ignore_ascii_case("accept")
        && value.split(',').any(|range| {
            let media = range.split(';').next().unwrap_or("");
            media.trim().eq_ignore_ascii_case("text/event-stream")
        })
    {
        return Some(EVENT_STREAM);
    }
    None
}

/// The name (shown form, see [`HeaderViolation::header`]) of the first header
/// that asks for a websocket or a streaming response: `Upgrade`, a
/// `Connection` naming `upgrade`, any `Sec-WebSocket-*`, or an `Accept`
/// including `text/event-stream`.
pub fn is_streaming_request(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .find(|(n, v)| streaming_kind(n, v).is_some())
        .map(|(n, _)| shown_name(n))
}

/// Checks the headers a plugin wants to send for `capability` against the
/// allow-list, given the lowercase names the matched target declares.
///
/// Checks run in a fixed order, so the first failing rule decides: streaming
/// or handshake headers, limits, malformed names or values, never-allowed
/// names, undeclared names.
pub fn check_headers(
    capability: Capability,
    headers: &[(String, String)],
    declared: &[String],
) -> Result<(), HeaderViolation> {
    let fail = |code, name: &str, message: String| HeaderViolation {
        code,
        header: shown_name(name),
        message,
    };
    let forbidden = |name: &str, message: String| fail(DenyCode::ForbiddenHeader, name, message);

    // 1. Streaming and websocket handshake headers.
    for (name, value) in headers {
        if let Some(kind) = streaming_kind(name, value) {
            let shown = shown_name(name);
            return Err(match capability {
                Capability::Request => fail(
                    DenyCode::WrongCapability,
                    name,
                    format!(
                        "header `{shown}` asks for {kind}; host_api.request is one-shot, use host_api.websocket"
                    ),
                ),
                // Not a handshake header: a websocket ignores it.
                Capability::Websocket if kind == EVENT_STREAM => continue,
                Capability::Websocket => forbidden(
                    name,
                    format!("header `{shown}` cannot be set: the handshake's own headers are the runtime's alone"),
                ),
            });
        }
    }

    // 2. Limits.
    if headers.len() > MAX_HEADERS {
        return Err(forbidden(
            &headers[MAX_HEADERS].0,
            format!(
                "too many headers: {}, at most {MAX_HEADERS} are allowed",
                headers.len()
            ),
        ));
    }
    let mut total = 0usize;
    for (name, value) in headers {
        total = total.saturating_add(name.len()).saturating_add(value.len());
        if total > MAX_HEADER_BYTES {
            let all: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
            return Err(forbidden(
                name,
                format!(
                    "headers are too large: {all} bytes of names and values, at most {MAX_HEADER_BYTES} are allowed"
                ),
            ));
        }
    }

    // 3. Malformed names and values.
    for (name, value) in headers {
        let shown = shown_name(name);
        if !is_token(name) {
            return Err(forbidden(
                name,
                format!("header name `{shown}` is not a valid HTTP token"),
            ));
        }
        // Visible ASCII, SP and HTAB only (docs/spec.md §5). CR, LF and NUL
        // split or truncate headers; other controls (DEL, VT, ESC…) are read
        // differently by different servers and proxies; and a client that
        // truncates code points to bytes turns U+010D U+010A into CR LF
        // (Node.js request splitting), so no non-ASCII code point passes.
        if let Some(c) = value
            .chars()
            .find(|&c| !(c == '\t' || c == ' ' || c.is_ascii_graphic()))
        {
            let what = if c.is_ascii() {
                "a control character (CR, LF, NUL, DEL or another)".to_owned()
            } else {
                format!(
                    "the non-ASCII character U+{:04X} (some clients truncate it to one byte)",
                    u32::from(c)
                )
            };
            return Err(forbidden(
                name,
                format!("the value of header `{shown}` contains {what}"),
            ));
        }
    }

    // 4. Never-allowed and credential-like names.
    for (name, _) in headers {
        let shown = shown_name(name);
        if let Some(why) = never_allowed_reason(name) {
            return Err(forbidden(
                name,
                format!("header `{shown}` is never allowed ({why})"),
            ));
        }
        if let Some(frag) = credential_fragment(name) {
            return Err(forbidden(
                name,
                format!(
                    "header `{shown}` looks like a credential (contains `{frag}`); plugins cannot send credentials"
                ),
            ));
        }
    }

    // 5. Declared by the target.
    for (name, _) in headers {
        if !is_always_allowed(name) && !declared.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            let shown = shown_name(name);
            return Err(forbidden(
                name,
                format!("header `{shown}` is not always allowed and the target does not declare it in `headers`"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::{Request, Websocket};
    use DenyCode::{ForbiddenHeader, WrongCapability};

    /// Header pairs as written in the test tables.
    type Pairs = &'static [(&'static str, &'static str)];

    /// `None` = allowed; else the code, the shown header and a message fragment.
    type Expected = Option<(DenyCode, &'static str, &'static str)>;

    fn hs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn check_headers_table() {
        let declared = vec!["x-audit-log-reason".to_string(), "x-request-id".to_string()];
        #[rustfmt::skip]
        let cases: &[(Capability, Pairs, Expected)] = &[
            // allowed
            (Request, &[], None),
            (Request, &[("Accept", "application/json")], None),
            (Request, &[("accept-language", "en"), ("Content-Type", "text/plain")], None),
            (Request, &[("USER-AGENT", "x"), ("If-None-Match", "\"abc\"")], None),
            (Request, &[("Cache-Control", "no-cache"), ("If-Modified-Since", "Tue, 15 Nov 1994 08:12:31 GMT")], None),
            (Request, &[("X-Audit-Log-Reason", "tidy")], None),
            (Request, &[("x-request-id", "1"), ("X-REQUEST-ID", "2")], None),
            (Request, &[("Accept", "text/event-streamx")], None),
            (Request, &[("Accept", "text/html, */*;q=0.1")], None),
            (Websocket, &[("User-Agent", "bot")], None),
            (Websocket, &[("Accept", "text/event-stream")], None),
            // 1. streaming through request
            (Request, &[("Upgrade", "WebSocket")], Some((WrongCapability, "Upgrade", "protocol upgrade"))),
            (Request, &[("Connection", "keep-alive, Upgrade")], Some((WrongCapability, "Connection", "protocol upgrade"))),
            (Request, &[("connection", " UPGRADE ")], Some((WrongCapability, "connection", "one-shot"))),
            (Request, &[("SEC-WEBSOCKET-KEY", "dGhlIHNhbXBsZSBub25jZQ==")], Some((WrongCapability, "SEC-WEBSOCKET-KEY", "websocket handshake"))),
            (Request, &[("Sec-WebSocket-Protocol", "chat")], Some((WrongCapability, "Sec-WebSocket-Protocol", "websocket handshake"))),
            (Request, &[("Accept", "application/json, TEXT/EVENT-STREAM;q=0.9")], Some((WrongCapability, "Accept", "server-sent event"))),
            (Request, &[("accept", "text/event-stream")], Some((WrongCapability, "accept", "server-sent event"))),
            // streaming wins over earlier-listed forbidden headers
            (Request, &[("Cookie", "a=b"), ("Upgrade", "h2c")], Some((WrongCapability, "Upgrade", "protocol upgrade"))),
            // 1. handshake headers through websocket
            (Websocket, &[("Sec-WebSocket-Key", "abc")], Some((ForbiddenHeader, "Sec-WebSocket-Key", "the runtime's alone"))),
            (Websocket, &[("Upgrade", "websocket")], Some((ForbiddenHeader, "Upgrade", "the runtime's alone"))),
            (Websocket, &[("Connection", "Upgrade")], Some((ForbiddenHeader, "Connection", "the runtime's alone"))),
            // 3. malformed names and values
            (Request, &[("Bad Name", "x")], Some((ForbiddenHeader, "Bad Name", "not a valid HTTP token"))),
            (Request, &[("", "x")], Some((ForbiddenHeader, "", "not a valid HTTP token"))),
            (Request, &[("X-Evil\u{1b}[31m", "x")], Some((ForbiddenHeader, "X-Evil\\u{1b}[31m", "not a valid HTTP token"))),
            (Request, &[("Bad:", "x")], Some((ForbiddenHeader, "Bad:", "not a valid HTTP token"))),
            (Request, &[("X-Audit-Log-Reason", "a\r\nX-Injected: 1")], Some((ForbiddenHeader, "X-Audit-Log-Reason", "control character"))),
            (Request, &[("Accept", "a\0b")], Some((ForbiddenHeader, "Accept", "control character"))),
            (Request, &[("Accept", "a\nb")], Some((ForbiddenHeader, "Accept", "control character"))),
            (Request, &[("Accept", "a\rb")], Some((ForbiddenHeader, "Accept", "control character"))),
            (Request, &[("Accept", "a\u{7f}b")], Some((ForbiddenHeader, "Accept", "DEL"))),
            (Request, &[("Accept", "a\u{0b}b")], Some((ForbiddenHeader, "Accept", "control character"))),
            (Request, &[("Accept", "a\u{1b}[31mb")], Some((ForbiddenHeader, "Accept", "control character"))),
            (Request, &[("Accept", "a\tb e")], None),
            // docs/spec.md §5: visible ASCII, SP and HTAB only
            (Request, &[("Accept", "a\tb é")], Some((ForbiddenHeader, "Accept", "non-ASCII character U+00E9"))),
            (Request, &[("Accept", "a\u{10d}\u{10a}b")], Some((ForbiddenHeader, "Accept", "non-ASCII character U+010D"))),
            // 4. never allowed
            (Request, &[("Host", "evil.example")], Some((ForbiddenHeader, "Host", "never allowed"))),
            (Request, &[("Authorization", "Bearer x")], Some((ForbiddenHeader, "Authorization", "credential header"))),
            (Request, &[("proxy-authorization", "x")], Some((ForbiddenHeader, "proxy-authorization", "credential header"))),
            (Request, &[("Cookie", "a=b")], Some((ForbiddenHeader, "Cookie", "credential header"))),
            (Request, &[("Connection", "close")], Some((ForbiddenHeader, "Connection", "hop-by-hop"))),
            (Request, &[("Keep-Alive", "timeout=5")], Some((ForbiddenHeader, "Keep-Alive", "hop-by-hop"))),
            (Request, &[("TE", "trailers")], Some((ForbiddenHeader, "TE", "hop-by-hop"))),
            (Request, &[("Trailer", "x")], Some((ForbiddenHeader, "Trailer", "hop-by-hop"))),
            (Request, &[("Transfer-Encoding", "chunked")], Some((ForbiddenHeader, "Transfer-Encoding", "hop-by-hop"))),
            (Request, &[("Content-Length", "5")], Some((ForbiddenHeader, "Content-Length", "framing"))),
            (Request, &[("Forwarded", "for=1.2.3.4")], Some((ForbiddenHeader, "Forwarded", "proxy header"))),
            (Request, &[("x-FORWARDED-for", "127.0.0.1")], Some((ForbiddenHeader, "x-FORWARDED-for", "proxy header"))),
            (Request, &[("Proxy-Connection", "keep-alive")], Some((ForbiddenHeader, "Proxy-Connection", "proxy header"))),
            (Request, &[("X-HTTP-Method-Override", "DELETE")], Some((ForbiddenHeader, "X-HTTP-Method-Override", "method override"))),
            (Request, &[("x-method-override", "DELETE")], Some((ForbiddenHeader, "x-method-override", "method override"))),
            (Request, &[("X-Http-Method", "PUT")], Some((ForbiddenHeader, "X-Http-Method", "method override"))),
            (Request, &[("Sec-Fetch-Mode", "cors")], Some((ForbiddenHeader, "Sec-Fetch-Mode", "user agent"))),
            (Websocket, &[("Cookie", "a=b")], Some((ForbiddenHeader, "Cookie", "credential header"))),
            // 4. credential-like
            (Request, &[("X-Api-Key", "k")], Some((ForbiddenHeader, "X-Api-Key", "contains `api-key`"))),
            (Request, &[("X-APIKEY", "k")], Some((ForbiddenHeader, "X-APIKEY", "contains `apikey`"))),
            (Request, &[("X-Session-Id", "s")], Some((ForbiddenHeader, "X-Session-Id", "contains `session`"))),
            (Request, &[("My-Token", "t")], Some((ForbiddenHeader, "My-Token", "contains `token`"))),
            (Request, &[("X-Client-Secret", "t")], Some((ForbiddenHeader, "X-Client-Secret", "contains `secret`"))),
            (Request, &[("X-Password", "t")], Some((ForbiddenHeader, "X-Password", "contains `password`"))),
            (Request, &[("X-Auth-User", "t")], Some((ForbiddenHeader, "X-Auth-User", "contains `auth`"))),
            (Request, &[("X-Request-Id", "1"), ("x-amz-security-token", "t")], Some((ForbiddenHeader, "x-amz-security-token", "looks like a credential"))),
            // 5. not declared
            (Request, &[("X-Other", "1")], Some((ForbiddenHeader, "X-Other", "does not declare"))),
            (Websocket, &[("Accept", "x"), ("X-Other", "1")], Some((ForbiddenHeader, "X-Other", "does not declare"))),
            // earlier rules win over later headers
            (Request, &[("X-Other", "1"), ("Host", "h")], Some((ForbiddenHeader, "Host", "never allowed"))),
            (Request, &[("Host", "h"), ("Bad Name", "1")], Some((ForbiddenHeader, "Bad Name", "not a valid HTTP token"))),
        ];
        assert!(cases.len() >= 30);
        for (cap, headers, want) in cases {
            let got = check_headers(*cap, &hs(headers), &declared);
            match (want, got) {
                (None, Ok(())) => {}
                (Some((code, header, msg)), Err(v)) => {
                    assert_eq!(v.code, *code, "{headers:?}");
                    assert_eq!(v.header, *header, "{headers:?}");
                    assert!(v.message.contains(msg), "{headers:?}: {}", v.message);
                    assert!(
                        v.message.starts_with(|c: char| c.is_lowercase()),
                        "{}",
                        v.message
                    );
                    for (_, value) in *headers {
                        if value.len() > 2 {
                            assert!(!v.message.contains(value), "value leaked: {}", v.message);
                        }
                    }
                }
                (want, got) => panic!("{headers:?}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn declaring_does_not_unlock_forbidden_names() {
        for name in ["X-Api-Key", "Host", "X-Forwarded-For", "Sec-Fetch-Site"] {
            let declared = vec![name.to_ascii_lowercase()];
            let v = check_headers(Request, &hs(&[(name, "v")]), &declared).unwrap_err();
            assert_eq!(v.code, ForbiddenHeader, "{name}");
            assert_eq!(v.header, name);
        }
        // a declared ordinary header is allowed whatever its case
        let declared = vec!["x-custom".to_string()];
        assert_eq!(
            check_headers(Request, &hs(&[("X-CUSTOM", "v")]), &declared),
            Ok(())
        );
    }

    #[test]
    fn limits() {
        let declared: Vec<String> = (0..40).map(|i| format!("x-h{i}")).collect();
        let at_limit: Vec<(String, String)> = (0..MAX_HEADERS)
            .map(|i| (format!("X-H{i}"), "v".into()))
            .collect();
        assert_eq!(check_headers(Request, &at_limit, &declared), Ok(()));

        let mut over = at_limit.clone();
        over.push(("X-H39".into(), "v".into()));
        let v = check_headers(Request, &over, &declared).unwrap_err();
        assert_eq!(v.code, ForbiddenHeader);
        assert_eq!(v.header, "X-H39");
        assert!(v.message.contains("too many headers: 33"), "{}", v.message);

        // names + values: 4 + (8192 - 4) bytes is exactly the limit
        let big = vec![("X-H0".to_string(), "a".repeat(MAX_HEADER_BYTES - 4))];
        assert_eq!(check_headers(Request, &big, &declared), Ok(()));
        let bigger = vec![
            ("X-H0".to_string(), "a".repeat(MAX_HEADER_BYTES - 4)),
            ("X-H1".to_string(), String::new()),
        ];
        let v = check_headers(Request, &bigger, &declared).unwrap_err();
        assert_eq!(v.code, ForbiddenHeader);
        assert_eq!(v.header, "X-H1");
        assert!(v.message.contains("8196 bytes"), "{}", v.message);

        // limits are checked before names
        let mut many_bad = vec![("Host".to_string(), "h".to_string()); MAX_HEADERS + 1];
        many_bad[0].0 = "X-H0".into();
        let v = check_headers(Request, &many_bad, &declared).unwrap_err();
        assert!(v.message.contains("too many"), "{}", v.message);
    }

    #[test]
    fn long_and_hostile_names_are_shown_bounded_and_escaped() {
        let long = format!("X-{}", "a".repeat(200));
        let v = check_headers(Request, &hs(&[(long.as_str(), "1")]), &[]).unwrap_err();
        assert_eq!(v.header.chars().count(), 64);
        assert!(v.header.ends_with('…'));
        assert!(v.header.starts_with("X-aaa"));

        let exact = format!("X-{}", "a".repeat(62));
        assert_eq!(shown_name(&exact), exact);

        let hostile = "X-\u{202e}\u{1b}]0;t\u{7}";
        let v = check_headers(Request, &hs(&[(hostile, "1")]), &[]).unwrap_err();
        assert_eq!(v.header, "X-\\u{202e}\\u{1b}]0;t\\u{7}");
        assert!(!v.message.contains('\u{1b}') && !v.message.contains('\u{202e}'));

        // an escape sequence is never cut in half
        let escapes = "\u{1b}".repeat(40);
        let shown = shown_name(&escapes);
        assert!(shown.chars().count() <= 64);
        assert!(shown.ends_with("\\u{1b}…"), "{shown}");
    }

    #[test]
    fn check_declared_table() {
        use DeclareError::*;
        let cases: &[(&str, Result<&str, DeclareError>)] = &[
            ("X-Audit-Log-Reason", Ok("x-audit-log-reason")),
            ("x-request-id", Ok("x-request-id")),
            ("If-Range", Ok("if-range")),
            ("Prefer", Ok("prefer")),
            ("", Err(Invalid)),
            ("X Space", Err(Invalid)),
            ("X-Colon:", Err(Invalid)),
            ("X-Ünicode", Err(Invalid)),
            ("X-Line\n", Err(Invalid)),
            (
                "Host",
                Err(NeverAllowed("set by the HTTP client from the URL")),
            ),
            ("Authorization", Err(NeverAllowed("credential header"))),
            (
                "PROXY-AUTHORIZATION",
                Err(NeverAllowed("credential header")),
            ),
            ("Cookie", Err(NeverAllowed("credential header"))),
            ("Connection", Err(NeverAllowed("hop-by-hop header"))),
            ("keep-alive", Err(NeverAllowed("hop-by-hop header"))),
            ("Upgrade", Err(NeverAllowed("hop-by-hop header"))),
            ("te", Err(NeverAllowed("hop-by-hop header"))),
            ("Trailer", Err(NeverAllowed("hop-by-hop header"))),
            ("Transfer-Encoding", Err(NeverAllowed("hop-by-hop header"))),
            (
                "Content-Length",
                Err(NeverAllowed("message framing, set by the HTTP client")),
            ),
            ("Forwarded", Err(NeverAllowed("proxy header"))),
            ("X-Forwarded-Host", Err(NeverAllowed("proxy header"))),
            ("Proxy-Foo", Err(NeverAllowed("proxy header"))),
            (
                "X-HTTP-Method-Override",
                Err(NeverAllowed("method override")),
            ),
            ("X-Method-Override", Err(NeverAllowed("method override"))),
            ("X-HTTP-Method", Err(NeverAllowed("method override"))),
            (
                "Sec-WebSocket-Protocol",
                Err(NeverAllowed("reserved for the WebSocket handshake")),
            ),
            (
                "Sec-CH-UA",
                Err(NeverAllowed("reserved for the user agent")),
            ),
            ("X-Api-Key", Err(CredentialLike("api-key"))),
            ("X-APIKEY", Err(CredentialLike("apikey"))),
            ("x_api_key", Err(CredentialLike("api_key"))),
            ("X-Session-Id", Err(CredentialLike("session"))),
            ("My-Token", Err(CredentialLike("token"))),
            ("X-Secret", Err(CredentialLike("secret"))),
            ("X-Password", Err(CredentialLike("password"))),
            ("X-Auth", Err(CredentialLike("auth"))),
            ("X-OAuth-Scopes", Err(CredentialLike("auth"))),
            ("Accept", Err(AlwaysAllowed)),
            ("USER-AGENT", Err(AlwaysAllowed)),
            ("if-unmodified-since", Err(AlwaysAllowed)),
        ];
        for (name, want) in cases {
            let want = want.clone().map(str::to_string);
            assert_eq!(check_declared(name), want, "{name:?}");
        }
        for h in ALWAYS_ALLOWED {
            assert_eq!(check_declared(h), Err(AlwaysAllowed), "{h}");
            assert_eq!(h.to_ascii_lowercase(), *h);
        }
    }

    #[test]
    fn credential_headers() {
        use CredentialHeaderError::*;
        for (name, want) in [
            ("Authorization", Ok("authorization")),
            ("X-Api-Key", Ok("x-api-key")),
            ("X-Bot-Token", Ok("x-bot-token")),
            ("X-Custom", Ok("x-custom")),
            (
                "Host",
                Err(NeverAllowed("set by the HTTP client from the URL")),
            ),
            ("Cookie", Err(NeverAllowed("credential header"))),
            (
                "Proxy-Authorization",
                Err(NeverAllowed("credential header")),
            ),
            ("Proxy-Foo", Err(NeverAllowed("proxy header"))),
            ("Connection", Err(NeverAllowed("hop-by-hop header"))),
            ("Transfer-Encoding", Err(NeverAllowed("hop-by-hop header"))),
            (
                "Content-Length",
                Err(NeverAllowed("message framing, set by the HTTP client")),
            ),
            // Never-allowed for a plugin, legal for the host's credential.
            ("Forwarded", Ok("forwarded")),
            ("X-Forwarded-Access-Token", Ok("x-forwarded-access-token")),
            // A stored value must not pick the method.
            (
                "X-HTTP-Method-Override",
                Err(NeverAllowed("method override")),
            ),
            ("X-Method-Override", Err(NeverAllowed("method override"))),
            ("X-HTTP-Method", Err(NeverAllowed("method override"))),
            (
                "Sec-WebSocket-Key",
                Err(NeverAllowed("reserved for the WebSocket handshake")),
            ),
            (
                "Sec-Fetch-Mode",
                Err(NeverAllowed("reserved for the user agent")),
            ),
            ("Accept", Err(AlwaysAllowed)),
            ("Bad Name", Err(Invalid)),
            ("", Err(Invalid)),
        ] {
            assert_eq!(
                check_credential_header(name),
                want.map(str::to_string),
                "{name:?}"
            );
        }
        assert_eq!(check_credential_header(&"x".repeat(129)), Err(Invalid));
    }

    #[test]
    fn streaming_detection() {
        let cases: &[(Pairs, Option<&str>)] = &[
            (&[], None),
            (&[("Accept", "*/*")], None),
            (&[("Connection", "keep-alive")], None),
            (&[("Connection", "upgraded")], None),
            (&[("X-Upgrade", "1")], None),
            (&[("Accept", "*/*"), ("upgrade", "h2c")], Some("upgrade")),
            (&[("Connection", "close,\tUpGrAdE")], Some("Connection")),
            (
                &[("sec-websocket-version", "13")],
                Some("sec-websocket-version"),
            ),
            (
                &[("Accept", "Text/Event-Stream ; charset=utf-8")],
                Some("Accept"),
            ),
        ];
        for (headers, want) in cases {
            assert_eq!(
                is_streaming_request(&hs(headers)).as_deref(),
                *want,
                "{headers:?}"
            );
        }
    }

    #[test]
    fn tokens() {
        for ok in ["a", "X-Foo", "!#$%&'*+-.^_`|~09AZaz"] {
            assert!(is_token(ok), "{ok}");
        }
        for bad in [
            "", " ", "a b", "a:b", "a\"b", "a(b", "é", "a\tb", "a/b", "a@b",
        ] {
            assert!(!is_token(bad), "{bad}");
        }
    }
}
