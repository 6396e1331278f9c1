//! `yrd genesis`: the genesis file for a set of agencies.
//!
//! Each `--validator`, `--issuer` and `--observer` is parsed on its own, so an error
//! names the argument and the part that is wrong; names and keys are then checked
//! across arguments, and finally the whole genesis with `Genesis::validate`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use yrd_consensus::crypto::PublicKey;
use yrd_ledger::genesis::{AgencyInfo, ChainParams, Genesis, IssuerInfo, ObserverInfo, Region, ValidatorInfo};
use yrd_ledger::tx::AttestationKind;

use super::attest::{now_ms, parse_time_ms};

const REVOKE_ANY: &str = "revoke-any";
/// Region codes this command accepts: Shanghai, Jiangsu, Zhejiang, Anhui.
const KNOWN_REGIONS: [&str; 4] = ["SH", "JS", "ZJ", "AH"];

#[derive(clap::Args)]
#[command(
    long_about = "\
Write the genesis file for a set of agencies and print the chain id.

The genesis lists the validators (agencies whose nodes vote in consensus), the issuers
(agencies that sign attestations, with the kinds each may issue), the observers
(non-voting nodes of lenders or auditors allowed to connect) and the agencies with their
governance (admin) keys, which approve every later change of membership by more than
two thirds (`yrd gov`; docs/governance.md). Without --agency the membership can never
change. The chain id, a hash of
the genesis, is printed; every transaction is signed for one chain id.

Argument formats (parts separated by ':'; names and key file paths cannot contain ':'):
  --validator NAME:REGION:KEY
  --issuer    NAME:REGION:KEY[:KINDS][:revoke-any]
  --observer  NAME:KEY
  --agency    NAME:REGION:KEY        (KEY: the agency's governance key, not its validator or issuer key)
REGION is SH (Shanghai), JS (Jiangsu), ZJ (Zhejiang) or AH (Anhui), in either case.
KEY is either a key file written by `yrd keygen` (its public key is used) or a public key
as 64 hex digits. KINDS is a comma-separated list of attestation kinds, or `all` (the
default): red-list, serious-dishonesty, administrative-penalty, credit-rating,
tax-credit, court-enforcement, commitment. `revoke-any` lets the issuer revoke other
issuers' attestations (e.g. a credit-repair office). Names are 1-64 characters, unique
across validators, issuers and observers (agencies have their own names, usually the
validator's); every key must differ.",
    after_help = "\
Example (four agencies, each with a validator key and an issuer key):
  yrd genesis --out genesis.json --chain-name yrd-credit-chain \\
    --validator shanghai:SH:keys/sh-validator.key --validator jiangsu:JS:keys/js-validator.key \\
    --validator zhejiang:ZJ:keys/zj-validator.key --validator anhui:AH:keys/ah-validator.key \\
    --issuer shanghai-credit:SH:keys/sh-issuer.key \\
    --issuer jiangsu-tax:JS:keys/js-issuer.key:tax-credit,administrative-penalty \\
    --issuer zhejiang-credit:ZJ:keys/zj-issuer.key:all:revoke-any \\
    --issuer anhui-credit:AH:keys/ah-issuer.key \\
    --observer bank-of-shanghai:keys/bank.key \\
    --agency shanghai:SH:keys/sh-admin.key --agency jiangsu:JS:keys/js-admin.key \\
    --agency zhejiang:ZJ:keys/zj-admin.key --agency anhui:AH:keys/ah-admin.key

To read a genesis you received (chain id, members, n and f, warnings):
  yrd genesis inspect genesis.json

Exit status: 0 genesis written; 2 a malformed argument, an invalid genesis, or the file
exists or cannot be written.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,

    /// Genesis file to create (must not exist)
    #[arg(long, value_name = "FILE", required = true)]
    out: Option<PathBuf>,

    /// Human name of the chain, e.g. yrd-credit-chain-testnet
    #[arg(long, value_name = "NAME", required = true)]
    chain_name: Option<String>,

    /// A validator: NAME:REGION:KEY (repeat for each; at least one)
    #[arg(long = "validator", value_name = "NAME:REGION:KEY", required = true)]
    validators: Vec<String>,

    /// An issuer: NAME:REGION:KEY[:KINDS][:revoke-any] (repeat for each; at least one)
    #[arg(long = "issuer", value_name = "NAME:REGION:KEY[:KINDS][:revoke-any]", required = true)]
    issuers: Vec<String>,

    /// An observer node allowed to connect: NAME:KEY (repeatable). A full replica that holds
    /// every record: an auditor's or regulator's node, never a lender's (docs/access.md)
    #[arg(long = "observer", value_name = "NAME:KEY")]
    observers: Vec<String>,

    /// An agency that governs the chain, with its governance key: NAME:REGION:KEY (repeatable)
    #[arg(long = "agency", value_name = "NAME:REGION:KEY")]
    agencies: Vec<String>,

    /// Most transactions in one block (default 4096)
    #[arg(long, value_name = "N")]
    max_block_txs: Option<u32>,

    /// Genesis time, RFC 3339 (2026-01-01T00:00:00+08:00) or milliseconds since the
    /// Unix epoch; default now. Fix it to make the genesis (and chain id) reproducible.
    /// Block 1 must be stamped later: a time in the future delays the first block
    #[arg(long, value_name = "TIME")]
    genesis_time: Option<String>,

    /// Print {"chain_id", "file", "validators", "issuers", "observers"} instead of the bare chain id
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Show what a genesis file says: chain id (and what it is for), validators, issuers,
    /// observers, agencies, n and f, and warnings
    #[command(after_help = "\
Examples:
  yrd genesis inspect genesis.json
  yrd genesis inspect genesis.json --json

Exit status: 0 a valid genesis; 2 the file cannot be read or is not a valid genesis.")]
    Inspect {
        /// The genesis file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print one JSON object
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Action::Inspect { file, json }) = &args.action {
        return super::genesis_inspect::run(file, *json);
    }
    let out = args.out.clone().context("--out is required")?;
    let genesis = build(&args)?;
    let chain_id = genesis.chain_id().context("cannot encode the genesis")?;
    write_new(&out, genesis.to_json_pretty().as_bytes())?;
    if args.json {
        let file = std::path::absolute(&out).unwrap_or_else(|_| out.clone());
        println!(
            "{}",
            serde_json::json!({
                "chain_id": chain_id.to_hex(),
                "file": file.display().to_string(),
                "validators": genesis.validators.len(),
                "issuers": genesis.issuers.len(),
                "observers": genesis.observers.len(),
                "agencies": genesis.agencies.len(),
            })
        );
    } else {
        println!("{}", chain_id.to_hex());
    }
    Ok(ExitCode::SUCCESS)
}

fn build(args: &Args) -> anyhow::Result<Genesis> {
    let validators = args
        .validators
        .iter()
        .map(|spec| parse_validator(spec).with_context(|| format!("--validator {spec:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let issuers = args
        .issuers
        .iter()
        .map(|spec| parse_issuer(spec).with_context(|| format!("--issuer {spec:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let observers = args
        .observers
        .iter()
        .map(|spec| parse_observer(spec).with_context(|| format!("--observer {spec:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let agencies = args
        .agencies
        .iter()
        .map(|spec| {
            parse_validator(spec)
                .map(|v| AgencyInfo { name: v.name, region: v.region, key: v.key })
                .with_context(|| format!("--agency {spec:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Names and keys across arguments, so the error can name both arguments.
    let all = validators
        .iter()
        .zip(&args.validators)
        .map(|(v, spec)| (format!("--validator {spec:?}"), &v.name, v.key))
        .chain(issuers.iter().zip(&args.issuers).map(|(i, spec)| (format!("--issuer {spec:?}"), &i.name, i.key)))
        .chain(
            observers.iter().zip(&args.observers).map(|(o, spec)| (format!("--observer {spec:?}"), &o.name, o.key)),
        );
    let mut keys: BTreeMap<PublicKey, String> = BTreeMap::new();
    let mut agency_names: BTreeMap<&str, String> = BTreeMap::new();
    for (a, spec) in agencies.iter().zip(&args.agencies) {
        let arg = format!("--agency {spec:?}");
        if let Some(first) = agency_names.get(a.name.as_str()) {
            bail!("{arg}: agency name {:?} is already used by {first}", a.name);
        }
        agency_names.insert(a.name.as_str(), arg.clone());
        keys.insert(a.key, arg);
    }
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    for (arg, name, key) in all {
        if let Some(first) = names.get(name.as_str()) {
            bail!("{arg}: name {name:?} is already used by {first}; names must be unique");
        }
        if let Some(first) = keys.get(&key) {
            bail!("{arg}: key {} is already used by {first}; every validator, issuer, observer and agency needs its own key", key.to_hex());
        }
        names.insert(name.as_str(), arg.clone());
        keys.insert(key, arg);
    }

    let mut params = ChainParams::default();
    if let Some(n) = args.max_block_txs {
        params.max_block_txs = n;
    }
    let genesis_time_ms = match &args.genesis_time {
        Some(t) => parse_time_ms(t).context("--genesis-time")?,
        None => now_ms()?,
    };
    let genesis = Genesis {
        chain_name: args.chain_name.clone().context("--chain-name is required")?,
        genesis_time_ms,
        params,
        validators,
        issuers,
        observers,
        agencies,
        lenders: vec![],
    };
    genesis.validate().context("invalid genesis")?;
    Ok(genesis)
}

pub(crate) fn parse_validator(spec: &str) -> anyhow::Result<ValidatorInfo> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [name, region, key] = parts[..] else {
        bail!("expected NAME:REGION:KEY (3 parts separated by ':'), got {} part(s)", parts.len());
    };
    Ok(ValidatorInfo { name: parse_name(name)?, region: parse_region(region)?, key: parse_key(key)? })
}

pub(crate) fn parse_issuer(spec: &str) -> anyhow::Result<IssuerInfo> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, region, key, kinds, revoke) = match parts[..] {
        [n, r, k] => (n, r, k, None, None),
        [n, r, k, x] if x.trim().eq_ignore_ascii_case(REVOKE_ANY) => (n, r, k, None, Some(x)),
        [n, r, k, kinds] => (n, r, k, Some(kinds), None),
        [n, r, k, kinds, x] => (n, r, k, Some(kinds), Some(x)),
        _ => bail!(
            "expected NAME:REGION:KEY[:KINDS][:revoke-any] (3 to 5 parts separated by ':'), got {} part(s)",
            parts.len()
        ),
    };
    let may_revoke_any = match revoke {
        None => false,
        Some(x) if x.trim().eq_ignore_ascii_case(REVOKE_ANY) => true,
        Some(x) => bail!("last part {x:?} must be `{REVOKE_ANY}` (or leave it out)"),
    };
    Ok(IssuerInfo {
        name: parse_name(name)?,
        region: parse_region(region)?,
        key: parse_key(key)?,
        kinds: parse_kinds(kinds.unwrap_or("all"))?,
        may_revoke_any,
    })
}

pub(crate) fn parse_observer(spec: &str) -> anyhow::Result<ObserverInfo> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [name, key] = parts[..] else {
        bail!("expected NAME:KEY (2 parts separated by ':'), got {} part(s)", parts.len());
    };
    Ok(ObserverInfo { name: parse_name(name)?, key: parse_key(key)? })
}

fn parse_name(name: &str) -> anyhow::Result<String> {
    if name.is_empty() {
        bail!("the name is empty");
    }
    if name.trim() != name {
        bail!("name {name:?} has leading or trailing spaces");
    }
    Ok(name.to_string())
}

/// One of the founding regions. The ledger accepts any code of 2-8 letters so that
/// regions can join later, but a typo here (`Shanghai` is 8 letters) would silently
/// create a new region, so this command takes only the codes it knows.
fn parse_region(region: &str) -> anyhow::Result<Region> {
    let parsed = Region::parse(region).map_err(|e| anyhow!("{e}"))?;
    if !KNOWN_REGIONS.contains(&parsed.as_str()) {
        bail!("unknown region {region:?}: expected one of {}", KNOWN_REGIONS.join(", "));
    }
    Ok(parsed)
}

/// A 64-hex public key, or a key file (whose public key is used).
pub(crate) fn parse_key(key: &str) -> anyhow::Result<PublicKey> {
    if key.is_empty() {
        bail!("the key is empty; give a key file or a 64-hex public key");
    }
    let path = Path::new(key);
    let looks_hex = key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit());
    if looks_hex && !path.exists() {
        let public = PublicKey::from_hex(key).map_err(|e| anyhow!("public key {key}: {e}"))?;
        public.check().map_err(|e| anyhow!("public key {key} cannot be used: {e}"))?;
        return Ok(public);
    }
    if !path.exists() {
        bail!("key file {key} does not exist (KEY is a key file from `yrd keygen` or a 64-hex public key)");
    }
    Ok(yrd_node::keys::read_key_file(path)?.public())
}

pub(crate) fn parse_kinds(list: &str) -> anyhow::Result<Vec<AttestationKind>> {
    let list = list.trim();
    if list.is_empty() || list.eq_ignore_ascii_case("all") {
        return Ok(AttestationKind::ALL.to_vec());
    }
    let mut kinds = list
        .split(',')
        .map(|k| {
            if k.trim().is_empty() {
                bail!("empty kind in {list:?}");
            }
            k.parse::<AttestationKind>().map_err(|e| anyhow!("{}", e.replace("AttestationKind", "kind")))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// Writes a new file; refuses to replace an existing genesis (that would change the chain id).
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow!("refusing to overwrite existing file {} (a new genesis is a new chain); remove it first", path.display())
        } else {
            anyhow!("cannot create {}: {e}", path.display())
        }
    })?;
    file.write_all(bytes)
        .and_then(|_| file.write_all(b"\n"))
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
