//! Blocks and their headers.
//!
//! The block hash is `SHA-256("YRD-CREDIT-CHAIN/v1/ledger/block-header" ‖ 0x00 ‖
//! canonical(BlockHeader))`. The header commits to every transaction ever
//! committed through the RFC 9162 log root and size (this block's transactions are
//! leaves `[log_size − tx_count, log_size)`), and to every subject's record set
//! through the subject-map root.

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::crypto::{sha256, signing_bytes, Hash32};
use yrd_consensus::types::{BlockHash, Height, Round, ValidatorIndex};
use yrd_consensus::CommitCertificate;

use crate::tx::{SignedTransaction, TxId};

/// Domain tag of block-header hashes.
pub const TAG_BLOCK_HEADER: &[u8] = b"ledger/block-header";
/// Largest encoded header.
pub const MAX_HEADER_BYTES: usize = 1024;
/// Largest encoded commit certificate (128 validators × 68 bytes plus framing).
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    pub chain: Hash32,
    pub height: Height,
    /// Hash of the header at `height − 1`; all zeros for height 1.
    pub parent: BlockHash,
    pub proposer: ValidatorIndex,
    pub round: Round,
    /// Proposer's clock, milliseconds since the Unix epoch; strictly increasing.
    pub timestamp_ms: u64,
    /// Number of transactions in this block.
    pub tx_count: u32,
    /// RFC 9162 log over every transaction ever committed, after this block.
    pub log_size: u64,
    pub log_root: Hash32,
    /// Root of the subject map after this block.
    pub subjects_root: Hash32,
    /// Hash of the membership in force at this height (agencies, validators,
    /// issuers, observers, parameters, retired keys; `governance::Membership::hash`).
    pub membership: Hash32,
}

impl BlockHeader {
    pub fn hash(&self) -> Result<BlockHash, CodecError> {
        let bytes = codec::encode(self)?;
        Ok(sha256(&[&signing_bytes(TAG_BLOCK_HEADER, &bytes)]))
    }

    pub fn decode(bytes: &[u8]) -> Result<BlockHeader, CodecError> {
        codec::decode(bytes, MAX_HEADER_BYTES, "block header")
    }

    /// Index in the log of this block's first transaction.
    pub fn first_log_index(&self) -> u64 {
        self.log_size.saturating_sub(self.tx_count as u64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    pub fn hash(&self) -> Result<BlockHash, CodecError> {
        self.header.hash()
    }

    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    /// Decodes an untrusted block: size limit, no trailing bytes, tx count agrees.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Block, CodecError> {
        let b: Block = codec::decode(bytes, max_bytes, "block")?;
        if b.txs.len() as u64 != b.header.tx_count as u64 {
            return Err(CodecError::Malformed {
                what: "block",
                reason: format!("header says {} transactions, body has {}", b.header.tx_count, b.txs.len()),
            });
        }
        Ok(b)
    }

    pub fn tx_ids(&self) -> Result<Vec<TxId>, CodecError> {
        self.txs.iter().map(|t| t.id()).collect()
    }
}

/// A block with the certificate that made it final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedBlock {
    pub block: Block,
    pub certificate: CommitCertificate,
}
