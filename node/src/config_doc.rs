//! The configuration reference: every field of [`NodeConfig`](crate::config::NodeConfig)
//! with its default and meaning, in one table ([`FIELDS`]).
//!
//! Three things are generated from this table, so they cannot drift apart:
//! the commented `node.toml` that `yrd init` writes ([`sample_toml`]), the
//! "Configuration reference" table of docs/node.md ([`reference_markdown`], checked by
//! a test) and nothing else by hand. The tests below fail when a field of the config
//! struct is missing here, when a default written here differs from the struct's, or
//! when docs/node.md's table differs from [`reference_markdown`].

use std::fmt::Write as _;

/// One configuration field.
#[derive(Debug, Clone, Copy)]
pub struct FieldDoc {
    /// TOML section (`""` for the top level).
    pub section: &'static str,
    pub key: &'static str,
    /// The default as a TOML value; `None` for a field every file must set.
    pub default: Option<&'static str>,
    /// One line: what it is, its unit, and what happens at its limit.
    pub doc: &'static str,
}

impl FieldDoc {
    /// `section.key`, or `key` at the top level.
    pub fn path(&self) -> String {
        if self.section.is_empty() {
            self.key.to_string()
        } else {
            format!("{}.{}", self.section, self.key)
        }
    }
}

const fn field(section: &'static str, key: &'static str, default: Option<&'static str>, doc: &'static str) -> FieldDoc {
    FieldDoc { section, key, default, doc }
}

/// Every configuration field, in the order of the file.
pub const FIELDS: &[FieldDoc] = &[
    field("", "name", None, "this node's name: a validator or observer name in the genesis (its key must be that name's key)"),
    field("", "genesis", None, "the genesis file every agency received (`yrd genesis inspect FILE` shows its chain id)"),
    field("", "key", None, "this node's key file (mode 0600): the validator or observer key named in the genesis; also its libp2p identity"),
    field("", "data_dir", None, "directory of the node's database (created if missing); back it up with the node stopped"),
    field("", "listen", Some("\"/ip4/127.0.0.1/tcp/26601\""), "libp2p listen address (multiaddr); use /ip4/0.0.0.0/tcp/26601 to accept peers from other machines"),
    field("", "api", Some("\"127.0.0.1:8601\""), "HTTP API and /metrics address; keep it on loopback or a private network (no TLS)"),
    field("", "peers", Some("[]"), "peers to dial, as multiaddrs (append /p2p/<peer id> from `yrd key show` to check who answers)"),
    field("", "log_format", Some("\"text\""), "\"text\" or \"json\" (one object per line); RUST_LOG sets the filter, default info"),
    field("mempool", "max_txs", Some("50000"), "most pending transactions; submissions beyond get HTTP 503"),
    field(
        "mempool",
        "max_wait_ms",
        Some("1000"),
        "bound on a client's wait to finality: while the oldest pending transaction has waited more than it less three recent block times (at most half of it, at least a tenth), submissions get HTTP 503 `overloaded` with Retry-After (0: count only)",
    ),
    field("consensus", "propose_timeout_ms", Some("3000"), "how long a validator waits for a round's proposal before voting nil"),
    field("consensus", "propose_timeout_delta_ms", Some("500"), "added to propose_timeout_ms for each further round of a height"),
    field("consensus", "vote_timeout_ms", Some("1000"), "how long a validator waits for a quorum of votes of a step"),
    field("consensus", "vote_timeout_delta_ms", Some("500"), "added to vote_timeout_ms for each further round of a height"),
    field("consensus", "block_interval_ms", Some("0"), "least time between the previous block and our proposal of the next (0: as soon as the previous block is final and transactions wait)"),
    field(
        "consensus",
        "empty_block_after_ms",
        Some("30000"),
        "idle chain: one empty block this often (its heartbeat; 100 to 3600000); without transactions no block is made sooner",
    ),
    field("consensus", "max_block_txs", Some("4096"), "most transactions we put in a block (the genesis cap also applies)"),
    field("storage", "reserve_mib", Some("256"), "free disk (MiB) never written into: a commit that could leave less stops the node (0: off)"),
    field("storage", "low_mib", Some("1024"), "below this much free disk (MiB) no new work is taken (503 disk_low); at least reserve_mib (0: off)"),
    field("http", "max_connections", Some("4096"), "most API connections open at once; lowered at start to what the descriptor limit allows"),
    field("http", "fd_reserve", Some("512"), "file descriptors kept out of the API's reach, for libp2p, sled and logs"),
    field("http", "header_timeout_ms", Some("10000"), "connection opened -> its first request head complete"),
    field("http", "idle_timeout_ms", Some("30000"), "answer sent -> the next request head complete (kept-alive connections)"),
    field("http", "body_timeout_ms", Some("30000"), "request head -> whole body arrived; else 408 body_timeout"),
    field("http", "max_body_bytes_in_flight", Some("67108864"), "request body bytes being received at once over all connections; at least one largest batch (16401024)"),
    field("http", "request_skew_ms", Some("120000"), "signed requests (lenders, issuers, agencies) must be stamped within this of the node's clock; also how long a nonce is remembered"),
    field("queries", "flush_ms", Some("500"), "longest a served authorised query waits before the node submits its record transaction (1 to 60000)"),
    field("queries", "batch", Some("1024"), "submit query records early once this many wait (at most max_queued)"),
    field("queries", "max_queued", Some("65536"), "most served queries waiting to be recorded on chain; beyond, authorised reads get 503 query_queue_full"),
];

/// The values `yrd init` fills in; every other field is written commented out at
/// its default.
#[derive(Debug, Clone)]
pub struct SampleValues {
    pub name: String,
    pub genesis: String,
    pub key: String,
    pub data_dir: String,
    pub listen: String,
    pub api: String,
    pub peers: Vec<String>,
}

/// A TOML string literal (basic string, escaped).
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The commented `node.toml`: every field of [`FIELDS`] with its meaning; the
/// values of `v` set, every other field commented out at its default.
pub fn sample_toml(v: &SampleValues) -> String {
    let peers = format!("[{}]", v.peers.iter().map(|p| toml_str(p)).collect::<Vec<_>>().join(", "));
    let set = |key: &str| -> Option<String> {
        match key {
            "name" => Some(toml_str(&v.name)),
            "genesis" => Some(toml_str(&v.genesis)),
            "key" => Some(toml_str(&v.key)),
            "data_dir" => Some(toml_str(&v.data_dir)),
            "listen" => Some(toml_str(&v.listen)),
            "api" => Some(toml_str(&v.api)),
            "peers" => Some(peers.clone()),
            _ => None,
        }
    };
    let mut out = String::from(
        "# yrd node configuration (written by `yrd init`).\n\
         # Every field is listed with its meaning; commented-out lines show the default.\n\
         # Reference: docs/node.md, \"Configuration reference\". Relative paths are taken\n\
         # from this file's directory. Start the node with: yrd node --config node.toml\n",
    );
    let mut section = "";
    for f in FIELDS {
        if f.section != section {
            section = f.section;
            let _ = write!(out, "\n[{section}]\n");
        } else if section.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "# {}", f.doc);
        let value = if f.section.is_empty() { set(f.key) } else { None };
        match (value, f.default) {
            (Some(value), Some(default)) => {
                let _ = writeln!(out, "# (default {default})\n{} = {value}", f.key);
            }
            (Some(value), None) => {
                let _ = writeln!(out, "{} = {value}", f.key);
            }
            (None, Some(default)) => {
                let _ = writeln!(out, "# {} = {default}", f.key);
            }
            // A required field with no value given: make the file fail to load
            // until it is filled in, rather than guess.
            (None, None) => {
                let _ = writeln!(out, "{} = \"\"  # required", f.key);
            }
        }
    }
    out
}

/// The Markdown table of docs/node.md's "Configuration reference".
pub fn reference_markdown() -> String {
    let mut out = String::from("| field | default | meaning |\n|---|---|---|\n");
    for f in FIELDS {
        let default = match f.default {
            Some(d) => format!("`{d}`"),
            None => "required".to_string(),
        };
        let _ = writeln!(out, "| `{}` | {} | {} |", f.path(), default, f.doc.replace('|', "\\|"));
    }
    out
}

/// Markers around the generated table in docs/node.md.
pub const REFERENCE_BEGIN: &str = "<!-- config-reference: generated from node/src/config_doc.rs; a test checks it -->";
pub const REFERENCE_END: &str = "<!-- end config-reference -->";

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::NodeConfig;

    const REQUIRED: &str = "name = \"n\"\ngenesis = \"g.json\"\nkey = \"k.key\"\ndata_dir = \"d\"\n";

    /// Every leaf of a serialised config, as `section.key` → value.
    fn leaves(cfg: &NodeConfig) -> BTreeMap<String, toml::Value> {
        let table: toml::Table = toml::from_str(&cfg.to_toml()).expect("config serialises to TOML");
        let mut out = BTreeMap::new();
        for (k, v) in table {
            match v {
                toml::Value::Table(t) => {
                    for (k2, v2) in t {
                        out.insert(format!("{k}.{k2}"), v2);
                    }
                }
                v => {
                    out.insert(k, v);
                }
            }
        }
        out
    }

    fn default_config() -> NodeConfig {
        toml::from_str(REQUIRED).expect("minimal config parses")
    }

    #[test]
    fn every_config_field_is_documented_with_its_true_default() {
        let actual = leaves(&default_config());
        let documented: BTreeMap<String, &FieldDoc> = FIELDS.iter().map(|f| (f.path(), f)).collect();
        assert_eq!(documented.len(), FIELDS.len(), "a field is listed twice in FIELDS");
        for key in actual.keys() {
            assert!(documented.contains_key(key), "config field {key} is missing from config_doc::FIELDS (and so from docs/node.md and `yrd init`)");
        }
        for (key, f) in &documented {
            let value = actual.get(key).unwrap_or_else(|| panic!("FIELDS lists {key}, which NodeConfig does not have"));
            match f.default {
                Some(d) => {
                    let parsed: toml::Table = toml::from_str(&format!("v = {d}")).unwrap_or_else(|e| panic!("default of {key} {d:?} is not TOML: {e}"));
                    assert_eq!(&parsed["v"], value, "documented default of {key} differs from the code's");
                }
                None => {
                    // Required: the struct must refuse a file without it.
                    let without: String = REQUIRED.lines().filter(|l| !l.starts_with(&format!("{} ", f.key))).map(|l| format!("{l}\n")).collect();
                    assert!(toml::from_str::<NodeConfig>(&without).is_err(), "{key} is documented as required but the config has a default");
                }
            }
        }
    }

    fn values() -> SampleValues {
        SampleValues {
            name: "shanghai".into(),
            genesis: "genesis.json".into(),
            key: "validator.key".into(),
            data_dir: "data".into(),
            listen: "/ip4/0.0.0.0/tcp/26601".into(),
            api: "127.0.0.1:8601".into(),
            peers: vec!["/ip4/10.0.0.2/tcp/26601".into()],
        }
    }

    #[test]
    fn the_sample_lists_every_field_and_its_commented_defaults_are_the_defaults() {
        let sample = sample_toml(&values());
        let cfg: NodeConfig = toml::from_str(&sample).expect("the sample parses as it is written");
        assert_eq!(cfg.name, "shanghai");
        assert_eq!(cfg.peers, vec!["/ip4/10.0.0.2/tcp/26601".to_string()]);
        // Uncomment every `# key = value` line: the result is the same config, so
        // every commented default is the code's default.
        let keys: Vec<&str> = FIELDS.iter().map(|f| f.key).collect();
        let uncommented: String = sample
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if keys.iter().any(|k| rest.starts_with(&format!("{k} = "))) => rest.to_string(),
                _ => l.to_string(),
            })
            .map(|l| l + "\n")
            .collect();
        let full: NodeConfig = toml::from_str(&uncommented).expect("the uncommented sample parses");
        assert_eq!(full, cfg, "a commented-out default in the sample differs from the code's default");
        assert_eq!(leaves(&full).len(), FIELDS.len());
        for f in FIELDS {
            assert!(uncommented.contains(&format!("\n{} = ", f.key)), "sample lacks {}", f.path());
        }
    }

    #[test]
    fn docs_node_md_has_the_generated_reference() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/node.md");
        let text = std::fs::read_to_string(path).expect("read docs/node.md");
        let start = text.find(REFERENCE_BEGIN).expect("docs/node.md lacks the config-reference begin marker") + REFERENCE_BEGIN.len();
        let end = text[start..].find(REFERENCE_END).expect("docs/node.md lacks the config-reference end marker") + start;
        let expected = reference_markdown();
        assert_eq!(text[start..end].trim(), expected.trim(), "docs/node.md's configuration reference differs from config_doc::FIELDS; replace it with:\n{expected}");
    }
}
