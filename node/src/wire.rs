//! Messages between nodes, in the canonical codec, with a size cap per kind.

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::types::Height;
use yrd_consensus::{CommitCertificate, SignedProposal, SignedVote};
use yrd_ledger::block::Block;

/// Largest consensus gossip message: a proposal carries its block.
pub const MAX_CONSENSUS_MSG_BYTES: usize = 9 * 1024 * 1024;
/// Most bytes of a block this node proposes: what a proposal message can carry
/// beside the signed proposal (a few hundred bytes; 64 KiB allowed). The chain's
/// `max_block_bytes` may be larger (up to 16 MiB); a block over this could not be
/// gossiped, and every proposer would build it again and again.
pub const MAX_PROPOSED_BLOCK_BYTES: usize = MAX_CONSENSUS_MSG_BYTES - 64 * 1024;
/// Largest transaction-batch gossip message.
pub const MAX_TX_BATCH_BYTES: usize = 1024 * 1024;
/// Most transactions in one gossip batch.
pub const MAX_TX_BATCH: usize = 512;
/// Largest sync request.
pub const MAX_SYNC_REQUEST_BYTES: usize = 64;
/// Most blocks asked for in one sync request.
pub const MAX_SYNC_BLOCKS: u32 = 64;
/// A sync response stops adding blocks past this many bytes (a block may be up to
/// the genesis' max_block_bytes, so one block can exceed it on its own).
pub const SYNC_RESPONSE_SOFT_BYTES: usize = 4 * 1024 * 1024;
/// Hard cap of a sync response.
pub const MAX_SYNC_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusMsg {
    /// A proposal with the block it proposes.
    Proposal { proposal: SignedProposal, block: Block },
    Vote(SignedVote),
    /// A final block with its certificate, for validators that fell behind.
    Certified { block: Block, certificate: CommitCertificate },
}

/// [`ConsensusMsg::Proposal`] by reference, to encode a proposal without cloning
/// its block (same encoding: same variant index, same fields in order).
#[derive(Serialize)]
enum ProposalRef<'a> {
    Proposal { proposal: &'a SignedProposal, block: &'a Block },
}

/// The canonical encoding of `ConsensusMsg::Proposal { proposal, block }`.
pub fn encode_proposal(proposal: &SignedProposal, block: &Block) -> Result<Vec<u8>, CodecError> {
    codec::encode(&ProposalRef::Proposal { proposal, block })
}

/// A batch of canonical transaction encodings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxBatch(pub Vec<Vec<u8>>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Blocks `from, from + 1, …`, at most `max`.
    Blocks { from: Height, max: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Consecutive certified blocks from the requested height (empty if none).
    Blocks(Vec<(Vec<u8>, CommitCertificate)>),
}

pub fn decode_consensus(bytes: &[u8]) -> Result<ConsensusMsg, CodecError> {
    codec::decode(bytes, MAX_CONSENSUS_MSG_BYTES, "consensus message")
}

pub fn decode_tx_batch(bytes: &[u8]) -> Result<TxBatch, CodecError> {
    let b: TxBatch = codec::decode(bytes, MAX_TX_BATCH_BYTES, "transaction batch")?;
    if b.0.len() > MAX_TX_BATCH {
        return Err(CodecError::Malformed {
            what: "transaction batch",
            reason: format!("{} transactions, at most {MAX_TX_BATCH}", b.0.len()),
        });
    }
    Ok(b)
}

pub fn decode_sync_request(bytes: &[u8]) -> Result<SyncRequest, CodecError> {
    let r: SyncRequest = codec::decode(bytes, MAX_SYNC_REQUEST_BYTES, "sync request")?;
    let SyncRequest::Blocks { max, .. } = &r;
    if *max == 0 || *max > MAX_SYNC_BLOCKS {
        return Err(CodecError::Malformed { what: "sync request", reason: format!("max = {max}, must be 1..={MAX_SYNC_BLOCKS}") });
    }
    Ok(r)
}

pub fn decode_sync_response(bytes: &[u8]) -> Result<SyncResponse, CodecError> {
    codec::decode(bytes, MAX_SYNC_RESPONSE_BYTES, "sync response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_trailing_bytes_and_oversize_batches() {
        let b = TxBatch(vec![vec![1, 2, 3]]);
        let mut bytes = codec::encode(&b).unwrap();
        assert_eq!(decode_tx_batch(&bytes).unwrap(), b);
        bytes.push(0);
        assert!(decode_tx_batch(&bytes).is_err());
        let big = TxBatch(vec![vec![]; MAX_TX_BATCH + 1]);
        assert!(decode_tx_batch(&codec::encode(&big).unwrap()).is_err());
        let req = SyncRequest::Blocks { from: Height(1), max: MAX_SYNC_BLOCKS + 1 };
        assert!(decode_sync_request(&codec::encode(&req).unwrap()).is_err());
        assert!(decode_consensus(&[0xff; 10]).is_err());
    }

    #[test]
    fn proposal_by_reference_encodes_like_the_message() {
        use yrd_consensus::types::{Round, ValidatorIndex};
        use yrd_consensus::Proposal;
        use yrd_ledger::testkit::TestChain;
        use yrd_ledger::tx::AttestationKind;
        use yrd_ledger::uscc::Uscc;
        let chain = TestChain::new(4, 2);
        let dir = tempfile::tempdir().unwrap();
        let ledger = yrd_ledger::store::Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
        let txs = (0..3).map(|i| chain.attestation(0, i, Uscc::sample(i), AttestationKind::RedList)).collect();
        let block = ledger.build_block(txs, ValidatorIndex(1), Round(0), 7).unwrap().block;
        let proposal = Proposal {
            chain: chain.chain,
            height: Height(1),
            round: Round(0),
            value: block.hash().unwrap(),
            pol_round: None,
            proposer: ValidatorIndex(1),
        }
        .sign(&chain.validator_keys[1])
        .unwrap();
        let bytes = encode_proposal(&proposal, &block).unwrap();
        let msg = ConsensusMsg::Proposal { proposal, block };
        assert_eq!(bytes, codec::encode(&msg).unwrap());
        assert_eq!(decode_consensus(&bytes).unwrap(), msg);
    }
}
