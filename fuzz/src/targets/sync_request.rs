//! A block-sync request (`wire::decode_sync_request`).
use crate::{assert_canonical, assert_within};
use yrd_node::wire::{decode_sync_request, SyncRequest, MAX_SYNC_BLOCKS, MAX_SYNC_REQUEST_BYTES};

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let Ok(req) = decode_sync_request(data) else { return };
    assert_within("sync request", data, MAX_SYNC_REQUEST_BYTES);
    assert_canonical("sync request", &req, data);
    let SyncRequest::Blocks { max, .. } = req;
    assert!((1..=MAX_SYNC_BLOCKS).contains(&max), "sync request for {max} blocks accepted");
}
