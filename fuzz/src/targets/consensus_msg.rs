//! A consensus gossip message (`wire::decode_consensus`), then the checks the
//! driver makes on it: the proposal's or vote's signature and validator, the
//! certified block's certificate.
use yrd_consensus::types::Height;
use crate::{assert_canonical, assert_within, with_fixture};
use yrd_node::wire::{decode_consensus, encode_proposal, ConsensusMsg, MAX_CONSENSUS_MSG_BYTES};

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let Ok(msg) = decode_consensus(data) else { return };
    assert_within("consensus message", data, MAX_CONSENSUS_MSG_BYTES);
    assert_canonical("consensus message", &msg, data);
    with_fixture(|f| {
        let set = f.chain.genesis.validator_set().expect("the test genesis has a validator set");
        match &msg {
            ConsensusMsg::Proposal { proposal, block } => {
                let by_ref = encode_proposal(proposal, block).expect("a decoded proposal encodes");
                assert_eq!(by_ref, data, "encode_proposal differs from the message's encoding");
                let _ = proposal.verify(&f.chain.chain, &set);
                let _ = block.hash();
                let _ = f.ledger.validate_block(block, &|_| false);
            }
            ConsensusMsg::Vote(vote) => {
                let _ = vote.verify(&f.chain.chain, &set);
            }
            ConsensusMsg::Certified { block, certificate } => {
                if let Ok(hash) = block.hash() {
                    let _ = certificate.verify(&f.chain.chain, &set, block.header.height, &hash);
                    let _ = certificate.verify(&f.chain.chain, &set, Height(1), &hash);
                }
            }
        }
    });
}
