//! `yrd`: the command-line tool of the YRD credit chain.
//!
//! Each subcommand lives in its own module under `src/cmd/` and exposes
//!
//! ```text
//! #[derive(clap::Args)] pub struct Args { .. }
//! pub fn run(args: Args) -> anyhow::Result<std::process::ExitCode>
//! ```
//!
//! Adding a subcommand is one `pub mod` line in [`cmd`], one variant of [`Command`]
//! (its doc comment is the one-line help) and one arm in [`dispatch`].
//!
//! Exit status, for every subcommand: 0 success; 1 the command ran but its check
//! failed (invalid codes, a proof that does not verify, …); 2 usage error or the
//! command could not be carried out (unreadable file, unreachable node, …). Errors go
//! to stderr as `yrd: error: …`; reports go to stdout.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// One module per subcommand.
mod cmd {
    pub mod attest;
    pub mod audit;
    pub mod backup;
    pub mod client;
    pub mod duration;
    pub mod genesis;
    pub mod genesis_inspect;
    pub mod gov;
    pub mod init;
    pub mod key;
    pub mod keygen;
    pub mod lender;
    pub mod localtime;
    pub mod node;
    pub mod progress;
    pub mod proof;
    pub mod query;
    pub mod report;
    pub mod restore;
    pub mod revoke;
    pub mod status;
    pub mod uscc;
    pub mod verify;
}

/// Exit status when the command ran and its check failed.
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Exit status for usage errors and commands that could not be carried out.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "yrd",
    version,
    about = "YRD Credit Chain: credit attestations about enterprises, on a permissioned blockchain",
    long_about = "\
YRD Credit Chain: credit attestations about enterprises, on a permissioned blockchain.

Agencies of the Yangtze River Delta record credit attestations (red lists, serious
dishonesty lists, administrative penalties, credit ratings, court enforcement records,
credit commitments) and their revocations about enterprises identified by their Unified
Social Credit Code (USCC, GB 32100-2015). The agencies' validator nodes replicate the
ledger under BFT consensus; a lender or auditor can verify any record, its current
status and that a subject's list of records is complete, offline, with only the genesis
file.

`yrd` generates keys and the genesis, runs a node, signs and submits attestations and
revocations, queries the ledger, produces and verifies proof bundles, audits the ledger,
and cleans registers of USCCs before they are used.",
    after_help = "\
Exit status: 0 success; 1 the check failed (e.g. invalid codes found); 2 usage error or
the command could not be carried out. Run `yrd <COMMAND> --help` for details."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Show times in UTC instead of the local time zone (TZ or /etc/localtime)
    #[arg(long, global = true)]
    utc: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Set up a node directory: a new key and a commented node.toml with every field
    Init(cmd::init::Args),
    /// Generate an ed25519 key file (validator, issuer or observer key)
    Keygen(cmd::keygen::Args),
    /// Show a key's public key, peer id and role in a genesis
    Key(cmd::key::Args),
    /// Write the genesis file for a set of agencies and print the chain id; `genesis inspect` reads one
    Genesis(cmd::genesis::Args),
    /// Run a validator or observer node (TOML config, overridable by flags)
    #[command(long_about = cmd::node::LONG_ABOUT)]
    Node(cmd::node::Args),
    /// Sign and submit a credit attestation about an enterprise
    Attest(cmd::attest::Args),
    /// Sign and submit the revocation of an attestation
    Revoke(cmd::revoke::Args),
    /// Governance: propose and approve membership changes, list proposals, show the members
    Gov(cmd::gov::Args),
    /// Lenders: record an enterprise's authorisation (授权) on chain, or withdraw it
    Lender(cmd::lender::Args),
    /// Query attestations by subject, id or issuer
    Query(cmd::query::Args),
    /// Show a node's status: chain, height, peers, validators
    Status(cmd::status::Args),
    /// Fetch the proof bundle of one attestation (for offline `yrd verify`)
    Proof(cmd::proof::Args),
    /// Fetch the subject report: every record about an enterprise, provably complete
    Report(cmd::report::Args),
    /// Verify a proof bundle, subject report, trace or consistency proof offline, with only the genesis
    Verify(cmd::verify::Args),
    /// Audit: trace an attestation's provenance, prove the log only grew, verify a whole ledger
    Audit(cmd::audit::Args),
    /// Back up a node's certified blocks (from a running node, consistent as of its height)
    Backup(cmd::backup::Args),
    /// Restore a data directory from a backup, re-checking every block and certificate
    Restore(cmd::restore::Args),
    /// Check Unified Social Credit Codes (GB 32100-2015): one code, or whole registers for errors and duplicates
    Uscc(cmd::uscc::Args),
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Init(args) => cmd::init::run(args),
        Command::Keygen(args) => cmd::keygen::run(args),
        Command::Key(args) => cmd::key::run(args),
        Command::Genesis(args) => cmd::genesis::run(args),
        Command::Node(args) => cmd::node::run(args),
        Command::Attest(args) => cmd::attest::run(args),
        Command::Revoke(args) => cmd::revoke::run(args),
        Command::Gov(args) => cmd::gov::run(args),
        Command::Lender(args) => cmd::lender::run(args),
        Command::Query(args) => cmd::query::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Proof(args) => cmd::proof::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Backup(args) => cmd::backup::run(args),
        Command::Restore(args) => cmd::restore::run(args),
        Command::Uscc(args) => cmd::uscc::run(args),
    }
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    cmd::localtime::set_utc(cli.utc);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("yrd: error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `println!` panics when stdout is a pipe the reader has closed (`yrd verify … | head`);
/// Rust ignores SIGPIPE and `unsafe` (to restore it) is forbidden here. End quietly,
/// as a process killed by SIGPIPE would (status 141), instead of printing a panic.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info)
    }));
}

/// `yrd … | head` closes the pipe early; that is not an error worth reporting.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
