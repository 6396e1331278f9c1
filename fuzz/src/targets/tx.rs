//! A transaction from a client or a peer (`SignedTransaction::decode`, and the
//! admission checks that follow it: `validate::check_untrusted_bytes`, then the
//! ledger's stateful check).
use yrd_consensus::crypto::sha256;
use crate::{assert_canonical, assert_within, with_fixture};
use yrd_ledger::tx::{SignedTransaction, MAX_TX_BYTES};
use yrd_ledger::validate::check_untrusted_bytes;

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let decoded = SignedTransaction::decode(data);
    if let Ok(tx) = &decoded {
        assert_within("transaction", data, MAX_TX_BYTES);
        assert_canonical("transaction", tx, data);
        let id = tx.id().expect("a decoded transaction has an id");
        assert_eq!(id.0, sha256(&[data]), "the id is the hash of the bytes received");
        let _ = tx.tx.check_format();
    }
    with_fixture(|f| {
        let checked = check_untrusted_bytes(&f.membership, &f.chain.chain, data);
        if let Ok((tx, id)) = &checked {
            assert_eq!(Some(tx), decoded.as_ref().ok(), "admission accepted bytes the decoder refused");
            let _ = f.ledger.check_tx(tx, id);
        }
    });
}
