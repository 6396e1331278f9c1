//! Signed API requests, query records and receipts (docs/access.md).
//!
//! A lender signs each request it sends to a node's API ([`SignedRequest`]):
//! `ed25519(key, signing_bytes("api/request", canonical{chain, node, method, path,
//! SHA-256(body), timestamp_ms, nonce}))`, the chain id making a request valid on
//! one chain only, the serving node's key valid at one node only, the timestamp
//! and nonce making it single-use (a node refuses a timestamp outside its
//! clock-skew window and a nonce it has seen in it; each node keeps its own
//! replay cache, so without the node key the same request could be replayed to
//! every other node within the window).
//!
//! When a node answers a request that an authorisation covers, it
//! - signs a [`Receipt`] for the lender (`signing_bytes("api/receipt", …)`,
//!   the node's key): the digest of the signed request, the digest of the answer
//!   body, the time, the subject and the authorisation — the lender can later
//!   prove what it was shown;
//! - records the query on chain: a [`QueryEntry`] (the signed request itself is
//!   the evidence) in a batch transaction [`QueryRecords`] signed by the node's
//!   key. Consensus checks the structure, that the key was a lender's, that the
//!   authorisation named is that lender's for that subject, and every lender's
//!   request signature, for the recording node's key
//!   ([`crate::tx::SignedTransaction::verify_signature`]): a block never holds a
//!   request the lender did not send to that node, so every path — admission,
//!   block validation, `yrd audit queries` offline — gives the same verdict on
//!   a record. A node that served a query and never recorded it is caught by
//!   the receipt the lender holds.

use std::fmt;

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::crypto::{sha256, CryptoError, Hash32, PublicKey, SecretKey, Signature};

use crate::tx::{TxFormatError, TxId};
use crate::uscc::Uscc;

/// Domain tag of lenders' API request signatures.
pub const TAG_API_REQUEST: &[u8] = b"api/request";
/// Domain tag of nodes' query receipts.
pub const TAG_API_RECEIPT: &[u8] = b"api/receipt";
/// Longest path-and-query of a signed request, in bytes (the longest route with
/// its parameters is under 150 bytes; the limit keeps a query record small).
pub const MAX_REQUEST_PATH_BYTES: usize = 256;
/// Longest HTTP method name.
pub const MAX_METHOD_BYTES: usize = 8;
/// Bytes of a request nonce.
pub const NONCE_BYTES: usize = 16;
/// A query record may say it was served at most this long after the block that
/// records it was made (the proposer's clock against the serving node's).
pub const MAX_SERVED_AHEAD_MS: u64 = 60_000;
/// Most queries in one record transaction (the 4 KiB transaction limit allows
/// about 12 of the usual size; this bounds the count before decoding sizes).
pub const MAX_QUERY_ENTRIES: usize = 64;
/// A query served at height `h` is recorded in a block of height at most
/// `h + MAX_RECORD_LAG_BLOCKS`, or never (the rule refuses it later). This is the
/// bound an auditor holds a node to: a receipt naming height `h` with no record
/// in blocks `h+1 ..= h+MAX_RECORD_LAG_BLOCKS` proves the node served a query it
/// did not record. 600 blocks is ten minutes at one block a second, far above
/// the node's flush interval (`[access] record_flush_ms`) plus the time a
/// transaction waits in the mempool under full load.
pub const MAX_RECORD_LAG_BLOCKS: u64 = 600;

/// A request nonce: 16 random bytes (hex in JSON and headers).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nonce(pub [u8; NONCE_BYTES]);

impl Nonce {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Nonce, CryptoError> {
        let bytes = hex::decode(s.trim()).map_err(|e| CryptoError::BadHex(e.to_string()))?;
        let arr: [u8; NONCE_BYTES] = bytes
            .try_into()
            .map_err(|v: Vec<u8>| CryptoError::BadLength { what: "nonce", expected: NONCE_BYTES, got: v.len() })?;
        Ok(Nonce(arr))
    }

    /// A fresh random nonce.
    pub fn random() -> Nonce {
        let mut b = [0u8; NONCE_BYTES];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
        Nonce(b)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Nonce {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Nonce {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            yrd_consensus::crypto::parse_hex_array::<NONCE_BYTES>("nonce", &s).map(Nonce).map_err(serde::de::Error::custom)
        } else {
            <[u8; NONCE_BYTES]>::deserialize(d).map(Nonce)
        }
    }
}

/// What a lender signs. The chain id and the serving node's key are in the
/// signed bytes, not in the request as stored: the chain is implied by where a
/// record is stored, the node by the query-record transaction's signer.
#[derive(Serialize)]
struct RequestPayload<'a> {
    chain: &'a Hash32,
    node: &'a PublicKey,
    method: &'a str,
    path: &'a str,
    body: &'a Hash32,
    timestamp_ms: u64,
    nonce: &'a Nonce,
}

/// A lender's signed API request (the headers `X-YRD-Key`, `X-YRD-Node`,
/// `X-YRD-Timestamp`, `X-YRD-Nonce`, `X-YRD-Signature` with the method, the
/// path-and-query as sent and the SHA-256 of the body). The node it was signed
/// for is not stored: it is the node that answers (and records) it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRequest {
    pub key: PublicKey,
    pub method: String,
    /// The path and query exactly as sent (percent-encoding included).
    pub path: String,
    /// SHA-256 of the request body (of the empty string for a GET).
    pub body: Hash32,
    pub timestamp_ms: u64,
    pub nonce: Nonce,
    pub signature: Signature,
}

impl SignedRequest {
    /// The request's HTTP headers as the node reads them (docs/access.md), for a
    /// request signed for `node`: every client that signs requests sends exactly
    /// these.
    pub fn headers(&self, node: &PublicKey) -> [(&'static str, String); 5] {
        [
            ("X-YRD-Key", self.key.to_hex()),
            ("X-YRD-Node", node.to_hex()),
            ("X-YRD-Timestamp", self.timestamp_ms.to_string()),
            ("X-YRD-Nonce", self.nonce.to_hex()),
            ("X-YRD-Signature", self.signature.to_hex()),
        ]
    }

    /// The bytes signed before domain separation.
    pub fn payload(
        chain: &Hash32,
        node: &PublicKey,
        method: &str,
        path: &str,
        body: &Hash32,
        timestamp_ms: u64,
        nonce: &Nonce,
    ) -> Result<Vec<u8>, CodecError> {
        codec::encode(&RequestPayload { chain, node, method, path, body, timestamp_ms, nonce })
    }

    /// Signs a request to the node whose key is `node` (validator or observer;
    /// `GET /v1/status` names it as `node_key`).
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        key: &SecretKey,
        chain: &Hash32,
        node: &PublicKey,
        method: &str,
        path: &str,
        body: &[u8],
        timestamp_ms: u64,
        nonce: Nonce,
    ) -> Result<SignedRequest, CodecError> {
        let body = sha256(&[body]);
        let payload = Self::payload(chain, node, method, path, &body, timestamp_ms, &nonce)?;
        let signature = key.sign(TAG_API_REQUEST, &payload);
        Ok(SignedRequest { key: key.public(), method: method.to_string(), path: path.to_string(), body, timestamp_ms, nonce, signature })
    }

    /// Verifies the lender's signature over this request sent to `node` on
    /// `chain` (the signature rule, `yrd_consensus::sigrule`).
    pub fn verify(&self, chain: &Hash32, node: &PublicKey) -> Result<(), CryptoError> {
        let payload = Self::payload(chain, node, &self.method, &self.path, &self.body, self.timestamp_ms, &self.nonce)
            .map_err(|_| CryptoError::BadSignature)?;
        self.key.verify(TAG_API_REQUEST, &payload, &self.signature)
    }

    /// Sizes and characters: what any node accepts to serve or record.
    pub fn check_format(&self) -> Result<(), String> {
        if self.method.is_empty() || self.method.len() > MAX_METHOD_BYTES || !self.method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("method {:?} must be 1 to {MAX_METHOD_BYTES} upper-case letters", self.method));
        }
        if !self.path.starts_with('/') || self.path.len() > MAX_REQUEST_PATH_BYTES {
            return Err(format!("path must start with '/' and be at most {MAX_REQUEST_PATH_BYTES} bytes (it is {})", self.path.len()));
        }
        if !self.path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("path must be printable ASCII (percent-encode the rest)".into());
        }
        Ok(())
    }

    /// `SHA-256(canonical(self))`: what a receipt names.
    pub fn digest(&self) -> Result<Hash32, CodecError> {
        Ok(sha256(&[&codec::encode(self)?]))
    }
}

/// One query a node answered under an authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryEntry {
    /// The lender's signed request: the evidence that it asked.
    pub request: SignedRequest,
    /// The subject whose restricted records the answer could contain.
    pub subject: Uscc,
    /// The authorisation that covered the request.
    pub authorisation: TxId,
    /// SHA-256 of the answer body.
    pub response: Hash32,
    /// When the node answered (its clock), milliseconds since the Unix epoch.
    pub served_at_ms: u64,
    /// The committed height the node answered at (its tip): the authorisation
    /// covered the read at this height and this block's time.
    pub height: u64,
}

impl QueryEntry {
    /// The receipt `node` gave for this query.
    pub fn receipt(&self, chain: &Hash32, node: &PublicKey) -> Result<Receipt, CodecError> {
        Ok(Receipt {
            chain: *chain,
            node: *node,
            request: self.request.digest()?,
            subject: self.subject,
            authorisation: self.authorisation,
            response: self.response,
            served_at_ms: self.served_at_ms,
            height: self.height,
        })
    }
}

/// A batch of queries a node answered, signed by the node's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryRecords {
    pub entries: Vec<QueryEntry>,
}

impl QueryRecords {
    pub fn check_format(&self) -> Result<(), TxFormatError> {
        if self.entries.is_empty() || self.entries.len() > MAX_QUERY_ENTRIES {
            return Err(TxFormatError::QueryRecords(format!(
                "{} entries, 1 to {MAX_QUERY_ENTRIES} allowed",
                self.entries.len()
            )));
        }
        for (i, e) in self.entries.iter().enumerate() {
            e.request.check_format().map_err(|r| TxFormatError::QueryRecords(format!("entry {i}: {r}")))?;
        }
        Ok(())
    }
}

/// What a node signs for a lender when it answers an authorised query (the
/// `X-YRD-Receipt` header is the hex of `canonical(Receipt)`, `X-YRD-Receipt-
/// Signature` the node's signature over `signing_bytes("api/receipt", those bytes)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub chain: Hash32,
    /// The serving node's key (validator or observer).
    pub node: PublicKey,
    /// [`SignedRequest::digest`] of the lender's request.
    pub request: Hash32,
    pub subject: Uscc,
    pub authorisation: TxId,
    /// SHA-256 of the answer body.
    pub response: Hash32,
    pub served_at_ms: u64,
    /// The committed height the answer was served at (the node's tip).
    pub height: u64,
}

/// Largest encoded receipt.
pub const MAX_RECEIPT_BYTES: usize = 512;

impl Receipt {
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Receipt, CodecError> {
        codec::decode(bytes, MAX_RECEIPT_BYTES, "receipt")
    }

    pub fn sign(&self, key: &SecretKey) -> Result<Signature, CodecError> {
        Ok(key.sign(TAG_API_RECEIPT, &self.encode()?))
    }

    /// Verifies the node's signature.
    pub fn verify(&self, signature: &Signature) -> Result<(), CryptoError> {
        let bytes = self.encode().map_err(|_| CryptoError::BadSignature)?;
        self.node.verify(TAG_API_RECEIPT, &bytes, signature)
    }
}
