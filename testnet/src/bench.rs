//! `yrd-testnet bench`: a fresh testnet (no samples), the load client as a
//! separate process, and each node's CPU time and peak memory from `/proc`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::load::{self, LoadReport};
use crate::procs::{self, Procs};
use crate::signals;
use crate::testnet::{Options, Testnet};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Target submission rate, attestations per second
    #[arg(long)]
    pub rate: f64,
    /// How long to submit, in seconds
    #[arg(long)]
    pub duration: f64,
    /// Print the figures as one JSON object on the last line
    #[arg(long)]
    pub json: bool,
    /// Directory for the testnet (default: a fresh temporary directory, kept)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Attestations per request (default: what is due in 10 ms, at most 2000)
    #[arg(long)]
    pub batch: Option<usize>,
    /// First port: node i serves its API on P+i and libp2p on P+100+i (default: free ports)
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Longest wait, after submitting, for accepted attestations to be final (seconds)
    #[arg(long, default_value_t = 30.0)]
    pub drain: f64,
    /// Most attestations per block, in the genesis and the node configs (default: the chain's, 4096)
    #[arg(long)]
    pub max_block_txs: Option<u32>,
    /// Every node's mempool.max_wait_ms: refuse clients while the oldest pending transaction waited more than half of it (default 1000; 0: by count only)
    #[arg(long)]
    pub max_wait_ms: Option<u64>,
    /// Every node's consensus.block_interval_ms: least time between blocks (default 0: propose as soon as the previous block is final and attestations wait)
    #[arg(long)]
    pub block_interval_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeFigures {
    pub name: String,
    pub region: String,
    /// CPU time (user + system) as % of one core over the load run.
    pub cpu_pct: f64,
    pub cpu_s: f64,
    /// Peak resident memory (VmHWM), MiB.
    pub peak_rss_mb: f64,
    /// Network traffic over the load run, from the node's `/metrics`.
    pub traffic: Traffic,
}

/// One node's network counters over the load run (`/metrics` before and after)
/// and the same per block it committed meanwhile.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Traffic {
    pub blocks: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub gossip_published: u64,
    pub gossip_received: u64,
    pub bytes_sent_per_block: f64,
    pub bytes_received_per_block: f64,
    /// Gossip messages published and received, per block.
    pub messages_per_block: f64,
}

/// The counters the traffic figures come from, read from a node's `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    blocks: u64,
    bytes_sent: u64,
    bytes_received: u64,
    gossip_published: u64,
    gossip_received: u64,
}

impl Counters {
    fn read(api: &crate::api::Api) -> Option<Counters> {
        let text = api.get_text("/metrics").ok()??;
        let value = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
                .map(|v| v as u64)
        };
        Some(Counters {
            blocks: value("yrd_blocks_committed_total")?,
            bytes_sent: value("yrd_p2p_bytes_sent_total")?,
            bytes_received: value("yrd_p2p_bytes_received_total")?,
            gossip_published: value("yrd_gossip_published_total")?,
            gossip_received: value("yrd_gossip_received_total")?,
        })
    }

    fn since(self, before: Counters) -> Traffic {
        let blocks = self.blocks.saturating_sub(before.blocks);
        let per = |x: u64| if blocks > 0 { (x as f64 / blocks as f64).round() } else { f64::NAN };
        let t = Traffic {
            blocks,
            bytes_sent: self.bytes_sent.saturating_sub(before.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(before.bytes_received),
            gossip_published: self.gossip_published.saturating_sub(before.gossip_published),
            gossip_received: self.gossip_received.saturating_sub(before.gossip_received),
            ..Traffic::default()
        };
        Traffic {
            bytes_sent_per_block: per(t.bytes_sent),
            bytes_received_per_block: per(t.bytes_received),
            messages_per_block: per(t.gossip_published + t.gossip_received),
            ..t
        }
    }
}

/// The bench's JSON line: the three headline figures first.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub finalized_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_peak_rss_mb: f64,
    /// Node CPU time per finalised attestation, averaged over the nodes, µs.
    pub node_cpu_us_per_tx: f64,
    /// Per-signature costs of a batched and of a single strict check, measured
    /// on this machine just before the run (`refcost`).
    pub reference: crate::refcost::Reference,
    /// `node_cpu_us_per_tx` in batched signature checks (issue 12 item 4's goal: ≤ 2).
    pub node_cpu_vs_batched_check: f64,
    /// Averages over the nodes of their traffic per block committed during the run
    /// (bytes on peers' TCP connections, each direction; gossip messages published + received).
    pub bytes_sent_per_block_per_node: f64,
    pub bytes_received_per_block_per_node: f64,
    pub messages_per_block_per_node: f64,
    /// `loopback`, `wan (netem)`, `wan (relay)` or `wan (namespaces, no delays)`.
    pub links: String,
    /// `--wan --relay`: bytes the relays carried between validators over the whole run.
    pub relay_bytes: Option<u64>,
    pub nodes: Vec<NodeFigures>,
    pub load: LoadReport,
    pub wall_s: f64,
    pub dir: PathBuf,
    /// `<cores> × <CPU model>` from the OS.
    pub machine: String,
    /// 1-minute load average just before the load client started and just after it
    /// ended: other work on the machine shows here.
    pub loadavg_before: f64,
    pub loadavg_after: f64,
}

fn loadavg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} × {model} ({})", std::env::consts::ARCH)
}

/// `validators` and `wan` are the global flags (`yrd-testnet --validators N --wan bench …`
/// or after `bench`).
pub fn run(args: &BenchArgs, validators: usize, wan: &crate::wan::WanArgs) -> Result<bool> {
    let stop = signals::install()?;
    // The yardstick, before any node runs (issue 12, item 4).
    let reference = crate::refcost::measure(Duration::from_secs(1));
    println!(
        "Reference on this machine: {:.1} µs per signature in a batched check (1,024 per batch), {:.1} µs per single strict check",
        reference.batched_us, reference.single_us
    );
    let opts = Options {
        validators,
        wan: wan.impairments()?,
        node_env: Vec::new(),
        dir: args.dir.clone(),
        base_port: args.base_port,
        tuning: crate::setup::Tuning {
            max_block_txs: args.max_block_txs,
            max_wait_ms: args.max_wait_ms,
            block_interval_ms: args.block_interval_ms,
            ..Default::default()
        },
    };
    let mut tn = Testnet::start(&opts, &stop)?;
    let node_pids: Vec<u32> = tn.procs.list.iter().map(|p| p.pid()).collect();
    // Let the first blocks settle before measuring.
    std::thread::sleep(Duration::from_millis(500));

    let exe = std::env::current_exe().context("cannot find this executable's path")?;
    // With --wan the client runs in its own namespace (in the first agency's city).
    let mut cmd = match &tn.wan {
        None => Command::new(&exe),
        Some(net) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &net.client_ns]).arg(&exe);
            c
        }
    };
    cmd.arg("load")
        .arg("--testnet")
        .arg(&tn.layout.testnet_json)
        .args([
            "--rate",
            &args.rate.to_string(),
            "--duration",
            &args.duration.to_string(),
        ])
        .args(["--drain", &args.drain.to_string(), "--json"]);
    if let Some(b) = args.batch {
        cmd.args(["--batch", &b.to_string()]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    println!(
        "Starting the load client: {} load --testnet {} --rate {} --duration {}",
        exe.display(),
        tn.layout.testnet_json.display(),
        args.rate,
        args.duration
    );
    let loadavg_before = loadavg_1m();
    let ticks0: Vec<Option<u64>> = node_pids.iter().map(|p| procs::cpu_ticks(*p)).collect();
    let traffic0: Vec<Option<Counters>> = tn.quick.iter().map(Counters::read).collect();
    let t0 = Instant::now();
    let mut client = Procs::default();
    let proc = client.spawn("load client", cmd, None)?;
    let out = proc
        .child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no pipe from the load client"))?;
    // The client's progress goes to its stderr (ours); its stdout is the report,
    // printed here once, with the node figures.
    let reader = std::thread::spawn(move || {
        let mut last_json = None;
        let mut other = Vec::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with('{') {
                last_json = Some(line);
            } else {
                other.push(line);
            }
        }
        (last_json, other)
    });

    let status = loop {
        if stop.is_set() {
            client.stop_all(Duration::from_secs(2));
            tn.stop();
            bail!("interrupted");
        }
        tn.report_exits();
        let p = &mut client.list[0];
        if !p.running() {
            break p.exit_status();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wall = t0.elapsed().as_secs_f64();
    let loadavg_after = loadavg_1m();
    // The counters are copied into /metrics every 250 ms: let the last copy happen.
    std::thread::sleep(Duration::from_millis(300));
    let traffic: Vec<Traffic> = tn
        .quick
        .iter()
        .zip(&traffic0)
        .map(|(api, before)| match (before, Counters::read(api)) {
            (Some(b), Some(a)) => a.since(*b),
            _ => Traffic { bytes_sent_per_block: f64::NAN, bytes_received_per_block: f64::NAN, messages_per_block: f64::NAN, ..Traffic::default() },
        })
        .collect();
    let hz = procs::clock_ticks_per_s() as f64;
    let nodes: Vec<NodeFigures> = tn
        .layout
        .nodes
        .iter()
        .zip(&node_pids)
        .zip(&ticks0)
        .zip(&traffic)
        .map(|(((spec, pid), t0), traffic)| {
            let cpu_s = match (t0, procs::cpu_ticks(*pid)) {
                (Some(a), Some(b)) => b.saturating_sub(*a) as f64 / hz,
                _ => f64::NAN,
            };
            NodeFigures {
                name: spec.name.clone(),
                region: spec.region.clone(),
                cpu_pct: cpu_s / wall * 100.0,
                cpu_s,
                peak_rss_mb: procs::peak_rss_kib(*pid).map_or(f64::NAN, |k| k as f64 / 1024.0),
                traffic: *traffic,
            }
        })
        .collect();
    // With --relay, the bytes between validators measured on the links themselves
    // (whole run, set-up included): a check on the nodes' own counters.
    let relay_bytes = tn.relays.as_ref().map(|r| r.total_bytes());
    let links = match (&tn.wan, &tn.relays) {
        (Some(_), _) if wan.no_netem => "wan (namespaces, no delays)",
        (Some(_), _) => "wan (netem)",
        (None, Some(_)) => "wan (relay)",
        (None, None) => "loopback",
    }
    .to_string();
    let (json_line, other) = reader
        .join()
        .map_err(|_| anyhow!("reading the load client's output failed"))?;
    tn.stop();

    let ok = status.is_some_and(|s| s.success());
    let Some(line) = json_line else {
        for l in other {
            println!("  {l}");
        }
        bail!(
            "the load client exited ({}) without a report",
            status.map_or("?".into(), |s| s.to_string())
        );
    };
    let load: LoadReport =
        serde_json::from_str(&line).context("the load client's report is not valid JSON")?;
    println!();
    println!(
        "Bench: {} attestations/s for {} s against {} validators on this machine",
        args.rate,
        args.duration,
        tn.layout.nodes.len()
    );
    load::print_report(&load);
    match relay_bytes {
        Some(b) => println!("links: {links}; the relays carried {:.1} MB between validators over the whole run", b as f64 / 1e6),
        None => println!("links: {links}"),
    }
    println!("node       CPU (% of one core)   CPU time   peak memory (VmHWM)   blocks   per block: sent      received    gossip messages");
    for n in &nodes {
        if n.cpu_s.is_finite() {
            let t = &n.traffic;
            println!(
                "{:<10} {:>6.0}%               {:>6.1} s   {:>6.1} MiB            {:>6}   {:>9.0} B  {:>9.0} B  {:>6.0}",
                n.name, n.cpu_pct, n.cpu_s, n.peak_rss_mb, t.blocks, t.bytes_sent_per_block, t.bytes_received_per_block, t.messages_per_block
            );
        } else {
            println!("{:<10}      -                    -            -      (the process was gone at the end)", n.name);
        }
    }
    let node_cpu_us_per_tx = if load.finalized > 0 {
        nodes.iter().map(|n| n.cpu_s).sum::<f64>() / nodes.len() as f64 / load.finalized as f64
            * 1e6
    } else {
        f64::NAN
    };
    let cpu_vs_batched = node_cpu_us_per_tx / reference.batched_us;
    if node_cpu_us_per_tx.is_finite() {
        println!("node CPU per finalised attestation: {node_cpu_us_per_tx:.0} µs per node");
        println!(
            "  = {cpu_vs_batched:.1} × a batched signature check ({:.1} µs), {:.1} × a single strict check ({:.1} µs), measured before the run",
            reference.batched_us,
            node_cpu_us_per_tx / reference.single_us,
            reference.single_us
        );
    } else {
        println!("node CPU per finalised attestation: - (a node's figures are missing)");
    }
    let mean = |f: fn(&Traffic) -> f64| {
        let v: Vec<f64> = nodes.iter().map(|n| f(&n.traffic)).filter(|x| x.is_finite()).collect();
        if v.is_empty() { f64::NAN } else { (v.iter().sum::<f64>() / v.len() as f64).round() }
    };
    let report = BenchReport {
        bytes_sent_per_block_per_node: mean(|t| t.bytes_sent_per_block),
        bytes_received_per_block_per_node: mean(|t| t.bytes_received_per_block),
        messages_per_block_per_node: mean(|t| t.messages_per_block),
        links,
        relay_bytes,
        finalized_per_s: round2(load.finalized_per_s),
        p50_ms: round2(load.p50_ms),
        p99_ms: round2(load.p99_ms),
        max_peak_rss_mb: nodes.iter().map(|n| n.peak_rss_mb).fold(0.0, f64::max),
        node_cpu_us_per_tx: round2(node_cpu_us_per_tx),
        reference,
        node_cpu_vs_batched_check: round2(cpu_vs_batched),
        nodes,
        load,
        wall_s: wall,
        dir: tn.layout.dir.clone(),
        machine: machine(),
        loadavg_before,
        loadavg_after,
    };
    println!(
        "machine            {}; load average {:.2} before, {:.2} after (other work on the machine counts)",
        report.machine, report.loadavg_before, report.loadavg_after
    );
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(ok)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
