//! Sample attestations about sample enterprises, submitted by each agency's issuer
//! to its own node (the four founding agencies), then followed until final on
//! every node; then one
//! revocation for credit repair (信用修复).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use yrd_consensus::crypto::{sha256, Hash32};
use yrd_ledger::tx::{
    Attestation, AttestationKind, Grade, Revocation, RevocationReason, Severity, SignedTransaction,
    Transaction, TxBody,
};
use yrd_ledger::uscc::Uscc;

use crate::setup::now_ms;
use crate::signals::StopFlag;
use crate::testnet::{Progress, Testnet};

/// How long the samples get to become final.
const FINAL_TIMEOUT: Duration = Duration::from_secs(60);
const DAY_MS: u64 = 24 * 3600 * 1000;

/// A sample enterprise: the first 17 characters of its USCC (the check character
/// is computed), and its name (off chain: shown on the terminal only).
pub struct Enterprise {
    pub first17: &'static str,
    pub name: &'static str,
    pub name_en: &'static str,
}

pub const ENTERPRISES: [Enterprise; 6] = [
    Enterprise {
        first17: "91310115MA1H7K2Q4",
        name: "上海浦江精密机械有限公司",
        name_en: "Shanghai Pujiang Precision Machinery Co., Ltd.",
    },
    Enterprise {
        first17: "91320594MA1N8P3R6",
        name: "苏州恒通物流有限公司",
        name_en: "Suzhou Hengtong Logistics Co., Ltd.",
    },
    Enterprise {
        first17: "91320100MA1X2Y3W7",
        name: "南京金陵建设工程有限公司",
        name_en: "Nanjing Jinling Construction Engineering Co., Ltd.",
    },
    Enterprise {
        first17: "91330106MA2B4C7D9",
        name: "杭州西溪数字科技有限公司",
        name_en: "Hangzhou Xixi Digital Technology Co., Ltd.",
    },
    Enterprise {
        first17: "91330201MA2H3J4K5",
        name: "宁波甬江纺织品进出口有限公司",
        name_en: "Ningbo Yongjiang Textiles Import & Export Co., Ltd.",
    },
    Enterprise {
        first17: "91340100MA2T5U1W8",
        name: "合肥徽商新能源股份有限公司",
        name_en: "Hefei Huishang New Energy Co., Ltd.",
    },
];

impl Enterprise {
    pub fn uscc(&self) -> Uscc {
        // The table above is ours; each entry is 17 valid characters.
        Uscc::complete(self.first17)
            .unwrap_or_else(|e| unreachable!("sample USCC {}: {e}", self.first17))
    }
}

/// One sample attestation: which founding agency (index 0..4 into the layout) says what about
/// which enterprise (index into ENTERPRISES).
struct Sample {
    agency: usize,
    enterprise: usize,
    kind: AttestationKind,
    grade: Option<Grade>,
    severity: Option<Severity>,
    /// Public fields, sorted by name.
    fields: &'static [(&'static str, &'static str)],
    /// Validity in days from now; `None`: until revoked.
    valid_days: Option<u64>,
    /// What the record says, for the terminal.
    what: &'static str,
}

const SAMPLES: &[Sample] = &[
    // Shanghai
    Sample {
        agency: 0,
        enterprise: 0,
        kind: AttestationKind::RedList,
        grade: None,
        severity: None,
        fields: &[("list", "上海市守信激励对象名单 2026")],
        valid_days: Some(365),
        what: "red list 守信红名单",
    },
    Sample {
        agency: 0,
        enterprise: 0,
        kind: AttestationKind::TaxCredit,
        grade: Some(Grade::A),
        severity: None,
        fields: &[("year", "2025")],
        valid_days: Some(365),
        what: "tax credit grade A 纳税信用A级",
    },
    Sample {
        agency: 0,
        enterprise: 0,
        kind: AttestationKind::Commitment,
        grade: None,
        severity: None,
        fields: &[("purpose", "财政专项资金申报 fiscal grant application")],
        valid_days: Some(730),
        what: "credit commitment 信用承诺",
    },
    Sample {
        agency: 0,
        enterprise: 3,
        kind: AttestationKind::AdministrativePenalty,
        grade: None,
        severity: Some(Severity::Minor),
        fields: &[("decision-no", "沪市监浦处〔2026〕112号")],
        valid_days: None,
        what: "administrative penalty 行政处罚 (minor)",
    },
    // Jiangsu
    Sample {
        agency: 1,
        enterprise: 1,
        kind: AttestationKind::TaxCredit,
        grade: Some(Grade::A),
        severity: None,
        fields: &[("year", "2025")],
        valid_days: Some(365),
        what: "tax credit grade A 纳税信用A级",
    },
    Sample {
        agency: 1,
        enterprise: 2,
        kind: AttestationKind::RedList,
        grade: None,
        severity: None,
        fields: &[("list", "江苏省守信激励对象名单 2026")],
        valid_days: Some(365),
        what: "red list 守信红名单",
    },
    Sample {
        agency: 1,
        enterprise: 2,
        kind: AttestationKind::AdministrativePenalty,
        grade: None,
        severity: Some(Severity::General),
        fields: &[("decision-no", "苏宁市监罚〔2026〕58号")],
        valid_days: None,
        what: "administrative penalty 行政处罚 (general)",
    },
    Sample {
        agency: 1,
        enterprise: 1,
        kind: AttestationKind::Commitment,
        grade: None,
        severity: None,
        fields: &[("purpose", "道路运输经营许可 road transport licence")],
        valid_days: Some(730),
        what: "credit commitment 信用承诺",
    },
    // Zhejiang
    Sample {
        agency: 2,
        enterprise: 4,
        kind: AttestationKind::CourtEnforcement,
        grade: None,
        severity: Some(Severity::Serious),
        fields: &[("case-no", "(2025)浙0212执1234号")],
        valid_days: None,
        what: "court enforcement 失信被执行人",
    },
    Sample {
        agency: 2,
        enterprise: 3,
        kind: AttestationKind::TaxCredit,
        grade: Some(Grade::A),
        severity: None,
        fields: &[("year", "2025")],
        valid_days: Some(365),
        what: "tax credit grade A 纳税信用A级",
    },
    Sample {
        agency: 2,
        enterprise: 3,
        kind: AttestationKind::RedList,
        grade: None,
        severity: None,
        fields: &[("list", "浙江省守信激励对象名单 2026")],
        valid_days: Some(365),
        what: "red list 守信红名单",
    },
    Sample {
        agency: 2,
        enterprise: 4,
        kind: AttestationKind::AdministrativePenalty,
        grade: None,
        severity: Some(Severity::General),
        fields: &[("decision-no", "甬海关缉违字〔2026〕21号")],
        valid_days: None,
        what: "administrative penalty 行政处罚 (general)",
    },
    // Anhui
    Sample {
        agency: 3,
        enterprise: 5,
        kind: AttestationKind::RedList,
        grade: None,
        severity: None,
        fields: &[("list", "安徽省守信激励对象名单 2026")],
        valid_days: Some(365),
        what: "red list 守信红名单",
    },
    Sample {
        agency: 3,
        enterprise: 5,
        kind: AttestationKind::TaxCredit,
        grade: Some(Grade::A),
        severity: None,
        fields: &[("year", "2025")],
        valid_days: Some(365),
        what: "tax credit grade A 纳税信用A级",
    },
    Sample {
        agency: 3,
        enterprise: 5,
        kind: AttestationKind::Commitment,
        grade: None,
        severity: None,
        fields: &[(
            "purpose",
            "高新技术企业认定 high-tech enterprise recognition",
        )],
        valid_days: Some(730),
        what: "credit commitment 信用承诺",
    },
    // The one Anhui later revokes after credit repair (index REPAIRED).
    Sample {
        agency: 3,
        enterprise: 5,
        kind: AttestationKind::AdministrativePenalty,
        grade: None,
        severity: Some(Severity::Minor),
        fields: &[("decision-no", "合环罚〔2025〕309号")],
        valid_days: None,
        what: "administrative penalty 行政处罚 (minor)",
    },
];

/// The sample that is revoked for credit repair.
const REPAIRED: usize = 15;

/// What the summary needs: one submitted record per sample, and the revocation.
pub struct SampleResult {
    pub records: Vec<SampleRecord>,
    pub revocation: Option<SampleRecord>,
    pub all_final: bool,
    /// The verified subject report, if the node serves proofs.
    pub proof_file: Option<std::path::PathBuf>,
    /// False if a subject report failed to verify.
    pub proof_ok: bool,
}

pub struct SampleRecord {
    pub id: String,
    pub agency: usize,
    pub subject: Uscc,
    pub height: Option<u64>,
}

fn build(tn: &Testnet, s: &Sample, sequence: u64, now: u64) -> Result<SignedTransaction> {
    let e = &ENTERPRISES[s.enterprise];
    let issuer_name = tn.layout.issuers[s.agency].name.as_str();
    let evidence: Hash32 = sha256(&[
        b"yrd-testnet sample evidence document\n",
        issuer_name.as_bytes(),
        b"\n",
        e.first17.as_bytes(),
        b"\n",
        s.what.as_bytes(),
        b"\n",
        &now.to_be_bytes(),
    ]);
    let att = attestation(s, evidence, now);
    att.check_format()
        .map_err(|e| anyhow!("sample {}: {e}", s.what))?;
    sign(tn, s.agency, sequence, TxBody::Attest(att))
}

/// The attestation a sample stands for, issued at `now`.
fn attestation(s: &Sample, evidence: Hash32, now: u64) -> Attestation {
    Attestation {
        subject: ENTERPRISES[s.enterprise].uscc(),
        kind: s.kind,
        grade: s.grade,
        severity: s.severity,
        evidence,
        issued_at_ms: now,
        valid_from_ms: now,
        valid_until_ms: s.valid_days.map(|d| now + d * DAY_MS),
        fields: s
            .fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn sign(tn: &Testnet, agency: usize, sequence: u64, body: TxBody) -> Result<SignedTransaction> {
    let key = &tn.layout.issuer_keys[agency];
    let tx = Transaction {
        chain: tn.layout.chain_id,
        issuer: key.public(),
        sequence,
        body,
    };
    Ok(tx.sign(key)?)
}

/// Submits through `POST /v1/transactions` to the agency's own node; returns the id.
fn submit(tn: &Testnet, node: usize, tx: &SignedTransaction) -> Result<String> {
    let bytes = tx.encode()?;
    let local = sha256(&[&bytes]).to_hex();
    let body = serde_json::json!({ "tx": hex::encode(&bytes) }).to_string();
    let ans = tn.apis[node].post_raw("/v1/transactions", body)?;
    if ans.status != 202 && ans.status != 200 {
        bail!(
            "{} refused the transaction: HTTP {} {}",
            tn.layout.nodes[node].name,
            ans.status,
            ans.body
        );
    }
    let id = ans
        .body
        .get("id")
        .and_then(|v| v.as_str())
        .unwrap_or(&local)
        .to_string();
    if id != local {
        bail!(
            "{} answered id {id}, but the transaction's id is {local}",
            tn.layout.nodes[node].name
        );
    }
    Ok(id)
}

/// Submits the samples, shows them becoming final, revokes one, shows that too.
pub fn run(tn: &mut Testnet, stop: &StopFlag) -> Result<SampleResult> {
    let now = now_ms();
    let mut seq = [0u64; 4];
    let mut records = Vec::new();
    println!();
    println!(
        "Submitting {} sample attestations (each agency's issuer to its own node):",
        SAMPLES.len()
    );
    for s in SAMPLES {
        seq[s.agency] += 1;
        let tx = build(tn, s, seq[s.agency], now)?;
        let id =
            submit(tn, s.agency, &tx).with_context(|| format!("submitting sample {}", s.what))?;
        let e = &ENTERPRISES[s.enterprise];
        println!(
            "  {} {:<16} {}  {}  {}  id {}…",
            tn.layout.nodes[s.agency].region,
            tn.layout.issuers[s.agency].name,
            e.uscc(),
            e.name,
            s.what,
            &id[..16]
        );
        records.push(SampleRecord {
            id,
            agency: s.agency,
            subject: e.uscc(),
            height: None,
        });
    }
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let heights = await_final(tn, stop, &ids, "attestation")?;
    let mut all_final = heights.iter().all(|h| h.is_some());
    for (r, h) in records.iter_mut().zip(&heights) {
        r.height = *h;
    }

    let mut revocation = None;
    if let Some(target_height) = heights[REPAIRED] {
        let target = &records[REPAIRED];
        let agency = target.agency;
        let e = &ENTERPRISES[SAMPLES[REPAIRED].enterprise];
        println!();
        println!(
            "Credit repair 信用修复: {} ({}) completed rectification, so {} revokes its penalty (height {target_height}):",
            e.name,
            e.name_en,
            tn.layout.issuers[agency].name
        );
        seq[agency] += 1;
        let body = TxBody::Revoke(Revocation {
            target: yrd_ledger::tx::TxId::from_hex(&target.id)
                .map_err(|e| anyhow!("target id: {e}"))?,
            reason: RevocationReason::Repair,
            evidence: Some(sha256(&[
                b"yrd-testnet sample credit repair approval\n",
                target.id.as_bytes(),
            ])),
            issued_at_ms: now_ms(),
        });
        let tx = sign(tn, agency, seq[agency], body)?;
        let id = submit(tn, agency, &tx).context("submitting the sample revocation")?;
        println!(
            "  {} revocation (repair) of {}…  id {}…",
            tn.layout.nodes[agency].region,
            &target.id[..16],
            &id[..16]
        );
        let h = await_final(tn, stop, std::slice::from_ref(&id), "revocation")?;
        all_final &= h[0].is_some();
        // The original is kept, with its status changed: show it on every node.
        let mut statuses = Vec::new();
        let alive: Vec<bool> = tn.procs.list.iter_mut().map(|p| p.running()).collect();
        for (i, api) in tn.apis.iter().enumerate() {
            if !alive.get(i).copied().unwrap_or(true) {
                statuses.push(format!("{} down", tn.layout.nodes[i].region));
                continue;
            }
            match api.attestation(&target.id) {
                Ok(Some(r)) => statuses.push(format!(
                    "{} {}{}{}",
                    tn.layout.nodes[i].region,
                    r.status,
                    r.revocation_reason
                        .map(|x| format!(" ({x})"))
                        .unwrap_or_default(),
                    r.revoked_by
                        .map(|x| format!(" by {}…", &x[..x.len().min(16)]))
                        .unwrap_or_default()
                )),
                Ok(None) => statuses.push(format!("{} not found", tn.layout.nodes[i].region)),
                Err(e) => statuses.push(format!("{} error: {e}", tn.layout.nodes[i].region)),
            }
        }
        println!(
            "  the penalty record is kept; its status now: {}",
            statuses.join(", ")
        );
        revocation = Some(SampleRecord {
            id,
            agency,
            subject: target.subject,
            height: h[0],
        });
    }
    // A lender checks the enterprise whose penalty was revoked: every record, offline.
    let subject = ENTERPRISES[SAMPLES[REPAIRED].enterprise].uscc();
    let (proof_file, proof_ok) = match authorise_lender(tn, stop, &subject).and_then(|()| lender_check(tn, &subject)) {
        Ok(file) => (file, true),
        Err(e) => {
            println!("  LENDER CHECK FAILED: {e:#}");
            (None, false)
        }
    };
    Ok(SampleResult {
        records,
        revocation,
        all_final,
        proof_file,
        proof_ok,
    })
}

/// The enterprise authorises the sample lender (授权, docs/access.md): the lender
/// records the SHA-256 of the signed consent on chain, for 30 days.
fn authorise_lender(tn: &mut Testnet, stop: &StopFlag, subject: &Uscc) -> Result<()> {
    let key = tn.layout.lender_key.clone();
    let body = TxBody::Authorise(yrd_ledger::consent::Authorisation {
        subject: *subject,
        purpose: yrd_ledger::consent::Purpose::LoanApplication,
        consent: sha256(&[b"yrd-testnet sample consent of ", subject.as_str().as_bytes()]),
        issued_at_ms: now_ms(),
        valid_until_ms: now_ms() + 30 * 24 * 3600 * 1000,
    });
    let tx = Transaction { chain: tn.layout.chain_id, issuer: key.public(), sequence: now_ms(), body }.sign(&key)?;
    println!();
    println!(
        "The enterprise {subject} authorises lender {} (授权): the consent's SHA-256 goes on chain (key {}/lender.key)",
        crate::setup::SAMPLE_LENDER,
        tn.layout.dir.display()
    );
    let id = submit(tn, 0, &tx).context("submitting the sample authorisation")?;
    let h = await_final(tn, stop, std::slice::from_ref(&id), "authorisation")?;
    if h[0].is_none() {
        bail!("the authorisation {id} did not become final");
    }
    Ok(())
}

/// Fetches the subject report (every record about `subject`, with proofs) from a
/// node as the authorised lender (signed request), saves it in `DIR/proofs/`, and
/// verifies it as a lender would: offline, with only the genesis. `Ok(None)` if
/// the node serves no proofs.
fn lender_check(tn: &Testnet, subject: &Uscc) -> Result<Option<std::path::PathBuf>> {
    use yrd_ledger::proof::{self, AnyVerdict};
    let node = 1;
    println!();
    println!(
        "A lender's check 贷前核查: all records about {subject}, from {} ({}), verified offline:",
        tn.layout.nodes[node].name,
        tn.layout.nodes[node].api_url()
    );
    let (status, text) = tn.apis[node].get_signed(&format!("/v1/proofs/subjects/{subject}"), &tn.layout.lender_key)?;
    match status {
        200 => {}
        404 => {
            println!("  (this node serves no subject reports: skipped)");
            return Ok(None);
        }
        _ => bail!("the node refused the lender's signed request: HTTP {status}: {}", text.trim()),
    }
    let dir = tn.layout.dir.join("proofs");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("subject-{subject}.json"));
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    // From here on, only the file and the genesis file: no node is asked anything.
    let genesis =
        yrd_ledger::genesis::Genesis::from_json(&std::fs::read(&tn.layout.genesis_path)?)?;
    let file = proof::parse_file(&std::fs::read(&path)?)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let verdict = proof::verify_file(&genesis, &file, now_ms())
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let AnyVerdict::Report(r) = verdict else {
        bail!("{} is not a subject report", path.display());
    };
    if r.subject != *subject {
        bail!("the report is about {}, not {subject}", r.subject);
    }
    let signers: Vec<&str> = r.anchor.signers.iter().map(|p| p.name.as_str()).collect();
    println!("  saved {}", path.display());
    println!(
        "  verified with only {}: {} record(s), complete as of height {} (block {}…, certificate signed by {})",
        tn.layout.genesis_path.display(),
        r.attestations.len(),
        r.anchor.height,
        &r.anchor.hash.to_string()[..16],
        signers.join(", ")
    );
    for a in &r.attestations {
        let status = match &a.revocation {
            Some(rev) => format!("{} ({}, by {})", a.status.name(), rev.reason, rev.by.name),
            None => a.status.name().to_string(),
        };
        println!(
            "    {:<24} {:<16} height {:<4} {}",
            format!(
                "{}{}",
                a.kind,
                a.grade.map(|g| format!(" {g}")).unwrap_or_default()
            ),
            a.issuer.name,
            a.height,
            status
        );
    }
    Ok(Some(path))
}

/// Follows `ids` on every node until each is final on all of them, printing
/// heights as they grow and one line per record. Checks that every node has the
/// record in the same block (same height, same block hash). Returns the heights.
fn await_final(
    tn: &mut Testnet,
    stop: &StopFlag,
    ids: &[String],
    what: &str,
) -> Result<Vec<Option<u64>>> {
    let n = tn.apis.len();
    let t0 = Instant::now();
    let mut done: Vec<Option<u64>> = vec![None; ids.len()];
    let mut failed = vec![false; ids.len()];
    let mut progress = Progress::new();
    loop {
        if stop.is_set() {
            progress.finish();
            bail!("interrupted");
        }
        tn.report_exits();
        // Nodes that died are reported above and not waited for.
        let alive: Vec<bool> = tn
            .procs
            .list
            .iter_mut()
            .take(n)
            .map(|p| p.running())
            .collect();
        let n_alive = alive.iter().filter(|a| **a).count();
        let on_all = if n_alive == n {
            format!("all {n} nodes")
        } else {
            format!("all {n_alive} running nodes")
        };
        let st = tn.statuses();
        for (k, id) in ids.iter().enumerate() {
            if done[k].is_some() || failed[k] {
                continue;
            }
            let mut seen = Vec::with_capacity(n);
            for (i, api) in tn.quick.iter().enumerate().filter(|(i, _)| alive[*i]) {
                match api.attestation(id) {
                    Ok(Some(r)) if r.is_final() => seen.push((i, r)),
                    _ => break,
                }
            }
            if seen.is_empty() || seen.len() < n_alive {
                continue;
            }
            let h = seen[0].1.height;
            let hash = seen[0].1.block_hash.clone().unwrap_or_default();
            if seen
                .iter()
                .all(|(_, r)| r.height == h && r.block_hash.as_deref() == Some(hash.as_str()))
            {
                let h = h.unwrap_or(0);
                done[k] = Some(h);
                progress.line(&format!(
                    "  {what} {id} final at height {h} on {on_all} · block {}… (same hash on every node)",
                    &hash[..hash.len().min(16)]
                ));
            } else {
                failed[k] = true;
                let regions = tn.regions();
                let detail: Vec<String> = seen
                    .iter()
                    .map(|(i, r)| {
                        format!(
                            "{}: height {:?} block {:?}",
                            regions[*i], r.height, r.block_hash
                        )
                    })
                    .collect();
                progress.line(&format!(
                    "  DISAGREEMENT: {what} {id} is final in different blocks: {}",
                    detail.join("; ")
                ));
            }
        }
        let final_count = done.iter().filter(|d| d.is_some()).count();
        if final_count + failed.iter().filter(|f| **f).count() == ids.len() {
            progress.finish();
            if failed.iter().any(|f| *f) {
                bail!("nodes disagree about the block of some {what}s");
            }
            return Ok(done);
        }
        progress.status(&format!(
            "  heights  {}   final {final_count}/{} ({:.0} s)",
            tn.heights_line(&st),
            ids.len(),
            t0.elapsed().as_secs_f64()
        ));
        if t0.elapsed() > FINAL_TIMEOUT {
            progress.finish();
            let missing: Vec<&str> = ids
                .iter()
                .zip(&done)
                .filter(|(_, d)| d.is_none())
                .map(|(id, _)| &id[..16])
                .collect();
            println!(
                "warning: {} {what}(s) not final on all nodes after {} s: {}… (see the node logs)",
                missing.len(),
                FINAL_TIMEOUT.as_secs(),
                missing.join("…, ")
            );
            return Ok(done);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_well_formed() {
        for e in &ENTERPRISES {
            let u = e.uscc();
            assert_eq!(Uscc::parse(u.as_str()).unwrap(), u);
        }
        assert_eq!(
            SAMPLES[REPAIRED].kind,
            AttestationKind::AdministrativePenalty
        );
        for agency in 0..4 {
            let kinds: Vec<AttestationKind> = SAMPLES
                .iter()
                .filter(|s| s.agency == agency)
                .map(|s| s.kind)
                .collect();
            assert!(kinds.len() >= 4, "a handful per agency");
        }
        let now = 1_780_000_000_000;
        for s in SAMPLES {
            let att = attestation(s, Hash32::default(), now);
            att.check_format()
                .unwrap_or_else(|e| panic!("{}: {e}", s.what));
        }
    }
}
