//! `GET /v1/governance/…`: proposals, approvals and the membership in force
//! (docs/api.md, "Governance"; docs/governance.md). Proposals and approvals are
//! submitted like any transaction (`POST /v1/transactions`), signed by an
//! agency's governance key (`yrd gov propose|approve`).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use yrd_consensus::types::Height;
use yrd_ledger::governance::{Change, Membership, Outcome, ProposalRecord};
use yrd_ledger::store::Ledger;

use super::{parse_id, ApiError, ApiPath, ApiQuery, ApiResult, AppState};

/// One proposal as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct ProposalJson {
    id: String,
    /// The block that holds the proposal.
    height: u64,
    proposer: String,
    summary: String,
    deadline: u64,
    /// `open`, `expired`, `approved` (waiting for its effective height), `applied`, `failed`.
    state: &'static str,
    /// The block whose approval reached the threshold, and the height it takes effect at.
    approved_at: Option<u64>,
    effective: Option<u64>,
    /// For a failed proposal: which change no longer applied, and why.
    failure: Option<String>,
    changes: Vec<ChangeJson>,
    approvals: Vec<ApprovalJson>,
    /// Agencies whose approval is still needed (when open), against the agencies in force now.
    approvals_needed: usize,
}

#[derive(Debug, Serialize)]
pub(super) struct ChangeJson {
    description: String,
    change: Change,
}

#[derive(Debug, Serialize)]
pub(super) struct ApprovalJson {
    agency: String,
    tx: String,
    height: u64,
    /// Whether it counts now: `false` once its agency left or rotated its key
    /// after approving (docs/governance.md, "Approval").
    counts: bool,
}

/// How many more approvals `rec` needs under `m` (0 when not open).
fn approvals_needed(rec: &ProposalRecord, m: &Membership) -> usize {
    if rec.outcome != Outcome::Open {
        return 0;
    }
    let total = m.agencies.len();
    // Distinct agencies whose approval still counts (consensus's rule: in force,
    // and not by a key rotated out since).
    let have = rec
        .approvals
        .iter()
        .filter(|a| yrd_ledger::governance::approval_counts(m, a))
        .map(|a| a.agency.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let g = &m.params.governance;
    (have..=total).find(|n| yrd_ledger::governance::threshold_met(*n, total, g.approval_num, g.approval_den)).map_or(0, |n| n - have)
}

pub(super) fn proposal_json(ledger: &Ledger, rec: &ProposalRecord) -> ProposalJson {
    let now = ledger.height().0;
    let (approved_at, effective, failure) = match &rec.outcome {
        Outcome::Open => (None, None, None),
        Outcome::Approved { height, effective, .. } | Outcome::Applied { height, effective, .. } => {
            (Some(*height), Some(*effective), None)
        }
        Outcome::Failed { height, effective, change, reason, .. } => {
            (Some(*height), Some(*effective), Some(format!("change {change}: {reason}")))
        }
    };
    ProposalJson {
        id: rec.id.to_hex(),
        height: rec.height,
        proposer: rec.proposer.clone(),
        summary: rec.proposal.summary.clone(),
        deadline: rec.proposal.deadline,
        state: rec.state_at(now.max(1)),
        approved_at,
        effective,
        failure,
        changes: rec.proposal.changes.iter().map(|c| ChangeJson { description: c.describe(), change: c.clone() }).collect(),
        approvals: rec
            .approvals
            .iter()
            .map(|a| ApprovalJson {
                agency: a.agency.clone(),
                tx: a.tx.to_hex(),
                height: a.height,
                counts: yrd_ledger::governance::approval_counts(&ledger.next_membership(), a),
            })
            .collect(),
        approvals_needed: approvals_needed(rec, &ledger.next_membership()),
    }
}

#[derive(Debug, Serialize)]
pub(super) struct ProposalsResponse {
    height: u64,
    proposals: Vec<ProposalJson>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ProposalsQuery {
    /// `open`, `expired`, `approved`, `applied`, `failed`; all when absent.
    state: Option<String>,
}

const STATES: [&str; 5] = ["open", "expired", "approved", "applied", "failed"];

/// `GET /v1/governance/proposals[?state=S]`: every proposal, oldest first.
pub(super) async fn proposals(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<ProposalsQuery>,
) -> ApiResult<Json<ProposalsResponse>> {
    if let Some(s) = &q.state {
        if !STATES.contains(&s.as_str()) {
            return Err(ApiError::bad_request("bad_query", format!("state must be one of {}, got {s:?}", STATES.join(", "))));
        }
    }
    app.read(move |_, ledger| {
        let mut records: Vec<&ProposalRecord> = ledger.gov().proposals().collect();
        records.sort_by_key(|r| (r.height, r.id));
        let mut proposals: Vec<ProposalJson> = records.into_iter().map(|r| proposal_json(ledger, r)).collect();
        if let Some(s) = &q.state {
            proposals.retain(|p| p.state == s);
        }
        Ok(Json(ProposalsResponse { height: ledger.height().0, proposals }))
    })
    .await
}

/// `GET /v1/governance/proposals/{id}`.
pub(super) async fn proposal(State(app): State<AppState>, ApiPath(id): ApiPath<String>) -> ApiResult<Json<ProposalJson>> {
    let id = parse_id(&id)?;
    app.read(move |_, ledger| match ledger.gov().proposal(&id) {
        Some(r) => Ok(Json(proposal_json(ledger, r))),
        None => Err(ApiError::not_found(format!("no governance proposal {id} (approvals are not proposals: give the proposal's id)"))),
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct MembershipQuery {
    height: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct MembershipResponse {
    /// The height the membership is in force at.
    height: u64,
    /// `governance::Membership::hash`, which that block's header commits to.
    hash: String,
    membership: Membership,
    /// Every height at which the membership changed (1 = the genesis), up to the
    /// next block; changes already approved take effect later.
    changes_at: Vec<u64>,
}

/// `GET /v1/governance/membership[?height=H]`: the membership in force at `H`
/// (default: the next block's).
pub(super) async fn membership(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<MembershipQuery>,
) -> ApiResult<Json<MembershipResponse>> {
    let at = match &q.height {
        Some(h) => Some(super::parse_height(h)?),
        None => None,
    };
    app.read(move |_, ledger| {
        let next = ledger.height().next();
        let height = at.unwrap_or(next);
        if height.0 == 0 || height > next {
            return Err(ApiError::bad_request(
                "bad_height",
                format!("height must be between 1 and the next block's height {next}, got {height}"),
            ));
        }
        let m = ledger.membership_at(height);
        let hash = m.hash().map_err(|e| ApiError::internal(format!("cannot hash the membership: {e}")))?.to_hex();
        let changes_at = ledger.gov().timeline().map(|(h, _)| h).filter(|h| *h <= next.0).collect();
        Ok(Json(MembershipResponse { height: height.0, hash, membership: (*m).clone(), changes_at }))
    })
    .await
}

/// Governance in `GET /v1/status`: the membership in force and what is pending.
#[derive(Debug, Serialize)]
pub(super) struct GovernanceStatus {
    membership_hash: String,
    agencies: usize,
    /// Open proposals (collecting approvals) and approved ones not yet in force.
    pending: Vec<PendingJson>,
}

#[derive(Debug, Serialize)]
pub(super) struct PendingJson {
    id: String,
    summary: String,
    state: &'static str,
    effective: Option<u64>,
    approvals_needed: usize,
}

pub(super) fn governance_status(ledger: &Ledger) -> ApiResult<GovernanceStatus> {
    let m = ledger.next_membership();
    let now = ledger.height().0.max(1);
    let mut pending: Vec<&ProposalRecord> = ledger
        .gov()
        .proposals()
        .filter(|r| matches!(r.state_at(now), "open" | "approved"))
        .collect();
    pending.sort_by_key(|r| (r.height, r.id));
    Ok(GovernanceStatus {
        membership_hash: m.hash().map_err(|e| ApiError::internal(format!("cannot hash the membership: {e}")))?.to_hex(),
        agencies: m.agencies.len(),
        pending: pending
            .into_iter()
            .map(|r| PendingJson {
                id: r.id.to_hex(),
                summary: r.proposal.summary.clone(),
                state: r.state_at(now),
                effective: r.effective(),
                approvals_needed: approvals_needed(r, &m),
            })
            .collect(),
    })
}

/// The validators in force at `height`, for the status.
pub(super) fn validators_at(ledger: &Ledger, height: Height) -> Vec<super::ValidatorJson> {
    ledger
        .membership_at(height)
        .validators
        .iter()
        .enumerate()
        .map(|(i, v)| super::ValidatorJson {
            index: i as u32,
            name: v.name.clone(),
            region: v.region.to_string(),
            key: v.key.to_hex(),
        })
        .collect()
}
