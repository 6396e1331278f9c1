//! A transaction-batch gossip message (`wire::decode_tx_batch`), each entry then
//! decoded as a transaction.
use crate::{assert_canonical, assert_within};
use yrd_ledger::tx::SignedTransaction;
use yrd_node::wire::{decode_tx_batch, MAX_TX_BATCH, MAX_TX_BATCH_BYTES};

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let Ok(batch) = decode_tx_batch(data) else { return };
    assert_within("transaction batch", data, MAX_TX_BATCH_BYTES);
    assert!(batch.0.len() <= MAX_TX_BATCH, "a batch of {} transactions was accepted", batch.0.len());
    assert_canonical("transaction batch", &batch, data);
    for bytes in &batch.0 {
        if let Ok(tx) = SignedTransaction::decode(bytes) {
            assert_canonical("transaction in a batch", &tx, bytes);
        }
    }
}
