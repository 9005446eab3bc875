//! Internationalized hosts at review: the Unicode form beside the A-label, and
//! a flag for labels a reviewer could mistake for another name (UTS #39).
//!
//! Targets are stored and matched as A-labels (`xn--…`) only; this module is
//! display advice and never changes a decision.

use unicode_security::{skeleton, MixedScript};

/// How a host should be shown to a reviewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostDisplay {
    /// The Unicode form, when the host has an A-label (`xn--`) and decodes.
    pub unicode: Option<String>,
    /// Why the host may be a look-alike, if it may.
    pub confusable: Option<String>,
}

/// The review display of a canonical host (`example.com`, `*.xn--…`, an IP).
///
/// ```
/// use netgrant_policy::idn::host_display;
///
/// // Cyrillic "а" in "pаypal": shown decoded and flagged.
/// let d = host_display("xn--pypal-4ve.com");
/// assert_eq!(d.unicode.as_deref(), Some("pаypal.com"));
/// assert!(d.confusable.is_some());
/// assert_eq!(host_display("example.com").unicode, None);
/// ```
pub fn host_display(host: &str) -> HostDisplay {
    let has_alabel = host
        .split('.')
        .any(|l| l.len() >= 4 && l[..4].eq_ignore_ascii_case("xn--"));
    if !has_alabel {
        return HostDisplay {
            unicode: None,
            confusable: None,
        };
    }
    let (unicode, result) = idna::domain_to_unicode(host);
    if result.is_err() {
        // Canonical targets always decode; an A-label that does not is odd
        // enough to say so rather than guess.
        return HostDisplay {
            unicode: None,
            confusable: Some("an A-label that does not decode".to_string()),
        };
    }
    let confusable = unicode
        .split('.')
        .filter(|l| !l.is_ascii() && *l != "*")
        .find_map(label_problem);
    HostDisplay {
        unicode: (unicode != host).then_some(unicode),
        confusable,
    }
}

/// Why one Unicode label may be a look-alike: it mixes scripts (Latin with
/// Cyrillic, say), or it is written in one script but its confusable skeleton
/// is plain ASCII (all-Cyrillic `аррӏе` for `apple`).
fn label_problem(label: &str) -> Option<String> {
    if !label.is_single_script() {
        return Some(format!(
            "label `{}` mixes scripts",
            crate::redact::escape_terminal(label)
        ));
    }
    let sk: String = skeleton(label).collect();
    if sk.is_ascii() {
        return Some(format!(
            "label `{}` looks like `{}`",
            crate::redact::escape_terminal(label),
            crate::redact::escape_terminal(&sk)
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alabel(u: &str) -> String {
        idna::domain_to_ascii(u).unwrap()
    }

    #[test]
    fn ascii_hosts_are_left_alone() {
        for h in ["example.com", "*.example.com", "*", "127.0.0.1", "[::1]"] {
            assert_eq!(
                host_display(h),
                HostDisplay {
                    unicode: None,
                    confusable: None
                },
                "{h}"
            );
        }
    }

    #[test]
    fn single_script_idn_is_shown_not_flagged() {
        for u in ["bücher.example", "例え.jp", "пример.рф", "*.münchen.de"] {
            let d = host_display(&alabel(u));
            assert_eq!(d.unicode.as_deref(), Some(u));
            assert_eq!(d.confusable, None, "{u}");
        }
    }

    #[test]
    fn look_alikes_are_flagged() {
        // Latin + Cyrillic "а"; all-Cyrillic "аррӏе"; Greek omicron in Latin.
        for u in ["pаypal.com", "аррӏе.com", "gοogle.com", "*.pаypal.com"] {
            let d = host_display(&alabel(u));
            assert_eq!(d.unicode.as_deref(), Some(u));
            assert!(d.confusable.is_some(), "{u}");
        }
    }
}
