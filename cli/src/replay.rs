//! `netgrant replay`: dry-run a policy against recorded traffic (JSON lines or
//! plain URLs), streaming; a summary per code, the top denied targets, and
//! with `--against` the traffic whose decision changes. Audit records of the
//! runtime (`connect --audit`) replay as they are: a decision record is a
//! request with its recorded decision, compared with the replayed one.
//!
//! Exit codes: 0 when the replay completed (whatever it decided), 1 with
//! `--fail-on-deny` when any line was denied or invalid, or with
//! `--fail-on-change` when any decision changes (under `--against`, or from
//! the decision an audit record carries); 2 when a policy or the log cannot
//! be read.

use crate::authorize::DecisionFormat;
use crate::input;
use crate::output::usage;
use crate::{CapabilityArg, Exit};
use clap::Args;
use netgrant_policy::redact::escape_terminal;
use netgrant_policy::replay::{write_summary_record, ReplayOptions, Replayer, Summary};
use netgrant_policy::{Authorizer, Capability, CompiledPolicy};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Inputs of `replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// `--manifest` (and `--grant`), or `--policy`.
    #[command(flatten)]
    pub input: input::PolicyInput,
    /// Capability of plain-URL lines and of JSON lines without "capability".
    #[arg(long, value_enum)]
    pub capability: Option<CapabilityArg>,
    /// A second policy (IR) to compare with: lists the traffic whose decision changes.
    #[arg(long, value_name = "IR.json", conflicts_with = "against_manifest")]
    pub against: Option<PathBuf>,
    /// The second policy as a manifest (with --against-grant).
    #[arg(long, value_name = "MANIFEST")]
    pub against_manifest: Option<PathBuf>,
    /// The grant of the second policy.
    #[arg(long, value_name = "GRANT", requires = "against_manifest")]
    pub against_grant: Option<PathBuf>,
    /// Exit 1 when any line is denied (or cannot be read as a request).
    #[arg(long)]
    pub fail_on_deny: bool,
    /// Exit 1 when any decision differs under the --against policy, or
    /// from the decision an audit record carries.
    #[arg(long)]
    pub fail_on_change: bool,
    /// Rows in the top-targets tables.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Output: a summary (human), or one JSON record per line then a summary record (json).
    #[arg(long, value_enum, default_value_t = DecisionFormat::Human)]
    pub format: DecisionFormat,
    /// The log: JSON lines or plain URLs, one per line; `-` reads standard input.
    pub log: PathBuf,
}

/// Tells write errors (stdout) from read errors (the log) after the engine
/// returns one `io::Error` for both.
struct Tracked<W> {
    inner: W,
    failed: Option<io::ErrorKind>,
}

impl<W: Write> Write for Tracked<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.inner
            .write(b)
            .inspect_err(|e| self.failed = Some(e.kind()))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .flush()
            .inspect_err(|e| self.failed = Some(e.kind()))
    }
}

fn name(p: &CompiledPolicy) -> String {
    let short = p
        .digest
        .strip_prefix("sha256:")
        .map(|d| &d[..d.len().min(12)])
        .unwrap_or("");
    format!(
        "{} {} (sha256:{short}…)",
        escape_terminal(&p.plugin.name),
        escape_terminal(&p.plugin.version)
    )
}

/// Runs `replay`.
pub fn run(a: &ReplayArgs) -> Exit {
    let policy = match a.input.load_policy() {
        Ok(p) => p,
        Err(e) => return e,
    };
    // The second policy loads exactly as the first, from its own flags.
    let against = match (&a.against, &a.against_manifest) {
        (None, None) => None,
        (ir, m) => {
            let second = input::PolicyInput {
                manifest: m.clone(),
                grant: a.against_grant.clone(),
                policy: ir.clone(),
            };
            match second.load_policy() {
                Ok(p) => Some(p),
                Err(e) => return e,
            }
        }
    };
    let primary = Authorizer::new(&policy);
    let second = against.as_ref().map(Authorizer::new);
    let opts = ReplayOptions {
        default_capability: a.capability.map(|c| match c {
            CapabilityArg::Websocket => Capability::Websocket,
            CapabilityArg::Request => Capability::Request,
        }),
        top_shown: a.top,
        records: a.format == DecisionFormat::Json,
        ..ReplayOptions::default()
    };
    let mut replayer = Replayer::new(&primary, second.as_ref(), opts);
    let stdout = io::stdout();
    let mut out = Tracked {
        inner: io::BufWriter::with_capacity(1 << 16, stdout.lock()),
        failed: None,
    };
    let json = a.format == DecisionFormat::Json;
    let result = if a.log.as_os_str() == "-" {
        let stdin = io::stdin();
        run_on(
            &mut replayer,
            BufReader::with_capacity(1 << 16, stdin.lock()),
            &mut out,
            json,
        )
    } else {
        match std::fs::File::open(&a.log) {
            Ok(f) => run_on(
                &mut replayer,
                BufReader::with_capacity(1 << 16, f),
                &mut out,
                json,
            ),
            Err(e) => {
                return usage(&format!(
                    "cannot read {}: {}",
                    a.log.display(),
                    e.to_string().to_lowercase()
                ))
            }
        }
    };
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            return match out.failed {
                Some(io::ErrorKind::BrokenPipe) => Exit::Ok,
                Some(_) => Exit::Invalid,
                None => usage(&format!(
                    "cannot read {}: {}",
                    if a.log.as_os_str() == "-" {
                        "standard input".to_string()
                    } else {
                        a.log.display().to_string()
                    },
                    e.to_string().to_lowercase()
                )),
            };
        }
    };
    let text = if json {
        let mut v = Vec::new();
        let _ = write_summary_record(&mut v, &summary);
        v
    } else {
        human(&summary, &a.log, &policy, against.as_ref()).into_bytes()
    };
    if let Err(e) = out.write_all(&text).and_then(|_| out.flush()) {
        return if e.kind() == io::ErrorKind::BrokenPipe {
            Exit::Ok
        } else {
            Exit::Invalid
        };
    }
    // A gate with nothing to compare would never fail: that is an input
    // error, known once the log is read (it may hold audit records).
    if a.fail_on_change && against.is_none() && summary.recorded.is_none() {
        return usage("--fail-on-change needs something to compare with: --against IR.json, --against-manifest M [--against-grant G], or a log of audit decision records");
    }
    let denied = summary.denied + summary.invalid > 0;
    let changed = summary.against.as_ref().is_some_and(|c| c.changed > 0)
        || summary.recorded.as_ref().is_some_and(|r| r.changed > 0);
    if (a.fail_on_deny && denied) || (a.fail_on_change && changed) {
        Exit::Deny
    } else {
        Exit::Ok
    }
}

fn run_on<R: BufRead, W: Write>(
    r: &mut Replayer<'_>,
    input: R,
    out: &mut W,
    json: bool,
) -> io::Result<Summary> {
    r.run(input, if json { Some(out) } else { None })
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The human summary.
pub fn human(
    s: &Summary,
    log: &Path,
    policy: &CompiledPolicy,
    against: Option<&CompiledPolicy>,
) -> String {
    let mut o = String::new();
    let log = if log.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        escape_terminal(&log.display().to_string())
    };
    let _ = writeln!(
        o,
        "replay of {log} with {}\n  {}: {} decided ({} allowed, {} denied), {}, {}",
        name(policy),
        plural(s.lines, "line", "lines"),
        s.decided,
        s.allowed,
        s.denied,
        plural(s.invalid, "invalid", "invalid"),
        plural(s.skipped, "skipped", "skipped"),
    );
    if !s.codes.is_empty() {
        o.push_str("\nby code\n");
        for c in &s.codes {
            let _ = writeln!(o, "  {:<20} {:>9}", c.code, c.count);
        }
    }
    if !s.top_denied.is_empty() {
        o.push_str("\ntop denied targets\n");
        let w = s
            .top_denied
            .iter()
            .map(|t| escape_terminal(&t.target).chars().count())
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            o,
            "  {:>9}  {:<20}  {:<w$}  example",
            "lines", "code", "target"
        );
        for t in &s.top_denied {
            let _ = writeln!(
                o,
                "  {:>9}  {:<20}  {:<w$}  {}",
                count(t.count, t.error),
                t.code,
                escape_terminal(&t.target),
                escape_terminal(&t.example)
            );
        }
        more(&mut o, s.more_denied, s.top_denied_approximate);
    }
    if !s.invalid_lines.is_empty() {
        let _ = writeln!(
            o,
            "\ninvalid lines ({} of {})",
            if s.invalid as usize > s.invalid_lines.len() {
                format!("first {}", s.invalid_lines.len())
            } else {
                "all".to_string()
            },
            s.invalid
        );
        for l in &s.invalid_lines {
            let _ = writeln!(o, "  line {}: {}", l.line, escape_terminal(&l.message));
        }
    }
    if let (Some(c), Some(p)) = (&s.against, against) {
        let _ = writeln!(
            o,
            "\nagainst {}\n  {} allowed, {} denied; {}",
            name(p),
            c.allowed,
            c.denied,
            if c.changed == 0 {
                "no decision changes".to_string()
            } else {
                format!("{} change", plural(c.changed, "decision", "decisions"))
            }
        );
        let arrow = |from: &str, to: &str| format!("{from} → {to}");
        let tw = c
            .transitions
            .iter()
            .map(|t| arrow(&t.from, &t.to).chars().count())
            .max()
            .unwrap_or(0)
            .max("old → new".len());
        if !c.transitions.is_empty() {
            o.push_str("\nchanges (old → new)\n");
            for t in &c.transitions {
                let _ = writeln!(o, "  {:<tw$}  {:>9}", arrow(&t.from, &t.to), t.count);
            }
        }
        if !c.top_changed.is_empty() {
            o.push_str("\ntop changed targets\n");
            let w = c
                .top_changed
                .iter()
                .map(|t| escape_terminal(&t.target).chars().count())
                .max()
                .unwrap_or(0);
            let _ = writeln!(
                o,
                "  {:>9}  {:<tw$}  {:<w$}  example",
                "lines", "old → new", "target"
            );
            for t in &c.top_changed {
                let _ = writeln!(
                    o,
                    "  {:>9}  {:<tw$}  {:<w$}  {}",
                    count(t.count, t.error),
                    arrow(&t.from, &t.to),
                    escape_terminal(&t.target),
                    escape_terminal(&t.example)
                );
            }
            more(&mut o, c.more_changed, c.approximate);
        }
    }
    if let Some(r) = &s.recorded {
        let _ = writeln!(
            o,
            "\nrecorded decisions (audit records)\n  {} carried a decision; {}",
            plural(r.lines, "line", "lines"),
            if r.changed == 0 {
                "every replayed decision is the same".to_string()
            } else {
                let verb = if r.changed == 1 { "differs" } else { "differ" };
                format!("{} {verb}", plural(r.changed, "decision", "decisions"))
            }
        );
        if !r.transitions.is_empty() {
            let arrow = |from: &str, to: &str| format!("{from} → {to}");
            let tw = r
                .transitions
                .iter()
                .map(|t| arrow(&t.from, &t.to).chars().count())
                .max()
                .unwrap_or(0);
            o.push_str("\nchanges (recorded → replayed)\n");
            for t in &r.transitions {
                let _ = writeln!(o, "  {:<tw$}  {:>9}", arrow(&t.from, &t.to), t.count);
            }
        }
    }
    o
}

fn count(n: u64, error: u64) -> String {
    if error == 0 {
        n.to_string()
    } else {
        format!("≤{n}")
    }
}

fn more(o: &mut String, n: u64, approximate: bool) {
    if n > 0 || approximate {
        let _ = writeln!(
            o,
            "  (+{n} more{})",
            if approximate {
                "; more distinct targets than tracked, counts marked ≤ are upper bounds"
            } else {
                ""
            }
        );
    }
}
