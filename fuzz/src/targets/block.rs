//! A block from a peer (`Block::decode`: in proposals, certified blocks and sync
//! responses), then the ledger's validation of it as the next block.
use crate::{assert_canonical, assert_within, with_fixture};
use yrd_ledger::block::Block;

/// The block size limit of the fixture's genesis is far above what a fuzzer
/// builds; a small limit here also exercises the limit itself.
const MAX_BLOCK_BYTES: usize = 64 * 1024;

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let Ok(block) = Block::decode(data, MAX_BLOCK_BYTES) else { return };
    assert_within("block", data, MAX_BLOCK_BYTES);
    assert_canonical("block", &block, data);
    assert_eq!(block.txs.len() as u64, block.header.tx_count as u64, "tx_count agrees with the body");
    let _ = block.hash().expect("a decoded block has a hash");
    with_fixture(|f| {
        let _ = f.ledger.validate_block(&block, &|_| false);
    });
}
