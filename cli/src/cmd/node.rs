//! `yrd node`: run a validator (or observer) node until SIGINT/SIGTERM.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use tracing_subscriber::EnvFilter;
use yrd_node::config::NodeConfig;

/// The long help of `yrd node` (also set on the subcommand in `main.rs`: a doc
/// comment there would replace it).
pub const LONG_ABOUT: &str = "\
Run a node: join the permissioned network, take part in consensus if the node's key is a
validator in the genesis (otherwise follow the chain as an observer), store the ledger
in the data directory and serve the HTTP API and Prometheus metrics (/metrics).

The configuration is a TOML file (relative paths are taken from the file's directory).
Every field, its default and its meaning are listed in docs/node.md, \"Configuration
reference\", and `yrd init --name NAME --dir DIR` writes a node.toml that lists them
all, commented, next to a new key. A minimal file:

  name = \"shanghai\"                 # a validator or observer name in the genesis
  genesis = \"genesis.json\"
  key = \"keys/sh-validator.key\"     # this node's key file (mode 0600)
  data_dir = \"data/shanghai\"
  listen = \"/ip4/0.0.0.0/tcp/26601\" # libp2p
  api = \"127.0.0.1:8601\"            # HTTP API
  peers = [\"/ip4/10.0.0.2/tcp/26601\"]

Sections with defaults for everything: [mempool], [consensus] (timeouts, block
interval), [storage] (disk reserve), [http] (API limits).

At start the node raises its descriptor limit (RLIMIT_NOFILE) to the hard limit and
logs it with the API's connection cap. At the cap, a new API connection closes the one
that has waited longest on its client (docs/node.md, \"HTTP limits\").

Flags override the file: --data-dir, --api, --listen, --log-format replace the value;
--peer (repeatable) replaces the whole peers list. Paths given as flags are relative to
the current directory. The result is validated before the node starts.

Logs go to standard error, as text or one JSON object per line; RUST_LOG sets the filter
(default `info`, e.g. RUST_LOG=yrd_node=debug,info). SIGINT or SIGTERM stops the node
cleanly.

Exit status: 0 stopped by a signal; 2 invalid configuration or the node failed. A storage
failure (a failed write, ENOSPC, the disk reserve reached, a write hung for 30 s) is logged
as an ERROR before anything else and stops the node within seconds; on the next start the
store reopens at its last complete block and the node fetches the rest from its peers.";

#[derive(clap::Args)]
#[command(
    long_about = LONG_ABOUT,
    after_help = "\
Examples:
  yrd node --config /etc/yrd/shanghai.toml
  yrd node --config node.toml --data-dir /tmp/sh --api 127.0.0.1:9601 \\
    --listen /ip4/127.0.0.1/tcp/27601 --peer /ip4/127.0.0.1/tcp/27602 --log-format json"
)]
pub struct Args {
    /// Node configuration (TOML)
    #[arg(long, value_name = "FILE")]
    config: PathBuf,

    /// Directory of the node's database (overrides data_dir)
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Address of the HTTP API, e.g. 127.0.0.1:8601 (overrides api)
    #[arg(long, value_name = "ADDR")]
    api: Option<String>,

    /// libp2p listen address, e.g. /ip4/0.0.0.0/tcp/26601 (overrides listen)
    #[arg(long, value_name = "MULTIADDR")]
    listen: Option<String>,

    /// A peer to dial (repeatable; replaces the peers of the file)
    #[arg(long = "peer", value_name = "MULTIADDR")]
    peers: Vec<String>,

    /// Log format (overrides log_format)
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load(args)?;
    init_tracing(&config.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("yrd-node")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(yrd_node::run(config));
    // Dropping a runtime waits for every blocking task, and one may be stuck in
    // the store (a flush on a failed or hung disk): never wait for it forever.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    result?;
    Ok(ExitCode::SUCCESS)
}

/// How long the runtime's remaining tasks get at exit (the node's own shutdown
/// steps are bounded already; this bounds a blocking task stuck in the store).
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(5);

/// The TOML file with the flags applied, validated.
fn load(args: Args) -> anyhow::Result<NodeConfig> {
    let mut config = NodeConfig::load(&args.config)?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(api) = args.api {
        config.api = api;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if !args.peers.is_empty() {
        config.peers = args.peers;
    }
    if let Some(format) = args.log_format {
        config.log_format = format;
    }
    config.validate().map_err(|e| anyhow!("{e} (after applying the command-line flags)"))?;
    Ok(config)
}

fn init_tracing(format: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = if format == "json" { builder.json().try_init() } else { builder.try_init() };
    installed.map_err(|e| anyhow!("cannot set up logging: {e}"))
}
