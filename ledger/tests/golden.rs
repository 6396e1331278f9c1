//! Golden bytes: the canonical encoding of every signed or hashed type is pinned.
//! If one of these fails, the wire format changed: every signature and proof
//! made before would break. Change the constants only with a format version bump.

use yrd_consensus::codec;
use yrd_consensus::crypto::{sha256, signing_bytes, Hash32, SecretKey};
use yrd_consensus::messages::{Proposal, Vote, VoteKind};
use yrd_consensus::types::{Height, Round, ValidatorIndex};
use yrd_ledger::block::BlockHeader;
use yrd_ledger::subjects::{RecordPage, SubjectEntry, SubjectRecord};
use yrd_ledger::tx::{
    Attestation, AttestationKind, Grade, Revocation, RevocationReason, Severity, SignedTransaction, Transaction, TxBody, TxId,
};
use yrd_ledger::uscc::Uscc;

fn chain() -> Hash32 {
    sha256(&[b"golden-chain"])
}

fn key() -> SecretKey {
    SecretKey::from_seed(b"golden-issuer")
}

fn attestation_tx() -> Transaction {
    Transaction {
        chain: chain(),
        issuer: key().public(),
        sequence: 42,
        body: TxBody::Attest(Attestation {
            subject: Uscc::parse("91350100M000100Y43").unwrap(),
            kind: AttestationKind::AdministrativePenalty,
            grade: None,
            severity: Some(Severity::General),
            evidence: sha256(&[b"evidence"]),
            issued_at_ms: 1_700_000_000_000,
            valid_from_ms: 1_700_000_000_000,
            valid_until_ms: Some(1_800_000_000_000),
            fields: vec![("decision-no".into(), "沪市监罚〔2024〕1号".into())],
        }),
    }
}

fn revocation_tx() -> Transaction {
    Transaction {
        chain: chain(),
        issuer: key().public(),
        sequence: 43,
        body: TxBody::Revoke(Revocation {
            target: TxId(sha256(&[b"target"])),
            reason: RevocationReason::Repair,
            evidence: None,
            issued_at_ms: 1_700_000_000_001,
        }),
    }
}

fn check(name: &str, bytes: &[u8], expected_hex: &str) {
    assert_eq!(hex::encode(bytes), expected_hex, "{name}: canonical bytes changed");
}

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = codec::encode(v).unwrap();
    let back: T = codec::decode(&bytes, 1 << 20, "value").unwrap();
    assert_eq!(&back, v);
    assert_eq!(codec::encode(&back).unwrap(), bytes, "decode→encode gives the same bytes");
}

#[test]
fn golden_attestation_transaction() {
    let tx = attestation_tx();
    let signed = tx.clone().sign(&key()).unwrap();
    check("attestation signing payload", &tx.signing_payload().unwrap(), GOLDEN_ATTEST_PAYLOAD);
    check("signed attestation", &signed.encode().unwrap(), GOLDEN_ATTEST_SIGNED);
    assert_eq!(signed.id().unwrap().to_hex(), GOLDEN_ATTEST_ID);
    assert_eq!(SignedTransaction::decode(&signed.encode().unwrap()).unwrap(), signed);
    signed.verify_signature().unwrap();
    round_trip(&signed);
}

#[test]
fn golden_revocation_transaction() {
    let tx = revocation_tx();
    let signed = tx.clone().sign(&key()).unwrap();
    check("signed revocation", &signed.encode().unwrap(), GOLDEN_REVOKE_SIGNED);
    round_trip(&signed);
}

#[test]
fn golden_block_header() {
    let header = BlockHeader {
        chain: chain(),
        height: Height(7),
        parent: sha256(&[b"parent"]),
        proposer: ValidatorIndex(3),
        round: Round(1),
        timestamp_ms: 1_700_000_123_456,
        tx_count: 2,
        log_size: 99,
        log_root: sha256(&[b"log"]),
        subjects_root: sha256(&[b"subjects"]),
        membership: sha256(&[b"membership"]),
    };
    check("block header", &codec::encode(&header).unwrap(), GOLDEN_HEADER);
    assert_eq!(header.hash().unwrap().to_hex(), GOLDEN_HEADER_HASH);
    round_trip(&header);
}

/// Governance transactions (new variants 2 and 3 of `TxBody`; the existing
/// variants' bytes above are unchanged) and the membership hash.
#[test]
fn golden_governance() {
    use yrd_ledger::genesis::{AgencyInfo, ChainParams, Region, ValidatorInfo};
    use yrd_ledger::governance::{Change, GovApproval, GovProposal, Membership};
    let admin = SecretKey::from_seed(b"golden-admin");
    let proposal = Transaction {
        chain: chain(),
        issuer: admin.public(),
        sequence: 1,
        body: TxBody::Propose(GovProposal {
            changes: vec![
                Change::AddValidator(ValidatorInfo {
                    name: "suzhou".into(),
                    region: Region::parse("JS").unwrap(),
                    key: SecretKey::from_seed(b"golden-validator").public(),
                }),
                Change::FreezeIssuer { name: "jiangsu-credit".into() },
            ],
            deadline: 1000,
            summary: "苏州 joins".into(),
        }),
    };
    let signed = proposal.clone().sign(&admin).unwrap();
    check("proposal", &signed.encode().unwrap(), GOLDEN_PROPOSAL_TX);
    round_trip(&signed);
    let approval = Transaction {
        chain: chain(),
        issuer: admin.public(),
        sequence: 2,
        body: TxBody::Approve(GovApproval { proposal: signed.id().unwrap() }),
    };
    check("approval", &approval.signing_payload().unwrap(), GOLDEN_APPROVAL_PAYLOAD);
    let membership = Membership {
        params: ChainParams::default(),
        agencies: vec![AgencyInfo { name: "shanghai".into(), region: Region::parse("SH").unwrap(), key: admin.public() }],
        validators: vec![],
        issuers: vec![],
        frozen: vec![],
        observers: vec![],
        retired: vec![],
        lenders: vec![],
    };
    round_trip(&membership);
    assert_eq!(membership.hash().unwrap().to_hex(), GOLDEN_MEMBERSHIP_HASH);
}

/// Consent transactions (variants 4, 5 and 6 of `TxBody`; the earlier variants'
/// bytes above are unchanged) and the lender's request signing payload.
#[test]
fn golden_consent() {
    use yrd_ledger::consent::{Authorisation, Purpose, WithdrawReason, Withdrawal};
    use yrd_ledger::queries::{Nonce, QueryEntry, QueryRecords, SignedRequest};
    let lender = SecretKey::from_seed(b"golden-lender");
    let subject = Uscc::parse("91350100M000100Y43").unwrap();
    let authorise = Transaction {
        chain: chain(),
        issuer: lender.public(),
        sequence: 1,
        body: TxBody::Authorise(Authorisation {
            subject,
            purpose: Purpose::PostLoanMonitoring,
            consent: sha256(&[b"consent"]),
            issued_at_ms: 1_700_000_000_000,
            valid_until_ms: 1_730_000_000_000,
        }),
    };
    let signed = authorise.sign(&lender).unwrap();
    check("authorisation", &signed.encode().unwrap(), GOLDEN_AUTHORISATION_TX);
    round_trip(&signed);
    let withdraw = Transaction {
        chain: chain(),
        issuer: lender.public(),
        sequence: 2,
        body: TxBody::Withdraw(Withdrawal {
            authorisation: signed.id().unwrap(),
            reason: WithdrawReason::ConsentWithdrawn,
            evidence: Some(sha256(&[b"notice"])),
            issued_at_ms: 1_700_000_000_001,
        }),
    };
    check("withdrawal", &withdraw.signing_payload().unwrap(), GOLDEN_WITHDRAWAL_PAYLOAD);
    let path = "/v1/subjects/91350100M000100Y43/attestations";
    // The request is to the node that records it (key()).
    let node = key().public();
    let payload = SignedRequest::payload(&chain(), &node, "GET", path, &sha256(&[b""]), 1_700_000_000_002, &Nonce([7; 16])).unwrap();
    check("request payload", &payload, GOLDEN_REQUEST_PAYLOAD);
    let request = SignedRequest::sign(&lender, &chain(), &node, "GET", path, b"", 1_700_000_000_002, Nonce([7; 16])).unwrap();
    request.verify(&chain(), &node).unwrap();
    let records = Transaction {
        chain: chain(),
        issuer: key().public(),
        sequence: 3,
        body: TxBody::RecordQueries(QueryRecords {
            entries: vec![QueryEntry {
                request,
                subject,
                authorisation: signed.id().unwrap(),
                response: sha256(&[b"answer"]),
                served_at_ms: 1_700_000_000_003,
                height: 41,
            }],
        }),
    };
    let records = records.sign(&key()).unwrap();
    round_trip(&records);
    check("query records", &records.tx.signing_payload().unwrap(), GOLDEN_QUERY_RECORDS_PAYLOAD);
}

#[test]
fn golden_consensus_messages() {
    let vote = Vote {
        chain: chain(),
        kind: VoteKind::Precommit,
        height: Height(7),
        round: Round(1),
        value: Some(sha256(&[b"block"])),
        validator: ValidatorIndex(2),
    };
    check("precommit", &vote.signing_payload().unwrap(), GOLDEN_VOTE);
    let nil = Vote { kind: VoteKind::Prevote, value: None, ..vote.clone() };
    check("nil prevote", &nil.signing_payload().unwrap(), GOLDEN_NIL_VOTE);
    let proposal = Proposal {
        chain: chain(),
        height: Height(7),
        round: Round(1),
        value: sha256(&[b"block"]),
        pol_round: Some(Round(0)),
        proposer: ValidatorIndex(1),
    };
    check("proposal", &proposal.signing_payload().unwrap(), GOLDEN_PROPOSAL);
    round_trip(&vote.sign(&key()).unwrap());
    round_trip(&proposal.sign(&key()).unwrap());
}

#[test]
fn golden_subject_record() {
    let rec = SubjectRecord {
        subject: Uscc::parse("91350100M000100Y43").unwrap(),
        entries: vec![SubjectEntry {
            id: TxId(sha256(&[b"a"])),
            height: Height(3),
            issuer: key().public(),
            kind: AttestationKind::TaxCredit,
            valid_until_ms: None,
            revoked: Some((TxId(sha256(&[b"r"])), RevocationReason::Dispute)),
        }],
    };
    check("subject record", &codec::encode(&rec).unwrap(), GOLDEN_SUBJECT_RECORD);
    assert_eq!(rec.value_hash().unwrap().to_hex(), GOLDEN_SUBJECT_VALUE);
    round_trip(&rec);
    // Store format 7, proof files version 4: the value is
    // H(signing_bytes("ledger/subject-record", subject ‖ u64 count ‖ root)) with
    // root the RFC 9162 root over the entries' commitments, leaf H(0x00 ‖ commitment).
    let commitment = rec.entries[0].commitment().unwrap();
    assert_eq!(commitment.to_hex(), GOLDEN_SUBJECT_ENTRY_COMMITMENT);
    let record_bytes = codec::encode(&rec).unwrap();
    let mut value_payload = record_bytes[..18 + 8].to_vec();
    value_payload.extend_from_slice(&sha256(&[&[0u8], &commitment.0]).0);
    assert_eq!(sha256(&[&signing_bytes(b"ledger/subject-record", &value_payload)]).to_hex(), GOLDEN_SUBJECT_VALUE);
    assert_eq!(sha256(&[&signing_bytes(b"ledger/subject-entry", &record_bytes[18 + 8..])]), commitment);
    // The pages a proof file carries: subject ‖ u64 count ‖ u64 from ‖ entries
    // (enum tag u32 0 = full entry, 1 = redacted: its commitment) ‖ range proof.
    let page_head = |from: u64| {
        let mut v = record_bytes[..26].to_vec();
        v.extend_from_slice(&from.to_be_bytes());
        v.extend_from_slice(&1u64.to_be_bytes());
        v
    };
    let full = RecordPage::full(&rec);
    let mut want = page_head(0);
    want.extend_from_slice(&0u32.to_be_bytes());
    want.extend_from_slice(&record_bytes[26..]);
    want.extend_from_slice(&0u64.to_be_bytes());
    assert_eq!(codec::encode(&full).unwrap(), want);
    let redacted = RecordPage::of(&rec, &|_| false).unwrap();
    let mut want = page_head(0);
    want.extend_from_slice(&1u32.to_be_bytes());
    want.extend_from_slice(&commitment.0);
    want.extend_from_slice(&0u64.to_be_bytes());
    assert_eq!(codec::encode(&redacted).unwrap(), want);
    assert_eq!(redacted.value_hash().unwrap().to_hex(), GOLDEN_SUBJECT_VALUE);
    round_trip(&full);
    round_trip(&redacted);
    let _ = Grade::A;
}

const GOLDEN_ATTEST_PAYLOAD: &str = concat!(
    "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2acd32f8f785630d21fb0ef73f07d06001",
    "65a3955706f8ce86cfe75d8d7403f57f000000000000002a0000000039313335303130304d3030303130305934330000",
    "0002000100000001ee8250fb76e094b34b471f13a73dbbe51d1ae142e9df59d7c0d31ec20f0a0a8e0000018bcfe56800",
    "0000018bcfe5680001000001a3185c50000000000000000001000000000000000b6465636973696f6e2d6e6f00000000",
    "0000001ae6b2aae5b882e79b91e7bd9ae3809432303234e3809531e58fb7",
);
const GOLDEN_ATTEST_SIGNED: &str = concat!(
    "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2acd32f8f785630d21fb0ef73f07d06001",
    "65a3955706f8ce86cfe75d8d7403f57f000000000000002a0000000039313335303130304d3030303130305934330000",
    "0002000100000001ee8250fb76e094b34b471f13a73dbbe51d1ae142e9df59d7c0d31ec20f0a0a8e0000018bcfe56800",
    "0000018bcfe5680001000001a3185c50000000000000000001000000000000000b6465636973696f6e2d6e6f00000000",
    "0000001ae6b2aae5b882e79b91e7bd9ae3809432303234e3809531e58fb7b92877a6c61eb9489b269b64f4ce234f7fd5",
    "f14b41e6e1a91c593531198a0133b8cc1bc8896fed375c834180d3977a8b3d158136c6e712f1315651019aa4d809",
);
const GOLDEN_ATTEST_ID: &str = "e2b04d4e24fcb53981a4e8cf537f4a9c4913b118d5aafaf80ad28742a92bd29b";
const GOLDEN_REVOKE_SIGNED: &str = concat!(
    "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2acd32f8f785630d21fb0ef73f07d06001",
    "65a3955706f8ce86cfe75d8d7403f57f000000000000002b0000000134a04005bcaf206eec990bd9637d9fdb6725e0a0",
    "c0d4aebf003f17f4c956eb5c00000000000000018bcfe568013ef59035a523638d72d2a700532ae022395f365646064f",
    "68d4e5e3f52d98fab9e5570a6e361059b3523390abd31afc9c20c06dc00643f49cccfaf47d5180e809",
);
const GOLDEN_HEADER: &str = concat!(
    "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2a0000000000000007e47125968b3b7104",
    "9fbc4802d1e40a71ea1359decfabacf70b34588037d4ff0c00000003000000010000018bcfe74a400000000200000000",
    "00000063836ff184e7b41b1e13cb5fd89fa1de98dbbab99e9d2918913ff43b86a5c7c213e223d8ec1e6450dae88d4eb0",
    "42479e5fa6104e6fd30b15add076db936b290367bf5cf59e356652253268c604cbf8df8cfdb03a4a0d32b27ad158e581",
    "709c80e4",
);
const GOLDEN_PROPOSAL_TX: &str = concat!(
    "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2a086b03fcc9cd67ab1abde6740dfc72bb",
    "5e12ea5360c00e0dbb89fa42c372e19b0000000000000001000000020000000000000002000000030000000000000006",
    "73757a686f7500000000000000024a5356695597a895cca6ec59db95619104544d91ef1b5453252225c4e684d94f6917",
    "0000000a000000000000000e6a69616e6773752d63726564697400000000000003e8000000000000000ce88b8fe5b79e",
    "206a6f696e734ba088424d46aa672a4c69dec66ad9ab28746f250c18ffd009a216f4a27ba9289e9267f949a8f50cf049",
    "e1fa0f175de7d1899fe79b7deea540e5629b9a15930a",
);
const GOLDEN_APPROVAL_PAYLOAD: &str = concat!(
    "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2a086b03fcc9cd67ab1abde6740dfc72bb",
    "5e12ea5360c00e0dbb89fa42c372e19b00000000000000020000000387529824162c2bee17e2588088382eb565ada0da",
    "4e6786b6fc957b066c191e8e",
);
/// Store format 5 / proof files: the membership grew `lenders` and the chain
/// parameters `restricted_kinds` (docs/access.md), so its hash changed.
const GOLDEN_MEMBERSHIP_HASH: &str = "958d4b83b0606869f4a7bf658655dc25188842b73ea67537bc67a8e9d343d35f";
const GOLDEN_HEADER_HASH: &str = "a79b0bc5ff3d58e9ba4ede54869326189940db09a630aab2bd1265a7615c3857";
const GOLDEN_VOTE: &str = concat!(
    "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2a00000001000000000000000700000001",
    "01496aca80e4d8f29fb8e8cd816c3afb48d3f103970b3a2ee1600c08ca67326dee00000002",
);
const GOLDEN_NIL_VOTE: &str = concat!(
    "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2a00000000000000000000000700000001",
    "0000000002",
);
const GOLDEN_PROPOSAL: &str = concat!(
    "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2a000000000000000700000001496aca80",
    "e4d8f29fb8e8cd816c3afb48d3f103970b3a2ee1600c08ca67326dee010000000000000001",
);
const GOLDEN_SUBJECT_RECORD: &str = concat!(
    "39313335303130304d3030303130305934330000000000000001ca978112ca1bbdcafac231b39a23dc4da786eff8147c",
    "4e72b9807785afee48bb0000000000000003cd32f8f785630d21fb0ef73f07d0600165a3955706f8ce86cfe75d8d7403",
    "f57f000000040001454349e422f05297191ead13e21d3db520e5abef52055e4964b82fb213f593a100000001",
);
const GOLDEN_SUBJECT_VALUE: &str = "c78c5b137033f523c495e2f6aafbf82cb8c777b9b05b24ead2a5bee21f75dfd5";
/// `H(signing_bytes("ledger/subject-entry", canonical(entry)))` of the one entry above.
const GOLDEN_SUBJECT_ENTRY_COMMITMENT: &str = "0ebbbfc5b8236132f0b8cba76e426cba23cefa2aa592b5cbb8d3c5ea3df53ef7";

const GOLDEN_AUTHORISATION_TX: &str = "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2a919855f074f8568e8e2f4793fb4f3fb385034d4458ea5825355403d646e2e65600000000000000010000000439313335303130304d3030303130305934330000000112423e0482f3e81cb1d23230664e95bb3d11b9f34f06fc199e588d4cdab6e4d40000018bcfe5680000000192cc091400d0915340e24b21047817ff11222780bcc4afc0b49bea897f9caccc5b4ae4592fb5a5163c509e9e39410a049106f8194c1fcb5ff22636f18681c7e607309ad702";
const GOLDEN_WITHDRAWAL_PAYLOAD: &str = "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2a919855f074f8568e8e2f4793fb4f3fb385034d4458ea5825355403d646e2e6560000000000000002000000050e81d3d90c2a5e384880e393167f35b48330604022a2a3ec1ba8e78d84188e3e00000000019368a7d21e018f64ae3327d2f25cd4d7693b2d85328e4bb680bcfcbd4c26b90e0000018bcfe56801";
const GOLDEN_REQUEST_PAYLOAD: &str = "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2acd32f8f785630d21fb0ef73f07d0600165a3955706f8ce86cfe75d8d7403f57f0000000000000003474554000000000000002c2f76312f7375626a656374732f39313335303130304d3030303130305934332f6174746573746174696f6e73e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550000018bcfe5680207070707070707070707070707070707";
const GOLDEN_QUERY_RECORDS_PAYLOAD: &str = "8f75d72b02d8a11c012748291eec2ed323f934df72f1d85e0258670602559c2acd32f8f785630d21fb0ef73f07d0600165a3955706f8ce86cfe75d8d7403f57f0000000000000003000000060000000000000001919855f074f8568e8e2f4793fb4f3fb385034d4458ea5825355403d646e2e6560000000000000003474554000000000000002c2f76312f7375626a656374732f39313335303130304d3030303130305934332f6174746573746174696f6e73e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550000018bcfe5680207070707070707070707070707070707bc97357a4fd2dc01f206da854bf1481af8b4453ec1995573d5cb0e30749556df6a5d8bbdcd3f849076db514e6dc1659b35edf66099fe6ca851c4e3f5d7754d0339313335303130304d3030303130305934330e81d3d90c2a5e384880e393167f35b48330604022a2a3ec1ba8e78d84188e3e0db52f4076c082518412afd3dd3576e2cb0c63703fd7fed5e23ade60efef31d90000018bcfe568030000000000000029";
