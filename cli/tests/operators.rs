//! The operator's commands (issue 15): `yrd init`, `yrd genesis inspect`, `yrd key
//! show`, `yrd verify` of a genesis — the real binary on real files.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn yrd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_yrd"));
    c.env_remove("YRD_NODE").env_remove("YRD_GENESIS").env("TZ", "UTC");
    c
}

fn run(args: &[&str]) -> Output {
    yrd().args(args).output().expect("run yrd")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

// ---------------------------------------------------------------- init

/// Why: "the README says `yrd node --help` shows every config field; it shows none"
/// and "there is no `init`, no sample config". `yrd init` writes a key and a config
/// that lists every field and that the node loads as it is.
#[test]
fn init_writes_a_key_and_a_commented_config_listing_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("sh");
    let o = run(&["init", "--name", "shanghai", "--dir", p(&node_dir), "--peer", "/ip4/10.0.0.2/tcp/26601", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("one JSON object");
    let public = v["public_key"].as_str().expect("public_key");
    assert_eq!(public.len(), 64);
    assert!(v["peer_id"].as_str().expect("peer_id").starts_with("12D3KooW"), "{v}");

    let key = node_dir.join("validator.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(yrd_node::keys::read_key_file(&key).unwrap().public().to_hex(), public);

    let config_path = node_dir.join("node.toml");
    let text = std::fs::read_to_string(&config_path).unwrap();
    for f in yrd_node::config_doc::FIELDS {
        assert!(text.contains(&format!("{} = ", f.key)), "node.toml lacks {}:\n{text}", f.path());
        assert!(text.contains(f.doc), "node.toml lacks the meaning of {}", f.path());
    }
    let cfg = yrd_node::config::NodeConfig::load(&config_path).expect("the node loads the written config");
    assert_eq!(cfg.name, "shanghai");
    assert_eq!(cfg.key, node_dir.join("validator.key"));
    assert_eq!(cfg.genesis, node_dir.join("genesis.json"));
    assert_eq!(cfg.data_dir, node_dir.join("data"));
    assert_eq!(cfg.peers, vec!["/ip4/10.0.0.2/tcp/26601".to_string()]);
    assert_eq!(cfg.http, yrd_node::config::HttpConfig::default());

    // Never overwrites: a second init of the same directory fails and leaves the key.
    let o = run(&["init", "--name", "shanghai", "--dir", p(&node_dir)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("refusing to overwrite"), "{}", stderr(&o));
    assert_eq!(yrd_node::keys::read_key_file(&key).unwrap().public().to_hex(), public);

    // Bad values are refused before anything is written.
    let other = dir.path().join("js");
    let o = run(&["init", "--name", "jiangsu", "--dir", p(&other), "--api", "localhost"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("api = \"localhost\" is not an address"), "{}", stderr(&o));
    assert!(!other.join("validator.key").exists());
}

/// The human output says what to do next with the public key and the peer id.
#[test]
fn init_prints_the_public_key_peer_id_and_next_steps() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["init", "--name", "anhui", "--dir", p(&dir.path().join("ah"))]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for expected in ["public key", "peer id      12D3KooW", "--validator anhui:REGION:<public key>", "yrd genesis inspect", "yrd node --config"] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
}

// ---------------------------------------------------------------- genesis inspect, verify, key show

/// `n` validators (and one issuer) with fresh key files; returns the genesis path.
fn genesis_of(dir: &Path, n: usize, agencies: bool) -> std::path::PathBuf {
    const NAMES: [(&str, &str); 4] = [("shanghai", "SH"), ("jiangsu", "JS"), ("zhejiang", "ZJ"), ("anhui", "AH")];
    let mut args: Vec<String> = vec!["genesis".into(), "--chain-name".into(), "ops-test".into(), "--genesis-time".into(), "1767225600000".into()];
    for (name, region) in NAMES.iter().take(n) {
        let key = dir.join(format!("{name}-v.key"));
        assert_eq!(code(&run(&["keygen", "--out", p(&key)])), 0);
        args.push("--validator".into());
        args.push(format!("{name}:{region}:{}", p(&key)));
        if agencies {
            let admin = dir.join(format!("{name}-a.key"));
            assert_eq!(code(&run(&["keygen", "--out", p(&admin)])), 0);
            args.push("--agency".into());
            args.push(format!("{name}:{region}:{}", p(&admin)));
        }
    }
    let issuer = dir.join("issuer.key");
    assert_eq!(code(&run(&["keygen", "--out", p(&issuer)])), 0);
    args.push("--issuer".into());
    args.push(format!("sh-credit:SH:{}:all:revoke-any", p(&issuer)));
    let out = dir.join("genesis.json");
    args.push("--out".into());
    args.push(p(&out).into());
    let o = yrd().args(&args).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    out
}

/// Why: "the agencies that receive a genesis cannot compute its chain id offline, and
/// nothing says what the id is for"; `yrd genesis inspect` shows it, the members, n
/// and f, and warnings.
#[test]
fn genesis_inspect_shows_the_chain_id_members_n_f_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_of(dir.path(), 4, true);
    let chain_id = yrd_ledger::genesis::Genesis::from_json(&std::fs::read(&genesis).unwrap()).unwrap().chain_id().unwrap().to_hex();

    let o = run(&["genesis", "inspect", p(&genesis)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for expected in [
        format!("chain id     {chain_id}"),
        "every transaction, vote and proof is signed for".into(),
        "n = 4 validators, f = 1 may fail, quorum 3".into(),
        "shanghai".into(),
        "anhui".into(),
        "peer 12D3KooW".into(),
        "sh-credit".into(),
        "may revoke any record".into(),
        "warnings     none".into(),
    ] {
        assert!(text.contains(&expected), "{expected:?} in\n{text}");
    }
    let o = run(&["genesis", "inspect", p(&genesis), "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["chain_id"], chain_id);
    assert_eq!((v["n"].as_u64(), v["f"].as_u64(), v["quorum"].as_u64()), (Some(4), Some(1), Some(3)));
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0));

    // Three validators, no agencies: the warnings an operator must read.
    let small = tempfile::tempdir().unwrap();
    let genesis = genesis_of(small.path(), 3, false);
    let o = run(&["genesis", "inspect", p(&genesis)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("WARNING: fewer than 4 validators: no fault tolerance (n = 3, f = 0)"), "{text}");
    assert!(text.contains("WARNING: no agencies (governance keys): the membership can never change"), "{text}");

    // Not a genesis: a clear error, status 2.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"chain_name\": 1}").unwrap();
    let o = run(&["genesis", "inspect", p(&bad)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is not a valid genesis"), "{}", stderr(&o));
    // Writing a genesis still needs its arguments.
    let o = run(&["genesis", "--chain-name", "x"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--out"), "{}", stderr(&o));
}

/// Why: "`yrd verify genesis.json` answers `unknown file type \"\"`".
#[test]
fn verify_of_a_genesis_answers_its_chain_id_and_compares_with_another() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_of(dir.path(), 4, true);
    let chain_id = yrd_ledger::genesis::Genesis::from_json(&std::fs::read(&genesis).unwrap()).unwrap().chain_id().unwrap().to_hex();
    let o = run(&["verify", p(&genesis)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("VERIFIED: a valid genesis"), "{text}");
    assert!(text.contains(&chain_id), "{text}");
    assert!(!text.contains("unknown file type"), "{text}");

    let o = run(&["verify", p(&genesis), "--genesis", p(&genesis), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((v["verified"].as_bool(), v["chain_id"].as_str()), (Some(true), Some(chain_id.as_str())));

    // Another chain: exit 1, both ids named.
    let other_dir = tempfile::tempdir().unwrap();
    let other = genesis_of(other_dir.path(), 4, true);
    let o = run(&["verify", p(&genesis), "--genesis", p(&other)]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("NOT VERIFIED") && stdout(&o).contains(&chain_id), "{}", stdout(&o));

    // A proof file still needs --genesis, and says so.
    let bundle = dir.path().join("bundle.json");
    std::fs::write(&bundle, "{\"type\": \"yrd-proof-bundle\"}").unwrap();
    let o = run(&["verify", p(&bundle)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--genesis GENESIS is required"), "{}", stderr(&o));
}

/// Why: "a node's peer id appears only in its start-up log".
#[test]
fn key_show_prints_the_public_key_peer_id_and_role() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_of(dir.path(), 4, true);
    let key = dir.path().join("jiangsu-v.key");
    let public = yrd_node::keys::read_key_file(&key).unwrap().public();
    let peer_id = yrd_node::net::peer_id_from_ed25519(&public.0).unwrap().to_string();
    let o = run(&["key", "show", p(&key), "--genesis", p(&genesis)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains(&format!("public key   {}", public.to_hex())), "{text}");
    assert!(text.contains(&format!("peer id      {peer_id}")), "{text}");
    assert!(text.contains("in genesis   validator jiangsu"), "{text}");
    assert!(!text.contains("secret"), "never the secret key: {text}");
    // A bare public key works too; a stranger's key is said to be refused.
    let o = run(&["key", "show", &public.to_hex(), "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["peer_id"], peer_id);
    let stranger = dir.path().join("stranger.key");
    assert_eq!(code(&run(&["keygen", "--out", p(&stranger)])), 0);
    let o = run(&["key", "show", p(&stranger), "--genesis", p(&genesis)]);
    assert!(stdout(&o).contains("not listed"), "{}", stdout(&o));
}

// ---------------------------------------------------------------- help and docs

/// Every subcommand `yrd --help` lists (after "Commands:").
fn commands() -> Vec<String> {
    let text = stdout(&run(&["--help"]));
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            let Some(rest) = line.strip_prefix("  ") else { break };
            let name = rest.split_whitespace().next().unwrap_or("");
            if name.is_empty() || name == "help" {
                continue;
            }
            out.push(name.to_string());
        }
    }
    assert!(out.len() >= 15, "{out:?} from\n{text}");
    out
}

/// Why: "the example USCC in `yrd report --help` and `yrd verify --help` is invalid;
/// docs/cli.md's table leaves out `proof`, `report`, `verify` and `audit`;
/// `verify-ledger --help` says \"see above\" with nothing above".
#[test]
fn every_command_is_in_the_docs_table_and_its_help_has_valid_examples() {
    let table = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md")).unwrap();
    let uscc_like = |w: &str| w.len() == 18 && w.starts_with('9') && w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let mut helps = Vec::new();
    for command in commands() {
        assert!(table.contains(&format!("| `yrd {command}")), "docs/cli.md's table lacks yrd {command}");
        helps.push((command.clone(), stdout(&run(&[&command, "--help"]))));
        if command == "audit" || command == "gov" || command == "key" || command == "genesis" {
            for sub in ["trace", "consistency", "verify-ledger", "propose", "approve", "list", "show", "members", "inspect"] {
                let o = run(&[&command, sub, "--help"]);
                if code(&o) == 0 {
                    helps.push((format!("{command} {sub}"), stdout(&o)));
                }
            }
        }
    }
    for (command, text) in &helps {
        assert!(!text.contains("see above"), "yrd {command} --help says \"see above\":\n{text}");
        for word in text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| uscc_like(w)) {
            assert!(word.parse::<yrd_ledger::uscc::Uscc>().is_ok(), "yrd {command} --help has an invalid USCC {word}");
        }
    }
}

/// Why: "no service or container definition". The unit and the container file carry
/// the hardening operators expect, and run a command this binary accepts.
#[test]
fn deploy_files_are_hardened_and_run_a_valid_command() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");
    let unit = std::fs::read_to_string(format!("{root}/yrd-node.service")).unwrap();
    let setting = |key: &str| -> Vec<String> {
        unit.lines().filter_map(|l| l.strip_prefix(&format!("{key}="))).map(str::to_string).collect()
    };
    for (key, want) in [
        ("User", "yrd"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("Restart", "on-failure"),
        ("ReadWritePaths", "/var/lib/yrd"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(setting(key), vec![want.to_string()], "{key} in yrd-node.service");
    }
    let exec = setting("ExecStart").pop().expect("ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(&args[1..3], &["node", "--config"], "{exec}");
    // The command parses: only the config file is missing.
    let o = run(&args[1..]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot read config file /etc/yrd/node.toml"), "{}", stderr(&o));

    let container = std::fs::read_to_string(format!("{root}/Containerfile")).unwrap();
    let user = container.lines().filter_map(|l| l.strip_prefix("USER ")).next_back().expect("USER");
    assert!(!user.starts_with('0') && !user.starts_with("root"), "runs as non-root: USER {user}");
    assert!(container.contains("VOLUME [\"/data\"]"));
    assert!(container.contains("--read-only"), "documents the read-only root filesystem");
    assert!(container.contains("ENTRYPOINT [\"/usr/local/bin/yrd\", \"node\", \"--config\", \"/etc/yrd/node.toml\"]"));
}

// ---------------------------------------------------------------- examples in the docs

/// The `yrd …` command lines of the ```sh blocks of a Markdown file, continuation
/// lines joined, comments and shell redirections dropped.
fn example_commands(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut current = String::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let text = line.trim();
        let (body, continued) = match text.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (text, false),
        };
        current.push_str(body);
        current.push(' ');
        if !continued {
            let cmd = current.split(" #").next().unwrap_or("").split(" > ").next().unwrap_or("").split(" && ").next().unwrap_or("").trim().to_string();
            if cmd.starts_with("yrd ") {
                out.push(cmd);
            }
            current.clear();
        }
    }
    out
}

/// Splits a command line into words (double-quoted words kept whole).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Part of "a test runs every example command in README.md and docs/cli.md": every
/// example command line must at least be accepted by `yrd`'s argument parser (a
/// renamed or removed flag, subcommand or a missing required argument fails here).
/// Placeholders (`<hex>`, `<id>`, `86ec6eec…`, `$SH`) are replaced by well-formed
/// values and the node address by an unreachable one, so each command stops at its
/// first real step (reading a file, reaching the node), never at parsing. This is the
/// quick check (no cluster); `tests/tests/doc_examples.rs` runs the same examples
/// against a live four-node testnet.
#[test]
fn every_example_command_in_the_readme_and_cli_doc_parses() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let hex = "ab".repeat(32);
    let mut checked = 0;
    for doc in ["README.md", "docs/cli.md"] {
        let text = std::fs::read_to_string(format!("{root}/{doc}")).unwrap();
        let commands = example_commands(&text);
        assert!(commands.len() >= 15, "{doc}: only {} example commands found", commands.len());
        for line in commands {
            if line.contains('…') && !line.contains("(64 hex)") && !line.contains("86ec6eec…") {
                continue; // `yrd gov approve …`: prose, not a command
            }
            let line = line
                .replace("3a7bd3e2…(64 hex)", &hex)
                .replace("0f3c…(64 hex)", &hex)
                .replace(['[', ']'], "")
                .replace("86ec6eec…", &hex)
                .replace("<attestation id>", &hex)
                .replace("<admin hex>", &hex)
                .replace("<validator hex>", &hex)
                .replace("<issuer hex>", &hex)
                .replace("<hex>", &hex)
                .replace("<id>", &hex)
                .replace("$SH", "http://127.0.0.1:1")
                .replace("http://127.0.0.1:8601", "http://127.0.0.1:1");
            let args = words(&line);
            let dir = tempfile::tempdir().unwrap();
            let o = yrd().args(&args[1..]).current_dir(dir.path()).env("YRD_NODE", "http://127.0.0.1:1").output().unwrap();
            let err = stderr(&o);
            for clap_error in ["Usage:", "unexpected argument", "unrecognized subcommand", "required arguments were not provided", "invalid value"] {
                assert!(!err.contains(clap_error), "{doc}: `{line}` is refused by the argument parser:\n{err}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} commands checked");
}
