//! Reading manifests, grants and IR files into policies, collecting diagnostics.

use crate::output::{print_stderr, usage};
use crate::Exit;
use clap::Args;
use netgrant_policy::diagnostics::Severity;
use netgrant_policy::{compile, load_policy, Code, CompiledPolicy, Diagnostic, Grant, Manifest};
use std::path::{Path, PathBuf};

/// The policy a command decides with: a manifest (and a grant), or a compiled
/// IR. Shared by `authorize`, `explain`, `connect` and `replay`
/// (`#[command(flatten)]`).
#[derive(Args, Debug)]
pub struct PolicyInput {
    /// The plugin manifest (plugin.toml).
    #[arg(long, required_unless_present = "policy", conflicts_with = "policy")]
    pub manifest: Option<PathBuf>,
    /// The grant (grant.toml). Without it nothing is granted.
    #[arg(long, conflicts_with = "policy")]
    pub grant: Option<PathBuf>,
    /// A compiled IR instead of manifest + grant (re-validated on load).
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

impl PolicyInput {
    /// Loads the policy: the IR when `--policy` is given, else the manifest
    /// and grant. Entry-level grant errors only drop their entry; a fatal
    /// diagnostic is printed and stops. `Err` is the exit code after the
    /// problem was reported.
    pub fn load(&self) -> Result<Loaded, Exit> {
        let loaded = match (&self.policy, &self.manifest) {
            (Some(p), _) => load_ir(p),
            (None, Some(m)) => load_manifest_and_grant(m, self.grant.as_deref()),
            (None, None) => return Err(usage("give --manifest (and --grant) or --policy")),
        };
        if loaded.has_fatal() {
            print_stderr(&render_human(&loaded.diagnostics));
            return Err(Exit::Invalid);
        }
        if loaded.policy.is_none() {
            return Err(Exit::Invalid);
        }
        // An entry-level error drops its entry and the command goes on; the
        // reader still learns why (docs/spec.md §3.3).
        let dropped: Vec<Diagnostic> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::EntryError)
            .cloned()
            .collect();
        if !dropped.is_empty() {
            print_stderr(&render_human(&dropped));
        }
        Ok(loaded)
    }

    /// [`PolicyInput::load`], keeping only the policy.
    pub fn load_policy(&self) -> Result<CompiledPolicy, Exit> {
        self.load()
            .map(|l| l.policy.expect("load() checked the policy"))
    }
}

/// Everything learned from the inputs.
pub struct Loaded {
    /// The manifest, if it parsed.
    pub manifest: Option<Manifest>,
    /// The grant, if one was given and it parsed.
    pub grant: Option<Grant>,
    /// The policy, unless a fatal error was found.
    pub policy: Option<CompiledPolicy>,
    /// All diagnostics, manifest first, then grant, then compile.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Whether any diagnostic is fatal.
    pub fn has_fatal(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity() == Severity::Error)
    }
}

fn display_name(p: &Path) -> String {
    p.display().to_string()
}

/// Reads a file, with a diagnostic on failure. Limits the read so a huge file
/// is reported, not loaded.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, Diagnostic> {
    use std::io::Read;
    let name = display_name(path);
    let f = std::fs::File::open(path).map_err(|e| {
        Diagnostic::new(
            Code::IoRead,
            format!(
                "cannot read {}: {}",
                netgrant_policy::diagnostics::quote(&name),
                e.to_string().to_lowercase()
            ),
        )
        .with_help("check the path")
    })?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(|e| {
        Diagnostic::new(
            Code::IoRead,
            format!(
                "cannot read {}: {}",
                netgrant_policy::diagnostics::quote(&name),
                e.to_string().to_lowercase()
            ),
        )
    })?;
    Ok(buf)
}

/// Parses and compiles a manifest and an optional grant.
pub fn load_manifest_and_grant(manifest: &Path, grant: Option<&Path>) -> Loaded {
    let limit = netgrant_policy::MAX_FILE_BYTES as u64;
    let mut diagnostics = Vec::new();
    let m = match read(manifest, limit) {
        Ok(bytes) => {
            let parsed = Manifest::parse_bytes(&display_name(manifest), &bytes);
            diagnostics.extend(parsed.diagnostics);
            parsed.value
        }
        Err(d) => {
            diagnostics.push(d);
            None
        }
    };
    let g = match grant {
        None => None,
        Some(gp) => match read(gp, limit) {
            Ok(bytes) => {
                let parsed = Grant::parse_bytes(&display_name(gp), &bytes);
                diagnostics.extend(parsed.diagnostics);
                parsed.value.map(Some)
            }
            Err(d) => {
                diagnostics.push(d);
                None
            }
        },
    };
    let mut policy = None;
    if let Some(m) = &m {
        // A grant that failed to parse is fatal: never compile without it, which
        // would silently show everything as not granted.
        let grant_ok = grant.is_none() || g.is_some();
        if grant_ok {
            let compiled = compile(m, g.as_ref().and_then(|x| x.as_ref()));
            diagnostics.extend(compiled.diagnostics);
            policy = compiled.policy;
        }
    }
    Loaded {
        manifest: m,
        grant: g.flatten(),
        policy,
        diagnostics,
    }
}

/// Loads an IR file (re-validated).
pub fn load_ir(path: &Path) -> Loaded {
    let limit = 16 * netgrant_policy::MAX_FILE_BYTES as u64;
    let mut diagnostics = Vec::new();
    let policy = match read(path, limit) {
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) => match load_policy(&display_name(path), text) {
                Ok(p) => Some(p),
                Err(ds) => {
                    diagnostics.extend(ds);
                    None
                }
            },
            Err(_) => {
                diagnostics.push(
                    Diagnostic::new(Code::NotUtf8, "IR file is not valid UTF-8")
                        .with_help("regenerate it with `netgrant compile`"),
                );
                None
            }
        },
        Err(d) => {
            diagnostics.push(d);
            None
        }
    };
    Loaded {
        manifest: None,
        grant: None,
        policy,
        diagnostics,
    }
}

/// Whether a path looks like an IR file rather than a TOML manifest.
pub fn looks_like_ir(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return true;
    }
    // A bounded look at the start: the whole file is read later, under the
    // size limit of what it turns out to be (an unbounded read here took a
    // huge file into memory before any limit applied).
    let mut head = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| {
        std::io::Read::read_to_end(&mut std::io::Read::take(f, LOOK_BYTES), &mut head)
    });
    read.is_ok() && head.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{')
}

/// How much of a file [`looks_like_ir`] reads: an IR starts with `{` after
/// at most some whitespace; more whitespace than this is not an IR.
const LOOK_BYTES: u64 = 64 * 1024;

/// Renders diagnostics for a terminal (stderr).
pub fn render_human(diags: &[Diagnostic]) -> String {
    let color = crate::output::stderr_color();
    let mut s = String::new();
    for d in diags {
        s.push_str(&netgrant_policy::diagnostics::render(d, color));
    }
    s
}
