//! A real full disk: a child process appends large blocks to a store on a small
//! tmpfs until a commit fails with ENOSPC, then exits as a failing node does.
//! The parent enlarges the tmpfs and reopens the store, which must open (repaired
//! to its last complete block if the failed flush left a torn batch behind), hold
//! every block the child reported committed, and pass the auditor's check.
//!
//! Before the repair at open, sled 0.34 left a torn batch on most runs here (the
//! metadata of the failed block without its body, a log size ahead of the height,
//! issuer-index chunks or subject records of the failed block), and the store
//! refused to open: "stored data is corrupt: subject records give root …".
//!
//! Needs root (mount); skipped with the reason otherwise. `YRD_FULL_DISK_ROUNDS`
//! sets the number of fills (default 3).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use yrd_ledger::audit::verify_store;
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, TxId};
use yrd_ledger::uscc::Uscc;

/// Attestations per block: a block of ~700 KB, far above sled's blob threshold
/// (a quarter of its 512 KiB segment), the case that tore most often.
const TXS_PER_BLOCK: u64 = 2000;
/// Size of the tmpfs at the first fill; each round adds [`GROW_MIB`].
const START_MIB: u64 = 24;
const GROW_MIB: u64 = 32;

fn chain() -> TestChain {
    TestChain::new(4, 4)
}

/// Child: append blocks until a commit fails; report each commit with the id of
/// its last attestation, then the failure, then exit without closing the store.
fn child(dir: &Path) -> ! {
    let chain = chain();
    let mut ledger = Ledger::open(dir, chain.genesis.clone()).expect("child: open");
    let mut n = ledger.log_size();
    loop {
        let txs: Vec<_> = (n..n + TXS_PER_BLOCK)
            .map(|i| chain.attestation((i % 4) as usize, i, Uscc::sample(i), AttestationKind::ALL[(i % 7) as usize]))
            .collect();
        n += TXS_PER_BLOCK;
        let last = txs.last().and_then(|t| t.id().ok()).expect("child: id");
        match chain.commit_next(&mut ledger, txs) {
            Ok(block) => println!("acked {} {}", block.header.height.0, last.to_hex()),
            Err(e) => {
                println!("failed {e}");
                std::process::exit(3);
            }
        }
    }
}

/// A tmpfs mounted for the test, unmounted (lazily, so a leftover process cannot
/// keep it) when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u64) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "yrd-full-disk"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, mib: u64) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot enlarge the tmpfs at {} to {mib} MiB", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn full_disk_store_reopens_at_last_complete_block() {
    if let Ok(dir) = std::env::var("YRD_FULL_DISK_CHILD_DIR") {
        child(Path::new(&dir));
    }
    if !nix_is_root() {
        println!("SKIPPED full_disk_store_reopens_at_last_complete_block: needs root to mount a tmpfs");
        return;
    }
    let rounds: u64 = std::env::var("YRD_FULL_DISK_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let base = tempfile::tempdir().expect("tempdir");
    let fs = match Tmpfs::mount(base.path(), START_MIB) {
        Ok(fs) => fs,
        Err(reason) => {
            println!("SKIPPED full_disk_store_reopens_at_last_complete_block: {reason}");
            return;
        }
    };
    let dir = base.path().join("ledger");
    let chain = chain();
    let exe = std::env::current_exe().expect("current exe");
    let mut torn = 0;
    let mut size = START_MIB;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", "full_disk_store_reopens_at_last_complete_block", "--nocapture", "--test-threads=1"])
            .env("YRD_FULL_DISK_CHILD_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let mut acked: Option<(u64, TxId)> = None;
        let mut failure = None;
        let stdout = child.stdout.take().expect("child stdout");
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("acked ") {
                let (h, id) = rest.split_once(' ').expect("acked line");
                acked = Some((h.parse().expect("height"), TxId::from_hex(id).expect("id")));
            } else if let Some(e) = line.strip_prefix("failed ") {
                failure = Some(e.to_string());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "round {round}: child did not exit after its output ended");
            std::thread::sleep(Duration::from_millis(20));
        };
        let failure = failure.unwrap_or_else(|| panic!("round {round}: child ended ({status}) without a failed commit"));
        assert!(
            failure.contains("No space left on device") || failure.contains("os error 28"),
            "round {round}: the commit failed with {failure}, not ENOSPC"
        );
        size += GROW_MIB;
        fs.resize(size);

        let ledger = Ledger::open(&dir, chain.genesis.clone())
            .unwrap_or_else(|e| panic!("round {round}: the store did not reopen after the full disk: {e}"));
        let repaired = ledger.repair_report().is_some();
        if let Some(report) = ledger.repair_report() {
            torn += 1;
            println!("round {round}: {report}");
        }
        if let Some((h, id)) = acked {
            assert!(ledger.height().0 >= h, "round {round}: block {h} was acknowledged, the store reopened at {}", ledger.height());
            assert!(
                ledger.tx_record(&id, 0).expect("lookup").is_some(),
                "round {round}: acknowledged attestation {id} (block {h}) is gone"
            );
        }
        let height = ledger.height();
        drop(ledger);
        // An inconsistent store that opened without a repair fails here too.
        let report = verify_store(&dir, &chain.genesis)
            .unwrap_or_else(|e| panic!("round {round}: store inconsistent after reopening: {e}"));
        assert_eq!(report.height, height);
        println!(
            "round {round}: ENOSPC after block {:?}; reopened at {height} ({}), consistent",
            acked.map(|(h, _)| h),
            if repaired { "repaired" } else { "nothing torn" }
        );
    }
    println!("{rounds} full disks, {torn} torn stores repaired, every acknowledged block kept");
    drop(fs);
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
