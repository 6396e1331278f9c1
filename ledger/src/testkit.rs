//! Deterministic chains, keys and transactions for tests, benchmarks and the
//! testnet's sample data. Keys come from fixed seeds: never use them for a real
//! chain.

use yrd_consensus::crypto::{Hash32, SecretKey};
use yrd_consensus::messages::{Vote, VoteKind};
use yrd_consensus::types::{Round, ValidatorIndex, ValidatorSet};
use yrd_consensus::CommitCertificate;

use crate::block::{Block, BlockHeader};
use crate::consent::{Authorisation, Purpose, WithdrawReason, Withdrawal};
use crate::store::Ledger;
use crate::genesis::{AgencyInfo, ChainParams, Genesis, IssuerInfo, LenderInfo, Region, ValidatorInfo};
use crate::governance::{Change, GovApproval, GovProposal, Membership};
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
    /// Governance keys of the agencies (one per validator, same names).
    pub agency_keys: Vec<SecretKey>,
    /// Keys of the lenders [`TestChain::LENDERS`] (`bank-i`, sponsored by agency
    /// `i mod validators`).
    pub lender_keys: Vec<SecretKey>,
}

impl TestChain {
    /// Lenders in every test genesis.
    pub const LENDERS: usize = 2;

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
        let agency_keys: Vec<SecretKey> =
            (0..validators).map(|i| SecretKey::from_seed(format!("agency-{i}").as_bytes())).collect();
        let lender_keys: Vec<SecretKey> =
            (0..Self::LENDERS).map(|i| SecretKey::from_seed(format!("lender-{i}").as_bytes())).collect();
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
            agencies: agency_keys
                .iter()
                .enumerate()
                .map(|(i, k)| AgencyInfo { name: name(i, AGENCIES[i % 4].0), region: region(i), key: k.public() })
                .collect(),
            lenders: lender_keys
                .iter()
                .enumerate()
                .map(|(i, k)| LenderInfo {
                    name: format!("bank-{i}"),
                    sponsor: name(i % validators.max(1), AGENCIES[i % validators.max(1) % 4].0),
                    key: k.public(),
                })
                .collect(),
        };
        let chain = genesis.chain_id().unwrap_or_default();
        TestChain { genesis, chain, validator_keys, issuer_keys, agency_keys, lender_keys }
    }

    /// The membership the genesis puts in force.
    pub fn membership(&self) -> Membership {
        Membership::from_genesis(&self.genesis)
    }

    /// A governance proposal by agency `agency`.
    pub fn propose(&self, agency: usize, sequence: u64, changes: Vec<Change>, deadline: u64) -> SignedTransaction {
        let body = TxBody::Propose(GovProposal { changes, deadline, summary: format!("test proposal {sequence}") });
        self.sign_with(&self.agency_keys[agency], sequence, body)
    }

    /// Agency `agency`'s approval of `proposal`.
    pub fn approve(&self, agency: usize, sequence: u64, proposal: TxId) -> SignedTransaction {
        self.sign_with(&self.agency_keys[agency], sequence, TxBody::Approve(GovApproval { proposal }))
    }

    /// A transaction signed with any key.
    pub fn sign_with(&self, key: &SecretKey, sequence: u64, body: TxBody) -> SignedTransaction {
        let tx = Transaction { chain: self.chain, issuer: key.public(), sequence, body };
        tx.sign(key).unwrap_or_else(|_| unreachable!("test transactions are small"))
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

    /// Lender `lender`'s authorisation for `subject`, valid until `until_ms`
    /// (the consent document's digest derived from the sequence number).
    pub fn authorisation(&self, lender: usize, sequence: u64, subject: Uscc, purpose: Purpose, until_ms: u64) -> SignedTransaction {
        let a = Authorisation {
            subject,
            purpose,
            consent: yrd_consensus::crypto::sha256(&[b"consent", &sequence.to_be_bytes()]),
            issued_at_ms: 1_700_000_000_000 + sequence % 1_000_000_000,
            valid_until_ms: until_ms,
        };
        self.sign_with(&self.lender_keys[lender], sequence, TxBody::Authorise(a))
    }

    /// The withdrawal of authorisation `authorisation`, signed by `key` (its
    /// lender, an agency or an issuer).
    pub fn withdrawal(&self, key: &SecretKey, sequence: u64, authorisation: TxId, reason: WithdrawReason) -> SignedTransaction {
        let w = Withdrawal { authorisation, reason, evidence: None, issued_at_ms: 1_700_000_000_000 + sequence % 1_000_000_000 };
        self.sign_with(key, sequence, TxBody::Withdraw(w))
    }

    pub fn sign(&self, issuer: usize, sequence: u64, body: TxBody) -> SignedTransaction {
        self.sign_with(&self.issuer_keys[issuer], sequence, body)
    }

    /// Builds the next block from `txs` (proposer of round 0), certifies it and
    /// commits it. Fails if any transaction is left out.
    pub fn commit_next(&self, ledger: &mut Ledger, txs: Vec<SignedTransaction>) -> Result<Block, String> {
        self.commit_next_with(ledger, txs, &[])
    }

    /// [`TestChain::commit_next`] for a chain whose validators changed: the
    /// certificate is signed by the validators in force at the block's height,
    /// whose secret keys are found among the test validators and `extra_keys`.
    pub fn commit_next_with(&self, ledger: &mut Ledger, txs: Vec<SignedTransaction>, extra_keys: &[SecretKey]) -> Result<Block, String> {
        let h = ledger.height().next();
        self.commit_next_at(ledger, txs, extra_keys, Self::block_time_ms(h.0))
    }

    /// The timestamp [`TestChain::commit_next`] gives block `height`.
    pub fn block_time_ms(height: u64) -> u64 {
        1_800_000_000_000 + height
    }

    /// [`TestChain::commit_next_with`] with the block timestamp `timestamp_ms`
    /// (after the parent's, for rules that depend on a block's time).
    pub fn commit_next_at(
        &self,
        ledger: &mut Ledger,
        txs: Vec<SignedTransaction>,
        extra_keys: &[SecretKey],
        timestamp_ms: u64,
    ) -> Result<Block, String> {
        let h = ledger.height().next();
        let set = ledger.validators_at(h).map_err(|e| e.to_string())?;
        let proposer = set.proposer(h, Round(0));
        let built = ledger.build_block(txs, proposer, Round(0), timestamp_ms).map_err(|e| e.to_string())?;
        if !built.rejected.is_empty() {
            return Err(format!("rejected: {:?}", built.rejected));
        }
        let pool: Vec<SecretKey> = self.validator_keys.iter().chain(extra_keys).cloned().collect();
        let cert = self.certify_with(&pool, &set, &built.block.header)?;
        ledger.commit(&built.block, &cert).map_err(|e| e.to_string())?;
        Ok(built.block)
    }

    /// Appends `records` attestations about `subject` (issuer `issuer`, sequence
    /// numbers from `first_sequence`, kinds in turn), `per_block` to a block,
    /// straight through the ledger (build, certify, commit: no consensus, no
    /// network) — a big subject for tests and benchmarks. Returns the ids in
    /// commit order.
    pub fn fill_subject(
        &self,
        ledger: &mut Ledger,
        issuer: usize,
        subject: Uscc,
        records: u64,
        per_block: u64,
        first_sequence: u64,
    ) -> Result<Vec<TxId>, String> {
        let mut ids = Vec::with_capacity(records as usize);
        let mut seq = first_sequence;
        let end = first_sequence + records;
        while seq < end {
            let n = per_block.min(end - seq);
            let txs: Vec<SignedTransaction> = (seq..seq + n)
                .map(|s| self.attestation(issuer, s, subject, AttestationKind::ALL[(s % 7) as usize]))
                .collect();
            for tx in &txs {
                ids.push(tx.id().map_err(|e| e.to_string())?);
            }
            self.commit_next(ledger, txs)?;
            seq += n;
        }
        Ok(ids)
    }

    /// A certificate signed by the first quorum of validators.
    pub fn certify(&self, header: &BlockHeader) -> CommitCertificate {
        let set = self.genesis.validator_set().unwrap_or_else(|_| unreachable!("test genesis"));
        self.certify_with(&self.validator_keys, &set, header).unwrap_or_else(|_| unreachable!("test keys"))
    }

    /// A certificate for `header` signed by the first quorum of `set` whose
    /// secret keys are in `pool` (indexes are positions in `set`).
    pub fn certify_with(&self, pool: &[SecretKey], set: &ValidatorSet, header: &BlockHeader) -> Result<CommitCertificate, String> {
        let hash = header.hash().map_err(|e| e.to_string())?;
        let mut signatures = Vec::new();
        for (i, key) in set.keys().iter().enumerate() {
            if signatures.len() == set.quorum() {
                break;
            }
            let Some(sk) = pool.iter().find(|k| &k.public() == key) else { continue };
            let vote = Vote {
                chain: self.chain,
                kind: VoteKind::Precommit,
                height: header.height,
                round: header.round,
                value: Some(hash),
                validator: ValidatorIndex(i as u32),
            };
            let signed = vote.sign(sk).map_err(|e| e.to_string())?;
            signatures.push((ValidatorIndex(i as u32), signed.signature));
        }
        if signatures.len() < set.quorum() {
            return Err(format!("only {} of the {} signatures needed have a known key", signatures.len(), set.quorum()));
        }
        Ok(CommitCertificate { height: header.height, round: header.round, block_hash: hash, signatures })
    }
}

/// A ledger whose membership changed five times, for tests of files that carry
/// the chain of changes (docs/proofs.md, "Governance"). Default parameters
/// (approval by more than 2/3 of the four agencies, changes in force 4 blocks
/// after approval, freezes at the next block):
///
/// | height | what |
/// |---|---|
/// | 1 | `before_freeze` and `revoked`: attestations by issuer 1 (jiangsu-credit) about subject 1 |
/// | 2, 3 | proposal 0 (add validator suzhou), approved at 3, in force from 7 |
/// | 4, 5 | proposal 1 (rotate validator anhui's key), approved at 5, in force from 9 |
/// | 6, 7 | proposal 2 (freeze jiangsu-credit's key), approved at 7, in force from 8 |
/// | 10, 11 | proposals 3 (remove validator zhejiang) and 4 (rotate jiangsu-credit's key), both approved at 11, in force from 15 |
/// | 12–15 | empty |
/// | 16 | `after_changes` (jiangsu-credit's new key, subject 1) and `revocation` of `revoked` by that new key |
/// | 17 | `other`: an attestation by issuer 2 about subject 2 |
pub struct ChangedChain {
    pub chain: TestChain,
    pub ledger: Ledger,
    /// Secret keys of the validators that joined or rotated in (suzhou, anhui's new key).
    pub new_validator_keys: Vec<SecretKey>,
    /// jiangsu-credit's key after the rotation.
    pub new_issuer_key: SecretKey,
    pub before_freeze: TxId,
    pub revoked: TxId,
    pub revocation: TxId,
    pub after_changes: TxId,
    pub other: TxId,
    /// The five proposals, in the order above.
    pub proposals: Vec<TxId>,
}

impl ChangedChain {
    /// Builds the chain in a ledger stored in `dir`.
    pub fn build(dir: &std::path::Path) -> Result<ChangedChain, String> {
        let chain = TestChain::new(4, 3);
        let mut ledger = Ledger::open(dir, chain.genesis.clone()).map_err(|e| e.to_string())?;
        let id = |t: &SignedTransaction| t.id().map_err(|e| e.to_string());
        let region = |r: &str| Region::parse(r).map_err(|e| e.to_string());
        let suzhou = SecretKey::from_seed(b"changed-chain/suzhou");
        let anhui_new = SecretKey::from_seed(b"changed-chain/anhui-2");
        let jiangsu_credit_new = SecretKey::from_seed(b"changed-chain/jiangsu-credit-2");
        let keys = [suzhou.clone(), anhui_new.clone()];
        let jiangsu_credit = chain.genesis.issuers[1].name.clone();

        let before = chain.attestation(1, 1, Uscc::sample(1), AttestationKind::RedList);
        let revoked = chain.attestation(1, 2, Uscc::sample(1), AttestationKind::TaxCredit);
        chain.commit_next_with(&mut ledger, vec![before.clone(), revoked.clone()], &keys)?; // 1
        let changes = [
            vec![Change::AddValidator(ValidatorInfo { name: "suzhou".into(), region: region("JS")?, key: suzhou.public() })],
            vec![Change::RotateValidatorKey { name: chain.genesis.validators[3].name.clone(), key: anhui_new.public() }],
            vec![Change::FreezeIssuer { name: jiangsu_credit.clone() }],
            vec![Change::RemoveValidator { name: chain.genesis.validators[2].name.clone() }],
            vec![Change::RotateIssuerKey { name: jiangsu_credit, key: jiangsu_credit_new.public() }],
        ];
        let mut proposals = Vec::new();
        // Proposals 0–2: proposed by agency i, approved by the two agencies after it.
        for (i, c) in changes[..3].iter().enumerate() {
            let p = chain.propose(i, 10 + i as u64, c.clone(), 100);
            chain.commit_next_with(&mut ledger, vec![p.clone()], &keys)?;
            let pid = id(&p)?;
            let approvals = vec![chain.approve((i + 1) % 4, 20 + i as u64, pid), chain.approve((i + 2) % 4, 20 + i as u64, pid)];
            chain.commit_next_with(&mut ledger, approvals, &keys)?;
            proposals.push(pid);
        }
        chain.commit_next_with(&mut ledger, vec![], &keys)?; // 8
        chain.commit_next_with(&mut ledger, vec![], &keys)?; // 9
        // Proposals 3 and 4 in one block, approved in one block.
        let p3 = chain.propose(0, 30, changes[3].clone(), 100);
        let p4 = chain.propose(1, 31, changes[4].clone(), 100);
        chain.commit_next_with(&mut ledger, vec![p3.clone(), p4.clone()], &keys)?; // 10
        let (id3, id4) = (id(&p3)?, id(&p4)?);
        let approvals =
            vec![chain.approve(2, 32, id3), chain.approve(3, 32, id4), chain.approve(3, 33, id3), chain.approve(2, 33, id4)];
        chain.commit_next_with(&mut ledger, approvals, &keys)?; // 11
        proposals.extend([id3, id4]);
        for _ in 12..=15 {
            chain.commit_next_with(&mut ledger, vec![], &keys)?;
        }
        let body = |t: &SignedTransaction| t.tx.body.clone();
        let after = chain.sign_with(&jiangsu_credit_new, 1, body(&chain.attestation(1, 3, Uscc::sample(1), AttestationKind::CreditRating)));
        let revocation = chain.sign_with(&jiangsu_credit_new, 2, body(&chain.revocation(1, 4, id(&revoked)?, RevocationReason::Repair)));
        chain.commit_next_with(&mut ledger, vec![after.clone(), revocation.clone()], &keys)?; // 16
        let other = chain.attestation(2, 1, Uscc::sample(2), AttestationKind::Commitment);
        chain.commit_next_with(&mut ledger, vec![other.clone()], &keys)?; // 17
        Ok(ChangedChain {
            before_freeze: id(&before)?,
            revoked: id(&revoked)?,
            revocation: id(&revocation)?,
            after_changes: id(&after)?,
            other: id(&other)?,
            proposals,
            new_validator_keys: keys.to_vec(),
            new_issuer_key: jiangsu_credit_new,
            chain,
            ledger,
        })
    }
}

/// A free TCP port on 127.0.0.1 for a node (or a test) that will listen on it a
/// moment later. Not `bind(0)`: the kernel hands ports from the same ephemeral
/// range to every outgoing connection — including the nodes' own dials to peers
/// that are not up yet — so a port picked that way and released can be taken
/// before its node listens (seen in CI: `port … is already in use`). Ports come
/// instead from below Linux's ephemeral range (10000–31999), in sequence from a
/// per-process start, each checked free when picked: one process never hands
/// out a port twice. Falls back to a kernel-picked port only if the whole span
/// is taken.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
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

/// Every leaf of a JSON value as (path, JSON pointer), depth first; an array is
/// also listed itself as `path[]` (its pointer), after its elements. The proof
/// tests and the console test tamper a file at each of them.
pub fn json_leaves(v: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(v: &serde_json::Value, path: String, pointer: String, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    walk(x, p, format!("{pointer}/{k}"), out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{path}[{i}]"), format!("{pointer}/{i}"), out);
                }
                out.push((format!("{path}[]"), pointer));
            }
            _ => out.push((path, pointer)),
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), String::new(), &mut out);
    out
}
