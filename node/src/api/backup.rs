//! `GET /v1/backup/blocks?from=H&max=N`: certified blocks as stored, for `yrd backup`
//! from a running node (docs/node.md, "Backup and restore").
//!
//! The answer is the block-sync response (`wire::SyncResponse::Blocks`: each block's
//! canonical bytes with its commit certificate), at most [`MAX_BACKUP_BLOCKS`] blocks
//! and about [`wire::SYNC_RESPONSE_SOFT_BYTES`] per request, read under the ledger's
//! read lock (so never half a commit). Committed blocks never change, so the blocks
//! `1..=H` fetched in several requests are the chain as of height H: a consistent
//! backup without stopping the node. Blocks carry every record, restricted ones
//! included (docs/access.md), so the route answers only a request signed with an
//! agency's admin key — the operators who run validators and hold every block
//! anyway; anyone else gets 403 `restricted`, like sync, which never reaches a
//! non-member.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use yrd_consensus::codec;
use yrd_consensus::types::Height;

use super::{ApiError, ApiQuery, ApiResult, AppState, Signed};
use crate::wire::{self, SyncResponse};

/// Most blocks in one answer (the sync protocol's own cap).
pub const MAX_BACKUP_BLOCKS: u32 = wire::MAX_SYNC_BLOCKS;

#[derive(Debug, Deserialize)]
pub(super) struct BackupQuery {
    from: u64,
    max: Option<u32>,
}

pub(super) async fn blocks(
    State(app): State<AppState>,
    Signed(caller): Signed,
    ApiQuery(q): ApiQuery<BackupQuery>,
) -> ApiResult<Response> {
    if !matches!(caller.viewer, yrd_ledger::access::Viewer::Agency { .. }) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "restricted",
            "a backup holds every record, restricted ones included: sign the request with an agency's admin key \
             (yrd backup --key ADMIN_KEY)",
        ));
    }
    if q.from == 0 {
        return Err(ApiError::bad_request("bad_query", "from must be at least 1 (the first block)"));
    }
    let max = q.max.unwrap_or(MAX_BACKUP_BLOCKS).clamp(1, MAX_BACKUP_BLOCKS);
    let bytes = app
        .read(move |_, ledger| {
            let mut out = Vec::new();
            let mut size = 0usize;
            let mut h = Height(q.from);
            while h <= ledger.height() && out.len() < max as usize && size < wire::SYNC_RESPONSE_SOFT_BYTES {
                let (Some(block), Some(cert)) = (ledger.block_bytes(h).map_err(ApiError::store)?, ledger.certificate(h).map_err(ApiError::store)?)
                else {
                    return Err(ApiError::internal(format!("block {} or its certificate is missing from the store", h.0)));
                };
                size += block.len();
                out.push((block, cert));
                h = h.next();
            }
            codec::encode(&SyncResponse::Blocks(out)).map_err(|e| ApiError::internal(format!("cannot encode blocks: {e}")))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
