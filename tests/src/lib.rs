//! Harness for the integration tests: real `yrd node` processes on 127.0.0.1.
//!
//! The `yrd` binary is found next to the test executable's `deps/` directory
//! (`target/<profile>/yrd`), or at `$YRD_BIN`. Build it first:
//! `cargo build --workspace --bins` (the README's test command does).
//! Every process a [`Cluster`] starts is killed when the cluster is dropped.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::SignedTransaction;

pub use yrd_ledger;

pub mod chromium;

/// The `yrd` binary.
pub fn yrd_bin() -> PathBuf {
    if let Ok(p) = std::env::var("YRD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| if d.ends_with("deps") { d.parent() } else { Some(d) }).expect("target dir");
    let bin = dir.join("yrd");
    assert!(bin.exists(), "{} not found: run `cargo build --workspace --bins` first, or set YRD_BIN", bin.display());
    bin
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

use yrd_ledger::testkit::free_port;

/// One node process.
pub struct NodeProc {
    pub name: String,
    /// The key the node was started with (its config's). A governance rotation
    /// gives a validator another one: `Cluster::node_key` asks the node.
    pub key: yrd_consensus::crypto::PublicKey,
    /// libp2p TCP port on 127.0.0.1.
    pub p2p: u16,
    pub api: String,
    pub config: PathBuf,
    pub log: PathBuf,
    pub data_dir: PathBuf,
    child: Option<Child>,
}

impl NodeProc {
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// A `kB` field of `/proc/<pid>/status` (e.g. `VmRSS`, `VmHWM` = peak RSS).
    pub fn status_kb(&self, field: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// How many file descriptors the process has open.
    pub fn open_fds(&self) -> Option<usize> {
        Some(std::fs::read_dir(format!("/proc/{}/fd", self.pid()?)).ok()?.count())
    }

    /// The last lines of the node's log (for failure messages).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A chain of `n` validators (deterministic test keys) running as processes.
pub struct Cluster {
    _serial: std::sync::MutexGuard<'static, ()>,
    pub dir: tempfile::TempDir,
    pub chain: TestChain,
    pub genesis_path: PathBuf,
    pub nodes: Vec<NodeProc>,
    agent: ureq::Agent,
}

impl Cluster {
    /// Writes genesis, keys and configs for `validators` validators and starts them all.
    pub fn start(validators: usize) -> Cluster {
        let mut c = Cluster::prepare(validators, &[]);
        for i in 0..validators {
            c.start_node(i);
        }
        c
    }

    /// Prepares files for the validators, plus extra nodes (not started) whose
    /// keys are `extra_keys` (observers in the genesis or strangers).
    pub fn prepare(validators: usize, extra: &[(&str, yrd_consensus::crypto::SecretKey)]) -> Cluster {
        let chain = TestChain::new(validators, 4);
        Cluster::prepare_with(chain, extra)
    }

    pub fn prepare_with(chain: TestChain, extra: &[(&str, yrd_consensus::crypto::SecretKey)]) -> Cluster {
        // One cluster at a time: four nodes already load this 2-core machine.
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, k) in chain.issuer_keys.iter().enumerate() {
            yrd_node_key(&dir.path().join(format!("issuer-{i}.key")), k);
        }
        let genesis_path = dir.path().join("genesis.json");
        std::fs::write(&genesis_path, chain.genesis.to_json_pretty()).expect("write genesis");
        let mut keys: Vec<(String, yrd_consensus::crypto::SecretKey)> = chain
            .genesis
            .validators
            .iter()
            .zip(&chain.validator_keys)
            .map(|(v, k)| (v.name.clone(), k.clone()))
            .collect();
        keys.extend(extra.iter().map(|(n, k)| (n.to_string(), k.clone())));
        let p2p: Vec<u16> = keys.iter().map(|_| free_port()).collect();
        let apis: Vec<u16> = keys.iter().map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for (i, (name, key)) in keys.iter().enumerate() {
            let ndir = dir.path().join(name);
            std::fs::create_dir_all(&ndir).expect("node dir");
            let key_path = ndir.join("node.key");
            yrd_node_key(&key_path, key);
            // Everyone dials the validators (not the extra nodes).
            let peers: Vec<String> = (0..chain.validator_keys.len())
                .filter(|j| *j != i)
                .map(|j| {
                    let pid = yrd_node::net::peer_id_from_ed25519(&chain.validator_keys[j].public().0).expect("peer id");
                    format!("\"/ip4/127.0.0.1/tcp/{}/p2p/{pid}\"", p2p[j])
                })
                .collect();
            let config = format!(
                "name = \"{name}\"\ngenesis = \"{}\"\nkey = \"{}\"\ndata_dir = \"{}\"\nlisten = \"/ip4/127.0.0.1/tcp/{}\"\napi = \"127.0.0.1:{}\"\npeers = [{}]\n\n[consensus]\nblock_interval_ms = 50\nempty_block_after_ms = 1000\npropose_timeout_ms = 1500\nvote_timeout_ms = 500\n",
                genesis_path.display(),
                key_path.display(),
                ndir.join("data").display(),
                p2p[i],
                apis[i],
                peers.join(", ")
            );
            let config_path = ndir.join("node.toml");
            std::fs::write(&config_path, config).expect("write config");
            nodes.push(NodeProc {
                name: name.clone(),
                key: key.public(),
                p2p: p2p[i],
                api: format!("http://127.0.0.1:{}", apis[i]),
                config: config_path,
                log: ndir.join("node.log"),
                data_dir: ndir.join("data"),
                child: None,
            });
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Cluster { _serial: serial, dir, chain, genesis_path, nodes, agent }
    }

    pub fn start_node(&mut self, i: usize) {
        self.start_node_with_env(i, &[]);
    }

    /// Starts node `i` with extra environment variables (e.g. libfaketime's).
    pub fn start_node_with_env(&mut self, i: usize, env: &[(&str, &str)]) {
        let n = &mut self.nodes[i];
        assert!(n.child.is_none(), "{} already running", n.name);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&n.log).expect("log file");
        let child = Command::new(yrd_bin())
            .args(["node", "--config"])
            .arg(&n.config)
            .env("RUST_LOG", std::env::var("YRD_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn yrd node");
        n.child = Some(child);
    }

    /// SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits (bounded by `secs`) for node `i` to exit on its own; returns its exit
    /// status, or `None` if it is still running (or was not started).
    pub fn wait_exit(&mut self, i: usize, secs: u64) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let c = self.nodes[i].child.as_mut()?;
            if let Ok(Some(s)) = c.try_wait() {
                self.nodes[i].child = None;
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns the exit status.
    pub fn stop(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let mut c = self.nodes[i].child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        c.wait().ok()
    }

    pub fn get(&self, i: usize, path: &str) -> Option<(u16, Value)> {
        self.get_with_headers(i, path, &[])
    }

    /// Node `i`'s key as it reports it now (`node_key` in its status): what a
    /// request signed for it names.
    pub fn node_key(&self, i: usize) -> Option<yrd_consensus::crypto::PublicKey> {
        let (status, v) = self.get(i, "/v1/status")?;
        if status != 200 {
            return None;
        }
        yrd_consensus::crypto::PublicKey::from_hex(v["node_key"].as_str()?).ok()
    }

    /// `GET path` on node `i`, signed with `key` for node `i` (docs/access.md;
    /// the node's key read from its status, as a client does).
    pub fn get_as(&self, i: usize, path: &str, key: &yrd_consensus::crypto::SecretKey) -> Option<(u16, Value)> {
        let node = self.node_key(i)?;
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
        let nonce = yrd_ledger::queries::Nonce::random();
        let r = yrd_ledger::queries::SignedRequest::sign(key, &self.chain.chain, &node, "GET", path, b"", ts, nonce).ok()?;
        self.get_with_headers(i, path, &r.headers(&node))
    }

    /// `GET path` on node `i` with these extra headers.
    pub fn get_with_headers(&self, i: usize, path: &str, headers: &[(&str, String)]) -> Option<(u16, Value)> {
        let url = format!("{}{}", self.nodes[i].api, path);
        let mut request = self.agent.get(&url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut resp = request.call().ok()?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().ok()?;
        Some((status, serde_json::from_str(&body).unwrap_or(Value::String(body))))
    }

    pub fn post(&self, i: usize, path: &str, body: &Value) -> Option<(u16, Value)> {
        let url = format!("{}{}", self.nodes[i].api, path);
        let mut resp = self.agent.post(&url).header("content-type", "application/json").send(body.to_string()).ok()?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    pub fn submit(&self, i: usize, tx: &SignedTransaction) -> (u16, Value) {
        let body = serde_json::json!({ "tx": hex::encode(tx.encode().expect("encode")) });
        self.post(i, "/v1/transactions", &body).unwrap_or_else(|| panic!("{} unreachable", self.nodes[i].name))
    }

    /// A handle that posts to the nodes' APIs from another thread while the
    /// cluster itself is being changed (nodes stopped, restarted).
    pub fn api_client(&self) -> ApiClient {
        ApiClient { apis: self.nodes.iter().map(|n| n.api.clone()).collect(), agent: self.agent.clone() }
    }

    /// The node's committed height, if it answers.
    pub fn height(&self, i: usize) -> Option<u64> {
        self.get(i, "/v1/status").and_then(|(_, v)| v["height"].as_u64())
    }

    /// Waits until node `i` answers with height ≥ `h`; panics with its log after `secs`.
    pub fn wait_height(&mut self, i: usize, h: u64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self.height(i).is_some_and(|x| x >= h) {
                return;
            }
            if Instant::now() > deadline || !self.nodes[i].is_running() {
                panic!(
                    "{} did not reach height {h} within {secs} s (at {:?}); log tail:\n{}",
                    self.nodes[i].name,
                    self.height(i),
                    self.nodes[i].log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until attestation `id` is final on node `i`; returns its JSON.
    pub fn wait_final(&mut self, i: usize, id: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let path = format!("/v1/attestations/{id}");
            let mut answer = self.get(i, &path);
            // A restricted record (docs/access.md) is read with its issuer's key.
            if matches!(&answer, Some((403, _))) {
                answer = self.chain.issuer_keys.iter().find_map(|k| self.get_as(i, &path, k).filter(|(s, _)| *s == 200));
            }
            if let Some((200, v)) = answer {
                if v["status"] != "pending" && v["height"].is_u64() {
                    return v;
                }
            }
            if Instant::now() > deadline || !self.nodes[i].is_running() {
                panic!("{id} not final on {} within {secs} s; log tail:\n{}", self.nodes[i].name, self.nodes[i].log_tail(30));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A metric of node `i` (`name` as served, e.g. `yrd_height`), if it answers.
    pub fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let url = format!("{}/metrics", self.nodes[i].api);
        let text = self.agent.get(&url).call().ok()?.body_mut().read_to_string().ok()?;
        metric_in(&text, name)
    }

    /// `yrd audit verify-ledger` on node `i`'s data (stop the node first): exit
    /// code and output.
    pub fn verify_ledger(&self, i: usize) -> (Option<i32>, String) {
        let out = Command::new(yrd_bin())
            .args(["audit", "verify-ledger", "--data"])
            .arg(&self.nodes[i].data_dir)
            .arg("--genesis")
            .arg(&self.genesis_path)
            .output()
            .expect("run yrd audit verify-ledger");
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }

    /// Key file of test issuer `i` (mode 0600).
    pub fn issuer_key_file(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("issuer-{i}.key"))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Posts to the cluster's nodes (see [`Cluster::api_client`]).
#[derive(Clone)]
pub struct ApiClient {
    apis: Vec<String>,
    agent: ureq::Agent,
}

impl ApiClient {
    pub fn post(&self, i: usize, path: &str, body: &Value) -> Option<(u16, Value)> {
        let url = format!("{}{}", self.apis[i], path);
        let mut resp = self.agent.post(&url).header("content-type", "application/json").send(body.to_string()).ok()?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            for n in &self.nodes {
                eprintln!("--- {} log tail ---\n{}", n.name, n.log_tail(20));
            }
            if std::env::var_os("YRD_KEEP_TEST_DIR").is_some() {
                if let Ok(empty) = tempfile::tempdir() {
                    let kept = std::mem::replace(&mut self.dir, empty).keep();
                    eprintln!("YRD_KEEP_TEST_DIR: logs, keys and stores kept in {}", kept.display());
                }
            }
        }
    }
}

/// A small tmpfs (RAM, never the root filesystem) mounted over a directory, for
/// full-disk tests; unmounted when dropped, also when the test fails (lazily, so
/// that a process still holding a file cannot keep it mounted). Mounting needs
/// root: [`Tmpfs::mount`] says why it cannot, for the test to skip with that reason.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, mib: u64) -> Result<Tmpfs, String> {
        let uid = Command::new("id").arg("-u").output().map_err(|e| format!("cannot run id: {e}"))?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("needs root to mount a tmpfs".into());
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "yrd-test-disk"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    /// Grows (or shrinks) the tmpfs.
    pub fn resize(&self, mib: u64) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot resize the tmpfs at {} to {mib} MiB", self.0.display());
    }

    /// Free bytes, as `df` sees them.
    pub fn free_bytes(&self) -> u64 {
        let out = Command::new("df").args(["-B1", "--output=avail"]).arg(&self.0).output().expect("df");
        String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df output")
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Bytes allocated under `dir` (`du -sB1`: disk blocks, not apparent sizes), e.g. a node's data directory.
/// 0 if `dir` does not exist (yet); files that vanish during the count (sled
/// removing a segment or blob) are left out of it.
pub fn du_bytes(dir: &Path) -> u64 {
    if !dir.exists() {
        return 0;
    }
    let out = Command::new("du").arg("-sB1").arg(dir).output().expect("du");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| {
        panic!("du {}: no total ({text}{})", dir.display(), String::from_utf8_lossy(&out.stderr))
    })
}

fn yrd_node_key(path: &Path, key: &yrd_consensus::crypto::SecretKey) {
    yrd_node::keys::write_key_file(path, key).expect("write key file");
}

/// Raises this process's soft descriptor limit to its hard limit; returns the
/// soft limit in force.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
    getrlimit(Resource::RLIMIT_NOFILE).map(|l| l.0).unwrap_or(1024)
}

/// The value of metric `name` (as served, e.g. `yrd_height`) in a `/metrics` text.
pub fn metric_in(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Reads a child's stdout lines until `pred` matches one (bounded by `secs`).
pub fn read_until(reader: &mut impl BufRead, secs: u64, pred: impl Fn(&str) -> bool) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if pred(line.trim_end()) {
            return Some(line.trim_end().to_string());
        }
    }
    None
}


/// A child process that is killed (and reaped) when dropped: a test that fails
/// half-way leaves nothing running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits at most `secs` for `child` to exit (polling); panics saying `what`
/// did not finish otherwise.
pub fn wait_child(child: &mut Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().expect("wait for a child process") {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} did not finish within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The network namespaces a `yrd-testnet --wan` or `chaos` run with this pid
/// still has (`yrdwan-<pid>-…`); none when `ip` cannot be run.
pub fn wan_namespaces_of(pid: u32) -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("yrdwan-{pid}-")))
        .map(String::from)
        .collect()
}
