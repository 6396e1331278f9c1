//! `yrd-testnet --wan`: every validator, and the load client, in its own Linux
//! network namespace, joined by veth pairs to a bridge in a hub namespace, with
//! per-destination one-way delays (`tc netem`) from the city matrix
//! ([`crate::wan_matrix`]), optional loss and jitter.
//!
//! ```text
//!   yrdwan-<pid>-0 (shanghai, 10.77.K.1)  eth0 ─┐
//!   yrdwan-<pid>-1 (jiangsu,  10.77.K.2)  eth0 ─┤  yrdwan-<pid>-hub: bridge br0
//!   …                                           ├─ n0 n1 … c0 host
//!   yrdwan-<pid>-client (10.77.K.100)     eth0 ─┤
//!   root namespace: yw<pid>h (10.77.K.254) ─────┘  (yrd-testnet itself polls the nodes)
//! ```
//!
//! Delays sit on each namespace's egress (`eth0`): an HTB root with one class per
//! destination address, each with a netem qdisc of that pair's one-way delay, so a
//! round trip pays both directions. Traffic to the root namespace (status polls of
//! the harness) is not delayed.
//!
//! **Cleanup.** Everything hangs off the namespaces: deleting a namespace deletes
//! its end of every veth, which deletes the pair, so deleting the run's namespaces
//! removes every link it made. The [`Network`] guard does that on drop (normal
//! exit, error, panic; Ctrl-C reaches it through the orderly stop), after the
//! processes have been stopped. A run killed with SIGKILL leaves its namespaces
//! and node processes: the next `--wan` run removes those of dead runs first
//! (their pid is in the name), and `yrd-testnet --cleanup` does so on demand.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::agencies::AgencySpec;
use crate::wan_matrix;

/// Prefix of every namespace a `--wan` run makes: `yrdwan-<pid>-<role>`.
pub const NS_PREFIX: &str = "yrdwan-";
/// API and libp2p ports of every node (each has its own address).
pub const API_PORT: u16 = 8600;
pub const P2P_PORT: u16 = 8700;
/// Host part of the load client's address.
const CLIENT_HOST: u8 = 100;
/// Host part of the root namespace's address on the bridge.
const ROOT_HOST: u8 = 254;
/// Packets a netem queue holds: its default of 1,000 drops bursts of gossip
/// (a 4,000-transaction block is ~600 packets per peer) once delay holds them.
const NETEM_LIMIT_PACKETS: u32 = 100_000;

/// Link impairments on top of the matrix.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairments {
    /// Random loss per packet, percent (netem `loss`).
    pub loss_pct: f64,
    /// Delay variation, ms (netem's uniform jitter around each pair's delay).
    pub jitter_ms: f64,
    /// No delays at all: namespaces and veths only (a kernel without sch_netem).
    pub no_netem: bool,
    /// The delays applied by relays on 127.0.0.1 instead of namespaces and netem
    /// (`crate::relay`; no root, no sch_netem needed).
    pub relay: bool,
}

/// The `--wan` flags (testnet and bench).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WanArgs {
    /// Each validator and the load client in its own network namespace, linked with the city-to-city delays of docs/testnet.md (needs root, iproute2 and sch_netem)
    #[arg(long, global = true)]
    pub wan: bool,
    /// With --wan: random packet loss on every link, percent
    #[arg(long, requires = "wan", global = true, default_value_t = 0.0)]
    pub loss: f64,
    /// With --wan: delay variation on every link, ms (uniform around each pair's delay)
    #[arg(long, requires = "wan", global = true, default_value_t = 0.0)]
    pub jitter: f64,
    /// With --wan: namespaces and links without delays (for kernels without sch_netem)
    #[arg(long, requires = "wan", global = true, conflicts_with = "relay")]
    pub no_netem: bool,
    /// With --wan: the same delays applied by TCP relays in yrd-testnet, every node on 127.0.0.1 (no root, no sch_netem; no --loss)
    #[arg(long, requires = "wan", global = true)]
    pub relay: bool,
}

impl WanArgs {
    pub fn impairments(&self) -> Result<Option<Impairments>> {
        if !self.wan {
            return Ok(None);
        }
        if !(0.0..=100.0).contains(&self.loss) {
            bail!("--loss {} is not a percentage (0 to 100)", self.loss);
        }
        if !(0.0..=1000.0).contains(&self.jitter) {
            bail!("--jitter {} ms is outside 0..=1000", self.jitter);
        }
        if self.relay {
            crate::relay::check(self.loss)?;
        }
        Ok(Some(Impairments { loss_pct: self.loss, jitter_ms: self.jitter, no_netem: self.no_netem, relay: self.relay }))
    }
}

/// Runs `program args`, failing with its stderr.
fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program} (install iproute2)"))?;
    if !out.status.success() {
        bail!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Runs `ip -n NS -batch -` or `tc -batch -` (in NS) with `lines` on stdin.
fn batch(ns: &str, tool: &str, lines: &str) -> Result<()> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, tool, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {tool} in {ns}"))?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("no stdin for {tool}"))?
        .write_all(lines.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{tool} in {ns} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Why namespaces cannot be made here, or `None` if they can (root, iproute2,
/// a kernel that lets us create one). Used by the tests to skip with a reason.
pub fn unavailable_reason() -> Option<String> {
    if !is_root() {
        return Some("network namespaces need root (run as root, or skip --wan)".into());
    }
    let probe = format!("{NS_PREFIX}probe-{}", std::process::id());
    match run("ip", &["netns", "add", &probe]) {
        Ok(()) => {
            let _ = run("ip", &["netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("cannot create a network namespace: {e:#}")),
    }
}

/// Whether this kernel has the netem qdisc (`CONFIG_NET_SCH_NETEM`): tried on a
/// veth pair in a scratch namespace.
pub fn netem_available() -> Result<bool> {
    let ns = format!("{NS_PREFIX}probe-{}", std::process::id());
    run("ip", &["netns", "add", &ns])?;
    let r = (|| {
        run("ip", &["-n", &ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1"])?;
        Ok::<bool, anyhow::Error>(
            run("ip", &["netns", "exec", &ns, "tc", "qdisc", "add", "dev", "p0", "root", "netem", "delay", "1ms"]).is_ok(),
        )
    })();
    let _ = run("ip", &["netns", "del", &ns]);
    r
}

/// The namespaces of `yrd-testnet --wan` runs: `(name, owner pid)`.
fn our_namespaces() -> Result<Vec<(String, Option<u32>)>> {
    let out = Command::new("ip").args(["netns", "list"]).output().context("cannot run ip (install iproute2)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NS_PREFIX))
        .map(|n| (n.to_string(), owner_pid(n)))
        .collect())
}

/// The pid of the run that owns namespace `ns`: `yrdwan-<pid>-<i>` of a run, or
/// `yrdwan-probe-<pid>` of a probe (made and deleted by a starting run — read as
/// ownerless, another run's cleanup deleted it under that run's feet).
fn owner_pid(ns: &str) -> Option<u32> {
    let rest = ns.strip_prefix(NS_PREFIX)?;
    let rest = rest.strip_prefix("probe-").unwrap_or(rest);
    rest.split('-').next().and_then(|p| p.parse().ok())
}

/// The root namespace's end of a run's bridge link.
fn root_link(pid: u32) -> String {
    format!("yw{pid}h")
}

/// Deletes the root namespace's veth of run `pid`, if it exists. The kernel tears
/// a deleted namespace down asynchronously, so its veth pairs would disappear a
/// little later on their own; deleting this end at once makes the removal
/// complete when we return.
fn remove_root_link(pid: u32) {
    let link = root_link(pid);
    let exists = Command::new("ip").args(["link", "show", &link]).output().map(|o| o.status.success()).unwrap_or(false);
    if exists {
        let _ = run("ip", &["link", "del", &link]);
    }
}

/// Kills every process in namespace `ns` (SIGKILL) and deletes it.
fn remove_namespace(ns: &str) -> Result<()> {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(p) = pid.parse::<i32>() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    run("ip", &["netns", "del", ns])
}

/// Removes the namespaces (and so the links) of `--wan` runs whose process is
/// gone, killing anything still running in them; with `all`, of every run.
/// Returns the names removed.
pub fn cleanup(all: bool) -> Result<Vec<String>> {
    let me = std::process::id();
    let mut removed = Vec::new();
    for (ns, pid) in our_namespaces()? {
        let alive = pid.is_some_and(|p| p != me && std::path::Path::new(&format!("/proc/{p}")).exists());
        if all || !alive || pid == Some(me) {
            if let Some(p) = pid {
                remove_root_link(p);
            }
            match remove_namespace(&ns) {
                Ok(()) => removed.push(ns),
                // Gone meanwhile (its own run removed it): nothing to do.
                Err(_) if !std::path::Path::new("/run/netns").join(&ns).exists() => {}
                Err(e) => return Err(e.context(format!("removing namespace {ns}"))),
            }
        }
    }
    Ok(removed)
}

/// The emulated network of one run. Dropping it deletes every namespace (and so
/// every veth) it made.
pub struct Network {
    pid: u32,
    /// Node namespaces, in agency order.
    pub node_ns: Vec<String>,
    pub client_ns: String,
    hub_ns: String,
    /// Address of node `i`.
    pub node_ips: Vec<Ipv4Addr>,
    pub client_ip: Ipv4Addr,
    /// One-way delays applied, ms (`matrix[i][j]`, i → j; the client is in the first agency's city).
    pub matrix: Vec<Vec<f64>>,
    made: Vec<String>,
}

/// A /24 under 10.77.0.0/16 no interface of the root namespace uses yet.
fn free_subnet() -> Result<u8> {
    let out = Command::new("ip").args(["-4", "-o", "addr", "show"]).output().context("cannot run ip")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let start = (std::process::id() % 250) as u8;
    (0..250u16)
        .map(|k| ((start as u16 + k) % 250) as u8)
        .find(|k| !text.contains(&format!("10.77.{k}.")))
        .ok_or_else(|| anyhow!("no free 10.77.K.0/24 subnet for the WAN bridge"))
}

impl Network {
    /// Creates the namespaces, the bridge, the veths and the delays for these
    /// agencies. On failure everything made so far is removed.
    pub fn create(agencies: &[AgencySpec], imp: &Impairments) -> Result<Network> {
        if let Some(why) = unavailable_reason() {
            bail!("--wan: {why}");
        }
        let removed = cleanup(false)?;
        if !removed.is_empty() {
            println!("Removed {} namespace(s) left by earlier --wan runs: {}", removed.len(), removed.join(", "));
        }
        if !imp.no_netem && !netem_available()? {
            bail!(
                "--wan: this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), so link delays cannot be emulated; \
                 use --relay for the same delays through relays on 127.0.0.1, or --no-netem for namespaces without delays"
            );
        }
        let pid = std::process::id();
        let k = free_subnet()?;
        let mut net = Network {
            pid,
            node_ns: (0..agencies.len()).map(|i| format!("{NS_PREFIX}{pid}-{i}")).collect(),
            client_ns: format!("{NS_PREFIX}{pid}-client"),
            hub_ns: format!("{NS_PREFIX}{pid}-hub"),
            node_ips: (0..agencies.len()).map(|i| Ipv4Addr::new(10, 77, k, i as u8 + 1)).collect(),
            client_ip: Ipv4Addr::new(10, 77, k, CLIENT_HOST),
            matrix: wan_matrix::delay_matrix(agencies),
            made: Vec::new(),
        };
        net.build(k, imp)?;
        Ok(net)
    }

    fn add_ns(&mut self, ns: &str) -> Result<()> {
        run("ip", &["netns", "add", ns])?;
        self.made.push(ns.to_string());
        run("ip", &["-n", ns, "link", "set", "lo", "up"])
    }

    fn build(&mut self, k: u8, imp: &Impairments) -> Result<()> {
        let hub = self.hub_ns.clone();
        self.add_ns(&hub)?;
        run("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        run("ip", &["-n", &hub, "link", "set", "br0", "up"])?;
        // One namespace per node and the client, each with eth0 on the bridge.
        let mut members: Vec<(String, String, Ipv4Addr)> = self
            .node_ns
            .iter()
            .enumerate()
            .map(|(i, ns)| (ns.clone(), format!("n{i}"), self.node_ips[i]))
            .collect();
        members.push((self.client_ns.clone(), "c0".into(), self.client_ip));
        for (ns, port, ip) in &members {
            self.add_ns(ns)?;
            run("ip", &["link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", &hub])?;
            run("ip", &["-n", &hub, "link", "set", port, "master", "br0", "up"])?;
            run("ip", &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
        }
        // The root namespace's port, so that yrd-testnet itself reaches the nodes.
        let root_if = root_link(self.pid);
        run("ip", &["link", "add", &root_if, "type", "veth", "peer", "name", "host", "netns", &hub])?;
        run("ip", &["-n", &hub, "link", "set", "host", "master", "br0", "up"])?;
        run("ip", &["addr", "add", &format!("10.77.{k}.{ROOT_HOST}/24"), "dev", &root_if])?;
        run("ip", &["link", "set", &root_if, "up"])?;
        if !imp.no_netem {
            // Node i → node j and the client (who sits in the first agency's city).
            let n = self.node_ns.len();
            for i in 0..=n {
                let ns = if i < n { self.node_ns[i].clone() } else { self.client_ns.clone() };
                let from = if i < n { i } else { 0 };
                let mut dests: Vec<(Ipv4Addr, f64)> = Vec::new();
                for j in 0..n {
                    if j != i {
                        // The client shares the first agency's city: the fixed part only.
                        let d = if from == j { wan_matrix::FIXED_MS } else { self.matrix[from][j] };
                        dests.push((self.node_ips[j], d));
                    }
                }
                if i < n {
                    let d = if i == 0 { wan_matrix::FIXED_MS } else { self.matrix[i][0] };
                    dests.push((self.client_ip, d));
                }
                batch(&ns, "tc", &tc_script(&dests, imp))?;
            }
        }
        Ok(())
    }

    /// The run's namespaces (hub, nodes, client).
    pub fn namespaces(&self) -> &[String] {
        &self.made
    }
}

/// The `tc -batch` lines for one namespace's eth0: an HTB root whose default
/// class has no delay, one class per destination with a netem of its delay.
fn tc_script(dests: &[(Ipv4Addr, f64)], imp: &Impairments) -> String {
    let mut s = String::from("qdisc add dev eth0 root handle 1: htb default 1\n");
    s.push_str("class add dev eth0 parent 1: classid 1:1 htb rate 10gbit\n");
    for (idx, (ip, delay_ms)) in dests.iter().enumerate() {
        let c = 0x10 + idx;
        s.push_str(&format!("class add dev eth0 parent 1: classid 1:{c:x} htb rate 10gbit\n"));
        let mut netem = format!("qdisc add dev eth0 parent 1:{c:x} handle {c:x}: netem limit {NETEM_LIMIT_PACKETS} delay {delay_ms:.1}ms");
        if imp.jitter_ms > 0.0 {
            netem.push_str(&format!(" {:.1}ms", imp.jitter_ms));
        }
        if imp.loss_pct > 0.0 {
            netem.push_str(&format!(" loss {}%", imp.loss_pct));
        }
        s.push_str(&netem);
        s.push('\n');
        s.push_str(&format!("filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst {ip}/32 flowid 1:{c:x}\n"));
    }
    s
}

impl Drop for Network {
    fn drop(&mut self) {
        remove_root_link(self.pid);
        let mut left = Vec::new();
        for ns in self.made.iter().rev() {
            if let Err(e) = remove_namespace(ns) {
                left.push(format!("{ns} ({e:#})"));
            }
        }
        if left.is_empty() {
            println!("Removed the {} WAN namespaces and their links.", self.made.len());
        } else {
            eprintln!("yrd-testnet: could not remove: {}; run `yrd-testnet --cleanup`", left.join(", "));
        }
    }
}

/// Whether the effective uid is 0 (`Uid:` of /proc/self/status: real, effective, …).
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0")))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_name_their_owner_probes_included() {
        assert_eq!(owner_pid("yrdwan-4242-0"), Some(4242));
        assert_eq!(owner_pid("yrdwan-4242-hub"), Some(4242));
        // A starting run's probe belongs to that run: a concurrent cleanup must
        // not take it for a leftover (it did, and failed when the probe vanished).
        assert_eq!(owner_pid("yrdwan-probe-10271"), Some(10271));
        assert_eq!(owner_pid("yrdwan-x"), None);
        assert_eq!(owner_pid("other-1"), None);
    }

    #[test]
    fn tc_script_has_a_class_netem_and_filter_per_destination() {
        let dests = [(Ipv4Addr::new(10, 77, 3, 2), 2.7), (Ipv4Addr::new(10, 77, 3, 100), 1.0)];
        let s = tc_script(&dests, &Impairments { loss_pct: 0.5, jitter_ms: 1.0, no_netem: false, relay: false });
        assert_eq!(s.lines().count(), 2 + 3 * 2, "{s}");
        assert!(s.contains("classid 1:10 htb") && s.contains("classid 1:11 htb"), "{s}");
        assert!(s.contains("parent 1:10 handle 10: netem limit 100000 delay 2.7ms 1.0ms loss 0.5%"), "{s}");
        assert!(s.contains("match ip dst 10.77.3.100/32 flowid 1:11"), "{s}");
        let plain = tc_script(&dests, &Impairments::default());
        assert!(!plain.contains("loss") && plain.contains("delay 1.0ms\n"), "{plain}");
    }
}

