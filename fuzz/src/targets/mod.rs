//! The body of every fuzz target, one module each, as a plain function of the
//! input: the libFuzzer binaries (`fuzz/fuzz_targets/`) call them, and so does
//! the stable smoke test (`tests/tests/fuzz_smoke.rs`), which runs every target
//! on its seed corpus and seeded mutations of it in the ordinary test suite.
//! A failed property panics.

pub mod api_auth;
pub mod api_batch;
pub mod api_submit;
pub mod block;
pub mod consensus_msg;
pub mod genesis_json;
pub mod header;
pub mod hello;
pub mod merkle;
pub mod proof_file;
pub mod sig_rule;
pub mod sync_request;
pub mod sync_response;
pub mod tx;
pub mod tx_batch;
pub mod tx_sig_batch;

/// One execution of a target on one input; panics when a property fails.
pub type Run = fn(&[u8]);

/// Every target by name, as `fuzz/Cargo.toml` names its binaries.
pub const ALL: &[(&str, Run)] = &[
    ("api_auth", api_auth::run),
    ("api_batch", api_batch::run),
    ("api_submit", api_submit::run),
    ("block", block::run),
    ("consensus_msg", consensus_msg::run),
    ("genesis_json", genesis_json::run),
    ("header", header::run),
    ("hello", hello::run),
    ("merkle", merkle::run),
    ("proof_file", proof_file::run),
    ("sig_rule", sig_rule::run),
    ("sync_request", sync_request::run),
    ("sync_response", sync_response::run),
    ("tx", tx::run),
    ("tx_batch", tx_batch::run),
    ("tx_sig_batch", tx_sig_batch::run),
];
