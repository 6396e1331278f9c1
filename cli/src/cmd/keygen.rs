//! `yrd keygen`: a new ed25519 key file (validator, issuer or observer key).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
#[command(
    long_about = "\
Generate a new ed25519 key and write it to a key file.

The file is JSON ({\"type\": \"yrd-ed25519-secret-key\", \"public_key\": .., \"secret_key\": ..})
created with mode 0600; an existing file is never overwritten. The same kind of key
serves as a validator key (also the node's network identity), an issuer key (signs
attestations) or an observer key. Keep one key per role: the genesis refuses a key used
twice.

Prints the public key (64 hex digits), which goes into the genesis (`yrd genesis` also
accepts the key file itself).",
    after_help = "\
Examples:
  yrd keygen --out keys/shanghai-validator.key
  yrd keygen --out keys/shanghai-credit.key --json

Exit status: 0 key written; 2 the file exists or cannot be written."
)]
pub struct Args {
    /// Key file to create (must not exist)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    /// Print {"public_key": .., "file": ..} instead of the bare public key
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key = yrd_node::keys::generate();
    yrd_node::keys::write_key_file(&args.out, &key)?;
    let public = key.public().to_hex();
    if args.json {
        let file = std::path::absolute(&args.out).unwrap_or_else(|_| args.out.clone());
        let file = file.to_str().context("key file path is not valid UTF-8")?.to_string();
        println!("{}", serde_json::json!({"public_key": public, "file": file}));
    } else {
        println!("{public}");
    }
    Ok(ExitCode::SUCCESS)
}
