//! `netgrant authorize`: one decision, exit 0 allow / 1 deny / 2 bad input.

use crate::input;
use crate::output::{print_stdout, usage};
use crate::{CapabilityArg, Exit};
use clap::{Args, ValueEnum};
use netgrant_policy::UrlHost;
use netgrant_policy::{Authorizer, Capability, Request};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Output format for `authorize` (and `explain` and `replay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DecisionFormat {
    /// One line.
    Human,
    /// One JSON object.
    Json,
}

/// Inputs of `authorize` (and `explain`, which takes exactly the same flags).
#[derive(Args, Debug)]
pub struct AuthorizeArgs {
    /// `--manifest` (and `--grant`), or `--policy`.
    #[command(flatten)]
    pub input: input::PolicyInput,
    /// The capability the plugin uses.
    #[arg(long, value_enum)]
    pub capability: CapabilityArg,
    /// HTTP method (request capability; default GET).
    #[arg(long)]
    pub method: Option<String>,
    /// A header the plugin sends, `'Name: value'` (repeatable).
    #[arg(long = "header", value_name = "K: V")]
    pub headers: Vec<String>,
    /// A WebSocket subprotocol the plugin asks for (repeatable).
    #[arg(long = "subprotocol", value_name = "P")]
    pub subprotocols: Vec<String>,
    /// A credential the plugin asks the host to inject, by its declared name (repeatable).
    #[arg(long = "credential", value_name = "NAME")]
    pub credentials: Vec<String>,
    /// DNS answers to check, `HOST=IP[,IP…]` (repeatable; empty list = did not resolve).
    #[arg(long = "resolve", value_name = "HOST=IP[,IP…]")]
    pub resolve: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DecisionFormat::Human)]
    pub format: DecisionFormat,
    /// The URL to decide.
    pub url: String,
}

/// Parses `--header 'K: V'`.
pub fn parse_header(h: &str) -> Option<(String, String)> {
    let (k, v) = h.split_once(':')?;
    if k.is_empty() {
        return None;
    }
    Some((k.to_string(), v.trim_start_matches([' ', '\t']).to_string()))
}

/// Parses `--resolve HOST=IP[,IP…]` into a normalized host and answers.
///
/// The host is normalized as a URL host is (lowercase, IDNA A-label, one
/// trailing dot removed, brackets dropped), so `--resolve Bücher.example.=…`
/// applies to `wss://bücher.example/`.
pub fn parse_resolve(s: &str) -> Option<(String, Vec<IpAddr>)> {
    let (h, ips) = s.split_once('=')?;
    let h = h.trim();
    if let Ok(ip) = h.parse::<IpAddr>() {
        // An IPv6 literal without brackets; never resolved, so never applies.
        return parse_answers(ips).map(|v| (ip.to_string(), v));
    }
    let host = match url::Host::parse(h.strip_suffix('.').unwrap_or(h)).ok()? {
        url::Host::Domain(d) => d,
        // An IP literal is never resolved; keep it so the flag is accepted,
        // it simply never applies.
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    if host.is_empty() {
        return None;
    }
    parse_answers(ips).map(|v| (host, v))
}

/// `IP[,IP…]`, IPv6 with or without brackets; an empty list is no answer.
fn parse_answers(ips: &str) -> Option<Vec<IpAddr>> {
    ips.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|ip| {
            ip.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
        })
        .collect()
}

/// DNS answers from every `--resolve` flag, per normalized host.
///
/// Repeated flags for one host are merged, never replaced: every answer
/// given for a name is checked (docs/spec.md §5), so
/// `--resolve h=10.0.0.1 --resolve h=8.8.8.8` is judged on both.
#[derive(Debug, Default)]
pub struct ResolveFlags(BTreeMap<String, Vec<IpAddr>>);

impl ResolveFlags {
    /// Adds the answers of one flag (an empty list still records the name:
    /// it did not resolve).
    fn add(&mut self, host: String, ips: Vec<IpAddr>) {
        let all = self.0.entry(host).or_default();
        for ip in ips {
            if !all.contains(&ip) {
                all.push(ip);
            }
        }
    }

    /// All answers given for a normalized host, in flag order; `None` when
    /// no flag named it.
    pub fn answers(&self, host: &str) -> Option<&[IpAddr]> {
        self.0.get(host).map(Vec::as_slice)
    }

    /// Whether no `--resolve` flag was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every host with its merged answers.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[IpAddr])> {
        self.0.iter().map(|(h, v)| (h.as_str(), v.as_slice()))
    }
}

/// Parsed `--header` and `--resolve` flags (shared by `authorize`,
/// `explain` and `connect`).
pub type HeaderAndResolveFlags = (Vec<(String, String)>, ResolveFlags);

/// Parses every `--header 'K: V'` and `--resolve HOST=IP[,IP…]`; the error is
/// the usage message for the first malformed one.
pub fn parse_header_and_resolve_flags(
    headers: &[String],
    resolve: &[String],
) -> Result<HeaderAndResolveFlags, String> {
    let headers = headers
        .iter()
        .map(|h| {
            parse_header(h)
                .ok_or_else(|| format!("--header {h:?} is not of the form 'Name: value'"))
        })
        .collect::<Result<_, _>>()?;
    let mut flags = ResolveFlags::default();
    for r in resolve {
        let (host, ips) = parse_resolve(r)
            .ok_or_else(|| format!("--resolve {r:?} is not of the form HOST=IP[,IP…]"))?;
        flags.add(host, ips);
    }
    Ok((headers, flags))
}

/// What `authorize` and `explain` read from their flags and files.
pub struct Inputs {
    /// The policy (and the manifest, when one was given).
    pub loaded: input::Loaded,
    /// Parsed `--header` flags.
    pub headers: Vec<(String, String)>,
    /// The capability.
    pub capability: Capability,
    /// DNS answers for the URL's host, from `--resolve`.
    pub answers: Option<Vec<IpAddr>>,
}

impl Inputs {
    /// The request the flags describe.
    pub fn request<'a>(&'a self, a: &'a AuthorizeArgs) -> Request<'a> {
        Request {
            capability: self.capability,
            url: &a.url,
            method: a.method.as_deref(),
            headers: &self.headers,
            subprotocols: &a.subprotocols,
            credentials: &a.credentials,
        }
    }

    /// The policy (present once [`inputs`] succeeded).
    pub fn policy(&self) -> &netgrant_policy::CompiledPolicy {
        self.loaded
            .policy
            .as_ref()
            .expect("inputs() checked the policy")
    }
}

/// Reads the flags and loads the policy; `Err` is the exit code after the
/// problem was reported.
pub fn inputs(a: &AuthorizeArgs) -> Result<Inputs, Exit> {
    let (headers, resolve) = match parse_header_and_resolve_flags(&a.headers, &a.resolve) {
        Ok(x) => x,
        Err(msg) => return Err(usage(&msg)),
    };
    let loaded = a.input.load()?;
    let capability = match a.capability {
        CapabilityArg::Websocket => Capability::Websocket,
        CapabilityArg::Request => Capability::Request,
    };
    // Answers apply when the URL's normalized host is a name given in --resolve.
    let answers: Option<Vec<IpAddr>> = url::Url::parse(&a.url)
        .ok()
        .as_ref()
        .and_then(UrlHost::from_url)
        .and_then(|h| match h {
            UrlHost::Domain(d) => resolve.answers(&d).map(<[IpAddr]>::to_vec),
            UrlHost::Ip(_) => None,
        });
    Ok(Inputs {
        loaded,
        headers,
        capability,
        answers,
    })
}

/// Exit 0 on allow, 1 on deny, unless writing failed.
pub fn decision_exit(printed: Exit, allowed: bool) -> Exit {
    match printed {
        Exit::Ok if allowed => Exit::Ok,
        Exit::Ok => Exit::Deny,
        e => e,
    }
}

/// Runs `authorize`.
pub fn run(a: &AuthorizeArgs) -> Exit {
    let inputs = match inputs(a) {
        Ok(i) => i,
        Err(e) => return e,
    };
    let authz = Authorizer::new(inputs.policy());
    let req = inputs.request(a);
    let answers = &inputs.answers;
    let decision = authz.authorize(&req, answers.as_deref());
    let out = match a.format {
        DecisionFormat::Json => {
            let mut s = serde_json::to_string(&decision).expect("json");
            s.push('\n');
            s
        }
        DecisionFormat::Human => {
            let mut s = format!(
                "{} {} — {}\n",
                if decision.is_allowed() {
                    "allow"
                } else {
                    "deny"
                },
                decision.code,
                netgrant_policy::redact::escape_terminal(&decision.message())
            );
            s.push_str(&format!("  url  {}\n", decision.url()));
            if let Some(r) = decision.rule() {
                s.push_str(&format!(
                    "  rule {}\n",
                    netgrant_policy::redact::escape_terminal(r)
                ));
            }
            if !decision.addresses.is_empty() {
                let a: Vec<String> = decision.addresses.iter().map(|x| x.to_string()).collect();
                s.push_str(&format!("  connect to {}\n", a.join(", ")));
            }
            s
        }
    };
    decision_exit(print_stdout(&out), decision.is_allowed())
}
