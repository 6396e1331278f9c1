//! `GET /health/live` and `GET /health/ready` (docs/api.md, "Health"), and the
//! `liveness` object of `GET /v1/status` (`crate::liveness`).
//!
//! Live: the process answers. Ready: the store is open and healthy, a quorum of
//! validators is connected, the node is not halted and not catching up, and it
//! takes new transactions (disk not low) — what a load balancer or orchestrator
//! should ask before sending clients to this node.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use yrd_consensus::crypto::PublicKey;
use yrd_ledger::governance::Membership;

use super::AppState;
use crate::liveness::{quorum_view, LivenessStatus};
use crate::shared::Shared;

/// The `liveness` object of the status, from the membership in force at the next
/// height and the connected peers' keys.
pub(super) fn liveness(shared: &Shared, in_force: &Membership, peers: &[PublicKey], height: u64) -> LivenessStatus {
    let validators: Vec<(String, PublicKey)> = in_force.validators.iter().map(|v| (v.name.clone(), v.key)).collect();
    // This node's key: the validator (or observer) of its configured name.
    let me = in_force
        .validators
        .iter()
        .map(|v| (&v.name, v.key))
        .chain(in_force.observers.iter().map(|o| (&o.name, o.key)))
        .find(|(n, _)| **n == shared.name)
        .map_or(PublicKey([0; 32]), |(_, k)| k);
    let view = quorum_view(&validators, peers, &me);
    let live = shared.health.lock().map(|h| h.liveness.clone()).unwrap_or_default();
    LivenessStatus::new(view, &live, height, Instant::now())
}

/// `GET /health/live`: 200 while the process serves requests.
pub(super) async fn live() -> Response {
    Json(json!({ "live": true })).into_response()
}

/// `GET /health/ready`: 200 `{"ready": true, ..}` or 503 with `error` (every reason)
/// and `code` `not_ready`, plus the same checks.
pub(super) async fn ready(State(app): State<AppState>) -> Response {
    let s = &app.shared;
    let mut reasons: Vec<String> = Vec::new();
    let (height, in_force) = match app.ledger() {
        Ok(l) => (l.height().0, Some(l.next_membership())),
        Err(e) => {
            reasons.push(format!("store: {}", e.error));
            (s.height().0, None)
        }
    };
    let peers = s.peers.lock().map(|p| p.clone()).unwrap_or_default();
    let halted = s.health.lock().ok().and_then(|h| h.halt.clone());
    let live = in_force.as_ref().map(|m| liveness(s, m, &peers, height));
    if let Some(l) = &live {
        if !l.quorum {
            reasons.push(format!(
                "quorum lost: {} of the {} validators needed are connected (missing: {})",
                l.validators_connected,
                l.validators_needed,
                l.validators_missing.join(", ")
            ));
        }
        if l.catching_up {
            reasons.push(format!("catching up: at height {height} of {} known", l.best_known_height));
        }
    }
    if let Some(h) = &halted {
        reasons.push(format!("halted at height {}: {}", h.height, h.reason));
    }
    if !s.disk.accepting() {
        reasons.push(format!("disk low: {} MiB free, new transactions refused", s.disk.free_bytes() / (1024 * 1024)));
    }
    let checks = json!({
        "store": in_force.is_some(),
        "quorum": live.as_ref().is_some_and(|l| l.quorum),
        "halted": halted.is_some(),
        "catching_up": live.as_ref().is_some_and(|l| l.catching_up),
        "disk_ok": s.disk.accepting(),
    });
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({ "ready": true, "height": height, "checks": checks, "liveness": live }))).into_response()
    } else {
        let body = json!({
            "ready": false,
            "error": format!("node {} is not ready: {}", s.name, reasons.join("; ")),
            "code": "not_ready",
            "height": height,
            "checks": checks,
            "liveness": live,
        });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}
