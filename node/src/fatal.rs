//! Storage failures: the errors that stop the node, and the watch on writes
//! that never return.
//!
//! A failed write to the store — a block commit, the consensus safety state,
//! anything the driver writes — or a read the driver needs to judge a block is
//! fatal: the node cannot know what is durable, so it must not vote, commit or
//! answer as if nothing happened. The driver returns a [`StorageFailure`];
//! `Node::run_until` logs it as an ERROR before anything else, stops the API and
//! the network, does not touch the store again (sled may hang on a flush after a
//! failed one, `ledger/tests/full_disk.rs` shows how a full disk tears a batch)
//! and returns the error, so `yrd node` exits with status 2. The next start
//! reopens the store at its last complete block.
//!
//! A write that never returns (a hung disk) is caught by [`WriteWatch`]: the
//! driver marks each store write, and `yrd_node::run` exits the process if one
//! takes longer than [`STALL_LIMIT`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

use yrd_ledger::store::StoreError;

use crate::disk::DiskError;

/// A store write (commit with its fsync, or the safety state's flush) that has
/// not returned after this long is taken as a hung disk: the process exits.
/// Block writes take milliseconds (`yrd_block_write_seconds`), tens of
/// seconds is no longer a slow disk.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

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

    /// The storage failure in `error`'s chain, if it is one.
    pub fn find(error: &anyhow::Error) -> Option<&StorageFailure> {
        error.chain().find_map(|e| e.downcast_ref::<StorageFailure>())
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
    fn storage_failures_are_found_through_context() {
        let e = anyhow::Error::from(StorageFailure::sled("persisting the safety state", sled::Error::Unsupported("x".into())))
            .context("driver stopped");
        assert!(StorageFailure::find(&e).is_some());
        assert!(StorageFailure::find(&anyhow::anyhow!("block 3 is invalid")).is_none());
    }
}
