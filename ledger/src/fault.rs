//! Storage fault injection for tests (feature `failpoints`, never in a shipped
//! build).
//!
//! Two kinds of fault: sled's own failpoints (`sled::fail::set`, re-exported
//! here as [`sled_fail`]), which fail one of sled's I/O operations and poison the
//! database like a real I/O error; and a *torn* block write ([`Ledger::tear_next_commit`]),
//! which makes the next commit persist only some of its batch's keys and then
//! fail — what sled 0.34 was seen to leave on disk when a flush hit ENOSPC
//! (`ledger/tests/full_disk.rs`).

use crate::store::{Ledger, StoreError};

pub use sled::fail as sled_fail;

/// A torn write: of the next block's batch, `keep` keys (chosen by `seed`) are
/// written and flushed; the rest are not, and the commit fails. With `only`,
/// exactly the batch's key at that index (in the order the commit adds them)
/// is written, or none if the index is past the end; `keep` and `seed` are
/// then ignored. The error names how many keys the batch had.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tear {
    pub keep: usize,
    pub seed: u64,
    pub only: Option<usize>,
}

impl Tear {
    /// Writes only the batch's key number `index` (none if past the end).
    pub fn only(index: usize) -> Tear {
        Tear { only: Some(index), ..Tear::default() }
    }
}

impl Ledger {
    /// Makes the next commit's write torn (see [`Tear`]).
    pub fn tear_next_commit(&mut self, tear: Tear) {
        self.set_tear(tear);
    }
}

/// Writes `keep` of `ops` (a seeded choice) one by one, flushes, and fails.
pub(crate) fn write_torn(
    tree: &sled::Tree,
    db: &sled::Db,
    mut ops: Vec<(Vec<u8>, Vec<u8>)>,
    tear: Tear,
) -> Result<(), StoreError> {
    let total = ops.len();
    if let Some(index) = tear.only {
        let written = match ops.into_iter().nth(index) {
            Some((k, v)) => {
                tree.insert(k, v)?;
                1
            }
            None => 0,
        };
        db.flush()?;
        return Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(format!(
            "injected torn write: {written} of {total} keys written"
        )))));
    }
    // Fisher–Yates with xorshift: a fixed seed gives a fixed subset.
    let mut state = tear.seed | 1;
    for i in (1..ops.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ops.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let keep = tear.keep.min(total);
    for (k, v) in ops.into_iter().take(keep) {
        tree.insert(k, v)?;
    }
    db.flush()?;
    Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(format!(
        "injected torn write: {keep} of {total} keys written"
    )))))
}
