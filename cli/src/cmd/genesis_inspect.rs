//! `yrd genesis inspect FILE`: what a genesis says, its chain id and what the id is
//! for, and the warnings an agency should read before running a node on it. Also
//! what `yrd verify` prints when it is given a genesis.

use std::path::Path;
use std::process::ExitCode;

use serde_json::{json, Value};
use yrd_ledger::genesis::Genesis;

/// What the chain id is for, printed under it.
pub const CHAIN_ID_MEANING: &str = "\
the chain id is a hash of this file: every transaction, vote and proof is signed for
it, and nodes with another genesis are on another chain and refuse each other; every
agency must see this same id before starting its node";

/// The warnings an operator should read about a genesis (it is valid: these are
/// choices that cost fault tolerance or flexibility, not errors).
pub fn warnings(g: &Genesis) -> Vec<String> {
    let n = g.validators.len();
    let f = n.saturating_sub(1) / 3;
    let mut out = Vec::new();
    if n < 4 {
        let down = if n == 1 { "the validator down stops the chain" } else { "any one validator down stops the chain" };
        out.push(format!("fewer than 4 validators: no fault tolerance (n = {n}, f = 0): {down}"));
    } else if n != 3 * f + 1 {
        out.push(format!(
            "n = {n} validators tolerate f = {f} faulty, as {} would: the other {} add no fault tolerance and raise the quorum to {}",
            3 * f + 1,
            n - (3 * f + 1),
            n - f
        ));
    }
    if g.agencies.is_empty() {
        out.push("no agencies (governance keys): the membership can never change; a leaked issuer key cannot be frozen".into());
    }
    let mut regions: Vec<&str> = g.validators.iter().map(|v| v.region.as_str()).collect();
    regions.sort();
    regions.dedup();
    if n > 1 && regions.len() == 1 {
        out.push(format!("every validator is in region {}: one agency's outage could stop the chain", regions[0]));
    }
    if !g.issuers.iter().any(|i| i.may_revoke_any) {
        out.push("no issuer may revoke others' records (revoke-any): only the original issuer can revoke".into());
    }
    out
}

fn peer_id(key: &[u8; 32]) -> String {
    yrd_node::net::peer_id_from_ed25519(key).map(|p| p.to_string()).unwrap_or_else(|e| format!("(no peer id: {e})"))
}

fn time_text(ms: u64) -> String {
    super::verify::time_text(ms)
}

/// The inspection as JSON (`--json`), with the same content as the text.
pub fn to_json(g: &Genesis) -> anyhow::Result<Value> {
    let chain_id = g.chain_id()?;
    let n = g.validators.len();
    let f = n.saturating_sub(1) / 3;
    Ok(json!({
        "chain_id": chain_id.to_hex(),
        "chain_name": g.chain_name,
        "genesis_time_ms": g.genesis_time_ms,
        "n": n,
        "f": f,
        "quorum": n - f,
        "validators": g.validators.iter().map(|v| json!({"name": v.name, "region": v.region.as_str(), "public_key": v.key.to_hex(), "peer_id": peer_id(&v.key.0)})).collect::<Vec<_>>(),
        "issuers": g.issuers.iter().map(|i| json!({"name": i.name, "region": i.region.as_str(), "public_key": i.key.to_hex(), "kinds": i.kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>(), "revoke_any": i.may_revoke_any})).collect::<Vec<_>>(),
        "observers": g.observers.iter().map(|o| json!({"name": o.name, "public_key": o.key.to_hex(), "peer_id": peer_id(&o.key.0)})).collect::<Vec<_>>(),
        "agencies": g.agencies.iter().map(|a| json!({"name": a.name, "region": a.region.as_str(), "public_key": a.key.to_hex()})).collect::<Vec<_>>(),
        "max_block_txs": g.params.max_block_txs,
        "warnings": warnings(g),
    }))
}

/// Prints the inspection as text.
pub fn print(g: &Genesis) -> anyhow::Result<()> {
    let chain_id = g.chain_id()?;
    let n = g.validators.len();
    let f = n.saturating_sub(1) / 3;
    println!("chain        {}", g.chain_name);
    println!("chain id     {}", chain_id.to_hex());
    for line in CHAIN_ID_MEANING.lines() {
        println!("             {line}");
    }
    println!("created      {}", time_text(g.genesis_time_ms));
    println!(
        "consensus    n = {n} validators, f = {f} may fail, quorum {} (a block is final with {} signatures)",
        n - f,
        n - f
    );
    println!("validators   {n}");
    for v in &g.validators {
        println!("  {:<20} {:<3} {}  peer {}", v.name, v.region.as_str(), v.key.to_hex(), peer_id(&v.key.0));
    }
    println!("issuers      {}", g.issuers.len());
    for i in &g.issuers {
        let kinds = if i.kinds.len() == yrd_ledger::tx::AttestationKind::ALL.len() {
            "all kinds".to_string()
        } else {
            i.kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(",")
        };
        let any = if i.may_revoke_any { ", may revoke any record" } else { "" };
        println!("  {:<20} {:<3} {}  {kinds}{any}", i.name, i.region.as_str(), i.key.to_hex());
    }
    println!("observers    {} (non-voting nodes allowed to connect, e.g. lenders)", g.observers.len());
    for o in &g.observers {
        println!("  {:<20}     {}  peer {}", o.name, o.key.to_hex(), peer_id(&o.key.0));
    }
    println!("agencies     {} (governance keys: change the membership by more than two thirds)", g.agencies.len());
    for a in &g.agencies {
        println!("  {:<20} {:<3} {}", a.name, a.region.as_str(), a.key.to_hex());
    }
    println!("block limit  {} transactions", g.params.max_block_txs);
    let w = warnings(g);
    if w.is_empty() {
        println!("warnings     none");
    } else {
        println!("warnings     {}", w.len());
        for line in w {
            println!("  WARNING: {line}");
        }
    }
    Ok(())
}

/// `yrd genesis inspect FILE [--json]`.
pub fn run(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let g = super::verify::load_genesis(file)?;
    if json {
        println!("{}", to_json(&g)?);
    } else {
        print(&g)?;
    }
    Ok(ExitCode::SUCCESS)
}
