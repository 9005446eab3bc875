//! Suggested entries, their TOML, and proposals: structured edits to the
//! manifest and grant, applied and verified before they are shown.

use super::*;

/// An entry to write, structured (so it can be applied and verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Shape {
    pub(super) cap: Capability,
    pub(super) target: Target,
    pub(super) methods: Option<Methods>,
    pub(super) headers: Option<BTreeSet<String>>,
    pub(super) subprotocols: Option<BTreeSet<String>>,
    pub(super) networks: Option<BTreeSet<IpNet>>,
    pub(super) broad: bool,
    pub(super) reason: Option<String>,
    /// Credential bindings (grant entries), name → SecretRef.
    pub(super) credentials: BTreeMap<String, SecretRef>,
    /// Bindings written with a stand-in SecretRef (`<plugin>/<name>`) the
    /// user must replace: only they know the secret's name in the store.
    pub(super) stand_ins: BTreeSet<String>,
    /// Credential declarations (manifest entries), sorted by name: kept
    /// when an entry is replaced, so a fix never drops one.
    pub(super) declared: Vec<Credential>,
}

impl Shape {
    pub(super) fn from_permission(p: &Permission, reason: Option<String>) -> Shape {
        Shape {
            cap: p.capability,
            target: p.target.clone(),
            methods: p.methods.clone(),
            headers: Some(p.headers.clone()),
            subprotocols: Some(p.subprotocols.clone()),
            networks: Some(p.networks.clone()),
            broad: false,
            reason,
            credentials: BTreeMap::new(),
            stand_ins: BTreeSet::new(),
            declared: Vec::new(),
        }
    }

    pub(super) fn from_grant(g: &GrantEntry) -> Shape {
        Shape {
            cap: g.capability,
            target: g.target.clone(),
            methods: g.methods.clone(),
            headers: g.headers.clone(),
            subprotocols: g.subprotocols.clone(),
            networks: g.networks.clone(),
            broad: g.broad,
            reason: None,
            credentials: g.credentials.clone(),
            stand_ins: BTreeSet::new(),
            declared: Vec::new(),
        }
    }

    /// A grant entry approving `target` with every other field inherited.
    pub(super) fn approving(cap: Capability, target: Target) -> Shape {
        Shape {
            cap,
            target,
            methods: None,
            headers: None,
            subprotocols: None,
            networks: None,
            broad: false,
            reason: None,
            credentials: BTreeMap::new(),
            stand_ins: BTreeSet::new(),
            declared: Vec::new(),
        }
    }

    /// Binds every credential in `names` this entry's request declares
    /// (`parent`) and the entry does not bind yet, with a stand-in
    /// SecretRef. Names the request does not declare are left out: binding
    /// them is an error, and the manifest must declare them first.
    pub(super) fn bind_stand_ins(&mut self, plugin: &str, names: &[String], parent: &[Credential]) {
        for name in names {
            if self.credentials.contains_key(name) || !parent.iter().any(|c| &c.name == name) {
                continue;
            }
            if let Ok(r) = SecretRef::parse(&format!("{plugin}/{name}")) {
                self.credentials.insert(name.clone(), r);
                self.stand_ins.insert(name.clone());
            }
        }
    }

    pub(super) fn permission(&self) -> Permission {
        Permission {
            capability: self.cap,
            target: self.target.clone(),
            methods: match self.cap {
                Capability::Request => Some(self.methods.clone().unwrap_or(Methods::Any)),
                Capability::Websocket => None,
            },
            headers: self.headers.clone().unwrap_or_default(),
            subprotocols: self.subprotocols.clone().unwrap_or_default(),
            networks: self.networks.clone().unwrap_or_default(),
        }
    }

    /// The effective permission of this shape as a grant entry under `parent`.
    pub(super) fn effective(&self, parent: &Permission) -> Permission {
        Permission {
            capability: self.cap,
            target: self.target.clone(),
            methods: match self.cap {
                Capability::Request => Some(
                    self.methods
                        .clone()
                        .or_else(|| parent.methods.clone())
                        .unwrap_or(Methods::Any),
                ),
                Capability::Websocket => None,
            },
            headers: self
                .headers
                .clone()
                .unwrap_or_else(|| parent.headers.clone()),
            subprotocols: self
                .subprotocols
                .clone()
                .unwrap_or_else(|| parent.subprotocols.clone()),
            networks: self
                .networks
                .clone()
                .unwrap_or_else(|| parent.networks.clone()),
        }
    }

    pub(super) fn requested(&self) -> Requested {
        Requested {
            permission: self.permission(),
            reason: self.reason.clone(),
            credentials: self.declared.clone(),
            origin: None,
        }
    }

    pub(super) fn grant_entry(&self) -> GrantEntry {
        GrantEntry {
            capability: self.cap,
            target: self.target.clone(),
            methods: self.methods.clone(),
            headers: self.headers.clone(),
            subprotocols: self.subprotocols.clone(),
            networks: self.networks.clone(),
            broad: self.broad,
            credentials: self.credentials.clone(),
            origin: None,
        }
    }

    pub(super) fn suggested(&self, file: FixFile) -> SuggestedEntry {
        let strings = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        // A manifest leaves empty lists out; a grant writes what it narrows.
        let keep = |s: &Option<BTreeSet<String>>| match (file, s) {
            (FixFile::Manifest, Some(v)) if v.is_empty() => None,
            (_, s) => s.as_ref().map(strings),
        };
        SuggestedEntry {
            target: self.target.to_string(),
            methods: self.methods.as_ref().map(|m| m.to_strings()),
            headers: keep(&self.headers),
            subprotocols: keep(&self.subprotocols),
            networks: match (file, &self.networks) {
                (FixFile::Manifest, Some(v)) if v.is_empty() => None,
                (_, n) => n
                    .as_ref()
                    .map(|v| v.iter().map(|x| x.to_string()).collect()),
            },
            broad: file == FixFile::Grant && self.broad,
            credentials: (file == FixFile::Grant && !self.credentials.is_empty()).then(|| {
                self.credentials
                    .iter()
                    .map(|(n, r)| (n.clone(), r.to_string()))
                    .collect()
            }),
            declares: (file == FixFile::Manifest && !self.declared.is_empty()).then(|| {
                self.declared
                    .iter()
                    .map(|c| SuggestedDeclaration {
                        name: c.name.clone(),
                        header: c.placement.header().map(str::to_owned),
                        message: c.placement.header().is_none(),
                        format: (c.format != "{secret}").then(|| c.format.clone()),
                        reason: c.reason.clone(),
                    })
                    .collect()
            }),
            reason: match file {
                FixFile::Manifest => self.reason.clone(),
                FixFile::Grant => None,
            },
        }
    }
}

pub(super) fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub(super) fn toml_array(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| toml_string(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The entry as TOML, ready to paste into `plugin.toml` or `grant.toml`.
pub(super) fn snippet(cap: Capability, e: &SuggestedEntry) -> String {
    let mut s = format!("[[{}]]\nurl = {}\n", cap.table(), toml_string(&e.target));
    for (key, v) in [
        ("methods", &e.methods),
        ("headers", &e.headers),
        ("subprotocols", &e.subprotocols),
        ("networks", &e.networks),
    ] {
        if let Some(v) = v {
            s.push_str(&format!("{key} = {}\n", toml_array(v)));
        }
    }
    if e.broad {
        s.push_str("broad = true\n");
    }
    if let Some(c) = &e.credentials {
        let pairs: Vec<String> = c
            .iter()
            .map(|(n, r)| format!("{n} = {}", toml_string(r)))
            .collect();
        s.push_str(&format!("credentials = {{ {} }}\n", pairs.join(", ")));
    }
    if let Some(d) = &e.declares {
        let items: Vec<String> = d
            .iter()
            .map(|c| {
                let mut t = format!("{{ name = {}", toml_string(&c.name));
                match &c.header {
                    Some(h) => t.push_str(&format!(", header = {}", toml_string(h))),
                    None => t.push_str(", message = true"),
                }
                if let Some(f) = &c.format {
                    t.push_str(&format!(", format = {}", toml_string(f)));
                }
                if let Some(r) = &c.reason {
                    t.push_str(&format!(", reason = {}", toml_string(r)));
                }
                t.push_str(" }");
                t
            })
            .collect();
        s.push_str(&format!("credentials = [{}]\n", items.join(", ")));
    }
    if let Some(r) = &e.reason {
        s.push_str(&format!("reason = {}\n", toml_string(r)));
    }
    s
}

// ---------------------------------------------------------------------------
// Proposals: structured edits, applied and verified before they are shown
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub(super) struct Step {
    pub(super) file: FixFile,
    /// `Some(target)`: replace the entry with this capability and target.
    pub(super) replaces: Option<Target>,
    pub(super) shape: Shape,
    /// For grant entries: the target of the request it approves.
    pub(super) approves: Option<Target>,
}

pub(super) struct Proposal {
    pub(super) kind: FixKind,
    pub(super) summary: String,
    pub(super) steps: Vec<Step>,
}

/// The manifest and grant as lists, to apply proposals to.
pub(super) struct Base {
    pub(super) name: String,
    pub(super) version: String,
    pub(super) requested: Vec<Requested>,
    pub(super) grant: Vec<GrantEntry>,
    /// Error diagnostics compiling the unchanged lists gives.
    pub(super) errors: usize,
}

pub(super) fn errors(d: &[crate::Diagnostic]) -> usize {
    d.iter().filter(|d| d.severity().is_error()).count()
}

impl Base {
    pub(super) fn new(policy: &CompiledPolicy, sources: &Sources<'_>) -> Option<Base> {
        let (requested, grant) = match sources.manifest {
            Some(m) => (
                m.requested.clone(),
                sources.grant.map(|g| g.entries.clone()).unwrap_or_default(),
            ),
            None => policy.documents(),
        };
        let mut base = Base {
            name: policy.plugin.name.clone(),
            version: policy.plugin.version.clone(),
            requested,
            grant,
            errors: 0,
        };
        let (m, g) = base.documents(base.requested.clone(), base.grant.clone());
        base.errors = errors(&compile(&m, Some(&g)).diagnostics);
        Some(base)
    }

    pub(super) fn documents(
        &self,
        requested: Vec<Requested>,
        entries: Vec<GrantEntry>,
    ) -> (Manifest, Grant) {
        (
            Manifest {
                name: self.name.clone(),
                version: self.version.clone(),
                requested,
                source: None,
            },
            Grant {
                plugin: self.name.clone(),
                plugin_span: None,
                entries,
                approved_digest: None,
                approved_digest_span: None,
                source: None,
            },
        )
    }

    /// The manifest entry of `cap` whose target is `t`, if any.
    pub(super) fn requested_entry(&self, cap: Capability, t: &Target) -> Option<&Requested> {
        self.requested
            .iter()
            .find(|r| r.permission.capability == cap && r.permission.target == *t)
    }

    /// The grant entry of `cap` whose target is `t`, if any.
    pub(super) fn grant_entry(&self, cap: Capability, t: &Target) -> Option<&GrantEntry> {
        self.grant
            .iter()
            .find(|g| g.capability == cap && g.target == *t)
    }

    /// Whether the proposal, applied, allows the request.
    pub(super) fn verify(
        &self,
        steps: &[Step],
        req: &Request<'_>,
        answers: Option<&[IpAddr]>,
    ) -> bool {
        let mut requested = self.requested.clone();
        let mut grant = self.grant.clone();
        for s in steps {
            match (s.file, &s.replaces) {
                (FixFile::Manifest, None) => requested.push(s.shape.requested()),
                (FixFile::Manifest, Some(t)) => {
                    let Some(r) = requested.iter_mut().find(|r| {
                        r.permission.capability == s.shape.cap && r.permission.target == *t
                    }) else {
                        return false;
                    };
                    r.permission = s.shape.permission();
                    r.reason = s.shape.reason.clone();
                    r.credentials = s.shape.declared.clone();
                }
                (FixFile::Grant, None) => grant.push(s.shape.grant_entry()),
                (FixFile::Grant, Some(t)) => {
                    let Some(g) = grant
                        .iter_mut()
                        .find(|g| g.capability == s.shape.cap && g.target == *t)
                    else {
                        return false;
                    };
                    *g = s.shape.grant_entry();
                }
            }
        }
        let (manifest, grant) = self.documents(requested, grant);
        let compiled = compile(&manifest, Some(&grant));
        // A suggestion must not add errors (a dropped entry, say): the
        // policy may already carry entry-level ones of its own.
        if errors(&compiled.diagnostics) > self.errors {
            return false;
        }
        match compiled.policy {
            Some(p) => Authorizer::new(&p).authorize(req, answers).is_allowed(),
            None => false,
        }
    }
}

/// The smallest network to add for `addr`: the parent's network that holds
/// it (a grant may not go beyond its request), else the address itself.
pub(super) fn network_for(addr: IpAddr, parent: Option<&Permission>) -> IpNet {
    parent
        .and_then(|p| p.networks.iter().find(|n| n.contains(&addr)).copied())
        .unwrap_or_else(|| IpNet::from(addr))
}

/// Adds what the request needs to the fields the shape sets. Fields left
/// unset (a grant inheriting from its request) stay unset.
pub(super) fn widen(shape: &mut Shape, f: &Facts<'_>, parent: Option<&Permission>) {
    if let (Some(m), Some(Methods::Set(set))) =
        (f.method.and_then(Method::parse), &mut shape.methods)
    {
        set.insert(m);
    }
    if let Some(h) = &mut shape.headers {
        h.extend(f.needed_headers.iter().cloned());
    }
    if let Some(s) = &mut shape.subprotocols {
        s.extend(f.req.subprotocols.iter().cloned());
    }
    if shape.networks.is_some() {
        let perm = match parent {
            Some(p) => shape.effective(p),
            None => shape.permission(),
        };
        let add: Vec<IpNet> = f
            .non_public()
            .filter(|a| !perm.covers_address(*a))
            .map(|a| network_for(a, parent))
            .collect();
        if let Some(n) = &mut shape.networks {
            n.extend(add);
        }
    }
}

/// The path prefix for a new target: the directory the URL path is in (or
/// the path itself when it is one segment), the same under every server
/// reading. `None` when the readings disagree about it (ambiguous).
pub(super) fn derived_prefix(r: &PathReadings) -> Option<String> {
    pub(super) fn dir(p: &str) -> &str {
        match p.rfind('/') {
            Some(i) if i > 0 => &p[..=i],
            _ => p,
        }
    }
    let first = dir(r.as_parsed());
    if r.all().iter().any(|x| !path::prefix_matches(first, x)) {
        return None;
    }
    let candidate = if first == "/" { r.as_parsed() } else { first };
    // Walk up until the prefix is one a target may spell.
    let mut p = candidate.to_string();
    loop {
        if let Ok(n) = path::normalize_prefix(&p) {
            if r.all_inside(&n) {
                return Some(n);
            }
        }
        if p == "/" {
            return None;
        }
        let trimmed = p.trim_end_matches('/');
        p = match trimmed.rfind('/') {
            Some(i) => trimmed[..=i].to_string(),
            None => "/".to_string(),
        };
    }
}

pub(super) fn port_suffix(scheme: Scheme, port: u16) -> String {
    if port == scheme.default_port() {
        String::new()
    } else {
        format!(":{port}")
    }
}

/// The target a new manifest entry would name: the URL's scheme, host and
/// port, and [`derived_prefix`].
pub(super) fn derived_target(f: &Facts<'_>) -> Option<Target> {
    let prefix = derived_prefix(&f.readings)?;
    Target::parse(&format!(
        "{}://{}{}{}",
        f.scheme,
        f.host,
        port_suffix(f.scheme, f.port),
        prefix
    ))
    .ok()
}

/// A grant target inside `parent` that reaches the URL: the parent with its
/// wildcard host and `*` port made concrete.
pub(super) fn narrowed_target(parent: &Target, f: &Facts<'_>) -> Option<Target> {
    let host = match &parent.host {
        HostPattern::Domain(_) | HostPattern::Ip(_) => parent.host.to_string(),
        _ => f.host.to_string(),
    };
    let port = match parent.port {
        PortPattern::Exact(p) => port_suffix(parent.scheme, p),
        PortPattern::Any => format!(":{}", f.port),
    };
    // The URL's directory when the parent holds it (least privilege, as the
    // existing narrower entries chose), else the parent's prefix.
    let path = derived_prefix(&f.readings)
        .filter(|p| path::prefix_contains(&parent.path, p))
        .unwrap_or_else(|| parent.path.clone());
    let t = Target::parse(&format!("{}://{host}{port}{path}", parent.scheme)).ok()?;
    parent.contains(&t).then_some(t)
}
