//! Single against batch admission of transactions (`validate::check_untrusted_batch`,
//! the API batch and gossip path, against `check_untrusted_bytes` one by one,
//! in reverse order): the same verdict for every item, whatever else is in the
//! batch. Items are real issuers' attestations with honest, crafted (mixed-order
//! R, small-order R, non-canonical s or R) or corrupted signatures, or raw bytes.
use yrd_consensus::adversary::{sign_crafted, Craft};
use crate::{with_fixture, Bytes};
use yrd_ledger::tx::{AttestationKind, TAG_TRANSACTION};
use yrd_ledger::uscc::Uscc;
use yrd_ledger::validate::{check_untrusted_batch, check_untrusted_bytes};

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let mut input = Bytes(data);
    let count = 1 + usize::from(input.u8() % 6);
    with_fixture(|f| {
        let crafts = Craft::all();
        let mut items: Vec<Vec<u8>> = Vec::new();
        for _ in 0..count {
            let (sel, arg) = (input.u8(), input.u8());
            let issuer = usize::from(sel & 1);
            let mut tx = f.chain.attestation(issuer, 100 + u64::from(arg), Uscc::sample(u64::from(arg)), AttestationKind::RedList);
            match sel >> 1 & 3 {
                0 => {}
                1 => {
                    let payload = tx.tx.signing_payload().expect("a test transaction encodes");
                    let craft = crafts[usize::from(arg) % crafts.len()];
                    tx.signature = sign_crafted(&f.chain.issuer_keys[issuer], TAG_TRANSACTION, &payload, craft, &[sel, arg]);
                }
                2 => tx.signature.0[usize::from(arg) % 64] ^= 1 << (sel >> 5),
                _ => {
                    let len = usize::from(arg);
                    items.push((0..len).map(|_| input.u8()).collect());
                    continue;
                }
            }
            items.push(tx.encode().expect("a test transaction encodes"));
        }
        let membership = &f.membership;
        let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        let batch = check_untrusted_batch(membership, &f.chain.chain, &refs);
        assert_eq!(batch.len(), items.len(), "one verdict per item");
        for (i, bytes) in items.iter().enumerate().rev() {
            let alone = check_untrusted_bytes(membership, &f.chain.chain, bytes);
            assert_eq!(alone, batch[i], "item {i}: the batch verdict differs from the single one");
        }
    });
}
