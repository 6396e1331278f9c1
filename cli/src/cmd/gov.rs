//! `yrd gov`: consortium governance — propose and approve membership changes, list
//! and show proposals, show the membership in force (docs/governance.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use yrd_ledger::genesis::{AgencyInfo, ChainParams};
use yrd_ledger::governance::{Change, GovApproval, GovProposal, MAX_CHANGES, MAX_SUMMARY_BYTES};
use yrd_ledger::tx::{TxBody, TxId};

use super::attest::{submit, SubmitArgs};
use super::client::{path_segment, Client, NodeArgs};
use super::genesis::{parse_issuer, parse_key, parse_kinds, parse_observer, parse_validator};

/// Default lifetime of a proposal, in blocks (the chain caps it; docs/governance.md).
const DEFAULT_DEADLINE_BLOCKS: u64 = 100_000;

#[derive(clap::Args)]
#[command(
    long_about = "\
Consortium governance: the agencies change who validates, who issues what, who may
observe, and the chain parameters, by a vote on chain. An agency's governance (admin)
key — listed in the genesis, separate from its validator and issuer keys — signs a
proposal or an approval; a proposal is approved when more than two thirds of the
agencies in force have approved it (proposing counts as approving), before its
deadline. It takes effect a fixed number of blocks (4 by default) after the block that
approved it, on every node at the same height; a freeze of an issuer key takes effect
at the next block. See docs/governance.md.",
    after_help = "\
Examples:
  # A fifth agency joins: its validator, its issuer and its governance key.
  yrd gov propose --key keys/sh-admin.key --summary 'Suzhou joins' \\
    --change add-agency:suzhou:JS:keys/sz-admin.pub \\
    --change add-validator:suzhou:JS:<64-hex validator key> \\
    --change add-issuer:suzhou-credit:JS:<64-hex issuer key>:all --wait
  yrd gov approve --key keys/js-admin.key <proposal id> --wait
  # An issuer key leaked: freeze it at once, then give the issuer a new key.
  yrd gov propose --key keys/zj-admin.key --change freeze-issuer:zhejiang-credit --summary 'key leaked'
  yrd gov list --state open
  yrd gov show <proposal id> --json
  yrd gov members"
)]
pub struct Args {
    #[command(subcommand)]
    command: GovCommand,
}

#[derive(clap::Subcommand)]
enum GovCommand {
    /// Sign and submit a proposal (one or more changes)
    Propose(ProposeArgs),
    /// Sign and submit an approval of a proposal
    Approve(ApproveArgs),
    /// List proposals and their state
    List(ListArgs),
    /// Show one proposal: changes, approvals, outcome
    Show(ShowArgs),
    /// Show the membership in force: agencies, validators, issuers, observers, parameters, retired keys
    Members(MembersArgs),
}

#[derive(clap::Args)]
#[command(after_help = "\
CHANGE (parts separated by ':'; KEY is a key file or 64 hex digits; KINDS as in `yrd genesis`):
  add-agency:NAME:REGION:KEY        remove-agency:NAME        rotate-agency:NAME:KEY
  add-validator:NAME:REGION:KEY     remove-validator:NAME     rotate-validator:NAME:KEY
  add-issuer:NAME:REGION:KEY[:KINDS][:revoke-any]
  remove-issuer:NAME                rotate-issuer:NAME:KEY    freeze-issuer:NAME
  issuer-rights:NAME:KINDS[:revoke-any]
  add-observer:NAME:KEY             remove-observer:NAME
  set-param:NAME=VALUE              (max_block_txs, max_block_bytes, approval_num, approval_den,
                                     activation_delay_blocks, max_proposal_ttl_blocks; the others
                                     keep their current values)
Changes apply in the order given, all or none.")]
struct ProposeArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The agency's governance (admin) key file
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// A change (repeatable; see below)
    #[arg(long = "change", value_name = "CHANGE", required = true)]
    changes: Vec<String>,
    /// What the proposal is for (at most 256 bytes)
    #[arg(long, value_name = "TEXT", default_value = "")]
    summary: String,
    /// Blocks the proposal stays open for approvals
    #[arg(long, value_name = "N", default_value_t = DEFAULT_DEADLINE_BLOCKS)]
    deadline_blocks: u64,
    #[command(flatten)]
    submit: SubmitArgs,
}

#[derive(clap::Args)]
struct ApproveArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The agency's governance (admin) key file
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Id of the proposal (64 hex digits)
    #[arg(value_name = "ID")]
    id: String,
    #[command(flatten)]
    submit: SubmitArgs,
}

#[derive(clap::Args)]
struct ListArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Only proposals in this state: open, expired, approved, applied, failed
    #[arg(long, value_name = "STATE")]
    state: Option<String>,
    /// Print the node's JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ShowArgs {
    #[command(flatten)]
    node: NodeArgs,
    #[arg(value_name = "ID")]
    id: String,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct MembersArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The membership in force at this height (default: the next block's)
    #[arg(long, value_name = "HEIGHT")]
    height: Option<u64>,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        GovCommand::Propose(a) => propose(a),
        GovCommand::Approve(a) => approve(a),
        GovCommand::List(a) => list(a),
        GovCommand::Show(a) => show(a),
        GovCommand::Members(a) => members(a),
    }
}

fn propose(a: ProposeArgs) -> anyhow::Result<ExitCode> {
    if a.changes.len() > MAX_CHANGES {
        bail!("{} changes given; a proposal holds at most {MAX_CHANGES}", a.changes.len());
    }
    if a.summary.len() > MAX_SUMMARY_BYTES {
        bail!("--summary is {} bytes; at most {MAX_SUMMARY_BYTES}", a.summary.len());
    }
    let client = Client::new(&a.node.node)?;
    let status = client.get("/v1/status")?;
    let height = status.get("height").and_then(Value::as_u64).ok_or_else(|| anyhow!("the node's status has no height"))?;
    let needs_params = a.changes.iter().any(|c| c.starts_with("set-param:"));
    let mut params = if needs_params { Some(current_params(&client)?) } else { None };
    let mut changes = Vec::with_capacity(a.changes.len());
    for spec in &a.changes {
        let change = parse_change(spec, &mut params).with_context(|| format!("--change {spec:?}"))?;
        if let Some(c) = change {
            changes.push(c);
        }
    }
    if let Some(p) = params {
        p.validate().map_err(|e| anyhow!("set-param: {e}"))?;
        changes.push(Change::SetParams(p));
    }
    let key = yrd_node::keys::read_key_file(&a.key)?;
    let deadline = height.saturating_add(1).saturating_add(a.deadline_blocks);
    let body = TxBody::Propose(GovProposal { changes, deadline, summary: a.summary });
    submit(&client, &key, body, &a.submit)
}

/// One `--change`. `set-param` changes accumulate into `params` (one SetParams
/// change is appended at the end) and give `None`.
fn parse_change(spec: &str, params: &mut Option<ChainParams>) -> anyhow::Result<Option<Change>> {
    let (kind, rest) = spec.split_once(':').ok_or_else(|| anyhow!("expected KIND:…, e.g. remove-validator:anhui"))?;
    let two = |what: &str| -> anyhow::Result<(String, String)> {
        let (n, k) = rest.split_once(':').ok_or_else(|| anyhow!("expected {kind}:NAME:{what}"))?;
        Ok((n.to_string(), k.to_string()))
    };
    let name = || -> anyhow::Result<String> {
        if rest.is_empty() || rest.contains(':') {
            bail!("expected {kind}:NAME");
        }
        Ok(rest.to_string())
    };
    Ok(Some(match kind {
        "add-agency" => {
            let v = parse_validator(rest)?;
            Change::AddAgency(AgencyInfo { name: v.name, region: v.region, key: v.key })
        }
        "remove-agency" => Change::RemoveAgency { name: name()? },
        "rotate-agency" => {
            let (n, k) = two("KEY")?;
            Change::RotateAgencyKey { name: n, key: parse_key(&k)? }
        }
        "add-validator" => Change::AddValidator(parse_validator(rest)?),
        "remove-validator" => Change::RemoveValidator { name: name()? },
        "rotate-validator" => {
            let (n, k) = two("KEY")?;
            Change::RotateValidatorKey { name: n, key: parse_key(&k)? }
        }
        "add-issuer" => Change::AddIssuer(parse_issuer(rest)?),
        "remove-issuer" => Change::RemoveIssuer { name: name()? },
        "rotate-issuer" => {
            let (n, k) = two("KEY")?;
            Change::RotateIssuerKey { name: n, key: parse_key(&k)? }
        }
        "freeze-issuer" => Change::FreezeIssuer { name: name()? },
        "issuer-rights" => {
            let (n, rights) = two("KINDS[:revoke-any]")?;
            let (kinds, any) = match rights.strip_suffix(":revoke-any") {
                Some(k) => (k, true),
                None => (rights.as_str(), false),
            };
            Change::SetIssuerRights { name: n, kinds: parse_kinds(kinds)?, may_revoke_any: any }
        }
        "add-observer" => Change::AddObserver(parse_observer(rest)?),
        "remove-observer" => Change::RemoveObserver { name: name()? },
        "set-param" => {
            let (k, v) = rest.split_once('=').ok_or_else(|| anyhow!("expected set-param:NAME=VALUE"))?;
            let p = params.as_mut().ok_or_else(|| anyhow!("internal: parameters not fetched"))?;
            let n: u64 = v.trim().parse().map_err(|_| anyhow!("{k}: {v:?} is not a number"))?;
            let small = |n: u64| u32::try_from(n).map_err(|_| anyhow!("{k} = {n} is too large"));
            match k.trim() {
                "max_block_txs" => p.max_block_txs = small(n)?,
                "max_block_bytes" => p.max_block_bytes = small(n)?,
                "approval_num" => p.governance.approval_num = small(n)?,
                "approval_den" => p.governance.approval_den = small(n)?,
                "activation_delay_blocks" => p.governance.activation_delay_blocks = n,
                "max_proposal_ttl_blocks" => p.governance.max_proposal_ttl_blocks = n,
                other => bail!(
                    "unknown parameter {other:?}: expected max_block_txs, max_block_bytes, approval_num, approval_den, \
                     activation_delay_blocks or max_proposal_ttl_blocks"
                ),
            }
            return Ok(None);
        }
        other => bail!(
            "unknown change {other:?}: expected add-/remove-/rotate-agency, add-/remove-/rotate-validator, \
             add-/remove-/rotate-issuer, freeze-issuer, issuer-rights, add-/remove-observer or set-param"
        ),
    }))
}

fn current_params(client: &Client) -> anyhow::Result<ChainParams> {
    let m = client.get("/v1/governance/membership")?;
    let params = m.get("membership").and_then(|m| m.get("params")).cloned().ok_or_else(|| anyhow!("the node's membership has no params"))?;
    serde_json::from_value(params).context("the node's parameters")
}

fn approve(a: ApproveArgs) -> anyhow::Result<ExitCode> {
    let proposal = TxId::from_hex(&a.id).map_err(|e| anyhow!("the proposal id must be 64 hex digits: {e}"))?;
    let client = Client::new(&a.node.node)?;
    let key = yrd_node::keys::read_key_file(&a.key)?;
    submit(&client, &key, TxBody::Approve(GovApproval { proposal }), &a.submit)
}

fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.node.node)?;
    let path = match &a.state {
        Some(s) => format!("/v1/governance/proposals?state={}", path_segment(s)),
        None => "/v1/governance/proposals".to_string(),
    };
    let v = client.get(&path)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let proposals = v.get("proposals").and_then(Value::as_array).cloned().unwrap_or_default();
    if proposals.is_empty() {
        println!("no proposals");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<16}  {:>7}  {:<9}  {:>9}  {:<12}  summary", "proposal", "height", "state", "effective", "proposer");
    for p in &proposals {
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let n = |k: &str| p.get(k).and_then(Value::as_u64).map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        println!("{:<16}  {:>7}  {:<9}  {:>9}  {:<12}  {}", &s("id")[..16.min(s("id").len())], n("height"), s("state"), n("effective"), s("proposer"), s("summary"));
    }
    Ok(ExitCode::SUCCESS)
}

fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    TxId::from_hex(&a.id).map_err(|e| anyhow!("the proposal id must be 64 hex digits: {e}"))?;
    let client = Client::new(&a.node.node)?;
    let p = client.get(&format!("/v1/governance/proposals/{}", path_segment(&a.id)))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = |k: &str| p.get(k).map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string())).unwrap_or_default();
    println!("proposal     {}", s("id"));
    println!("proposed by  {} at height {}, deadline {}", s("proposer"), s("height"), s("deadline"));
    if !s("summary").is_empty() {
        println!("summary      {}", s("summary"));
    }
    println!("state        {}", s("state"));
    if let Some(e) = p.get("effective").and_then(Value::as_u64) {
        println!("approved at  {}, effective from height {e}", s("approved_at"));
    }
    if let Some(f) = p.get("failure").and_then(Value::as_str) {
        println!("failed       {f}");
    }
    for (i, c) in p.get("changes").and_then(Value::as_array).into_iter().flatten().enumerate() {
        println!("change {i}     {}", c.get("description").and_then(Value::as_str).unwrap_or(""));
    }
    for ap in p.get("approvals").and_then(Value::as_array).into_iter().flatten() {
        let f = |k: &str| ap.get(k).map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string())).unwrap_or_default();
        // `counts: false`: its agency left, or rotated its key after approving.
        let stale = if ap.get("counts").and_then(Value::as_bool) == Some(false) { ", no longer counts" } else { "" };
        println!("approved by  {} at height {} (tx {}{stale})", f("agency"), f("height"), f("tx"));
    }
    if let Some(n) = p.get("approvals_needed").and_then(Value::as_u64).filter(|n| *n > 0) {
        println!("needs        {n} more approval(s)");
    }
    Ok(ExitCode::SUCCESS)
}

fn members(a: MembersArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.node.node)?;
    let path = match a.height {
        Some(h) => format!("/v1/governance/membership?height={h}"),
        None => "/v1/governance/membership".to_string(),
    };
    let v = client.get(&path)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let m = v.get("membership").cloned().unwrap_or(Value::Null);
    println!("membership in force at height {} (hash {})", v["height"], v.get("hash").and_then(Value::as_str).unwrap_or(""));
    let list = |k: &str| m.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let frozen: Vec<String> = list("frozen").iter().filter_map(|x| x.as_str().map(String::from)).collect();
    for (title, key) in [("agencies", "agencies"), ("validators", "validators"), ("issuers", "issuers"), ("observers", "observers")] {
        let items = list(key);
        println!("{title} ({}):", items.len());
        for x in items {
            let name = x.get("name").and_then(Value::as_str).unwrap_or("");
            let region = x.get("region").and_then(Value::as_str).unwrap_or("");
            let k = x.get("key").and_then(Value::as_str).unwrap_or("");
            let note = if frozen.iter().any(|f| f == name) { "  FROZEN" } else { "" };
            println!("  {name:<20} {region:<3} {k}{note}");
        }
    }
    let retired = list("retired");
    if !retired.is_empty() {
        println!("retired keys ({}):", retired.len());
        for r in retired {
            let f = |k: &str| r.get(k).map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string())).unwrap_or_default();
            println!("  {} {} {} since height {} ({})", f("key"), f("role"), f("name"), f("since"), f("reason"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
