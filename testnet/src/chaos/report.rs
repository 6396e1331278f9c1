//! What a chaos run reports: the summary (`--json` prints it as one object) and
//! its printed form.

use std::collections::BTreeMap;

use serde::Serialize;

use super::checker::Verdicts;
use super::plan::{Fault, FaultKind};

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub kind: FaultKind,
    pub reason: String,
}

/// What the run reports (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub validators: usize,
    pub f: usize,
    pub duration_s: u64,
    pub rate: f64,
    /// Each validator in its own network namespace.
    pub namespaces: bool,
    /// The kinds drawn from (asked for and possible here).
    pub kinds: Vec<FaultKind>,
    pub skipped: Vec<Skipped>,
    pub planned: BTreeMap<FaultKind, u64>,
    /// Faults injected (started without error), by kind.
    pub fired: BTreeMap<FaultKind, u64>,
    pub injection_errors: Vec<String>,
    /// Clock jumps seen by the node (its HTTP Date or its status clock offset),
    /// of those checked, and what was seen where a jump was not.
    pub clock_verified: u64,
    pub clock_checked: u64,
    pub clock_unseen: Vec<String>,
    /// fsync-family calls the shim delayed.
    pub fsync_delayed_calls: u64,
    /// Bytes written by the disk fillers, MiB.
    pub disk_filled_mib: f64,
    /// Nodes that exited under a full disk (as docs/node.md says they should
    /// before the disk is full), restarted at the heal.
    pub disk_full_exits: u64,
    pub load: LoadSummary,
    pub final_heights: Vec<u64>,
    pub verdicts: Option<Verdicts>,
    pub pass: bool,
    pub interrupted: bool,
    pub dir: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadSummary {
    pub submitted: u64,
    pub accepted: u64,
    pub refused: u64,
    pub transport_errors: u64,
    pub not_sent: u64,
    pub refusal_reasons: Vec<String>,
}

pub fn count_by_kind(faults: &[Fault]) -> BTreeMap<FaultKind, u64> {
    let mut m = BTreeMap::new();
    for f in faults {
        *m.entry(f.kind).or_insert(0) += 1;
    }
    m
}

pub fn print_summary(s: &Summary) {
    println!();
    println!("Chaos summary (seed {}, {} validators, {} s of faults, load {}/s, {}):", s.seed, s.validators, s.duration_s, s.rate,
        if s.namespaces { "each validator in its own network namespace" } else { "loopback" });
    let fired: Vec<String> = FaultKind::ALL
        .iter()
        .filter(|k| s.planned.contains_key(k))
        .map(|k| format!("{k} {}/{}", s.fired.get(k).copied().unwrap_or(0), s.planned.get(k).copied().unwrap_or(0)))
        .collect();
    println!("  faults fired/planned: {}", fired.join(", "));
    for sk in &s.skipped {
        println!("  skipped {}: {}", sk.kind, sk.reason);
    }
    println!(
        "  evidence: clock jumps seen by the node {}/{}; fsync calls delayed {}; disk filled {:.0} MiB, nodes that stopped under it {}",
        s.clock_verified, s.clock_checked, s.fsync_delayed_calls, s.disk_filled_mib, s.disk_full_exits
    );
    for e in &s.injection_errors {
        println!("  injection problem: {e}");
    }
    for e in &s.clock_unseen {
        println!("  clock jump not seen: {e}");
    }
    let l = &s.load;
    println!(
        "  load: submitted {}, accepted {}, refused {}, transport errors {}, not sent (queue full) {}",
        l.submitted, l.accepted, l.refused, l.transport_errors, l.not_sent
    );
    if !l.refusal_reasons.is_empty() {
        println!("  refusals: {}", l.refusal_reasons.join("; "));
    }
    match &s.verdicts {
        None => println!("  interrupted: no verdicts"),
        Some(v) => {
            println!("  accepted {}, reported committed {}, accepted but never final {}", v.accepted, v.committed, v.never_final);
            for (name, x) in [("liveness", &v.liveness), ("durability", &v.durability), ("agreement", &v.agreement), ("stores", &v.stores), ("crashes", &v.crashes)] {
                println!("  {:<10} {}  {}", name, if x.pass { "PASS" } else { "FAIL" }, x.detail);
            }
        }
    }
    println!("Verdict: {} (seed {})", if s.pass { "PASS" } else { "FAIL" }, s.seed);
}
