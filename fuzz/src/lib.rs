//! What the fuzz targets share: a small real chain to judge decoded values
//! against (the same deterministic `TestChain::new(4, 2)` the seed corpus in
//! `fuzz/corpus/` was made from, `tests/tests/fuzz_seeds.rs`), and the
//! properties every decoder must have.
//!
//! A failed property panics: libFuzzer records the input as a crash.

pub mod targets;

use std::cell::OnceCell;

use yrd_consensus::codec;
use yrd_ledger::governance::Membership;
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::AttestationKind;
use yrd_ledger::uscc::Uscc;

/// Evaluation time of proof files and authorisations: just after the fixture's
/// blocks (`TestChain::block_time_ms`), so that nothing has expired.
pub const NOW_MS: u64 = 1_800_000_000_000 + 1_000;

/// Blocks committed in the fixture's ledger (each with a few transactions).
pub const FIXTURE_BLOCKS: u64 = 3;

/// The chain and a ledger with [`FIXTURE_BLOCKS`] blocks on it.
pub struct Fixture {
    pub chain: TestChain,
    /// The genesis membership (built once: building it is costly).
    pub membership: Membership,
    pub ledger: Ledger,
    /// Keeps the ledger's directory alive for the process.
    _dir: tempfile::TempDir,
}

thread_local! {
    static FIXTURE: OnceCell<Fixture> = const { OnceCell::new() };
}

/// Runs `f` with the fixture (built once per thread; libFuzzer runs one).
pub fn with_fixture<R>(f: impl FnOnce(&Fixture) -> R) -> R {
    FIXTURE.with(|cell| f(cell.get_or_init(build_fixture)))
}

fn build_fixture() -> Fixture {
    let chain = TestChain::new(4, 2);
    let dir = tempfile::tempdir().expect("fuzz fixture: a temporary directory");
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).expect("fuzz fixture: open the ledger");
    let mut seq = [0u64; 2];
    for h in 0..FIXTURE_BLOCKS {
        let txs = (0..3u64)
            .map(|i| {
                let issuer = (i % 2) as usize;
                seq[issuer] += 1;
                chain.attestation(issuer, seq[issuer], Uscc::sample(h * 3 + i), AttestationKind::RedList)
            })
            .collect();
        chain.commit_next(&mut ledger, txs).expect("fuzz fixture: commit a block");
    }
    let membership = chain.membership();
    Fixture { chain, membership, ledger, _dir: dir }
}

/// The canonical-encoding property: a value decoded from `bytes` encodes to
/// exactly `bytes` (one value, one encoding; trailing bytes refused).
pub fn assert_canonical<T: serde::Serialize + std::fmt::Debug>(what: &str, value: &T, bytes: &[u8]) {
    let again = codec::encode(value).unwrap_or_else(|e| panic!("{what}: a decoded value does not encode: {e}"));
    assert!(
        again == bytes,
        "{what}: decode then encode changed the bytes ({} in, {} out): {value:?}",
        bytes.len(),
        again.len()
    );
}

/// A decoder's size limit: anything it accepted was at most `max` bytes.
pub fn assert_within(what: &str, bytes: &[u8], max: usize) {
    assert!(bytes.len() <= max, "{what}: accepted {} bytes, over its {max}-byte limit", bytes.len());
}

/// Reads little pieces of a fuzz input in order (zero when it runs out).
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.u8();
        }
        out
    }

    pub fn rest(&mut self) -> &[u8] {
        std::mem::take(&mut self.0)
    }
}
