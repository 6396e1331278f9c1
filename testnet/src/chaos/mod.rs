//! `yrd-testnet chaos`: a testnet under load with faults injected at random —
//! reproducibly from a seed — into real validator processes, then healed and
//! judged by a Jepsen-style checker (docs/testnet.md "Chaos").
//!
//! * `plan.rs` — the schedule, a pure function of the seed and the options;
//! * `faults.rs` — each fault's primitive and its undo;
//! * `workload.rs` — the load and the followers that record the history;
//! * `checker.rs` — the verdicts over that history;
//! * `report.rs` — the summary, printed and as JSON;
//! * this file — the run: set up, inject on schedule, heal, drain, stop, verify
//!   the stores, clean up, report.

pub mod checker;
pub mod faults;
pub mod plan;
pub mod report;
pub mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use nix::sys::signal::Signal;

use self::checker::{History, NodeChain};
use self::plan::{Fault, FaultKind, PlanOptions};
use self::report::{count_by_kind, LoadSummary, Skipped, Summary};
use crate::signals::StopFlag;
use crate::testnet::{Options, Testnet};

/// Size of each node's data tmpfs, MiB: room for a 10-minute run's store at the
/// default rate with margin (it costs RAM only as far as it is written, except
/// while a disk-full fault fills it).
pub const TMPFS_MIB: u64 = 1024;
/// The nodes' disk reserve on that tmpfs, MiB (`storage.reserve_mib` /
/// `low_mib`): small, so that a filled disk trips it, and below the free space
/// the store leaves.
pub const RESERVE_MIB: u64 = 16;
pub const LOW_MIB: u64 = 32;
/// How long every node gets after healing to finalise a block above the highest
/// height at the heal.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(60);
/// How long, after the load stops, the nodes get to agree on one height.
const DRAIN: Duration = Duration::from_secs(30);
/// Height every node must reach before the fault window opens.
const WARM_HEIGHT: u64 = 2;
/// Longest wait for the warm height.
const WARM_TIMEOUT: Duration = Duration::from_secs(60);
/// Work per tick of the fault loop that does not stop the schedule's clock, ms.
const TICK_WORK_MS: u64 = 20;
/// Seconds between progress lines during the window.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// A clock jump counts as verified when the node's HTTP Date is within this many
/// seconds of the jump (the Date header has one-second resolution and is cached
/// for up to a second; after a backward jump it stays stale, see
/// [`faults::node_clock_offsets_s`]).
const CLOCK_TOLERANCE_S: i64 = 3;
/// The same through the status's `clock.offset_ms` (a median of proposal
/// timestamps, which carry the proposer's own lag behind its clock).
const CLOCK_STATUS_TOLERANCE_S: f64 = 5.0;
/// Reads of the node's clock, a second apart, before a jump counts as unseen.
const CLOCK_TRIES: u32 = 6;

#[derive(clap::Args, Debug, Clone)]
pub struct ChaosArgs {
    /// Seed of the fault schedule (default: from the clock; printed either way)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Length of the fault window, seconds (set-up, healing and checks come on top)
    #[arg(long, default_value_t = 120)]
    pub duration: u64,
    /// Load, attestations per second
    #[arg(long, default_value_t = 300.0)]
    pub rate: f64,
    /// Fault kinds to draw from, comma-separated (default: all this machine allows):
    /// kill, stop, partition, isolate, loss, clock, disk-full, slow-fsync
    #[arg(long)]
    pub faults: Option<String>,
    /// Directory of the run (default: a fresh temporary directory, removed when every verdict passes)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the summary as one JSON object (last line)
    #[arg(long)]
    pub json: bool,
    /// Print the schedule and exit without starting anything
    #[arg(long)]
    pub plan: bool,
    /// Run on 127.0.0.1 even where namespaces can be made (network faults skipped)
    #[arg(long)]
    pub loopback: bool,
}

fn is_root() -> bool {
    crate::wan::is_root()
}

/// The kinds to use and those skipped here, with the reason.
fn choose_kinds(args: &ChaosArgs) -> Result<(Vec<FaultKind>, Vec<Skipped>, Option<String>)> {
    let wanted: Vec<FaultKind> = match &args.faults {
        None => FaultKind::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                FaultKind::parse(s).ok_or_else(|| {
                    let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                    anyhow!("unknown fault kind {s:?} (known: {})", names.join(", "))
                })
            })
            .collect::<Result<_>>()?,
    };
    let ns_reason = if args.loopback {
        Some("--loopback".to_string())
    } else {
        crate::wan::unavailable_reason().or_else(faults::nft_unavailable)
    };
    let mut kinds = Vec::new();
    let mut skipped = Vec::new();
    for k in wanted {
        let why = match k {
            _ if k.needs_namespaces() => ns_reason.clone().map(|r| format!("no network namespaces: {r}")),
            FaultKind::Clock => faults::faketime_unavailable(),
            FaultKind::DiskFull if !is_root() => Some("mounting a tmpfs needs root".into()),
            FaultKind::SlowFsync if std::process::Command::new("cc").arg("--version").output().is_err() => {
                Some("no C compiler (cc) to build the fsync shim".into())
            }
            _ => None,
        };
        match why {
            Some(reason) => skipped.push(Skipped { kind: k, reason }),
            None => kinds.push(k),
        }
    }
    Ok((kinds, skipped, ns_reason))
}

/// Per node: files and mounts of the run.
struct NodeFiles {
    data: PathBuf,
    clock: PathBuf,
    fsync_control: PathBuf,
    fsync_hits: PathBuf,
}

/// The tmpfs mounts of the run; dropping unmounts them (after the nodes are
/// stopped: it is declared before the testnet, so dropped after it).
struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in self.0.drain(..) {
            if let Err(e) = faults::unmount(&m) {
                eprintln!("yrd-testnet: cannot unmount {}: {e:#}; run `yrd-testnet --cleanup`", m.display());
            }
        }
    }
}

/// Removes a temporary run directory on drop unless told to keep it.
struct TempDir {
    path: PathBuf,
    remove: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

pub fn run(args: &ChaosArgs, validators: usize) -> Result<bool> {
    let stop = crate::signals::install()?;
    let seed = args.seed.unwrap_or_else(|| crate::setup::now_ms() ^ u64::from(std::process::id()) << 32);
    let agencies = crate::agencies::first(validators)?;
    let n = agencies.len();
    let f = plan::faults_tolerated(n);
    let (kinds, skipped, ns_reason) = choose_kinds(args)?;
    let popts = PlanOptions { validators: n, window_ms: args.duration * 1000, kinds: kinds.clone() };
    let schedule = plan::plan(seed, &popts);
    let names: Vec<&str> = agencies.iter().map(|a| a.region).collect();
    println!(
        "Chaos: seed {seed}, {n} validators (f = {f}), {} s of faults, load {}/s; kinds: {}",
        args.duration,
        args.rate,
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
    );
    for s in &skipped {
        println!("  skipped {}: {}", s.kind, s.reason);
    }
    println!("Schedule ({} faults, at most {} node(s) faulty at once):", schedule.len(), plan::max_concurrent_faulty(&schedule));
    for x in &schedule {
        println!("  {}", x.describe(&names));
    }
    if args.plan {
        return Ok(true);
    }
    if args.rate.is_nan() || args.rate <= 0.0 {
        return Err(anyhow!("--rate {} must be positive", args.rate));
    }

    // Leftovers of crashed runs first.
    let gone = faults::cleanup_mounts(false)?;
    if !gone.is_empty() {
        println!("Unmounted {} tmpfs left by earlier chaos runs.", gone.len());
    }
    let dir = crate::setup::prepare_dir(args.dir.as_deref())?;
    let mut temp = TempDir { path: dir.clone(), remove: false };
    let files: Vec<NodeFiles> = agencies
        .iter()
        .map(|a| {
            let d = dir.join(a.name);
            NodeFiles {
                data: d.join("data"),
                clock: d.join("faketime"),
                fsync_control: d.join("fsync-delay-ms"),
                fsync_hits: d.join("fsync-hits"),
            }
        })
        .collect();
    let mut mounts = Mounts(Vec::new());
    let me = std::process::id();
    let use_tmpfs = kinds.contains(&FaultKind::DiskFull);
    for (i, nf) in files.iter().enumerate() {
        std::fs::create_dir_all(&nf.data).with_context(|| format!("cannot create {}", nf.data.display()))?;
        if use_tmpfs {
            faults::mount_tmpfs(&nf.data, TMPFS_MIB, &format!("{}{me}-{i}", faults::MOUNT_TAG))?;
            mounts.0.push(nf.data.clone());
        }
        faults::set_clock(&nf.clock, 0)?;
        faults::set_fsync_delay(&nf.fsync_control, 0)?;
    }
    let shim = if kinds.contains(&FaultKind::SlowFsync) { Some(faults::build_fsync_shim(&dir)?) } else { None };
    let node_env: Vec<Vec<(String, String)>> = files
        .iter()
        .map(|nf| {
            faults::preload_env(
                kinds.contains(&FaultKind::Clock).then_some(nf.clock.as_path()),
                shim.as_deref().map(|so| (so, nf.fsync_control.as_path(), nf.fsync_hits.as_path())),
            )
        })
        .collect();
    let opts = Options {
        validators: n,
        dir: Some(dir.clone()),
        base_port: None,
        tuning: crate::setup::Tuning {
            storage: Some(yrd_node::config::StorageConfig { reserve_mib: RESERVE_MIB, low_mib: LOW_MIB }),
            ..Default::default()
        },
        wan: ns_reason.is_none().then_some(crate::wan::Impairments { loss_pct: 0.0, jitter_ms: 0.0, no_netem: true, relay: false }),
        node_env,
    };
    let mut tn = Testnet::start(&opts, &stop)?;
    let mut run = Run::new(&mut tn, files, schedule, &stop);
    let result = run.go(args, seed);
    let summary = match result {
        Ok(mut s) => {
            s.skipped = skipped;
            s.kinds = kinds;
            s.namespaces = ns_reason.is_none();
            s.dir = dir.display().to_string();
            s
        }
        Err(e) => {
            // Heal before the guards stop and unmount everything.
            run.heal_all();
            return Err(e);
        }
    };
    drop(run);
    drop(tn);
    drop(mounts);
    report::print_summary(&summary);
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    if summary.pass && args.dir.is_none() {
        temp.remove = true;
    } else if !summary.pass {
        println!("The run's directory (logs, stores) is kept: {}", dir.display());
    }
    Ok(summary.pass)
}

/// One fault's bookkeeping while it is active.
#[derive(Default, Clone)]
struct Active {
    fsync_hits_before: u64,
}

struct Run<'a> {
    tn: &'a mut Testnet,
    files: Vec<NodeFiles>,
    schedule: Vec<Fault>,
    stop: &'a StopFlag,
    active: BTreeMap<usize, Active>,
    /// A node whose exit a fault explains (killed, disk full).
    expect_exit: Vec<bool>,
    /// Exits already reported.
    exit_seen: Vec<bool>,
    fired: BTreeMap<FaultKind, u64>,
    errors: Vec<String>,
    unexpected_exits: Vec<String>,
    clock_checked: u64,
    clock_verified: u64,
    clock_unseen: Vec<String>,
    fsync_delayed: u64,
    disk_filled: u64,
    disk_full_exits: u64,
}

impl<'a> Run<'a> {
    fn new(tn: &'a mut Testnet, files: Vec<NodeFiles>, schedule: Vec<Fault>, stop: &'a StopFlag) -> Run<'a> {
        let n = tn.layout.nodes.len();
        Run {
            tn,
            files,
            schedule,
            stop,
            active: BTreeMap::new(),
            expect_exit: vec![false; n],
            exit_seen: vec![false; n],
            fired: BTreeMap::new(),
            errors: Vec::new(),
            unexpected_exits: Vec::new(),
            clock_checked: 0,
            clock_verified: 0,
            clock_unseen: Vec::new(),
            fsync_delayed: 0,
            disk_filled: 0,
            disk_full_exits: 0,
        }
    }

    fn name(&self, i: usize) -> String {
        self.tn.layout.nodes[i].region.clone()
    }

    fn ns(&self, i: usize) -> Option<String> {
        self.tn.wan.as_ref().map(|w| w.node_ns[i].clone())
    }

    fn signal(&mut self, i: usize, sig: Signal) -> Result<()> {
        let p = &mut self.tn.procs.list[i];
        if !p.running() {
            return Err(anyhow!("{} is not running", p.name));
        }
        let pid = i32::try_from(p.pid()).map_err(|_| anyhow!("pid out of range"))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).with_context(|| format!("{sig} to {}", p.name))
    }

    fn running(&mut self, i: usize) -> bool {
        self.tn.procs.list[i].running()
    }

    /// Waits (bounded) for node `i`'s process to be gone after a SIGKILL.
    fn wait_gone(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.running(i) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn restart(&mut self, i: usize) -> Result<()> {
        if !self.running(i) {
            self.tn.spawn_node(i)?;
            self.exit_seen[i] = false;
        }
        Ok(())
    }

    fn table(idx: usize) -> String {
        format!("{}{idx}", faults::NFT_TABLE)
    }

    fn inject(&mut self, idx: usize) -> Result<()> {
        let fault = self.schedule[idx].clone();
        let ips: Vec<std::net::Ipv4Addr> = self.tn.layout.nodes.iter().map(|n| n.host).collect();
        let mut act = Active::default();
        for &i in &fault.nodes {
            match fault.kind {
                FaultKind::Kill => {
                    self.expect_exit[i] = true;
                    self.signal(i, Signal::SIGKILL)?;
                    self.wait_gone(i);
                }
                FaultKind::Stop => self.signal(i, Signal::SIGSTOP)?,
                FaultKind::Partition | FaultKind::Isolate => {
                    let others: Vec<_> =
                        (0..ips.len()).filter(|j| !fault.nodes.contains(j)).map(|j| ips[j]).collect();
                    let ns = self.ns(i).ok_or_else(|| anyhow!("no namespace"))?;
                    faults::nft_add(&ns, &Self::table(idx), &faults::partition_chains(&others))?;
                }
                FaultKind::Loss => {
                    let peer = fault.peer.ok_or_else(|| anyhow!("a loss without a peer"))?;
                    let ns = self.ns(i).ok_or_else(|| anyhow!("no namespace"))?;
                    faults::nft_add(&ns, &Self::table(idx), &faults::loss_chains(ips[peer], fault.param))?;
                }
                FaultKind::Clock => faults::set_clock(&self.files[i].clock, fault.param)?,
                FaultKind::DiskFull => {
                    self.expect_exit[i] = true;
                    self.disk_filled += faults::fill(&self.files[i].data)?;
                }
                FaultKind::SlowFsync => {
                    act.fsync_hits_before = faults::fsync_hits(&self.files[i].fsync_hits);
                    faults::set_fsync_delay(&self.files[i].fsync_control, fault.param)?;
                }
            }
        }
        self.active.insert(idx, act);
        *self.fired.entry(fault.kind).or_insert(0) += 1;
        Ok(())
    }

    fn heal(&mut self, idx: usize) -> Result<()> {
        let Some(act) = self.active.remove(&idx) else { return Ok(()) };
        let fault = self.schedule[idx].clone();
        let mut first_err = None;
        for &i in &fault.nodes {
            let r = match fault.kind {
                FaultKind::Kill => {
                    self.expect_exit[i] = false;
                    self.restart(i)
                }
                FaultKind::Stop => self.signal(i, Signal::SIGCONT),
                FaultKind::Partition | FaultKind::Isolate | FaultKind::Loss => match self.ns(i) {
                    Some(ns) => faults::nft_del(&ns, &Self::table(idx)),
                    None => Ok(()),
                },
                FaultKind::Clock => {
                    if self.running(i) {
                        self.clock_checked += 1;
                        // The status offset follows a few proposals later: a few tries.
                        let mut last = String::new();
                        for attempt in 0..CLOCK_TRIES {
                            if attempt > 0 {
                                std::thread::sleep(Duration::from_secs(1));
                            }
                            match faults::node_clock_offsets_s(&self.tn.layout.nodes[i].api_url()) {
                                Ok((date, status)) => {
                                    let by_date = (date - fault.param).abs() <= CLOCK_TOLERANCE_S;
                                    let by_status = status
                                        .is_some_and(|s| (s - fault.param as f64).abs() <= CLOCK_STATUS_TOLERANCE_S);
                                    if by_date || by_status {
                                        self.clock_verified += 1;
                                        last.clear();
                                        break;
                                    }
                                    last = format!(
                                        "clock of {}: jumped {:+} s but its HTTP Date is {date:+} s off and its status clock offset {}",
                                        self.name(i),
                                        fault.param,
                                        status.map_or("absent".into(), |s| format!("{s:+.1} s"))
                                    );
                                }
                                Err(e) => last = format!("clock of {}: {e:#}", self.name(i)),
                            }
                        }
                        if !last.is_empty() {
                            // The jump was made (the file is read on every call);
                            // only the evidence is missing: a note, not an error.
                            self.clock_unseen.push(last);
                        }
                    }
                    faults::set_clock(&self.files[i].clock, 0)
                }
                FaultKind::DiskFull => {
                    let r = faults::unfill(&self.files[i].data);
                    if !self.running(i) {
                        self.disk_full_exits += 1;
                        let status = self.tn.procs.list[i].exit_status().map(|s| s.to_string()).unwrap_or_default();
                        println!("  {} had stopped under the full disk ({status}); restarting it", self.name(i));
                    }
                    self.expect_exit[i] = false;
                    r.and_then(|()| self.restart(i))
                }
                FaultKind::SlowFsync => {
                    self.fsync_delayed +=
                        faults::fsync_hits(&self.files[i].fsync_hits).saturating_sub(act.fsync_hits_before);
                    faults::set_fsync_delay(&self.files[i].fsync_control, 0)
                }
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Ends every active fault and restarts every node that is down.
    fn heal_all(&mut self) {
        let idxs: Vec<usize> = self.active.keys().copied().collect();
        for idx in idxs {
            if let Err(e) = self.heal(idx) {
                self.errors.push(format!("healing {}: {e:#}", self.schedule[idx].kind));
            }
        }
        for i in 0..self.files.len() {
            self.expect_exit[i] = false;
            let _ = faults::set_clock(&self.files[i].clock, 0);
            let _ = faults::set_fsync_delay(&self.files[i].fsync_control, 0);
            let _ = faults::unfill(&self.files[i].data);
            if let Err(e) = self.restart(i) {
                self.errors.push(format!("restarting {}: {e:#}", self.name(i)));
            }
        }
    }

    /// Records exits no fault explains.
    fn watch_exits(&mut self) {
        for i in 0..self.files.len() {
            if !self.exit_seen[i] && !self.expect_exit[i] && !self.running(i) {
                self.exit_seen[i] = true;
                let p = &self.tn.procs.list[i];
                let status = p.exit_status().map(|s| s.to_string()).unwrap_or_default();
                let tail = p.log.as_deref().map(|l| crate::procs::log_tail(l, 15)).unwrap_or_default();
                eprintln!("\nNODE DOWN: {} exited with no fault to explain it ({status}). Last lines of its log:\n{}", p.name, crate::testnet::indent(&tail));
                self.unexpected_exits.push(format!("{}: {status}", p.name));
            }
        }
    }

    fn heights(&self) -> Vec<Option<u64>> {
        self.tn.statuses().into_iter().map(|s| s.map(|s| s.height)).collect()
    }

    fn go(&mut self, args: &ChaosArgs, seed: u64) -> Result<Summary> {
        let n = self.files.len();
        let names: Vec<String> = self.tn.layout.nodes.iter().map(|x| x.region.clone()).collect();
        let apis: Vec<String> = self.tn.layout.nodes.iter().map(|x| x.api_url()).collect();
        let mut wl = workload::Workload::start(
            &apis,
            &names,
            self.tn.layout.chain_id,
            self.tn.layout.issuer_keys.clone(),
            args.rate,
        )?;
        // Warm up: every node finalises a couple of blocks under the load.
        let t = Instant::now();
        loop {
            let h = self.heights();
            if h.iter().all(|x| x.is_some_and(|x| x >= WARM_HEIGHT)) {
                break;
            }
            if t.elapsed() > WARM_TIMEOUT || self.stop.is_set() {
                return Err(anyhow!("the testnet did not reach height {WARM_HEIGHT} on every node within {} s", WARM_TIMEOUT.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        println!("Load running; fault window opens ({} s).", args.duration);
        // Events: (ms, 0 = end / 1 = start, fault index); ends first at a tie.
        let mut events: Vec<(u64, u8, usize)> = Vec::new();
        for (idx, x) in self.schedule.iter().enumerate() {
            events.push((x.at_ms, 1, idx));
            events.push((x.end_ms(), 0, idx));
        }
        events.sort();
        let region_names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let window = Duration::from_secs(args.duration);
        // The schedule runs on a clock that stands still while the harness
        // itself is busy (injecting, healing, polling a stopped node), so a slow
        // step on a loaded machine delays what follows instead of shortening
        // faults or overlapping them beyond f.
        let t0 = Instant::now();
        let mut slip = Duration::ZERO;
        let mut next_event = 0;
        let mut next_beat = t0 + HEARTBEAT;
        let mut interrupted = false;
        while t0.elapsed().saturating_sub(slip) < window {
            if self.stop.is_set() {
                interrupted = true;
                break;
            }
            let busy = Instant::now();
            let now_ms = t0.elapsed().saturating_sub(slip).as_millis() as u64;
            while next_event < events.len() && events[next_event].0 <= now_ms {
                let (_, start, idx) = events[next_event];
                next_event += 1;
                if start == 1 {
                    println!("  {}", self.schedule[idx].describe(&region_names));
                    if let Err(e) = self.inject(idx) {
                        let msg = format!("{} at +{:.1}s: {e:#}", self.schedule[idx].kind, self.schedule[idx].at_ms as f64 / 1000.0);
                        eprintln!("  injection failed: {msg}");
                        self.errors.push(msg);
                        // Undo whatever part of it was done.
                        self.active.insert(idx, Active::default());
                        let _ = self.heal(idx);
                    }
                } else if let Err(e) = self.heal(idx) {
                    let msg = format!("healing {}: {e:#}", self.schedule[idx].kind);
                    eprintln!("  {msg}");
                    self.errors.push(msg);
                }
            }
            self.watch_exits();
            if Instant::now() >= next_beat {
                next_beat += HEARTBEAT;
                let st = self.tn.statuses();
                let c = &wl.counters;
                println!(
                    "[+{:>4} s] heights {} · accepted {} · followed {:?}",
                    t0.elapsed().saturating_sub(slip).as_secs(),
                    self.tn.heights_line(&st),
                    c.accepted.load(std::sync::atomic::Ordering::Relaxed),
                    wl.followed()
                );
            }
            // Anything beyond a moment's work stops the schedule's clock.
            slip += busy.elapsed().saturating_sub(Duration::from_millis(TICK_WORK_MS));
            std::thread::sleep(Duration::from_millis(50));
        }
        if slip > Duration::from_secs(1) {
            println!("(the harness was busy for {:.1} s of the window; the schedule waited for it)", slip.as_secs_f64());
        }
        // Heal everything.
        self.heal_all();
        self.watch_exits();
        let heal_heights = self.heights();
        let top = heal_heights.iter().filter_map(|h| *h).max().unwrap_or(0);
        println!("Healed everything (heights at the heal: {}); waiting for every node to pass height {top}.",
            heal_heights.iter().zip(&names).map(|(h, r)| format!("{r} {}", h.map_or("-".into(), |h| h.to_string()))).collect::<Vec<_>>().join("  "));
        let mut recovered: Vec<Option<u64>> = vec![None; n];
        let th = Instant::now();
        while !interrupted && th.elapsed() < LIVENESS_BOUND + Duration::from_secs(5) {
            if self.stop.is_set() {
                interrupted = true;
                break;
            }
            for (i, h) in self.heights().into_iter().enumerate() {
                if recovered[i].is_none() && h.is_some_and(|h| h > top) {
                    recovered[i] = Some(th.elapsed().as_millis() as u64);
                }
            }
            self.watch_exits();
            if recovered.iter().all(|r| r.is_some()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        println!(
            "Liveness: {}",
            recovered
                .iter()
                .zip(&names)
                .map(|(r, name)| format!("{name} {}", r.map_or("never".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0))))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // Drain: stop the load, let the nodes agree on one height.
        wl.stop_load();
        let td = Instant::now();
        let mut last: Vec<Option<u64>> = Vec::new();
        let mut stable_since = Instant::now();
        while !interrupted && td.elapsed() < DRAIN {
            let h = self.heights();
            if h != last {
                last = h.clone();
                stable_since = Instant::now();
            }
            let same = h.iter().all(|x| x.is_some() && *x == h[0]);
            if same && stable_since.elapsed() > Duration::from_secs(2) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        // Let the followers read up to each node's height, then stop them.
        let drained: Vec<u64> = self.heights().into_iter().map(|h| h.unwrap_or(0)).collect();
        let tf = Instant::now();
        while !interrupted && tf.elapsed() < Duration::from_secs(30) {
            if wl.followed().iter().zip(&drained).all(|(a, b)| a >= b) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let live = wl.stop_follow();
        let acked = wl.acked.lock().map(|a| a.clone()).unwrap_or_default();
        let load = {
            use std::sync::atomic::Ordering::Relaxed;
            let c = &wl.counters;
            LoadSummary {
                submitted: c.submitted.load(Relaxed),
                accepted: c.accepted.load(Relaxed),
                refused: c.refused.load(Relaxed),
                transport_errors: c.transport_errors.load(Relaxed),
                not_sent: c.not_sent.load(Relaxed),
                refusal_reasons: wl.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            }
        };
        drop(wl);
        // Each node's whole chain once more, read at the end.
        let never = std::sync::atomic::AtomicBool::new(false);
        let mut chains = Vec::new();
        for (i, url) in apis.iter().enumerate().filter(|_| !interrupted) {
            let api = crate::api::Api::new(url, Duration::from_secs(10));
            let c = std::sync::Mutex::new(NodeChain { name: names[i].clone(), ..Default::default() });
            workload::read_blocks(&api, &c, 1, &never);
            chains.push(c.into_inner().unwrap_or_default());
        }
        // A clean stop, then every store re-checked offline.
        println!("Stopping the nodes (SIGTERM) for the store checks…");
        let killed = self.tn.procs.stop_all(crate::procs::STOP_GRACE);
        // Interrupted: no checks, just the orderly stop. The stores are checked
        // side by side (each check is one process).
        let mut stores = Vec::new();
        if !interrupted {
            let checks: Vec<_> = (0..n)
                .map(|i| {
                    let name = self.tn.layout.nodes[i].name.clone();
                    let was_killed = killed.contains(&name);
                    let (yrd, data, genesis) =
                        (self.tn.yrd.clone(), self.files[i].data.clone(), self.tn.layout.genesis_path.clone());
                    std::thread::spawn(move || {
                        if was_killed {
                            (false, format!("did not stop within {} s of SIGTERM (killed)", crate::procs::STOP_GRACE.as_secs()))
                        } else {
                            verify_store(&yrd, &data, &genesis)
                        }
                    })
                })
                .collect();
            for c in checks {
                stores.push(c.join().unwrap_or((false, "the store check panicked".into())));
            }
        }
        // The heights the nodes ended at: the chains as read at the end.
        let final_heights: Vec<u64> =
            chains.iter().map(|c| c.hashes.keys().next_back().copied().unwrap_or(0)).collect();
        let reported = workload::reported_committed(&acked, &live);
        let history = History {
            chains,
            live,
            acked,
            reported_committed: reported,
            recovered_ms: if interrupted { Vec::new() } else { recovered },
            liveness_bound_ms: LIVENESS_BOUND.as_millis() as u64,
            stores,
            unexpected_exits: self.unexpected_exits.clone(),
        };
        let verdicts = (!interrupted).then(|| checker::check(&history));
        let pass = verdicts.as_ref().is_some_and(|v| v.pass) && !interrupted;
        Ok(Summary {
            seed,
            validators: n,
            f: plan::faults_tolerated(n),
            duration_s: args.duration,
            rate: args.rate,
            namespaces: false,
            kinds: Vec::new(),
            skipped: Vec::new(),
            planned: count_by_kind(&self.schedule),
            fired: self.fired.clone(),
            injection_errors: self.errors.clone(),
            clock_verified: self.clock_verified,
            clock_checked: self.clock_checked,
            clock_unseen: self.clock_unseen.clone(),
            fsync_delayed_calls: self.fsync_delayed,
            disk_filled_mib: self.disk_filled as f64 / (1024.0 * 1024.0),
            disk_full_exits: self.disk_full_exits,
            load,
            final_heights,
            verdicts,
            pass,
            interrupted,
            dir: String::new(),
        })
    }
}

/// `yrd audit verify-ledger` on a stopped node's store: `(consistent, first line)`.
fn verify_store(yrd: &Path, data: &Path, genesis: &Path) -> (bool, String) {
    let out = std::process::Command::new(yrd)
        .args(["audit", "verify-ledger", "--data"])
        .arg(data)
        .arg("--genesis")
        .arg(genesis)
        .output();
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            let first = text.lines().next().unwrap_or("").to_string();
            let ok = o.status.success() && first.starts_with("CONSISTENT");
            if ok {
                (true, first)
            } else {
                (false, format!("{first} {}", String::from_utf8_lossy(&o.stderr).trim()))
            }
        }
        Err(e) => (false, format!("cannot run {}: {e}", yrd.display())),
    }
}
