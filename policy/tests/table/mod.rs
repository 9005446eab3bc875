//! The adversarial authorize table (`tests/authorize.toml` at the workspace
//! root), shared by every test that replays it: the authorizer itself
//! (`authorize_table.rs`), `explain` (`explain_table.rs`) and `replay`
//! (`replay.rs`). The format is documented in `authorize_table.rs`.
#![allow(dead_code)] // each test binary uses a different part

use netgrant_policy::Capability;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The table's text.
pub const DATA: &str = include_str!("../../../tests/authorize.toml");

/// The whole table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub policy: BTreeMap<String, PolicySource>,
    pub case: Vec<Case>,
}

/// A named policy: a manifest and a grant.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySource {
    pub about: String,
    pub manifest: String,
    pub grant: String,
}

/// One decision to check.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub policy: String,
    pub capability: String,
    pub url: String,
    pub method: Option<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub subprotocols: Vec<String>,
    #[serde(default)]
    pub credentials: Vec<String>,
    pub resolve: Option<Vec<String>>,
    pub decision: String,
    pub code: String,
    pub addresses: Option<Vec<String>>,
    #[serde(default)]
    pub hidden: Vec<String>,
    pub why: String,
}

/// Parses the table.
pub fn load() -> Table {
    toml::from_str(DATA).expect("tests/authorize.toml parses")
}

/// Expands `${c*N}` into `c` repeated `N` times.
pub fn expand(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').expect("unterminated ${…} in table");
        let (ch, n) = after[..end].split_once('*').expect("${…} must be ${c*N}");
        let n: usize = n.parse().expect("${c*N}: N must be a number");
        out.push_str(&ch.repeat(n));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Splits `"Name: value"` at the first `:` (one space after it is dropped).
pub fn parse_header(h: &str) -> (String, String) {
    let h = expand(h);
    let (name, value) = h
        .split_once(':')
        .unwrap_or_else(|| panic!("header {h:?} in table is not `Name: value`"));
    let value = value.strip_prefix(' ').unwrap_or(value);
    (name.to_string(), value.to_string())
}

impl Case {
    /// The URL with `${c*N}` expanded.
    pub fn url(&self) -> String {
        expand(&self.url)
    }

    /// The headers as (name, value) pairs.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers.iter().map(|h| parse_header(h)).collect()
    }

    /// The DNS answers, if the case gives any.
    pub fn answers(&self) -> Option<Vec<IpAddr>> {
        self.resolve.as_ref().map(|v| {
            v.iter()
                .map(|a| a.parse().expect("resolve answer is an IP"))
                .collect()
        })
    }

    /// The capability.
    pub fn capability(&self) -> Capability {
        Capability::parse(&self.capability).expect("capability is websocket or request")
    }
}
