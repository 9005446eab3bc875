//! `netgrant`: validate, compile, review and enforce plugin network permissions.

mod authorize;
mod check;
mod compile;
mod connect;
mod explain;
mod input;
mod output;
mod replay;
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

/// Output format for `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// Rendered diagnostics for a terminal.
    Human,
    /// One JSON document.
    Json,
    /// GitHub Actions workflow annotations.
    Github,
    /// SARIF 2.1.0.
    Sarif,
}

/// Output format for `show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// A review table for a terminal.
    Human,
    /// One JSON document.
    Json,
    /// Markdown, for a pull-request comment.
    Markdown,
}

/// Output format for `authorize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DecisionFormat {
    /// One line.
    Human,
    /// One JSON object.
    Json,
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
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
        format: CheckFormat,
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
        #[arg(long, value_enum, default_value_t = ShowFormat::Human)]
        format: ShowFormat,
    },
    /// Print a JSON Schema (draft-07).
    Schema {
        /// Which schema.
        #[arg(value_enum)]
        kind: SchemaArg,
    },
    /// Decide one URL: exit 0 allow, 1 deny.
    Authorize(authorize::AuthorizeArgs),
    /// Decide one URL and say why: the matched rule, or the nearest misses and the grant or manifest line that would allow it.
    Explain(authorize::AuthorizeArgs),
    /// Dry-run a policy against recorded traffic (JSON lines or URLs): counts per code, top denied targets, changes --against a second policy.
    Replay(replay::ReplayArgs),
    /// Open a WebSocket through the runtime: stdin lines go out as text, incoming messages print one per line.
    Connect(connect::ConnectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Check {
            manifest,
            grant,
            deny_broad,
            format,
        } => check::run(&manifest, grant.as_deref(), deny_broad, format),
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
            let k = match kind {
                SchemaArg::Manifest => SchemaKind::Manifest,
                SchemaArg::Grant => SchemaKind::Grant,
                SchemaArg::Ir => SchemaKind::Ir,
            };
            output::print_stdout(&schema_json(k))
        }
        Command::Authorize(args) => authorize::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Connect(args) => connect::run(&args),
    };
    ExitCode::from(exit as u8)
}
