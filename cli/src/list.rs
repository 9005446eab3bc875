//! `netgrant list`: the workspace view — one row per plugin, broad first.
//!
//! Finds `plugin.toml` files under directories (a bounded walk: depth, entry
//! and plugin limits, symlinked directories never followed, so no loops),
//! pairs each with its grant, compiles it, and prints one row per plugin. A
//! broken plugin is a row with its error, never an abort; the exit code is 2
//! at the end if any input was invalid.

use crate::input;
use crate::output::{print_stderr, print_stdout};
use crate::Exit;
use clap::ValueEnum;
use netgrant_policy::diagnostics::Severity;
use netgrant_policy::ir::Status;
use netgrant_policy::redact::{escape_markdown, escape_terminal};
use netgrant_policy::Drift;
use netgrant_policy::{Capability, Manifest};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Directory levels below a given directory that the walk descends.
pub const MAX_DEPTH: usize = 8;
/// Directory entries the walk looks at, in all.
pub const MAX_ENTRIES: usize = 100_000;
/// Plugins listed, in all.
pub const MAX_PLUGINS: usize = 10_000;
/// Version of the JSON output.
pub const LIST_VERSION: u32 = 1;
/// The manifest file name the walk looks for.
const MANIFEST_NAME: &str = "plugin.toml";
/// The grant file name beside a manifest.
const GRANT_NAME: &str = "grant.toml";
/// Directories the walk skips: hidden ones (`.git`), build output and vendored
/// packages, which hold copies, not the workspace's plugins.
const SKIP_DIRS: &[&str] = &["target", "node_modules"];

/// Output format for `list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// A table for a terminal.
    Human,
    /// One JSON document (schema/output/list.schema.json).
    Json,
    /// A markdown table, for a pull-request comment.
    Markdown,
}

/// `netgrant list --format json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(title = "netgrant list output", deny_unknown_fields)]
pub struct ListOutput {
    /// Output format version.
    pub version: u32,
    /// Whether every input was valid.
    pub ok: bool,
    /// The exit code: 0, or 2 when any input was invalid.
    pub exit_code: u8,
    /// One row per manifest, in review order: broad first.
    pub plugins: Vec<Row>,
    /// Problems with the inputs themselves (a missing path, a walk limit).
    pub errors: Vec<Problem>,
}

/// One plugin.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Row {
    /// The manifest path, as found.
    pub manifest: String,
    /// The paired grant's path; `null` when there is none (nothing granted).
    pub grant: Option<String>,
    /// `plugin.name`, when the manifest parsed.
    pub name: Option<String>,
    /// `plugin.version`, when the manifest parsed.
    pub version: Option<String>,
    /// `false` when the manifest or grant has a fatal error (see `errors`).
    pub valid: bool,
    /// `host_api.request` counts (zero when invalid).
    pub request: Counts,
    /// `host_api.websocket` counts (zero when invalid).
    pub websocket: Counts,
    /// Grant entries dropped (granted but not requested, or broad without
    /// `broad = true`).
    pub ignored: usize,
    /// Broad targets: requested, and granted.
    pub broad: Marker,
    /// Loopback targets: requested, and granted.
    pub loopback: Marker,
    /// Private-network targets: requested, and granted.
    pub private: Marker,
    /// Credentials: declared by the requested targets, and bound on granted
    /// entries (secrets the host sends; docs/spec.md §9.2).
    pub credentials: Marker,
    /// Whether the grant is pinned to this manifest.
    pub pin: Pin,
    /// What the drift affects, when `pin` is `drift`.
    pub drift: Option<Drift>,
    /// The manifest's `requested_digest`, when valid.
    pub requested_digest: Option<String>,
    /// The fatal errors, when invalid.
    pub errors: Vec<Problem>,
}

/// Target counts of one capability.
#[derive(Clone, Copy, Debug, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Counts {
    /// Requested targets in the manifest.
    pub requested: usize,
    /// Granted entries (a request narrowed by several grant entries counts each).
    pub granted: usize,
    /// Requested targets with no effective grant entry.
    pub not_granted: usize,
}

/// How many targets carry a flag.
#[derive(Clone, Copy, Debug, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Marker {
    /// Requested targets with the flag.
    pub requested: usize,
    /// Granted entries with the flag.
    pub granted: usize,
}

/// Pinned-grant state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pin {
    /// No grant found: nothing is granted.
    NoGrant,
    /// A grant without `approved_digest`.
    Unpinned,
    /// `approved_digest` equals the manifest's `requested_digest`.
    Pinned,
    /// The manifest changed since the grant was approved.
    Drift,
    /// Unknown (the input is invalid).
    Unknown,
}

impl Pin {
    fn as_str(self) -> &'static str {
        match self {
            Pin::NoGrant => "no grant",
            Pin::Unpinned => "unpinned",
            Pin::Pinned => "pinned",
            Pin::Drift => "DRIFT",
            Pin::Unknown => "?",
        }
    }
}

/// An error: a diagnostic code and a lowercase message (terminal-escaped).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Problem {
    /// `netgrant::<area>::<name>`.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// The path it is about, if any.
    pub path: Option<String>,
}

/// The JSON Schema of the JSON output, as committed under
/// `schema/output/list.schema.json`.
pub fn schema_json() -> String {
    let gen = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = gen.into_root_schema_for::<ListOutput>();
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serializes");
    s.push('\n');
    s
}

/// Runs `list`.
pub fn run(inputs: &[PathBuf], grants: Option<&Path>, format: ListFormat) -> Exit {
    let out = collect(inputs, grants);
    let text = match format {
        ListFormat::Human => human(&out),
        ListFormat::Json => {
            let mut s = serde_json::to_string_pretty(&out).expect("json");
            s.push('\n');
            s
        }
        ListFormat::Markdown => markdown(&out),
    };
    if format != ListFormat::Json {
        let mut s = String::new();
        for p in &out.errors {
            s.push_str(&format!(
                "error: {}: {}\n",
                p.code,
                escape_terminal(&p.message)
            ));
        }
        let invalid = out.plugins.iter().filter(|r| !r.valid).count();
        if invalid > 0 {
            s.push_str(&format!(
                "{invalid} invalid plugin{}: run `netgrant check <MANIFEST> --grant <GRANT>` for the full diagnostics\n",
                if invalid == 1 { "" } else { "s" }
            ));
        }
        if out.plugins.is_empty() && out.errors.is_empty() {
            s.push_str("no plugin.toml found\n");
        }
        print_stderr(&s);
    }
    match print_stdout(&text) {
        Exit::Ok if out.ok => Exit::Ok,
        Exit::Ok => Exit::Invalid,
        e => e,
    }
}

/// Walks the inputs, pairs and compiles every manifest, and orders the rows.
pub fn collect(inputs: &[PathBuf], grants: Option<&Path>) -> ListOutput {
    let mut errors = Vec::new();
    if let Some(g) = grants {
        if !g.is_dir() {
            errors.push(Problem {
                code: "netgrant::io::read".into(),
                message: "--grants must name a directory".into(),
                path: Some(escape_terminal(&g.display().to_string())),
            });
        }
    }
    let mut walk = Walk::default();
    for p in inputs {
        walk.input(p);
    }
    errors.extend(walk.errors);
    let mut rows: Vec<Row> = walk.found.iter().map(|m| row(m, grants)).collect();
    rows.sort_by(|a, b| (rank(a), &a.name, &a.manifest).cmp(&(rank(b), &b.name, &b.manifest)));
    let ok = errors.is_empty() && rows.iter().all(|r| r.valid);
    ListOutput {
        version: LIST_VERSION,
        ok,
        exit_code: if ok { 0 } else { 2 },
        plugins: rows,
        errors,
    }
}

/// Review order: broad granted, broad requested only, invalid, loopback or
/// private, the rest.
fn rank(r: &Row) -> u8 {
    if r.broad.granted > 0 {
        0
    } else if r.broad.requested > 0 {
        1
    } else if !r.valid {
        2
    } else if r.loopback.requested + r.private.requested > 0 {
        3
    } else {
        4
    }
}

#[derive(Default)]
struct Walk {
    found: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    entries: usize,
    errors: Vec<Problem>,
    limit_hit: bool,
}

impl Walk {
    fn problem(&mut self, code: &str, message: String, path: &Path) {
        self.errors.push(Problem {
            code: code.into(),
            message,
            path: Some(escape_terminal(&path.display().to_string())),
        });
    }

    fn input(&mut self, p: &Path) {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => self.dir(p),
            Ok(_) => self.manifest(p.to_path_buf()),
            Err(e) => self.problem(
                "netgrant::io::read",
                format!("cannot read: {}", e.to_string().to_lowercase()),
                p,
            ),
        }
    }

    fn manifest(&mut self, p: PathBuf) {
        // The same manifest named twice (or reached twice) is listed once.
        let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if !self.seen.insert(key) {
            return;
        }
        if self.found.len() >= MAX_PLUGINS {
            if !self.limit_hit {
                self.limit_hit = true;
                self.problem(
                    netgrant_policy::Code::ListLimit.as_str(),
                    format!("more than {MAX_PLUGINS} plugins; the rest are not listed"),
                    &p,
                );
            }
            return;
        }
        self.found.push(p);
    }

    /// Counts one directory entry looked at in `dir`; `false` once past
    /// [`MAX_ENTRIES`], which stops the walk.
    fn count_entry(&mut self, dir: &Path) -> bool {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            if !self.limit_hit {
                self.limit_hit = true;
                self.problem(
                    netgrant_policy::Code::ListLimit.as_str(),
                    format!("more than {MAX_ENTRIES} directory entries; the walk stopped here"),
                    dir,
                );
            }
            return false;
        }
        true
    }

    /// Walks the directory `root`: at most [`MAX_DEPTH`] levels below it are
    /// read, hidden and [`SKIP_DIRS`] directories are not entered, and no
    /// symlink is followed (a symlinked `plugin.toml` is read: a file cannot
    /// loop; a symlinked directory is never entered).
    fn dir(&mut self, root: &Path) {
        // Deterministic, whatever the file system returns: in each directory
        // its files (so its manifest) before its subdirectories, each in byte
        // order of names.
        let order = |a: &walkdir::DirEntry, b: &walkdir::DirEntry| {
            (a.file_type().is_dir(), a.file_name().to_string_lossy())
                .cmp(&(b.file_type().is_dir(), b.file_name().to_string_lossy()))
        };
        let mut it = walkdir::WalkDir::new(root)
            .follow_links(false)
            .max_depth(MAX_DEPTH + 1)
            .sort_by(order)
            .into_iter();
        // The directory most recently entered: an error naming it says it
        // could not be read.
        let mut entered = root.to_path_buf();
        while let Some(next) = it.next() {
            if self.limit_hit {
                return;
            }
            let e = match next {
                Ok(e) => e,
                Err(err) => {
                    match (err.path(), err.io_error()) {
                        (Some(p), Some(io)) if p == entered => self.problem(
                            "netgrant::io::read",
                            format!("cannot read directory: {}", io.to_string().to_lowercase()),
                            p,
                        ),
                        // An entry whose type cannot be read: looked at, skipped.
                        (Some(p), _) if !self.count_entry(p.parent().unwrap_or(p)) => return,
                        _ => {}
                    }
                    continue;
                }
            };
            if e.depth() == 0 {
                continue;
            }
            if !self.count_entry(e.path().parent().unwrap_or(root)) {
                return;
            }
            let name = e.file_name().to_string_lossy();
            // Not followed: a symlink's own type.
            let t = e.file_type();
            if t.is_dir() {
                if e.depth() > MAX_DEPTH
                    || name.starts_with('.')
                    || SKIP_DIRS.contains(&name.as_ref())
                {
                    it.skip_current_dir();
                } else {
                    entered = e.path().to_path_buf();
                }
            } else if name == MANIFEST_NAME
                && (t.is_file() || (t.is_symlink() && e.path().is_file()))
            {
                self.manifest(e.path().to_path_buf());
            }
        }
    }
}

/// The grant paired with a manifest: `grant.toml` beside it, or with
/// `--grants DIR`, `DIR/<name>.toml` or `DIR/<name>/grant.toml` (both is an
/// error: which one applies would be a guess).
fn pair(
    manifest: &Path,
    name: Option<&str>,
    grants: Option<&Path>,
) -> Result<Option<PathBuf>, String> {
    match grants {
        None => {
            let g = manifest
                .parent()
                .map(|d| d.join(GRANT_NAME))
                .unwrap_or_else(|| PathBuf::from(GRANT_NAME));
            Ok(g.is_file().then_some(g))
        }
        Some(dir) => {
            let Some(name) = name else {
                return Ok(None);
            };
            let flat = dir.join(format!("{name}.toml"));
            let nested = dir.join(name).join(GRANT_NAME);
            match (flat.is_file(), nested.is_file()) {
                (true, true) => Err(format!(
                    "two grants for plugin `{name}`: {} and {}; keep one",
                    flat.display(),
                    nested.display()
                )),
                (true, false) => Ok(Some(flat)),
                (false, true) => Ok(Some(nested)),
                (false, false) => Ok(None),
            }
        }
    }
}

fn empty_row(manifest: &Path) -> Row {
    Row {
        manifest: manifest.display().to_string(),
        grant: None,
        name: None,
        version: None,
        valid: false,
        request: Counts::default(),
        websocket: Counts::default(),
        ignored: 0,
        broad: Marker::default(),
        loopback: Marker::default(),
        private: Marker::default(),
        credentials: Marker::default(),
        pin: Pin::Unknown,
        drift: None,
        requested_digest: None,
        errors: Vec::new(),
    }
}

fn row(manifest: &Path, grants: Option<&Path>) -> Row {
    let mut r = empty_row(manifest);
    // The name decides the pairing under --grants; read it first.
    let name = grants.and_then(|_| {
        input::read(manifest, netgrant_policy::MAX_FILE_BYTES as u64)
            .ok()
            .and_then(|b| Manifest::parse_bytes("plugin.toml", &b).value)
            .map(|m| m.name)
    });
    let grant = match pair(manifest, name.as_deref(), grants) {
        Ok(g) => g,
        Err(msg) => {
            r.name = name;
            r.errors.push(Problem {
                code: netgrant_policy::Code::ListAmbiguousGrant.as_str().into(),
                message: escape_terminal(&msg),
                path: Some(r.manifest.clone()),
            });
            return r;
        }
    };
    r.grant = grant.as_ref().map(|g| g.display().to_string());
    let loaded = input::load_manifest_and_grant(manifest, grant.as_deref());
    if let Some(m) = &loaded.manifest {
        r.name = Some(m.name.clone());
        r.version = Some(m.version.clone());
    }
    let fatal: Vec<Problem> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .map(|d| Problem {
            code: d.code.as_str().into(),
            message: d.message.clone(),
            path: d.file_name().map(str::to_string),
        })
        .collect();
    let (Some(m), Some(policy)) = (&loaded.manifest, &loaded.policy) else {
        r.errors = fatal;
        return r;
    };
    if !fatal.is_empty() {
        r.errors = fatal;
        return r;
    }
    r.valid = true;
    let counts = |cap: Capability| Counts {
        requested: m
            .requested
            .iter()
            .filter(|q| q.permission.capability == cap)
            .count(),
        granted: policy.granted().filter(|e| e.capability == cap).count(),
        not_granted: policy
            .entries
            .iter()
            .filter(|e| e.capability == cap && e.status == Status::NotGranted)
            .count(),
    };
    r.request = counts(Capability::Request);
    r.websocket = counts(Capability::Websocket);
    r.ignored = policy.ignored.len();
    let flags: Vec<_> = m.requested.iter().map(|q| q.permission.flags()).collect();
    r.broad = Marker {
        requested: flags.iter().filter(|f| f.broad).count(),
        granted: policy.granted().filter(|e| e.flags.broad).count(),
    };
    r.loopback = Marker {
        requested: flags.iter().filter(|f| f.loopback).count(),
        granted: policy.granted().filter(|e| e.flags.loopback).count(),
    };
    r.private = Marker {
        requested: flags.iter().filter(|f| f.private).count(),
        granted: policy.granted().filter(|e| e.flags.private).count(),
    };
    r.credentials = Marker {
        requested: m.requested.iter().map(|q| q.credentials.len()).sum(),
        granted: policy
            .granted()
            .flat_map(|e| e.credentials.iter())
            .filter(|c| c.status == Status::Granted)
            .count(),
    };
    r.pin = match (&grant, &policy.approved_digest) {
        (None, _) => Pin::NoGrant,
        (Some(_), None) => Pin::Unpinned,
        (Some(_), Some(_)) if policy.digest_drift() => Pin::Drift,
        (Some(_), Some(_)) => Pin::Pinned,
    };
    r.drift = netgrant_policy::drift(policy, loaded.grant.as_ref());
    r.requested_digest = Some(policy.requested_digest.clone());
    r
}

/// `broad`, `loopback (requested)`, …: a flag granted, or only requested.
fn markers(r: &Row) -> String {
    let mut v = Vec::new();
    for (word, m) in [
        ("broad", r.broad),
        ("loopback", r.loopback),
        ("private", r.private),
        ("secrets", r.credentials),
    ] {
        if m.granted > 0 {
            v.push(word.to_string());
        } else if m.requested > 0 {
            v.push(format!("{word} (requested)"));
        }
    }
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn mark(r: &Row) -> &'static str {
    match rank(r) {
        0 => "!!",
        1 => " !",
        2 => "✗ ",
        3 => " ~",
        _ => "  ",
    }
}

fn counts_text(c: Counts) -> String {
    format!("{}/{}/{}", c.requested, c.granted, c.not_granted)
}

/// A shortened version string (semver build metadata can be long).
fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max - 1).collect();
        format!("{head}…")
    }
}

fn error_text(r: &Row) -> String {
    let Some(first) = r.errors.first() else {
        return String::new();
    };
    let more = r.errors.len() - 1;
    let mut s = format!("{}: {}", first.code, first.message);
    if more > 0 {
        s.push_str(&format!(" (and {more} more)"));
    }
    s
}

fn summary(out: &ListOutput) -> String {
    let n = out.plugins.len();
    let broad = out.plugins.iter().filter(|r| r.broad.granted > 0).count();
    let broad_req = out
        .plugins
        .iter()
        .filter(|r| r.broad.granted == 0 && r.broad.requested > 0)
        .count();
    let invalid = out.plugins.iter().filter(|r| !r.valid).count();
    let drift = out.plugins.iter().filter(|r| r.pin == Pin::Drift).count();
    format!(
        "{n} plugin{}; broad access: {broad} granted, {broad_req} requested only; {invalid} invalid; {drift} with a drifted grant",
        if n == 1 { "" } else { "s" }
    )
}

fn human(out: &ListOutput) -> String {
    let name_w = out
        .plugins
        .iter()
        .filter_map(|r| r.name.as_ref().map(|n| n.chars().count()))
        .chain([6])
        .max()
        .unwrap_or(6);
    let ver_w = out
        .plugins
        .iter()
        .filter_map(|r| r.version.as_ref().map(|v| short(v, 20).chars().count()))
        .chain([7])
        .max()
        .unwrap_or(7);
    let mark_w = out
        .plugins
        .iter()
        .filter(|r| r.valid)
        .map(|r| markers(r).chars().count())
        .chain([7])
        .max()
        .unwrap_or(7);
    let mut o = String::new();
    o.push_str(&format!(
        "   {:<name_w$}  {:<ver_w$}  {:<9}  {:<9}  {:<7}  {:<8}  {:<mark_w$}  {}\n",
        "PLUGIN", "VERSION", "REQUEST", "WEBSOCKET", "IGNORED", "PIN", "MARKERS", "MANIFEST"
    ));
    for r in &out.plugins {
        let name = escape_terminal(r.name.as_deref().unwrap_or("?"));
        let version = escape_terminal(&short(r.version.as_deref().unwrap_or("?"), 20));
        let path = escape_terminal(&r.manifest);
        if !r.valid {
            o.push_str(&format!(
                "{} {:<name_w$}  {:<ver_w$}  {}  {path}\n",
                mark(r),
                name,
                version,
                escape_terminal(&error_text(r)),
            ));
            continue;
        }
        o.push_str(&format!(
            "{} {:<name_w$}  {:<ver_w$}  {:<9}  {:<9}  {:<7}  {:<8}  {:<mark_w$}  {path}\n",
            mark(r),
            name,
            version,
            counts_text(r.request),
            counts_text(r.websocket),
            r.ignored,
            r.pin.as_str(),
            markers(r),
        ));
    }
    o.push_str(&format!(
        "\n{}\ncounts are requested/granted/not granted; `netgrant show <MANIFEST> --grant <GRANT>` reviews one plugin\n",
        summary(out)
    ));
    o
}

fn markdown(out: &ListOutput) -> String {
    let mut o = String::from("### netgrant: plugins\n\n");
    o.push_str(&format!("**{}**\n\n", escape_markdown(&summary(out))));
    o.push_str("| | plugin | version | request (req/granted/not) | websocket (req/granted/not) | ignored | pin | markers | manifest |\n");
    o.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for r in &out.plugins {
        let flag = match rank(r) {
            0 => "⚠️ **BROAD**",
            1 => "⚠️ broad requested",
            2 => "❌ **invalid**",
            _ => "",
        };
        let name = escape_markdown(r.name.as_deref().unwrap_or("?"));
        let version = escape_markdown(&short(r.version.as_deref().unwrap_or("?"), 20));
        let path = escape_markdown(&r.manifest);
        if !r.valid {
            o.push_str(&format!(
                "| {flag} | {name} | {version} | {} ||||| {path} |\n",
                escape_markdown(&error_text(r))
            ));
            continue;
        }
        o.push_str(&format!(
            "| {flag} | {name} | {version} | {} | {} | {} | {} | {} | {path} |\n",
            counts_text(r.request),
            counts_text(r.websocket),
            r.ignored,
            escape_markdown(r.pin.as_str()),
            escape_markdown(&markers(r)),
        ));
    }
    if !out.errors.is_empty() {
        o.push_str("\n**Input errors:**\n\n");
        for p in &out.errors {
            o.push_str(&format!(
                "- {}: {}{}\n",
                escape_markdown(&p.code),
                escape_markdown(&p.message),
                p.path
                    .as_deref()
                    .map(|x| format!(" ({})", escape_markdown(x)))
                    .unwrap_or_default()
            ));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schema equals what the output structs generate. Set
    /// `NETGRANT_UPDATE_SCHEMA=1` to rewrite it.
    #[test]
    fn committed_schema_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/output/list.schema.json");
        let generated = schema_json();
        if std::env::var_os("NETGRANT_UPDATE_SCHEMA").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed, generated,
            "schema/output/list.schema.json is stale: run with NETGRANT_UPDATE_SCHEMA=1 or `netgrant schema list-output`"
        );
    }

    #[test]
    fn walk_is_bounded_and_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Deeper than MAX_DEPTH: not found.
        let mut deep = root.to_path_buf();
        for i in 0..=MAX_DEPTH {
            deep = deep.join(format!("d{i}"));
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join(MANIFEST_NAME), "").unwrap();
        // Found, in byte order of names; hidden and skipped dirs are not entered.
        for d in ["b", "a", "a/c", ".hidden", "target"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            std::fs::write(root.join(d).join(MANIFEST_NAME), "").unwrap();
        }
        #[cfg(unix)]
        {
            // A symlink loop is never followed.
            std::os::unix::fs::symlink(root, root.join("a/loop")).unwrap();
        }
        let mut w = Walk::default();
        w.input(root);
        let rel: Vec<String> = w
            .found
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(rel, ["a/plugin.toml", "a/c/plugin.toml", "b/plugin.toml"]);
        assert!(w.errors.is_empty());
        // Naming one twice lists it once.
        w.input(&root.join("b/plugin.toml"));
        assert_eq!(w.found.len(), 3);
    }

    #[test]
    fn pairing_rule() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let m = root.join("p/plugin.toml");
        std::fs::create_dir_all(root.join("p")).unwrap();
        assert_eq!(pair(&m, Some("x"), None), Ok(None));
        std::fs::write(root.join("p/grant.toml"), "").unwrap();
        assert_eq!(
            pair(&m, Some("x"), None),
            Ok(Some(root.join("p/grant.toml")))
        );
        let g = root.join("grants");
        std::fs::create_dir_all(g.join("x")).unwrap();
        assert_eq!(pair(&m, Some("x"), Some(&g)), Ok(None));
        std::fs::write(g.join("x.toml"), "").unwrap();
        assert_eq!(pair(&m, Some("x"), Some(&g)), Ok(Some(g.join("x.toml"))));
        std::fs::write(g.join("x/grant.toml"), "").unwrap();
        assert!(pair(&m, Some("x"), Some(&g)).is_err());
        std::fs::remove_file(g.join("x.toml")).unwrap();
        assert_eq!(
            pair(&m, Some("x"), Some(&g)),
            Ok(Some(g.join("x/grant.toml")))
        );
    }
}
