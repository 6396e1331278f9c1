//! `yrd status`: a node's view of the chain.

use std::process::ExitCode;

use serde_json::Value;

use super::client::{text_field, Client, NodeArgs};

#[derive(clap::Args)]
#[command(
    long_about = "\
Show a node's status: chain name and id, the node's name and role, committed height,
consensus round and step, the last block's hash and time, mempool use, connected peers
and the validator set.

--json prints the node's answer to GET /v1/status unchanged (docs/api.md): one object
with chain_id, chain_name, node, validator, height, round, step, last_block_hash,
last_block_time_ms, log_size, mempool_size, mempool_capacity, peers and validators.

Exit status: 0 success; 2 the node cannot be reached or answered with an error.",
    after_help = "\
Examples:
  yrd status
  YRD_NODE=http://10.0.0.2:8601 yrd status --json"
)]
pub struct Args {
    #[command(flatten)]
    node: NodeArgs,

    /// Print the node's JSON status object
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.node.node)?;
    let status = client.get("/v1/status")?;
    if args.json {
        println!("{status}");
        return Ok(ExitCode::SUCCESS);
    }
    let f = |k: &str| text_field(&status, k).into_owned();
    let role = match status.get("validator").and_then(Value::as_bool) {
        Some(true) => "validator",
        Some(false) => "observer",
        None => "?",
    };
    println!("node        {} ({role}) at {}", f("node"), client.base());
    println!("chain       {} {}", f("chain_name"), f("chain_id"));
    println!("height      {} (round {}, step {})", f("height"), f("round"), f("step"));
    println!("last block  {} at {}", f("last_block_hash"), time_text(status.get("last_block_time_ms")));
    if let Some(l) = status.get("liveness").filter(|l| l.is_object()) {
        for line in liveness_lines(l, &f("height")) {
            println!("{line}");
        }
    }
    println!("log size    {}", f("log_size"));
    println!("mempool     {} / {}", f("mempool_size"), f("mempool_capacity"));
    let peers = status.get("peers").and_then(Value::as_array).cloned().unwrap_or_default();
    let peer_names: Vec<String> = peers.iter().map(|p| text_field(p, "name").into_owned()).collect();
    println!("peers       {}{}", peers.len(), if peer_names.is_empty() { String::new() } else { format!(": {}", peer_names.join(", ")) });
    if let Some(configured) = status.get("configured_peers").and_then(Value::as_array).filter(|c| !c.is_empty()) {
        println!("configured  {} peer(s) in the config", configured.len());
        for c in configured {
            let state = text_field(c, "state");
            let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
            let mut line = format!("  {:<32} {:<12} {state}", text_field(c, "addr"), name);
            if state != "connected" {
                let failures = c.get("failures").and_then(Value::as_u64).unwrap_or(0);
                if failures > 0 {
                    line.push_str(&format!(", {failures} failed dial(s)"));
                }
                if let Some(ms) = c.get("retry_in_ms").and_then(Value::as_u64) {
                    line.push_str(&format!(", retry in {:.1} s", ms as f64 / 1000.0));
                }
                if let Some(e) = c.get("last_error").and_then(Value::as_str) {
                    line.push_str(&format!(": {e}"));
                }
            }
            println!("{line}");
        }
    }
    if let Some(validators) = status.get("validators").and_then(Value::as_array) {
        println!("validators  {}", validators.len());
        for v in validators {
            println!(
                "  {:>3}  {:<20} {:<4} {}",
                text_field(v, "index"),
                text_field(v, "name"),
                text_field(v, "region"),
                text_field(v, "key")
            );
        }
    }
    if let Some(g) = status.get("governance") {
        let pending = g.get("pending").and_then(Value::as_array).cloned().unwrap_or_default();
        println!("governance  {} agencies, membership {}", text_field(g, "agencies"), text_field(g, "membership_hash"));
        for p in &pending {
            let when = match p.get("effective").and_then(Value::as_u64) {
                Some(e) => format!("takes effect at height {e}"),
                None => format!("needs {} more approval(s)", text_field(p, "approvals_needed")),
            };
            println!("  pending   {} {}: {} — {when}", text_field(p, "id"), text_field(p, "state"), text_field(p, "summary"));
        }
    }
    if let Some(h) = status.get("halted").filter(|h| !h.is_null()) {
        println!(
            "HALTED      at height {}: {} (a certified block fails this node's validation; see docs/consensus.md)",
            text_field(h, "height"),
            text_field(h, "reason")
        );
    }
    if let Some(clock) = status.get("clock").filter(|c| c.get("ok") == Some(&Value::Bool(false))) {
        println!("CLOCK       off by {} ms from the other validators' (fix NTP)", text_field(clock, "offset_ms"));
    }
    Ok(ExitCode::SUCCESS)
}

/// The quorum, the time since the last block and catching-up progress, from the
/// status' `liveness` object (also used by `--wait` progress).
pub fn liveness_lines(l: &Value, height: &str) -> Vec<String> {
    let n = |k: &str| l.get(k).and_then(Value::as_u64).unwrap_or(0);
    let missing: Vec<&str> = l.get("validators_missing").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let age = n("last_block_age_ms") as f64 / 1000.0;
    let mut out = Vec::new();
    if l.get("quorum") == Some(&Value::Bool(true)) {
        let also = if missing.is_empty() { String::new() } else { format!("; not connected: {}", missing.join(", ")) };
        out.push(format!(
            "quorum      present: {} validators connected, {} needed{also}",
            n("validators_connected"),
            n("validators_needed")
        ));
    } else {
        out.push(format!(
            "quorum      LOST: {} validators connected, {} needed (not connected: {}): no block can become final",
            n("validators_connected"),
            n("validators_needed"),
            missing.join(", ")
        ));
    }
    out.push(format!("last final  {age:.1} s ago"));
    if l.get("catching_up") == Some(&Value::Bool(true)) {
        let best = n("best_known_height");
        let h: u64 = height.parse().unwrap_or(0);
        let pct = (h * 100).checked_div(best).unwrap_or(0);
        out.push(format!("catching up at height {h} of {best} known ({pct} %), fetching blocks from peers"));
    }
    out
}

/// Milliseconds since the epoch as a date and time with milliseconds, in the local
/// zone (UTC with `--utc`).
fn time_text(v: Option<&Value>) -> String {
    match v.and_then(Value::as_u64) {
        Some(ms) => super::localtime::format_ms(ms, true),
        None => "-".into(),
    }
}
