//! Deterministic chains, keys and transactions for tests, benchmarks and the
//! testnet's sample data. Keys come from fixed seeds: never use them for a real
//! chain.

use yrd_consensus::crypto::{Hash32, SecretKey};
use yrd_consensus::messages::{Vote, VoteKind};
use yrd_consensus::types::{Round, ValidatorIndex};
use yrd_consensus::CommitCertificate;

use crate::block::{Block, BlockHeader};
use crate::store::Ledger;
use crate::genesis::{ChainParams, Genesis, IssuerInfo, Region, ValidatorInfo};
use crate::tx::{Attestation, AttestationKind, Revocation, RevocationReason, SignedTransaction, Transaction, TxBody, TxId};
use crate::uscc::Uscc;

/// The four founding agencies: (validator name, issuer name, region).
pub const AGENCIES: [(&str, &str, &str); 4] = [
    ("shanghai", "shanghai-credit", "SH"),
    ("jiangsu", "jiangsu-credit", "JS"),
    ("zhejiang", "zhejiang-credit", "ZJ"),
    ("anhui", "anhui-credit", "AH"),
];

/// A chain whose keys are derived from fixed seeds.
pub struct TestChain {
    pub genesis: Genesis,
    pub chain: Hash32,
    pub validator_keys: Vec<SecretKey>,
    pub issuer_keys: Vec<SecretKey>,
}

impl TestChain {
    /// `validators` validators and `issuers` issuers (issuer i in the region of
    /// agency i mod 4), all allowed every kind; issuer 0 may revoke any record.
    pub fn new(validators: usize, issuers: usize) -> TestChain {
        Self::with_params(validators, issuers, ChainParams::default())
    }

    pub fn with_params(validators: usize, issuers: usize, params: ChainParams) -> TestChain {
        let validator_keys: Vec<SecretKey> =
            (0..validators).map(|i| SecretKey::from_seed(format!("validator-{i}").as_bytes())).collect();
        let issuer_keys: Vec<SecretKey> =
            (0..issuers).map(|i| SecretKey::from_seed(format!("issuer-{i}").as_bytes())).collect();
        let region = |i: usize| Region::parse(AGENCIES[i % 4].2).unwrap_or_else(|_| unreachable!());
        let name = |i: usize, base: &str| if i < 4 { base.to_string() } else { format!("{base}-{i}") };
        let genesis = Genesis {
            chain_name: "yrd-test".into(),
            genesis_time_ms: 1_700_000_000_000,
            params,
            validators: validator_keys
                .iter()
                .enumerate()
                .map(|(i, k)| ValidatorInfo { name: name(i, AGENCIES[i % 4].0), region: region(i), key: k.public() })
                .collect(),
            issuers: issuer_keys
                .iter()
                .enumerate()
                .map(|(i, k)| IssuerInfo {
                    name: name(i, AGENCIES[i % 4].1),
                    region: region(i),
                    key: k.public(),
                    kinds: AttestationKind::ALL.to_vec(),
                    may_revoke_any: i == 0,
                })
                .collect(),
            observers: vec![],
        };
        let chain = genesis.chain_id().unwrap_or_default();
        TestChain { genesis, chain, validator_keys, issuer_keys }
    }

    /// A signed attestation of `kind` (grade A where the kind needs one).
    pub fn attestation(&self, issuer: usize, sequence: u64, subject: Uscc, kind: AttestationKind) -> SignedTransaction {
        let grade = kind.grades().first().copied();
        let a = Attestation {
            subject,
            kind,
            grade,
            severity: None,
            evidence: yrd_consensus::crypto::sha256(&[b"evidence", &sequence.to_be_bytes()]),
            issued_at_ms: 1_700_000_000_000 + sequence % 1_000_000_000,
            valid_from_ms: 1_700_000_000_000,
            valid_until_ms: None,
            fields: vec![],
        };
        self.sign(issuer, sequence, TxBody::Attest(a))
    }

    pub fn revocation(&self, issuer: usize, sequence: u64, target: TxId, reason: RevocationReason) -> SignedTransaction {
        let r = Revocation { target, reason, evidence: None, issued_at_ms: 1_700_000_000_000 + sequence % 1_000_000_000 };
        self.sign(issuer, sequence, TxBody::Revoke(r))
    }

    pub fn sign(&self, issuer: usize, sequence: u64, body: TxBody) -> SignedTransaction {
        let tx = Transaction { chain: self.chain, issuer: self.issuer_keys[issuer].public(), sequence, body };
        tx.sign(&self.issuer_keys[issuer]).unwrap_or_else(|_| unreachable!("test transactions are small"))
    }

    /// Builds the next block from `txs` (proposer of round 0), certifies it and
    /// commits it. Fails if any transaction is left out.
    pub fn commit_next(&self, ledger: &mut Ledger, txs: Vec<SignedTransaction>) -> Result<Block, String> {
        let h = ledger.height().next();
        let proposer = ledger.validators().proposer(h, Round(0));
        let built = ledger
            .build_block(txs, proposer, Round(0), 1_800_000_000_000 + h.0)
            .map_err(|e| e.to_string())?;
        if !built.rejected.is_empty() {
            return Err(format!("rejected: {:?}", built.rejected));
        }
        let cert = self.certify(&built.block.header);
        ledger.commit(&built.block, &cert).map_err(|e| e.to_string())?;
        Ok(built.block)
    }

    /// A certificate signed by the first quorum of validators.
    pub fn certify(&self, header: &BlockHeader) -> CommitCertificate {
        let n = self.validator_keys.len();
        let quorum = n - (n - 1) / 3;
        let hash = header.hash().unwrap_or_default();
        let signatures = (0..quorum)
            .map(|i| {
                let vote = Vote {
                    chain: self.chain,
                    kind: VoteKind::Precommit,
                    height: header.height,
                    round: header.round,
                    value: Some(hash),
                    validator: ValidatorIndex(i as u32),
                };
                let signed = vote.sign(&self.validator_keys[i]).unwrap_or_else(|_| unreachable!());
                (ValidatorIndex(i as u32), signed.signature)
            })
            .collect();
        CommitCertificate { height: header.height, round: header.round, block_hash: hash, signatures }
    }
}

/// Copies a directory tree (a store, to tamper with the copy). Errors say which
/// path failed.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    let with_path = |p: &std::path::Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))
    };
    std::fs::create_dir_all(to).map_err(with_path(to))?;
    for e in std::fs::read_dir(from).map_err(with_path(from))? {
        let e = e.map_err(with_path(from))?;
        let target = to.join(e.file_name());
        if e.file_type().map_err(with_path(&e.path()))?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target).map_err(with_path(&e.path()))?;
        }
    }
    Ok(())
}
