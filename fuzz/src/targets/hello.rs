//! The handshake a peer sends on connecting (`net::hello::Hello::decode`).
use crate::assert_within;
use yrd_node::net::hello::{Hello, MAX_HELLO_BYTES};

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let Ok(hello) = Hello::decode(data) else { return };
    assert_within("hello", data, MAX_HELLO_BYTES);
    assert!(hello.encode() == data, "decode then encode changed the hello: {hello:?}");
    let _ = hello.chain();
    let _ = hello.same_chain(&hello);
}
