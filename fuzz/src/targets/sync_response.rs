//! A block-sync response (`wire::decode_sync_response`), then what the syncing
//! node does with each entry: decode the block, check its certificate.
use crate::{assert_canonical, assert_within, with_fixture};
use yrd_ledger::block::Block;
use yrd_node::wire::{decode_sync_response, SyncResponse, MAX_SYNC_RESPONSE_BYTES};

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let Ok(resp) = decode_sync_response(data) else { return };
    assert_within("sync response", data, MAX_SYNC_RESPONSE_BYTES);
    assert_canonical("sync response", &resp, data);
    let SyncResponse::Blocks(entries) = &resp;
    with_fixture(|f| {
        let set = f.chain.genesis.validator_set().expect("the test genesis has a validator set");
        for (bytes, cert) in entries {
            let Ok(block) = Block::decode(bytes, MAX_SYNC_RESPONSE_BYTES) else { continue };
            assert_canonical("block in a sync response", &block, bytes);
            if let Ok(hash) = block.hash() {
                let _ = cert.verify(&f.chain.chain, &set, block.header.height, &hash);
            }
        }
    });
}
