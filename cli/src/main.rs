//! `netgrant`: validate, compile, review and enforce plugin network permissions.

mod approve;
mod authorize;
mod check;
mod compile;
mod connect;
mod diff;
mod explain;
mod input;
mod list;
mod output;
mod replay;
mod request;
mod runtime_args;
mod show;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes: 0 success / allow; 1 deny or a gate tripped; 2 invalid input or usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success, or allow.
    Ok = 0,
    /// Deny, or a gate tripped.
    Deny = 1,
    /// Invalid input or usage.
    Invalid = 2,
}

#[derive(Parser)]
#[command(
    name = "netgrant",
    version,
    about = "Declarative network permissions for plugins: validate, compile, review, authorize",
    long_about = "netgrant compiles a plugin's manifest (plugin.toml) and a user's grant (grant.toml) \
into a canonical permission IR, reports problems as diagnostics pointing into the TOML, and \
authorizes URLs against it.\n\nExit codes: 0 success/allow, 1 deny or gate tripped, 2 invalid input or usage.\n\
Static commands never open a socket, resolve a name or start a process."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which capability `authorize` checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CapabilityArg {
    /// host_api.websocket
    Websocket,
    /// host_api.request
    Request,
}

/// Which JSON Schema `schema` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaArg {
    /// plugin.toml
    Manifest,
    /// grant.toml
    Grant,
    /// the compiled IR
    Ir,
    /// the output of `list --format json`
    ListOutput,
    /// the output of `diff --format json`
    DiffOutput,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a manifest (and a grant); exit 2 on any error, 1 if --deny-broad trips.
    Check {
        /// The plugin manifest (plugin.toml).
        manifest: PathBuf,
        /// The grant (grant.toml).
        #[arg(long, short)]
        grant: Option<PathBuf>,
        /// Exit 1 when anything broad is requested.
        #[arg(long)]
        deny_broad: bool,
        /// Promote a lint or warning to an error that fails the check with
        /// exit 1 (`warnings` promotes every warning). Repeatable.
        #[arg(long, short = 'D', value_name = "LINT")]
        deny: Vec<String>,
        /// Silence a lint or warning. Repeatable; --deny wins over --allow.
        #[arg(long, short = 'A', value_name = "LINT")]
        allow: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = check::CheckFormat::Human)]
        format: check::CheckFormat,
    },
    /// Print the canonical permission IR (JSON).
    Compile {
        /// The plugin manifest (plugin.toml).
        manifest: PathBuf,
        /// The grant (grant.toml).
        #[arg(long, short)]
        grant: Option<PathBuf>,
        /// Write the IR to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Review what a plugin may reach: requested / granted / not granted / ignored, broad first.
    Show {
        /// A manifest (plugin.toml) or a compiled IR (.json).
        input: PathBuf,
        /// The grant (grant.toml), with a manifest.
        #[arg(long, short)]
        grant: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = show::ShowFormat::Human)]
        format: show::ShowFormat,
    },
    /// Print a JSON Schema (draft-07).
    Schema {
        /// Which schema.
        #[arg(value_enum)]
        kind: SchemaArg,
    },
    /// Decide one URL: exit 0 allow, 1 deny.
    Authorize(authorize::AuthorizeArgs),
    /// One row per plugin across a workspace: counts, broad/loopback/private, pinned-grant drift; broad first.
    List {
        /// Directories to search for plugin.toml (bounded walk), or manifest files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Take grants from DIR/<plugin-name>.toml or DIR/<plugin-name>/grant.toml
        /// instead of grant.toml beside each manifest.
        #[arg(long, value_name = "DIR")]
        grants: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = list::ListFormat::Human)]
        format: list::ListFormat,
    },
    /// Write a grant approving what a manifest requests (asks before broad, loopback and private targets).
    Approve(approve::ApproveArgs),
    /// Decide one URL and say why: the matched rule, or the nearest misses and the grant or manifest line that would allow it.
    Explain(authorize::AuthorizeArgs),
    /// Dry-run a policy against recorded traffic (JSON lines or URLs): counts per code, top denied targets, changes --against a second policy.
    Replay(replay::ReplayArgs),
    /// Open a WebSocket through the runtime: stdin lines go out as text, incoming messages print one per line.
    Connect(connect::ConnectArgs),
    /// Send one HTTP request through the runtime: status line and filtered headers on stderr, the body on stdout; exit 0 on any HTTP status.
    Request(request::RequestArgs),
    /// Permission change between two manifests or IRs: added, removed, widened, narrowed, newly broad; exit 1 when --fail-on trips.
    Diff(diff::DiffArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Check {
            manifest,
            grant,
            deny_broad,
            deny,
            allow,
            format,
        } => match check::levels(&deny, &allow) {
            Ok(levels) => check::run(
                &manifest,
                grant.as_deref(),
                &check::CheckOptions {
                    deny_broad,
                    levels: &levels,
                    format,
                },
            ),
            Err(e) => e,
        },
        Command::Compile {
            manifest,
            grant,
            output,
        } => compile::run(&manifest, grant.as_deref(), output.as_deref()),
        Command::Show {
            input,
            grant,
            format,
        } => show::run(&input, grant.as_deref(), format),
        Command::Schema { kind } => {
            use netgrant_policy::schema::{schema_json, SchemaKind};
            let text = match kind {
                SchemaArg::Manifest => schema_json(SchemaKind::Manifest),
                SchemaArg::Grant => schema_json(SchemaKind::Grant),
                SchemaArg::Ir => schema_json(SchemaKind::Ir),
                SchemaArg::ListOutput => list::schema_json(),
                SchemaArg::DiffOutput => diff::schema_json(),
            };
            output::print_stdout(&text)
        }
        Command::Authorize(args) => authorize::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Connect(args) => connect::run(&args),
        Command::Request(args) => request::run(&args),
        Command::Approve(args) => approve::run(&args),
        Command::List {
            inputs,
            grants,
            format,
        } => list::run(&inputs, grants.as_deref(), format),
        Command::Diff(args) => diff::run(&args),
    };
    ExitCode::from(exit as u8)
}
