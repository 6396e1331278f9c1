//! Storage failures: the errors that stop the node, and the watch on writes
//! that never return.
//!
//! A failed write to the store — a block commit, the consensus safety state,
//! anything the driver writes — or a read the driver needs to judge a block is
//! fatal: the node cannot know what is durable, so it must not vote, commit or
//! answer as if nothing happened. The driver returns a [`StorageFailure`];
//! `Node::run_until` logs it as an ERROR before anything else, stops the API and
//! the network (each within a bound), does not touch the store again (sled 0.34
//! closes a tree by flushing in a loop until nothing is left to flush, which
//! after a failed write can be forever; `ledger/tests/full_disk.rs` shows how a
//! full disk tears a batch) and returns the error, so `yrd node` exits with
//! status 2. The next start reopens the store at its last complete block. A
//! stop at the disk reserve ([`crate::disk`]) is the same, except that the store
//! is healthy and gets its final flush (bounded too).
//!
//! A write that never returns is caught by [`WriteWatch`]: the driver marks each
//! store write, and `yrd_node::run` exits the process if one takes longer than
//! [`STALL_LIMIT`] — or [`STALL_LIMIT_FULL_DISK`] on a full disk, which is how
//! sled 0.34 meets ENOSPC under load: its flusher thread's write fails (sled
//! logs it), and the flush the driver waits on never returns
//! (`tests/tests/storage.rs` shows it).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use yrd_ledger::store::StoreError;

use crate::disk::DiskError;

/// A store write (commit with its fsync, or the safety state's flush) that has
/// not returned after this long is taken as a hung disk: the process exits.
/// Block writes take milliseconds (`yrd_block_write_seconds`), tens of
/// seconds is no longer a slow disk.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);
/// ... and this long on a disk with less than [`FULL_DISK_BYTES`] free: a flush
/// there cannot complete (see the module docs), so waiting longer only delays
/// the stop.
pub const STALL_LIMIT_FULL_DISK: Duration = Duration::from_secs(5);
/// Free space below which the data directory's disk counts as full: less than
/// one sled log segment (512 KiB) plus a block's worth of page headers.
pub const FULL_DISK_BYTES: u64 = 1024 * 1024;

/// Why the node stopped on its store.
#[derive(Debug, thiserror::Error)]
pub enum StorageFailure {
    #[error("storage failure while {doing}: {source}")]
    Store {
        doing: String,
        #[source]
        source: StoreError,
    },
    #[error("storage failure while {doing}: {source}")]
    Sled {
        doing: String,
        #[source]
        source: sled::Error,
    },
    #[error(transparent)]
    Disk(#[from] DiskError),
}

impl StorageFailure {
    pub fn store(doing: impl Into<String>, source: StoreError) -> StorageFailure {
        StorageFailure::Store { doing: doing.into(), source }
    }

    pub fn sled(doing: impl Into<String>, source: sled::Error) -> StorageFailure {
        StorageFailure::Sled { doing: doing.into(), source }
    }

    /// Whether the store itself failed (a write or read returned an error), so
    /// that nothing more may be written to it — not even the final flush, which
    /// sled 0.34 can repeat forever after a failed write. A stop at the disk
    /// reserve leaves a healthy store, which is flushed as at any shutdown.
    pub fn store_failed(&self) -> bool {
        !matches!(self, StorageFailure::Disk(_))
    }

    /// The storage failure in `error`'s chain, if it is one.
    pub fn find(error: &anyhow::Error) -> Option<&StorageFailure> {
        error.chain().find_map(|e| e.downcast_ref::<StorageFailure>())
    }
}

/// A store write that has not returned within its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HungWrite {
    /// What was being written.
    pub what: String,
    pub took: Duration,
    /// Free space on the data directory's filesystem, if it could be measured.
    pub free_bytes: Option<u64>,
}

impl HungWrite {
    /// Whether the disk was full when the write was given up.
    pub fn disk_full(&self) -> bool {
        self.free_bytes.is_some_and(|f| f < FULL_DISK_BYTES)
    }
}

impl std::fmt::Display for HungWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a store write ({}) has not returned for {} s: ", self.what, self.took.as_secs())?;
        match self.free_bytes {
            Some(free) if self.disk_full() => {
                write!(f, "the disk is full ({free} bytes free; No space left on device)")
            }
            Some(free) => write!(f, "the disk hangs ({free} bytes free)"),
            None => write!(f, "the disk hangs (free space cannot be measured)"),
        }
    }
}

/// The store write in progress, if any: what, and since when.
#[derive(Default)]
pub struct WriteWatch {
    current: Mutex<Option<(Instant, String)>>,
}

impl WriteWatch {
    /// Marks a write as started; it is over when the guard drops.
    pub fn begin(&self, what: impl FnOnce() -> String) -> WriteGuard<'_> {
        if let Ok(mut c) = self.current.lock() {
            *c = Some((Instant::now(), what()));
        }
        WriteGuard(self)
    }

    /// The write in progress for longer than `limit`: (what, for how long).
    pub fn stalled(&self, limit: Duration) -> Option<(String, Duration)> {
        let c = self.current.lock().ok()?;
        let (since, what) = c.as_ref()?;
        let took = since.elapsed();
        (took > limit).then(|| (what.clone(), took))
    }

    /// The write in progress if it counts as hung: past [`STALL_LIMIT`], or past
    /// [`STALL_LIMIT_FULL_DISK`] while `free_bytes` (measured only then) says
    /// the disk is full.
    pub fn hung(&self, free_bytes: impl FnOnce() -> Option<u64>) -> Option<HungWrite> {
        let (what, took) = self.stalled(STALL_LIMIT_FULL_DISK)?;
        let hung = HungWrite { what, took, free_bytes: free_bytes() };
        (took > STALL_LIMIT || hung.disk_full()).then_some(hung)
    }
}

pub struct WriteGuard<'a>(&'a WriteWatch);

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.0.current.lock() {
            *c = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_stalled_only_while_it_runs_past_the_limit() {
        let w = WriteWatch::default();
        assert!(w.stalled(Duration::ZERO).is_none());
        {
            let _g = w.begin(|| "committing block 7".into());
            let (what, _) = w.stalled(Duration::ZERO).expect("in progress past a zero limit");
            assert_eq!(what, "committing block 7");
            assert!(w.stalled(Duration::from_secs(3600)).is_none());
        }
        assert!(w.stalled(Duration::ZERO).is_none(), "over when the guard dropped");
    }

    #[test]
    fn a_write_on_a_full_disk_is_given_up_sooner() {
        let w = WriteWatch::default();
        let _g = w.begin(|| "persisting the consensus safety state".into());
        // Backdate the write instead of sleeping.
        let backdate = |by: Duration| {
            if let Ok(mut c) = w.current.lock() {
                if let Some((since, _)) = c.as_mut() {
                    *since = Instant::now() - by;
                }
            }
        };
        assert!(w.hung(|| Some(0)).is_none(), "a write that just began is not hung, full disk or not");
        backdate(STALL_LIMIT_FULL_DISK + Duration::from_secs(1));
        let full = w.hung(|| Some(4096)).expect("past the full-disk limit on a full disk");
        assert!(full.disk_full());
        assert!(full.to_string().contains("No space left on device"), "{full}");
        assert!(w.hung(|| Some(10 * FULL_DISK_BYTES)).is_none(), "room on the disk: the general limit applies");
        assert!(w.hung(|| None).is_none(), "unmeasured: the general limit applies");
        backdate(STALL_LIMIT + Duration::from_secs(1));
        let slow = w.hung(|| Some(10 * FULL_DISK_BYTES)).expect("past the general limit");
        assert!(!slow.disk_full());
        assert!(slow.to_string().contains("the disk hangs"), "{slow}");
    }

    #[test]
    fn storage_failures_are_found_through_context() {
        let e = anyhow::Error::from(StorageFailure::sled("persisting the safety state", sled::Error::Unsupported("x".into())))
            .context("driver stopped");
        assert!(StorageFailure::find(&e).is_some());
        assert!(StorageFailure::find(&anyhow::anyhow!("block 3 is invalid")).is_none());
    }
}
