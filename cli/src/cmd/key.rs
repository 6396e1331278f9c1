//! `yrd key show FILE`: a key's public key and libp2p peer id (never the secret),
//! and with `--genesis` the role and name the genesis gives it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use yrd_consensus::crypto::PublicKey;
use yrd_ledger::genesis::Genesis;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  yrd key show sh/validator.key
  yrd key show sh/validator.key --genesis genesis.json --json

Exit status: 0 shown; 2 the key or the genesis cannot be read.")]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Print a key's public key and peer id, and its role in a genesis
    #[command(after_help = "\
Examples:
  yrd key show sh/validator.key
  yrd key show 3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29 --genesis genesis.json

The peer id is the node's libp2p identity: other operators can pin it in their peers
(/ip4/ADDR/tcp/PORT/p2p/PEER_ID), and logs name peers by it next to their genesis name.

Exit status: 0 shown; 2 the key or the genesis cannot be read.")]
    Show {
        /// A key file from `yrd keygen` / `yrd init`, or a public key as 64 hex digits
        #[arg(value_name = "FILE")]
        key: String,
        /// Also say which validator, issuer, observer or agency of this genesis the key is
        #[arg(long, value_name = "GENESIS")]
        genesis: Option<PathBuf>,
        /// Print one JSON object
        #[arg(long)]
        json: bool,
    },
}

/// The roles a genesis gives a key, as `validator shanghai`, `issuer sh-credit`, ...
pub fn roles(g: &Genesis, key: &PublicKey) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(g.validators.iter().filter(|v| &v.key == key).map(|v| format!("validator {}", v.name)));
    out.extend(g.issuers.iter().filter(|i| &i.key == key).map(|i| format!("issuer {}", i.name)));
    out.extend(g.observers.iter().filter(|o| &o.key == key).map(|o| format!("observer {}", o.name)));
    out.extend(g.agencies.iter().filter(|a| &a.key == key).map(|a| format!("agency {}", a.name)));
    out
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Action::Show { key, genesis, json } = args.action;
    let public = super::genesis::parse_key(&key)?;
    let peer_id = yrd_node::net::peer_id_from_ed25519(&public.0).map_err(|e| anyhow!("cannot derive the peer id: {e}"))?;
    let roles = match &genesis {
        Some(path) => Some(roles(&super::verify::load_genesis(path)?, &public)),
        None => None,
    };
    if json {
        println!("{}", serde_json::json!({"public_key": public.to_hex(), "peer_id": peer_id.to_string(), "roles": roles}));
    } else {
        println!("public key   {}", public.to_hex());
        println!("peer id      {peer_id}");
        match roles {
            Some(r) if r.is_empty() => println!("in genesis   not listed: a node with this key is refused by the others"),
            Some(r) => println!("in genesis   {}", r.join(", ")),
            None => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}
