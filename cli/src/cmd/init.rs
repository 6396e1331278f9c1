//! `yrd init`: a new node directory — a validator (or observer) key and a commented
//! `node.toml` listing every configuration field (`yrd_node::config_doc`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use yrd_node::config::NodeConfig;
use yrd_node::config_doc::{sample_toml, SampleValues};

/// File names inside the node directory.
const KEY_FILE: &str = "validator.key";
const CONFIG_FILE: &str = "node.toml";
const GENESIS_FILE: &str = "genesis.json";
const DATA_DIR: &str = "data";

#[derive(clap::Args)]
#[command(
    long_about = "\
Set up a node directory: a new key (the node's validator or observer key, also its libp2p
identity) and a node.toml that lists every configuration field with its meaning, the
values given here set and every other field commented out at its default (the same
table as docs/node.md, \"Configuration reference\").

Writes DIR/validator.key (mode 0600) and DIR/node.toml; the data directory will be
DIR/data and the genesis DIR/genesis.json (put the file the agencies agreed on there, or
give --genesis). Nothing existing is overwritten.

Prints the public key (send it to whoever writes the genesis, as --validator
NAME:REGION:<public key>) and the peer id (the other operators add
/ip4/<your address>/tcp/<port>/p2p/<peer id> to their peers).",
    after_help = "\
Examples:
  yrd init --name shanghai --dir /etc/yrd/shanghai
  yrd init --name jiangsu --dir nodes/jiangsu --listen /ip4/0.0.0.0/tcp/26602 --api 127.0.0.1:8602 \\
    --peer /ip4/10.0.0.1/tcp/26601 --json

Exit status: 0 written; 2 invalid arguments, or a file exists or cannot be written."
)]
pub struct Args {
    /// This node's name in the genesis (a validator or observer name)
    #[arg(long, value_name = "NAME")]
    name: String,

    /// Node directory to create or fill (must not already hold a key or node.toml)
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,

    /// Genesis file, as written into node.toml (relative to DIR)
    #[arg(long, value_name = "FILE", default_value = GENESIS_FILE)]
    genesis: String,

    /// libp2p listen address
    #[arg(long, value_name = "MULTIADDR", default_value = "/ip4/0.0.0.0/tcp/26601")]
    listen: String,

    /// HTTP API address
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8601")]
    api: String,

    /// A peer to dial (repeatable)
    #[arg(long = "peer", value_name = "MULTIADDR")]
    peers: Vec<String>,

    /// Print {"public_key", "peer_id", "key_file", "config"} instead of text
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.name.trim().is_empty() || args.name.trim() != args.name {
        bail!("--name {:?} must be non-empty without leading or trailing spaces", args.name);
    }
    let values = SampleValues {
        name: args.name.clone(),
        genesis: args.genesis.clone(),
        key: KEY_FILE.into(),
        data_dir: DATA_DIR.into(),
        listen: args.listen.clone(),
        api: args.api.clone(),
        peers: args.peers.clone(),
    };
    let text = sample_toml(&values);
    // Check the file before anything is written: the node would refuse it later.
    let parsed: NodeConfig = toml::from_str(&text).map_err(|e| anyhow!("the config would not parse: {e}"))?;
    parsed.validate().map_err(|e| anyhow!("{e}"))?;

    let key_path = args.dir.join(KEY_FILE);
    let config_path = args.dir.join(CONFIG_FILE);
    for path in [&key_path, &config_path] {
        if path.exists() {
            bail!("refusing to overwrite {} (this directory is already set up)", path.display());
        }
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    let key = yrd_node::keys::generate();
    yrd_node::keys::write_key_file(&key_path, &key)?;
    write_new(&config_path, text.as_bytes())?;

    let public = key.public();
    let peer_id = yrd_node::net::peer_id_from_ed25519(&public.0).map_err(|e| anyhow!("cannot derive the peer id: {e}"))?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "public_key": public.to_hex(),
                "peer_id": peer_id.to_string(),
                "key_file": abs(&key_path),
                "config": abs(&config_path),
            })
        );
    } else {
        println!("key file     {}", abs(&key_path));
        println!("public key   {}", public.to_hex());
        println!("peer id      {peer_id}");
        println!("config       {}", abs(&config_path));
        println!();
        println!("Next:");
        println!("  1. send the public key to whoever writes the genesis (--validator {}:REGION:<public key>),", args.name);
        println!("     and your address with the peer id to the other operators (/ip4/<address>/tcp/<port>/p2p/{peer_id});");
        println!("  2. put the genesis in {} and check its chain id: yrd genesis inspect FILE;", abs(&args.dir.join(&args.genesis)));
        println!("  3. add the other nodes to peers in node.toml, then: yrd node --config {}", abs(&config_path));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow!("refusing to overwrite {}", path.display())
        } else {
            anyhow!("cannot create {}: {e}", path.display())
        }
    })?;
    file.write_all(bytes).and_then(|_| file.sync_all()).with_context(|| format!("cannot write {}", path.display()))
}
