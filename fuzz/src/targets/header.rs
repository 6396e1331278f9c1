//! A block header (`BlockHeader::decode`: proof files and stored headers).
use crate::{assert_canonical, assert_within};
use yrd_ledger::block::{BlockHeader, MAX_HEADER_BYTES};

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let Ok(header) = BlockHeader::decode(data) else { return };
    assert_within("block header", data, MAX_HEADER_BYTES);
    assert_canonical("block header", &header, data);
    let _ = header.hash().expect("a decoded header has a hash");
    let _ = header.first_log_index();
}
