//! Free space on the data directory's filesystem, and the reserve the node
//! never writes into.
//!
//! sled does not survive a full disk gracefully (a flush that hits ENOSPC can
//! leave a torn batch behind, or never return), so the node stops before the
//! disk fills: every commit first checks that the block, at the write
//! amplification sled can show, still leaves `storage.reserve_mib` free; if not,
//! the node stops with an ERROR and a non-zero exit (and the reserve is left for
//! sled's recovery and the repair at the next start). Below `storage.low_mib`
//! it stops taking new work — API submissions get 503 `disk_low`, gossiped
//! transactions are not admitted, its own proposals are empty — so that what
//! space is left goes to following the chain, and it logs a WARN (at most once
//! a minute). Free space is measured with statvfs before every commit and about
//! once a second, and served as the gauge `yrd_disk_free_bytes`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::config::StorageConfig;
use crate::metrics::Metrics;

const MIB: u64 = 1024 * 1024;
/// The most disk space sled 0.34 was seen to take per byte of block written
/// (block, indexes, records and log nodes, with segment and blob garbage not
/// yet cleaned): 5–7× in `ledger/tests/full_disk.rs` and the multi-node disk
/// tests. A commit is allowed only if this many times the block's size still
/// leaves the reserve free.
const WRITE_AMPLIFICATION_MAX: u64 = 8;
/// Added to every commit's estimate: sled rolls to a fresh 512 KiB log segment
/// and writes page headers whatever the block's size.
const COMMIT_OVERHEAD_BYTES: u64 = MIB;
/// Between two WARNs about low space.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Why a write was not attempted.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(
        "disk reserve reached on {dir}: {free_mib} MiB free, writing block {height} needs up to {need_mib} MiB and \
         storage.reserve_mib = {reserve_mib} MiB must stay free; stopping before the disk fills — free space (or \
         move the data directory) and restart"
    )]
    Reserve { dir: String, height: u64, free_mib: u64, need_mib: u64, reserve_mib: u64 },
    #[error("cannot measure free space on {dir}: {reason}")]
    Measure { dir: String, reason: String },
}

/// The data directory's free space and what the node may still do with it.
pub struct DiskSpace {
    dir: PathBuf,
    reserve_bytes: u64,
    low_bytes: u64,
    free_bytes: AtomicU64,
    /// Free space is at or above the low mark: new work is accepted.
    accepting: AtomicBool,
    last_warn: Mutex<Option<Instant>>,
}

impl DiskSpace {
    pub fn new(dir: &Path, config: &StorageConfig) -> DiskSpace {
        DiskSpace {
            dir: dir.to_path_buf(),
            reserve_bytes: config.reserve_mib.saturating_mul(MIB),
            low_bytes: config.low_mib.saturating_mul(MIB),
            free_bytes: AtomicU64::new(u64::MAX),
            accepting: AtomicBool::new(true),
            last_warn: Mutex::new(None),
        }
    }

    /// No reserve and no low mark: every check passes (tests of other parts).
    pub fn unlimited(dir: &Path) -> DiskSpace {
        DiskSpace::new(dir, &StorageConfig { reserve_mib: 0, low_mib: 0 })
    }

    /// Bytes free for an unprivileged writer on the data directory's filesystem.
    pub fn measure(&self) -> Result<u64, DiskError> {
        let st = nix::sys::statvfs::statvfs(&self.dir)
            .map_err(|e| DiskError::Measure { dir: self.dir.display().to_string(), reason: e.to_string() })?;
        #[allow(clippy::useless_conversion)] // the field types differ between platforms
        let free = u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()));
        Ok(free)
    }

    /// The last measured free space.
    pub fn free_bytes(&self) -> u64 {
        self.free_bytes.load(Ordering::Relaxed)
    }

    /// Whether new work (submissions, gossiped transactions, non-empty
    /// proposals) is accepted: free space is at or above `storage.low_mib`.
    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    /// Measures free space, updates the gauge and the accepting flag, and warns
    /// when it is low. A failed measurement keeps the last values (and warns).
    pub fn refresh(&self, metrics: &Metrics) {
        match self.measure() {
            Ok(free) => self.record(free, metrics),
            Err(e) => self.warn_rate_limited(|| warn!(error = %e, "cannot measure free disk space")),
        }
    }

    fn record(&self, free: u64, metrics: &Metrics) {
        self.free_bytes.store(free, Ordering::Relaxed);
        metrics.disk_free_bytes.set(i64::try_from(free).unwrap_or(i64::MAX));
        let accepting = free >= self.low_bytes;
        let was = self.accepting.swap(accepting, Ordering::Relaxed);
        metrics.disk_low.set(i64::from(!accepting));
        if !accepting {
            let report = || {
                warn!(
                    dir = %self.dir.display(),
                    free_mib = free / MIB,
                    low_mib = self.low_bytes / MIB,
                    reserve_mib = self.reserve_bytes / MIB,
                    "disk space low: not accepting new transactions; the node stops when a block would leave less than the reserve"
                )
            };
            if was {
                // Crossing the mark: say so at once.
                if let Ok(mut last) = self.last_warn.lock() {
                    *last = Some(Instant::now());
                }
                report();
            } else {
                self.warn_rate_limited(report);
            }
        } else if !was {
            info!(free_mib = free / MIB, low_mib = self.low_bytes / MIB, "disk space recovered: accepting transactions again");
        }
    }

    fn warn_rate_limited(&self, report: impl FnOnce()) {
        let Ok(mut last) = self.last_warn.lock() else { return };
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            report();
        }
    }

    /// Before committing block `height` of `block_bytes`: measures free space
    /// and fails if writing it could leave less than the reserve. If free space
    /// cannot be measured the commit goes ahead (with a WARN): a real lack of
    /// space still fails the write, which stops the node.
    pub fn check_commit(&self, height: u64, block_bytes: u64, metrics: &Metrics) -> Result<(), DiskError> {
        if self.reserve_bytes == 0 && self.low_bytes == 0 {
            return Ok(());
        }
        let free = match self.measure() {
            Ok(free) => free,
            Err(e) => {
                // Not a storage failure in itself: the write decides (ENOSPC stops the node).
                self.warn_rate_limited(|| warn!(error = %e, "cannot measure free disk space; committing without the reserve check"));
                return Ok(());
            }
        };
        self.record(free, metrics);
        let need = block_bytes.saturating_mul(WRITE_AMPLIFICATION_MAX).saturating_add(COMMIT_OVERHEAD_BYTES);
        if self.reserve_bytes > 0 && free.saturating_sub(need) < self.reserve_bytes {
            return Err(DiskError::Reserve {
                dir: self.dir.display().to_string(),
                height,
                free_mib: free / MIB,
                need_mib: need.div_ceil(MIB),
                reserve_mib: self.reserve_bytes / MIB,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_decide_accepting_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new();
        let free = DiskSpace::unlimited(dir.path()).measure().unwrap();
        assert!(free > 0);
        // A reserve far above what is free (other processes share this disk,
        // so no margin here is thin): no commit, no new work.
        let mib = free / MIB;
        let full = DiskSpace::new(dir.path(), &StorageConfig { reserve_mib: mib + 100_000, low_mib: mib + 100_000 });
        let err = full.check_commit(7, 1000, &metrics).unwrap_err();
        assert!(err.to_string().contains("disk reserve reached"), "{err}");
        assert!(!full.accepting());
        assert_eq!(metrics.disk_low.get(), 1);
        // Plenty of room: both pass.
        let roomy = DiskSpace::new(dir.path(), &StorageConfig { reserve_mib: 1, low_mib: 1 });
        roomy.check_commit(7, 1000, &metrics).unwrap();
        assert!(roomy.accepting());
        assert_eq!(metrics.disk_low.get(), 0);
        assert!(metrics.disk_free_bytes.get() > 0);
        // A block whose estimate eats into the reserve is refused even though
        // the reserve itself is free.
        let tight = DiskSpace::new(dir.path(), &StorageConfig { reserve_mib: mib / 2, low_mib: 0 });
        assert!(tight.check_commit(8, free, &metrics).is_err(), "a block the size of the free space");
        assert!(tight.accepting(), "low mark 0: still accepting");
    }
}
