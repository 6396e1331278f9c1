//! `yrd-testnet`: 4 to 16 real YRD validator processes (Shanghai, Jiangsu, Zhejiang,
//! Anhui, then cities of the four provinces) on 127.0.0.1, sample attestations shown becoming final, and a load
//! mode that measures throughput and commit latency. See docs/testnet.md.
//!
//! * `yrd-testnet [--dir DIR] [--base-port P] [--no-samples]` — run a testnet
//!   until Ctrl-C / SIGTERM.
//! * `yrd-testnet bench --rate R --duration S [--json]` — a fresh testnet and a
//!   separate load-client process; prints finalised/s, latency and node figures.
//! * `yrd-testnet load --testnet DIR/testnet.json --rate R --duration S` — the
//!   load client on its own (against any running testnet).
//! * `yrd-testnet chaos --seed S --duration SECS [--rate R] [--faults LIST]` — faults
//!   injected into a loaded testnet, then healed and checked (docs/testnet.md "Chaos").
//! * `yrd-testnet reads --testnet DIR/testnet.json [--node I] [--threads T]` —
//!   lender-signed subject reports from one node, back to back (issue 11's read
//!   benchmark).

mod agencies;
mod api;
mod bench;
mod chaos;
mod load;
mod procs;
mod reads;
mod refcost;
mod samples;
mod setup;
mod signals;
mod stats;
mod testnet;
mod relay;
mod wan;
mod wan_matrix;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::testnet::{Options, Testnet};

#[derive(Parser)]
#[command(
    name = "yrd-testnet",
    version,
    about = "Run a local YRD credit chain testnet of 4 to 16 agencies (Shanghai, Jiangsu, Zhejiang, Anhui, then cities of the four provinces), or benchmark one",
    after_help = "\
Without a command: creates keys and a genesis in DIR, starts N (--validators, default 4) `yrd node` processes on
127.0.0.1, writes DIR/testnet.json, submits sample attestations and shows them becoming
final, then runs until Ctrl-C or SIGTERM and stops every process it started.
The `yrd` binary is looked for next to this one, or taken from $YRD_BIN."
)]
struct Cli {
    /// Validators, 4 to 16: the founding four (Shanghai, Jiangsu, Zhejiang, Anhui), then cities of the four provinces
    #[arg(long, global = true, default_value_t = 4)]
    validators: usize,
    /// Directory for keys, genesis, configs, data and logs (default: a fresh temporary directory, kept)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// First port: node i serves its API on P+i and libp2p on P+100+i (default: free ports)
    #[arg(long)]
    base_port: Option<u16>,
    /// Do not submit the sample attestations
    #[arg(long)]
    no_samples: bool,
    /// Most attestations per block, in the genesis and the node configs (default: the chain's, 4096)
    #[arg(long)]
    max_block_txs: Option<u32>,
    /// Seconds between heartbeat lines
    #[arg(long, default_value_t = 5)]
    heartbeat: u64,
    #[command(flatten)]
    wan: wan::WanArgs,
    /// Remove the network namespaces and links left by --wan and chaos runs that are no longer running (and stop any node still in them), and unmount their chaos tmpfs, then exit
    #[arg(long)]
    cleanup: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start a fresh testnet and measure finalised attestations per second, commit latency, CPU and memory
    Bench(bench::BenchArgs),
    /// Submit signed attestations at a fixed rate to a running testnet and measure commit latency
    Load(load::LoadArgs),
    /// Ask one node of a running testnet for lender-signed subject reports back to back and measure
    /// reports per second, latency, and that every read is recorded on chain
    Reads(reads::ReadsArgs),
    /// Run a testnet under load while killing, stopping, partitioning, clock-jumping, disk-filling and
    /// fsync-slowing validators at random (reproducibly from --seed), then heal and check liveness,
    /// durability, agreement and every store
    Chaos(chaos::ChaosArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `--validators` and the `--wan` flags are global (before or after `bench`);
    // the testnet's own options are not the bench's.
    if cli.command.is_some()
        && (cli.dir.is_some()
            || cli.base_port.is_some()
            || cli.no_samples
            || cli.max_block_txs.is_some()
            || cli.cleanup)
    {
        eprintln!(
            "yrd-testnet: error: --dir, --base-port, --no-samples, --max-block-txs and --cleanup go without a command \
             (bench takes its own --dir, --base-port, --max-block-txs after `bench`)"
        );
        return ExitCode::from(2);
    }
    let result = match cli.command {
        None if cli.cleanup => run_cleanup(),
        Some(Command::Bench(args)) => bench::run(&args, cli.validators, &cli.wan),
        Some(Command::Load(args)) => run_load(&args),
        Some(Command::Reads(args)) => run_reads(&args),
        Some(Command::Chaos(args)) => chaos::run(&args, cli.validators),
        None => run_testnet(&cli),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("yrd-testnet: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_cleanup() -> anyhow::Result<bool> {
    let removed = wan::cleanup(false)?;
    if removed.is_empty() {
        println!("No namespaces of finished --wan runs to remove.");
    } else {
        println!("Removed {} namespace(s) and their links: {}", removed.len(), removed.join(", "));
    }
    // After the namespaces: their nodes are gone, so the mounts are not busy.
    let unmounted = chaos::faults::cleanup_mounts(false)?;
    if unmounted.is_empty() {
        println!("No tmpfs of finished chaos runs to unmount.");
    } else {
        println!("Unmounted {} tmpfs of finished chaos runs: {}", unmounted.len(), unmounted.join(", "));
    }
    Ok(true)
}

fn run_load(args: &load::LoadArgs) -> anyhow::Result<bool> {
    let report = load::run(args)?;
    load::print_report(&report);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(report.finalized > 0)
}

fn run_reads(args: &reads::ReadsArgs) -> anyhow::Result<bool> {
    let report = reads::run(args)?;
    reads::print_report(&report);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    // Every served read must be on chain, and something must have been served.
    Ok(report.served > 0 && report.recorded >= report.served)
}

fn run_testnet(cli: &Cli) -> anyhow::Result<bool> {
    let stop = signals::install()?;
    let opts = Options {
        validators: cli.validators,
        wan: cli.wan.impairments()?,
        node_env: Vec::new(),
        dir: cli.dir.clone(),
        base_port: cli.base_port,
        tuning: crate::setup::Tuning {
            max_block_txs: cli.max_block_txs,
            ..Default::default()
        },
    };
    let mut tn = Testnet::start(&opts, &stop)?;
    let mut ok = true;
    let samples = if cli.no_samples {
        None
    } else {
        match samples::run(&mut tn, &stop) {
            Ok(r) => {
                ok &= r.all_final && r.proof_ok;
                Some(r)
            }
            Err(e) if stop.is_set() => {
                println!("({e})");
                None
            }
            Err(e) => {
                eprintln!("yrd-testnet: sample attestations failed: {e:#}");
                ok = false;
                None
            }
        }
    };
    if !stop.is_set() {
        print_summary(&tn, samples.as_ref());
        tn.run_until_stopped(&stop, Duration::from_secs(cli.heartbeat.max(1)));
    }
    println!();
    tn.stop();
    Ok(ok)
}

fn print_summary(tn: &Testnet, samples: Option<&samples::SampleResult>) {
    let l = &tn.layout;
    println!();
    println!("The testnet is running.");
    println!("  directory  {}", l.dir.display());
    println!("  genesis    {}", l.genesis_path.display());
    println!("  clients    {}", l.testnet_json.display());
    for n in &l.nodes {
        println!(
            "  {:<9}  {}  {}  log {}",
            n.name,
            n.region,
            n.api_url(),
            n.log_path.display()
        );
    }
    let yrd = tn.yrd.display();
    let api = |i: usize| l.nodes[i % l.nodes.len()].api_url();
    println!();
    println!("Try (yrd is {yrd}):");
    println!("  yrd status --node {}", api(0));
    if let Some(s) = samples {
        let mut subjects: Vec<(usize, String)> = Vec::new();
        for r in &s.records {
            if !subjects.iter().any(|(_, u)| *u == r.subject.as_str()) {
                subjects.push((r.agency, r.subject.to_string()));
            }
        }
        // Ask a different node than the issuer's: every node has every record.
        for (agency, subject) in subjects.iter().take(3) {
            println!("  yrd query --node {} --subject {subject}", api(agency + 1));
        }
        if let Some(rev) = &s.revocation {
            println!(
                "  yrd query --node {} --subject {}     # a penalty revoked after credit repair",
                api(0),
                rev.subject
            );
            println!("  yrd query --node {} --id {}", api(2), rev.id);
        }
        if let Some(p) = &s.proof_file {
            println!(
                "  # a lender's subject report, verified offline above: {}",
                p.display()
            );
        }
        if let Some(r) = s.records.first() {
            println!("  yrd query --node {} --id {} --json", api(1), r.id);
        }
    }
    println!(
        "  yrd query --node {} --issuer {}",
        api(3),
        l.issuers[0].name
    );
    println!(
        "  yrd attest --node {} --key {} --subject {} --kind red-list --wait",
        api(0),
        l.issuers[0].key_file.display(),
        samples::ENTERPRISES[0].uscc()
    );
    println!();
    println!("Press Ctrl-C to stop the {} validators.", l.nodes.len());
}
