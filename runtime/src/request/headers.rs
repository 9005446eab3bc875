//! Response headers as the plugin sees them: cookies and hop-by-hop headers
//! removed (docs/spec.md §10.2).

use hyper::header::HeaderMap;

/// Always dropped: cookies (the host keeps no cookie jar and the plugin must
/// not see session state) and the hop-by-hop headers of RFC 9110 §7.6.1.
const DROPPED: &[&str] = &[
    "set-cookie",
    "set-cookie2",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a (lowercase) header name is always dropped.
fn always_dropped(name: &str) -> bool {
    DROPPED.contains(&name) || name.starts_with("proxy-")
}

/// The headers the plugin may see, in the order received: names lowercase
/// (as `HeaderMap` stores them), values as raw bytes.
pub(crate) fn filter(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    // Every name listed in any `Connection` header is hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|t| String::from_utf8_lossy(t).trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    // Sized for every field: almost none is dropped.
    let mut kept = Vec::with_capacity(headers.len());
    kept.extend(
        headers
            .iter()
            .filter(|(k, _)| {
                let k = k.as_str();
                !always_dropped(k) && !named.iter().any(|n| n == k)
            })
            .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec())),
    );
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderName, HeaderValue};

    fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn cookies_hop_by_hop_and_connection_named_headers_are_dropped() {
        let m = map(&[
            ("Content-Type", b"text/plain"),
            ("Set-Cookie", b"a=1"),
            ("set-cookie", b"b=2"),
            ("Set-Cookie2", b"c=3"),
            ("Connection", b"keep-alive, X-Secret-Hop , ,x-other"),
            ("Keep-Alive", b"timeout=5"),
            ("Proxy-Authenticate", b"Basic"),
            ("Proxy-Connection", b"close"),
            ("TE", b"trailers"),
            ("Trailer", b"X-T"),
            ("Transfer-Encoding", b"chunked"),
            ("Upgrade", b"h2c"),
            ("X-Secret-Hop", b"1"),
            ("X-Other", b"2"),
            ("Location", b"http://10.0.0.1/"),
            ("X-Bytes", b"\xff\xfe"),
        ]);
        let got = filter(&m);
        let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["content-type", "location", "x-bytes"]);
        assert_eq!(got[2].1, b"\xff\xfe");
    }

    #[test]
    fn nothing_is_dropped_without_a_reason() {
        let m = map(&[
            ("content-length", b"3"),
            ("cache-control", b"no-store"),
            ("x-connection-id", b"7"),
            ("proxyish", b"1"),
        ]);
        assert_eq!(filter(&m).len(), 4);
    }
}
