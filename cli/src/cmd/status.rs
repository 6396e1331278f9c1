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
    println!("log size    {}", f("log_size"));
    println!("mempool     {} / {}", f("mempool_size"), f("mempool_capacity"));
    let peers = status.get("peers").and_then(Value::as_array).cloned().unwrap_or_default();
    let peer_names: Vec<String> = peers.iter().map(|p| text_field(p, "name").into_owned()).collect();
    println!("peers       {}{}", peers.len(), if peer_names.is_empty() { String::new() } else { format!(": {}", peer_names.join(", ")) });
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

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
fn time_text(v: Option<&Value>) -> String {
    let Some(ms) = v.and_then(Value::as_u64) else {
        return "-".into();
    };
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03} UTC", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// Inverse of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
