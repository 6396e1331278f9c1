//! Starting, watching and stopping the validator processes (4 to 16).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::agencies;
use crate::api::{Api, Status};
use crate::procs::{self, Procs};
use crate::setup::{self, Layout};
use crate::signals::StopFlag;
use crate::wan;

/// How long the nodes get to answer `GET /v1/status` after they start.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long we wait, once they answer, for every node to see all its peers.
pub const PEERS_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a node's log shown when it dies.
const LOG_TAIL_LINES: usize = 20;

pub struct Options {
    /// How many validators (4..=16; `agencies::first`).
    pub validators: usize,
    pub dir: Option<PathBuf>,
    pub base_port: Option<u16>,
    pub tuning: setup::Tuning,
    /// `--wan`: each node in its own network namespace with emulated city links.
    pub wan: Option<wan::Impairments>,
    /// Extra environment of node `i`'s process (`node_env[i]`; missing: none), e.g.
    /// the chaos harness's LD_PRELOAD shims.
    pub node_env: Vec<Vec<(String, String)>>,
}

/// A running testnet. Dropping it stops every node (see [`Procs`]).
pub struct Testnet {
    pub layout: Layout,
    pub yrd: PathBuf,
    /// One client per node, same order as `layout.nodes`.
    pub apis: Vec<Api>,
    /// Short-timeout clients for heartbeats and progress.
    pub quick: Vec<Api>,
    pub procs: Procs,
    /// The emulated network (`--wan`); declared after `procs` so that the nodes are
    /// stopped before their namespaces are deleted.
    pub wan: Option<wan::Network>,
    /// The delay relays (`--wan --relay`); like `wan`, stopped after the nodes.
    pub relays: Option<crate::relay::Relays>,
    /// Extra environment of each node's process (see [`Options::node_env`]).
    node_env: Vec<Vec<(String, String)>>,
    pub started: Instant,
}

impl Testnet {
    /// Creates the directory, keys, genesis and configs, starts the nodes,
    /// waits until they answer and see each other, and writes `testnet.json`.
    pub fn start(opts: &Options, stop: &StopFlag) -> Result<Testnet> {
        let agencies = agencies::first(opts.validators)?;
        let yrd = procs::yrd_binary()?;
        let dir = setup::prepare_dir(opts.dir.as_deref())?;
        println!("Testnet directory: {}", dir.display());
        let mut relays = None;
        let (places, network) = match &opts.wan {
            None => {
                let ports = setup::node_ports(opts.base_port, agencies.len())?;
                (setup::loopback(&ports), None)
            }
            Some(imp) if imp.relay => {
                let ports = setup::node_ports(opts.base_port, agencies.len())?;
                let matrix = crate::wan_matrix::delay_matrix(agencies);
                let p2p: Vec<u16> = ports.iter().map(|p| p.1).collect();
                let r = crate::relay::Relays::start(&p2p, &matrix, imp.jitter_ms)?;
                println!(
                    "WAN by relay: {} TCP relays on 127.0.0.1 apply the one-way delays of the city matrix (docs/testnet.md), jitter {} ms; \
                     every node on 127.0.0.1, the load client's requests not delayed",
                    r.links.len(),
                    imp.jitter_ms
                );
                print!("{}", crate::wan_matrix::format_matrix(agencies, &matrix));
                let mut places = setup::loopback(&ports);
                for (i, place) in places.iter_mut().enumerate() {
                    place.via = (0..agencies.len())
                        .map(|j| r.address(i, j).map(|a| (std::net::Ipv4Addr::LOCALHOST, a.port())))
                        .collect();
                }
                relays = Some(r);
                (places, None)
            }
            Some(imp) => {
                let net = wan::Network::create(agencies, imp)?;
                println!(
                    "WAN: {} network namespaces ({}…), bridged in {}; {}",
                    net.namespaces().len(),
                    net.node_ns[0],
                    net.namespaces()[0],
                    if imp.no_netem {
                        "no delays (--no-netem)".to_string()
                    } else {
                        format!(
                            "one-way delays from the city matrix (docs/testnet.md), jitter {} ms, loss {} %; the load client sits in {}",
                            imp.jitter_ms, imp.loss_pct, agencies[0].city
                        )
                    }
                );
                if !imp.no_netem {
                    print!("{}", crate::wan_matrix::format_matrix(agencies, &net.matrix));
                }
                let places = net
                    .node_ips
                    .iter()
                    .map(|ip| setup::Placement { host: *ip, api_port: wan::API_PORT, p2p_port: wan::P2P_PORT, via: Vec::new() })
                    .collect();
                (places, Some(net))
            }
        };
        let layout = setup::create(&dir, agencies, &places, &opts.tuning)?;
        println!(
            "Genesis: {} (chain {} id {})",
            layout.genesis_path.display(),
            layout.genesis.chain_name,
            layout.chain_id.to_hex()
        );
        println!(
            "Keys: a validator key and an issuer key per agency, mode 0600, in {}/<agency>/",
            dir.display()
        );
        let apis: Vec<Api> = layout
            .nodes
            .iter()
            .map(|n| {
                let mut readers = layout.issuer_keys.clone();
                readers.push(layout.lender_key.clone());
                Api::new(&n.api_url(), Duration::from_secs(10)).with_readers(readers, layout.chain_id)
            })
            .collect();
        let quick: Vec<Api> = layout
            .nodes
            .iter()
            .map(|n| {
                let mut readers = layout.issuer_keys.clone();
                readers.push(layout.lender_key.clone());
                Api::new(&n.api_url(), Duration::from_secs(2)).with_readers(readers, layout.chain_id)
            })
            .collect();
        let mut tn = Testnet {
            layout,
            yrd,
            apis,
            quick,
            procs: Procs::default(),
            wan: network,
            relays,
            node_env: opts.node_env.clone(),
            started: Instant::now(),
        };
        let n = tn.layout.nodes.len();
        println!(
            "Starting {n} validators (f = {}: a block is final with {} of {n} signatures) with {}:",
            agencies::faults_tolerated(n),
            n - agencies::faults_tolerated(n),
            tn.yrd.display()
        );
        for i in 0..tn.layout.nodes.len() {
            let pid = tn.spawn_node(i)?;
            let spec = &tn.layout.nodes[i];
            println!(
                "  {:<9} {}  {:<20} pid {:<7} api {}  p2p {}:{}  log {}",
                spec.name,
                spec.region,
                spec.city,
                pid,
                spec.api_url(),
                spec.host,
                spec.p2p_port,
                spec.log_path.display()
            );
        }
        tn.wait_ready(stop)?;
        tn.layout.write_testnet_json()?;
        println!("Wrote {}", tn.layout.testnet_json.display());
        Ok(tn)
    }

    /// Starts node `i`'s process (in its namespace with `--wan`, with its extra
    /// environment) as `procs.list[i]`: appended at the first start, replacing
    /// the exited process on a restart. Returns its pid.
    pub fn spawn_node(&mut self, i: usize) -> Result<u32> {
        let spec = &self.layout.nodes[i];
        let config = spec.config_path.display().to_string();
        let yrd = self.yrd.display().to_string();
        let mut args: Vec<&str> = Vec::new();
        let program = match &self.wan {
            None => yrd.as_str(),
            // `ip netns exec` enters the namespace and execs yrd: same pid.
            Some(net) => {
                args.extend(["netns", "exec", net.node_ns[i].as_str(), yrd.as_str()]);
                "ip"
            }
        };
        args.extend(["node", "--config", &config]);
        let env = self.node_env.get(i).cloned().unwrap_or_default();
        let p = self.procs.spawn_logged_at(
            i,
            &spec.name,
            std::path::Path::new(program),
            &args,
            &env,
            &spec.log_path,
        )?;
        Ok(p.pid())
    }

    /// Region codes in node order, for compact lines.
    pub fn regions(&self) -> Vec<&str> {
        self.layout
            .nodes
            .iter()
            .map(|n| n.region.as_str())
            .collect()
    }

    fn wait_ready(&mut self, stop: &StopFlag) -> Result<()> {
        let n = self.layout.nodes.len();
        let t0 = Instant::now();
        let mut answering = vec![false; n];
        let mut connected = vec![false; n];
        loop {
            if stop.is_set() {
                bail!("interrupted while waiting for the nodes to start");
            }
            if self.report_exits() > 0 {
                bail!("a node exited while starting; see its log above");
            }
            for i in 0..n {
                if connected[i] {
                    continue;
                }
                if let Ok(s) = self.quick[i].status() {
                    if !answering[i] {
                        answering[i] = true;
                        println!(
                            "  {:<9} answers at {} (height {}, {} peer{})",
                            self.layout.nodes[i].name,
                            self.layout.nodes[i].api_url(),
                            s.height,
                            s.peers.len(),
                            if s.peers.len() == 1 { "" } else { "s" }
                        );
                    }
                    if s.peers.len() + 1 >= n {
                        connected[i] = true;
                    }
                }
            }
            if connected.iter().all(|c| *c) {
                println!(
                    "All {n} validators are up and connected to each other ({:.1} s).",
                    t0.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            let waited = t0.elapsed();
            if answering.iter().all(|a| *a) && waited > PEERS_TIMEOUT {
                let missing: Vec<&str> = (0..n)
                    .filter(|i| !connected[*i])
                    .map(|i| self.layout.nodes[i].name.as_str())
                    .collect();
                println!(
                    "warning: after {} s, {} still see fewer than {} peers; continuing (check the logs)",
                    PEERS_TIMEOUT.as_secs(),
                    missing.join(", "),
                    n - 1
                );
                return Ok(());
            }
            if waited > READY_TIMEOUT {
                let mut msg = String::new();
                for i in (0..n).filter(|i| !answering[*i]) {
                    let spec = &self.layout.nodes[i];
                    msg.push_str(&format!(
                        "\n{} does not answer at {}/v1/status; last lines of {}:\n{}",
                        spec.name,
                        spec.api_url(),
                        spec.log_path.display(),
                        indent(&procs::log_tail(&spec.log_path, LOG_TAIL_LINES))
                    ));
                }
                return Err(anyhow!(
                    "the nodes did not start within {} s{msg}",
                    READY_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Reports nodes that exited since the last call, with the tail of their log.
    /// Returns how many.
    pub fn report_exits(&mut self) -> usize {
        let exited = self.procs.newly_exited();
        for (name, status, log) in &exited {
            eprintln!("\nNODE DOWN: {name} exited unexpectedly ({status}).");
            if let Some(log) = log {
                eprintln!(
                    "Last lines of {}:\n{}",
                    log.display(),
                    indent(&procs::log_tail(log, LOG_TAIL_LINES))
                );
            }
        }
        exited.len()
    }

    /// Each node's status, `None` where it does not answer.
    pub fn statuses(&self) -> Vec<Option<Status>> {
        let handles: Vec<_> = self
            .quick
            .iter()
            .map(|api| {
                let api = api.clone();
                std::thread::spawn(move || api.status().ok())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    }

    /// `SH 12  JS 12  ZJ 11  AH 12` (a dash for a node that does not answer).
    pub fn heights_line(&self, statuses: &[Option<Status>]) -> String {
        self.regions()
            .iter()
            .zip(statuses)
            .map(|(r, s)| match s {
                Some(s) => format!("{r} {}", s.height),
                None => format!("{r} -"),
            })
            .collect::<Vec<_>>()
            .join("  ")
    }

    /// Runs until SIGINT/SIGTERM, with a heartbeat every `every`.
    pub fn run_until_stopped(&mut self, stop: &StopFlag, every: Duration) {
        let mut next = Instant::now() + every;
        while !stop.is_set() {
            self.report_exits();
            if Instant::now() >= next {
                next += every;
                let st = self.statuses();
                let mempool: Vec<String> = st
                    .iter()
                    .map(|s| {
                        s.as_ref()
                            .map_or("-".into(), |s| s.mempool_size.to_string())
                    })
                    .collect();
                let peers: Vec<String> = st
                    .iter()
                    .map(|s| s.as_ref().map_or("-".into(), |s| s.peers.len().to_string()))
                    .collect();
                println!(
                    "[up {}] heights {} · mempool {} · peers {}",
                    fmt_uptime(self.started.elapsed()),
                    self.heights_line(&st),
                    mempool.join("/"),
                    peers.join("/")
                );
                let _ = std::io::stdout().flush();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops every node: SIGTERM, a bounded wait, then SIGKILL.
    pub fn stop(&mut self) {
        let running = self
            .procs
            .list
            .iter_mut()
            .map(|p| p.running())
            .filter(|r| *r)
            .count();
        println!(
            "Stopping {running} node process{} (SIGTERM)…",
            if running == 1 { "" } else { "es" }
        );
        let t = Instant::now();
        let killed = self.procs.stop_all(procs::STOP_GRACE);
        if killed.is_empty() {
            println!(
                "All stopped in {:.1} s. The directory {} is kept.",
                t.elapsed().as_secs_f64(),
                self.layout.dir.display()
            );
        } else {
            println!(
                "Killed with SIGKILL after {} s: {}. The directory {} is kept.",
                procs::STOP_GRACE.as_secs(),
                killed.join(", "),
                self.layout.dir.display()
            );
        }
    }
}

pub fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn fmt_uptime(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// A progress line that rewrites itself on a terminal and prints only changes
/// elsewhere; normal lines go above it.
pub struct Progress {
    tty: bool,
    last: String,
    shown: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stdout().is_terminal(),
            last: String::new(),
            shown: false,
        }
    }

    pub fn status(&mut self, s: &str) {
        if s == self.last {
            return;
        }
        self.last = s.to_string();
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r\x1b[2K{s}");
            self.shown = true;
        } else {
            let _ = writeln!(out, "{s}");
        }
        let _ = out.flush();
    }

    pub fn line(&mut self, s: &str) {
        let mut out = std::io::stdout().lock();
        if self.tty && self.shown {
            let _ = write!(out, "\r\x1b[2K");
            self.shown = false;
            self.last.clear();
        }
        let _ = writeln!(out, "{s}");
        let _ = out.flush();
    }

    pub fn finish(&mut self) {
        if self.tty && self.shown {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out);
            let _ = out.flush();
            self.shown = false;
        }
    }
}
