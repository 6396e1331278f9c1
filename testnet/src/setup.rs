//! Everything the testnet writes before it starts a process: the directory, keys,
//! the genesis, one node config per agency, and `testnet.json`.
//!
//! ```text
//! DIR/genesis.json
//! DIR/testnet.json
//! DIR/<name>/validator.key   DIR/<name>/issuer.key   (mode 0600)
//! DIR/<name>/node.toml       DIR/<name>/node.log     DIR/<name>/data/
//! ```

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use yrd_consensus::crypto::{Hash32, SecretKey};
use yrd_ledger::genesis::{AgencyInfo, ChainParams, Genesis, IssuerInfo, Region, ValidatorInfo};
use yrd_ledger::tx::AttestationKind;
use yrd_node::config::{ConsensusConfig, HttpConfig, MempoolConfig, NodeConfig, StorageConfig};

use crate::agencies::AgencySpec;

/// The chain name written into the testnet genesis.
pub const CHAIN_NAME: &str = "yrd-testnet";

/// `DIR/testnet.json`: what clients (and `yrd-testnet load`) need to use the testnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestnetFile {
    pub genesis: PathBuf,
    pub nodes: Vec<NodeEntry>,
    pub issuers: Vec<IssuerEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub name: String,
    pub region: String,
    /// Base URL of the node's HTTP API, e.g. `http://127.0.0.1:8601`.
    pub api: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuerEntry {
    pub name: String,
    pub region: String,
    pub key_file: PathBuf,
}

/// One validator node of the testnet.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub region: String,
    pub city: &'static str,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    /// The address it listens on: 127.0.0.1, or its namespace's address (`--wan`).
    pub host: Ipv4Addr,
    pub api_port: u16,
    pub p2p_port: u16,
}

impl NodeSpec {
    pub fn api_url(&self) -> String {
        format!("http://{}:{}", self.host, self.api_port)
    }
}

/// A freshly created testnet directory.
pub struct Layout {
    pub dir: PathBuf,
    pub genesis_path: PathBuf,
    pub genesis: Genesis,
    pub chain_id: Hash32,
    pub nodes: Vec<NodeSpec>,
    pub issuers: Vec<IssuerEntry>,
    pub issuer_keys: Vec<SecretKey>,
    /// The sample lender (genesis `lenders`, sponsored by the first agency), its
    /// key in `DIR/lender.key` (docs/access.md).
    pub lender_key: SecretKey,
    pub testnet_json: PathBuf,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The directory to use: `dir` (created if missing; must not already hold a
/// testnet), or a fresh one under the system temporary directory. Absolute.
pub fn prepare_dir(dir: Option<&Path>) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("cannot create directory {}", d.display()))?;
            d.to_path_buf()
        }
        None => {
            let base = std::env::temp_dir();
            let stamp = now_ms();
            let mut n = 0u32;
            loop {
                let d = base.join(format!(
                    "yrd-testnet-{stamp}-{}{}",
                    std::process::id(),
                    if n == 0 {
                        String::new()
                    } else {
                        format!("-{n}")
                    }
                ));
                match std::fs::create_dir(&d) {
                    Ok(()) => break d,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                    Err(e) => return Err(anyhow!("cannot create directory {}: {e}", d.display())),
                }
            }
        }
    };
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    if dir.join("genesis.json").exists() || dir.join("testnet.json").exists() {
        bail!(
            "{} already holds a testnet (genesis.json / testnet.json); choose a new or empty directory",
            dir.display()
        );
    }
    Ok(dir)
}

/// `count` TCP ports on 127.0.0.1: `base, base+1, ..` checked free if `base` is
/// given, otherwise free ports from below the kernel's ephemeral range
/// (`yrd_ledger::testkit::free_port`: a kernel-picked port, released, can be
/// taken by one of the nodes' own outgoing dials before its node listens).
pub fn pick_ports(base: Option<u16>, count: usize) -> Result<Vec<u16>> {
    match base {
        Some(b) => {
            let mut ports = Vec::with_capacity(count);
            for i in 0..count {
                let p = u16::try_from(b as usize + i)
                    .map_err(|_| anyhow!("port {} is above 65535", b as usize + i))?;
                TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, p))
                    .with_context(|| format!("port 127.0.0.1:{p} is not free"))?;
                ports.push(p);
            }
            Ok(ports)
        }
        None => (0..count)
            .map(|_| match yrd_ledger::testkit::free_port() {
                0 => Err(anyhow!("no free TCP port on 127.0.0.1")),
                p => Ok(p),
            })
            .collect(),
    }
}

/// Ports for `n` nodes: `(api, p2p)` each. With `--base-port P`, node `i`
/// serves its API on `P + i` and libp2p on `P + 100 + i`.
pub fn node_ports(base: Option<u16>, n: usize) -> Result<Vec<(u16, u16)>> {
    match base {
        Some(b) => {
            let api = pick_ports(Some(b), n)?;
            let p2p = pick_ports(
                Some(
                    b.checked_add(100)
                        .ok_or_else(|| anyhow!("--base-port {b} is too high"))?,
                ),
                n,
            )?;
            Ok(api.into_iter().zip(p2p).collect())
        }
        None => {
            let ports = pick_ports(None, 2 * n)?;
            Ok((0..n).map(|i| (ports[i], ports[n + i])).collect())
        }
    }
}

/// Creates keys, the genesis, node configs and `testnet.json` in `dir`.
/// Knobs of a testnet; the defaults are the node's and the chain's defaults.
#[derive(Debug, Clone)]
pub struct Tuning {
    pub mempool_max_txs: usize,
    /// Most transactions per block, in the genesis and every node config.
    pub max_block_txs: Option<u32>,
    /// `mempool.max_wait_ms` of every node (admission by queueing delay; 0: off).
    pub max_wait_ms: Option<u64>,
    /// `[storage]` of every node (the disk reserve; default: the node's).
    pub storage: Option<StorageConfig>,
    /// `consensus.block_interval_ms` of every node (default: the node's, 0).
    pub block_interval_ms: Option<u64>,
    /// `consensus.empty_block_after_ms` of every node (default:
    /// [`TESTNET_EMPTY_BLOCK_AFTER_MS`]).
    pub empty_block_after_ms: Option<u64>,
}

/// An idle local testnet makes an empty block a second (a node's default is one
/// in 30 s): heights visibly move on its dashboards, and the checks that wait
/// for every node to pass a height (chaos after a heal) need no load.
pub const TESTNET_EMPTY_BLOCK_AFTER_MS: u64 = 1000;

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            mempool_max_txs: MempoolConfig::default().max_txs,
            max_block_txs: None,
            max_wait_ms: None,
            storage: None,
            block_interval_ms: None,
            empty_block_after_ms: None,
        }
    }
}

/// The name of the testnet's sample lender.
pub const SAMPLE_LENDER: &str = "yangtze-bank";

/// Where each node listens: its address and `(api, p2p)` ports, one per agency.
#[derive(Debug, Clone)]
pub struct Placement {
    pub host: Ipv4Addr,
    pub api_port: u16,
    pub p2p_port: u16,
    /// Where this node dials each other node (`via[j]`, `--wan --relay`: a relay on
    /// 127.0.0.1); empty: at that node's own address and libp2p port.
    pub via: Vec<Option<(Ipv4Addr, u16)>>,
}

/// Every node on 127.0.0.1 with the given ports.
pub fn loopback(ports: &[(u16, u16)]) -> Vec<Placement> {
    ports
        .iter()
        .map(|(a, p)| Placement { host: Ipv4Addr::LOCALHOST, api_port: *a, p2p_port: *p, via: Vec::new() })
        .collect()
}

pub fn create(dir: &Path, agencies: &[AgencySpec], places: &[Placement], tuning: &Tuning) -> Result<Layout> {
    let n = agencies.len();
    if places.len() != n {
        bail!("{} agencies but {} node placements", n, places.len());
    }
    let mut validator_keys = Vec::with_capacity(n);
    let mut issuer_keys = Vec::with_capacity(n);
    let mut validators = Vec::with_capacity(n);
    let mut issuers_info = Vec::with_capacity(n);
    let mut issuers = Vec::with_capacity(n);
    let mut agency_infos = Vec::with_capacity(n);
    for ag in agencies {
        let (name, issuer_name, region) = (ag.name, ag.issuer, ag.region);
        let node_dir = dir.join(name);
        std::fs::create_dir_all(node_dir.join("data"))
            .with_context(|| format!("cannot create {}", node_dir.join("data").display()))?;
        let vkey = yrd_node::keys::generate();
        let ikey = yrd_node::keys::generate();
        let akey = yrd_node::keys::generate();
        yrd_node::keys::write_key_file(&node_dir.join("validator.key"), &vkey)?;
        // The agency's governance key (proposals and approvals; docs/governance.md).
        yrd_node::keys::write_key_file(&node_dir.join("admin.key"), &akey)?;
        let issuer_key_file = node_dir.join("issuer.key");
        yrd_node::keys::write_key_file(&issuer_key_file, &ikey)?;
        let region = Region::parse(region)?;
        validators.push(ValidatorInfo {
            name: name.to_string(),
            region: region.clone(),
            key: vkey.public(),
        });
        agency_infos.push(AgencyInfo {
            name: name.to_string(),
            region: region.clone(),
            key: akey.public(),
        });
        issuers_info.push(IssuerInfo {
            name: issuer_name.to_string(),
            region: region.clone(),
            key: ikey.public(),
            kinds: AttestationKind::ALL.to_vec(),
            may_revoke_any: false,
        });
        issuers.push(IssuerEntry {
            name: issuer_name.to_string(),
            region: region.to_string(),
            key_file: issuer_key_file,
        });
        validator_keys.push(vkey);
        issuer_keys.push(ikey);
    }
    // A lender, to show authorised queries (docs/access.md).
    let lender_key = yrd_node::keys::generate();
    yrd_node::keys::write_key_file(&dir.join("lender.key"), &lender_key)?;
    let genesis = Genesis {
        chain_name: CHAIN_NAME.into(),
        genesis_time_ms: now_ms(),
        params: ChainParams {
            max_block_txs: tuning
                .max_block_txs
                .unwrap_or(ChainParams::default().max_block_txs),
            ..ChainParams::default()
        },
        validators,
        issuers: issuers_info,
        observers: vec![],
        agencies: agency_infos,
        lenders: vec![yrd_ledger::genesis::LenderInfo {
            name: SAMPLE_LENDER.into(),
            sponsor: agencies[0].name.into(),
            key: lender_key.public(),
        }],
    };
    genesis.validate().context("generated genesis is invalid")?;
    let chain_id = genesis.chain_id().context("cannot compute the chain id")?;
    let genesis_path = dir.join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json_pretty() + "\n")
        .with_context(|| format!("cannot write {}", genesis_path.display()))?;

    let mut peer_ids = Vec::with_capacity(n);
    for (i, key) in validator_keys.iter().enumerate() {
        peer_ids.push(
            yrd_node::net::peer_id_from_ed25519(&key.public().0)
                .map_err(|e| anyhow!("peer id of validator {}: {e}", agencies[i].name))?,
        );
    }
    // Node i's address of node j: j's own, or the relay i dials it through.
    let peer_addr = |i: usize, j: usize| {
        let (host, port) = places[i].via.get(j).copied().flatten().unwrap_or((places[j].host, places[j].p2p_port));
        format!("/ip4/{host}/tcp/{port}/p2p/{}", peer_ids[j])
    };
    let mut nodes = Vec::with_capacity(n);
    for (i, ag) in agencies.iter().enumerate() {
        let (name, region) = (ag.name, ag.region);
        let node_dir = dir.join(name);
        let Placement { host, api_port, p2p_port, .. } = places[i].clone();
        let config = NodeConfig {
            name: name.to_string(),
            genesis: genesis_path.clone(),
            key: node_dir.join("validator.key"),
            data_dir: node_dir.join("data"),
            listen: format!("/ip4/{host}/tcp/{p2p_port}"),
            api: format!("{host}:{api_port}"),
            peers: (0..n).filter(|j| *j != i).map(|j| peer_addr(i, j)).collect(),
            log_format: "text".into(),
            mempool: MempoolConfig {
                max_txs: tuning.mempool_max_txs,
                max_wait_ms: tuning
                    .max_wait_ms
                    .unwrap_or(MempoolConfig::default().max_wait_ms),
            },
            consensus: ConsensusConfig {
                max_block_txs: tuning
                    .max_block_txs
                    .unwrap_or(ConsensusConfig::default().max_block_txs),
                block_interval_ms: tuning.block_interval_ms.unwrap_or(ConsensusConfig::default().block_interval_ms),
                empty_block_after_ms: tuning.empty_block_after_ms.unwrap_or(TESTNET_EMPTY_BLOCK_AFTER_MS),
                ..ConsensusConfig::default()
            },
            storage: tuning.storage.clone().unwrap_or_default(),
            http: HttpConfig::default(),
            queries: Default::default(),
        };
        config
            .validate()
            .map_err(|e| anyhow!("generated config of {name}: {e}"))?;
        let config_path = node_dir.join("node.toml");
        std::fs::write(&config_path, config.to_toml())
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        nodes.push(NodeSpec {
            name: name.to_string(),
            region: region.to_string(),
            city: ag.city,
            log_path: node_dir.join("node.log"),
            config_path,
            host,
            api_port,
            p2p_port,
        });
    }
    let testnet_json = dir.join("testnet.json");
    let layout = Layout {
        dir: dir.to_path_buf(),
        genesis_path,
        genesis,
        chain_id,
        nodes,
        issuers,
        issuer_keys,
        lender_key,
        testnet_json,
    };
    Ok(layout)
}

impl Layout {
    pub fn testnet_file(&self) -> TestnetFile {
        TestnetFile {
            genesis: self.genesis_path.clone(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeEntry {
                    name: n.name.clone(),
                    region: n.region.clone(),
                    api: n.api_url(),
                })
                .collect(),
            issuers: self.issuers.clone(),
        }
    }

    /// Writes `DIR/testnet.json` (once the nodes answer).
    pub fn write_testnet_json(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.testnet_file())? + "\n";
        std::fs::write(&self.testnet_json, text)
            .with_context(|| format!("cannot write {}", self.testnet_json.display()))
    }
}

impl TestnetFile {
    pub fn load(path: &Path) -> Result<TestnetFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a testnet.json", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "yrd-testnet-unit-{tag}-{}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d.canonicalize().unwrap()
    }

    #[test]
    fn creates_keys_genesis_configs_and_testnet_json() {
        let dir = scratch("create");
        let ports = node_ports(None, 4).unwrap();
        let mut all: Vec<u16> = ports.iter().flat_map(|(a, p)| [*a, *p]).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 8, "eight distinct ports");
        let agencies = crate::agencies::first(4).unwrap();
        let layout = create(
            &dir,
            agencies,
            &loopback(&ports),
            &Tuning {
                mempool_max_txs: 1000,
                max_block_txs: Some(8192),
                max_wait_ms: Some(0),
                storage: None,
                block_interval_ms: Some(20),
                empty_block_after_ms: None,
            },
        )
        .unwrap();

        // Genesis: four validators and four issuers, all kinds, reloadable, same chain id.
        let text = std::fs::read(dir.join("genesis.json")).unwrap();
        let g = Genesis::from_json(&text).unwrap();
        assert_eq!(g.validators.len(), 4);
        assert_eq!(g.params.max_block_txs, 8192);
        assert_eq!(g.issuers.len(), 4);
        assert!(g.issuers.iter().all(|i| i.kinds == AttestationKind::ALL));
        assert_eq!(g.chain_id().unwrap(), layout.chain_id);
        let regions: Vec<&str> = g.validators.iter().map(|v| v.region.as_str()).collect();
        assert_eq!(regions, ["SH", "JS", "ZJ", "AH"]);

        // Keys are readable (mode 0600) and match the genesis; validator != issuer key.
        for (i, ag) in agencies.iter().enumerate() {
            let name = ag.name;
            let v = yrd_node::keys::read_key_file(&dir.join(name).join("validator.key")).unwrap();
            let k = yrd_node::keys::read_key_file(&dir.join(name).join("issuer.key")).unwrap();
            assert_eq!(v.public(), g.validators[i].key);
            assert_eq!(k.public(), g.issuers[i].key);
            assert_ne!(v.public(), k.public());
        }

        // Configs load back through the node's own loader, with three peers each.
        for (i, spec) in layout.nodes.iter().enumerate() {
            let cfg = NodeConfig::load(&spec.config_path).unwrap();
            assert_eq!(cfg.name, agencies[i].name);
            assert_eq!(cfg.genesis, dir.join("genesis.json"));
            assert_eq!(cfg.key, dir.join(agencies[i].name).join("validator.key"));
            assert_eq!(cfg.listen, format!("/ip4/127.0.0.1/tcp/{}", ports[i].1));
            assert_eq!(cfg.peers.len(), 3);
            assert_eq!(cfg.mempool.max_txs, 1000);
            assert_eq!(cfg.mempool.max_wait_ms, 0);
            assert_eq!(cfg.consensus.max_block_txs, 8192);
            assert_eq!(cfg.consensus.block_interval_ms, 20);
            assert_eq!(cfg.consensus.empty_block_after_ms, TESTNET_EMPTY_BLOCK_AFTER_MS);
            assert_eq!(cfg.api, format!("127.0.0.1:{}", ports[i].0));
            for p in &cfg.peers {
                assert!(
                    p.starts_with("/ip4/127.0.0.1/tcp/") && p.contains("/p2p/12D3KooW"),
                    "{p}"
                );
                assert!(
                    !p.contains(&format!("/tcp/{}/", ports[i].1)),
                    "a node does not dial itself"
                );
            }
        }

        // testnet.json: exactly the documented shape, absolute paths, URLs.
        layout.write_testnet_json().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("testnet.json")).unwrap())
                .unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["genesis", "issuers", "nodes"]);
        assert_eq!(v["genesis"], dir.join("genesis.json").display().to_string());
        assert_eq!(v["nodes"].as_array().unwrap().len(), 4);
        assert_eq!(v["nodes"][0]["name"], "shanghai");
        assert_eq!(v["nodes"][0]["region"], "SH");
        assert_eq!(
            v["nodes"][0]["api"],
            format!("http://127.0.0.1:{}", ports[0].0)
        );
        assert_eq!(v["nodes"][0].as_object().unwrap().len(), 3);
        assert_eq!(v["issuers"][3]["name"], "anhui-credit");
        assert_eq!(v["issuers"][3]["region"], "AH");
        let kf = v["issuers"][3]["key_file"].as_str().unwrap();
        assert!(Path::new(kf).is_absolute() && kf.ends_with("anhui/issuer.key"));
        assert_eq!(v["issuers"][3].as_object().unwrap().len(), 3);
        assert_eq!(
            TestnetFile::load(&dir.join("testnet.json")).unwrap(),
            layout.testnet_file()
        );

        // A directory that already holds a testnet is refused.
        assert!(prepare_dir(Some(&dir)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn seven_agencies_across_the_provinces_each_dialling_the_six_others() {
        let dir = scratch("seven");
        let agencies = crate::agencies::first(7).unwrap();
        let ports = node_ports(None, 7).unwrap();
        let layout = create(&dir, agencies, &loopback(&ports), &Tuning::default()).unwrap();
        let g = Genesis::from_json(&std::fs::read(dir.join("genesis.json")).unwrap()).unwrap();
        let names: Vec<&str> = g.validators.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["shanghai", "jiangsu", "zhejiang", "anhui", "suzhou", "ningbo", "wuhu"]);
        let regions: Vec<&str> = g.validators.iter().map(|v| v.region.as_str()).collect();
        assert_eq!(regions, ["SH", "JS", "ZJ", "AH", "JS", "ZJ", "AH"]);
        assert_eq!(g.issuers.len(), 7);
        assert_eq!(g.agencies.len(), 7);
        assert_eq!(layout.issuers[6].name, "wuhu-credit");
        for (i, spec) in layout.nodes.iter().enumerate() {
            let cfg = NodeConfig::load(&spec.config_path).unwrap();
            assert_eq!(cfg.peers.len(), 6, "{}", spec.name);
            assert!(!cfg.peers.iter().any(|p| p.contains(&format!("/tcp/{}/", ports[i].1))));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn base_port_layout() {
        // Find a free range by asking the kernel for one port and trying above it.
        let probe = pick_ports(None, 1).unwrap()[0];
        let base = if probe > 60000 { 20000 } else { probe };
        if let Ok(p) = node_ports(Some(base), 16) {
            assert_eq!(p[0], (base, base + 100));
            assert_eq!(p[15], (base + 15, base + 115));
        }
        assert!(node_ports(Some(65500), 4).is_err());
    }
}
