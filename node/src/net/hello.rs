//! The hello exchange: on every new peer, each side sends its chain id, chain name
//! and process instance over a protocol whose name does not depend on the chain
//! (`/yrd/hello/1`), so that a peer started with another genesis is told apart —
//! and reported with both chain ids — instead of staying connected and silently
//! useless (the gossip and sync protocols carry the chain in their names, so such a
//! peer only "does not speak this chain's gossipsub"). A peer counts as connected
//! (`NetEvent::PeerConnected`, `yrd_peers`, `status`) only once its hello names our
//! chain.
//!
//! The instance is random per process: two live connections from one peer id with
//! two instances are two processes running with the same key.

use std::fmt;

/// Protocol name, the same on every chain.
pub const HELLO_PROTOCOL: &str = "/yrd/hello/1";
/// First line of every hello.
const MAGIC: &str = "yrd-hello/1";
/// Largest hello accepted (the chain name is at most 64 characters).
pub const MAX_HELLO_BYTES: usize = 512;

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The chain id, hex.
    pub chain_id: String,
    pub chain_name: String,
    /// Random per process (hex).
    pub instance: String,
    /// Something the receiver's operator must read (e.g. "another process with your
    /// key is connected to me"); only in answers.
    pub warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloError(pub String);

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Hello {
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("{MAGIC}\n{}\n{}\n{}", self.chain_id, self.chain_name, self.instance);
        if let Some(w) = &self.warning {
            s.push('\n');
            s.push_str(w);
        }
        s.into_bytes()
    }

    /// Parses a hello a peer sent; never panics on what it sent.
    pub fn decode(bytes: &[u8]) -> Result<Hello, HelloError> {
        if bytes.len() > MAX_HELLO_BYTES {
            return Err(HelloError(format!("hello of {} bytes, more than {MAX_HELLO_BYTES}", bytes.len())));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| HelloError("hello is not UTF-8".into()))?;
        // At most five lines: the warning is the rest, so a sixth line makes it
        // hold a newline and be refused below (found by the `hello` fuzz target:
        // extra lines were dropped, so two different hellos read the same).
        let mut lines = text.splitn(5, '\n');
        if lines.next() != Some(MAGIC) {
            return Err(HelloError("not a yrd hello".into()));
        }
        let mut field = |what: &str| lines.next().map(str::to_string).ok_or_else(|| HelloError(format!("hello lacks its {what}")));
        let chain_id = field("chain id")?;
        let chain_name = field("chain name")?;
        let instance = field("instance")?;
        let warning = lines.next().map(str::to_string);
        let printable = |s: &str| s.chars().all(|c| !c.is_control());
        if chain_id.is_empty() || !printable(&chain_id) || !printable(&chain_name) || !printable(&instance) || !warning.as_deref().is_none_or(printable) {
            return Err(HelloError("hello has an empty chain id or control characters".into()));
        }
        Ok(Hello { chain_id, chain_name, instance, warning })
    }

    /// Whether `other` names the same chain. A network configured with only its chain
    /// tag (the first 16 hex digits of the chain id, as in the protocol names) sends
    /// the tag, so a tag and a full id match when one begins with the other; two
    /// different chains differ in their first 16 hex digits but with probability 2^-64.
    pub fn same_chain(&self, other: &Hello) -> bool {
        self.chain_id.starts_with(&other.chain_id) || other.chain_id.starts_with(&self.chain_id)
    }

    /// `name id` for logs.
    pub fn chain(&self) -> String {
        if self.chain_name.is_empty() {
            self.chain_id.clone()
        } else {
            format!("{} {}", self.chain_name, self.chain_id)
        }
    }
}

/// A random instance id for this process.
pub fn new_instance() -> String {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    hex::encode(b)
}

/// The WARN text for a peer on another chain: both chain ids and the remedy.
pub fn wrong_chain_message(ours: &Hello, theirs: &Hello) -> String {
    format!(
        "peer is on another chain: it runs {} but this node runs {}; one of the two was started with another genesis \
         file. Give every node the same genesis.json (`yrd genesis inspect genesis.json` prints its chain id) and \
         restart the wrong one; until then the peer is refused",
        theirs.chain(),
        ours.chain()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello { chain_id: "ab".repeat(32), chain_name: "yrd-test".into(), instance: "0102030405060708".into(), warning: None }
    }

    #[test]
    fn round_trips_and_refuses_garbage() {
        let h = hello();
        assert_eq!(Hello::decode(&h.encode()), Ok(h.clone()));
        let w = Hello { warning: Some("two processes".into()), ..hello() };
        assert_eq!(Hello::decode(&w.encode()), Ok(w));
        assert!(Hello::decode(b"").is_err());
        assert!(Hello::decode(b"yrd-hello/1\n").is_err());
        assert!(Hello::decode(&[0xff; 10]).is_err());
        assert!(Hello::decode(&vec![b'a'; MAX_HELLO_BYTES + 1]).is_err());
        assert!(Hello::decode(b"yrd-hello/1\nab\nname\x07\ni").is_err());
    }

    /// Found by the `hello` fuzz target (fuzz/README.md): lines after the
    /// warning were dropped, so the hello read was not the hello sent
    /// (`encode(decode(x)) != x`). A hello has at most five lines.
    #[test]
    fn a_line_after_the_warning_is_refused() {
        let crash = b"yrd-hello/1\nellord-hello/1\nelloyrd-hel/5lq/1\nellolo//\nyrd-hel/5lq/1\nellolo//\n'~\x04";
        assert!(Hello::decode(crash).is_err());
        assert!(Hello::decode(b"yrd-hello/1\nab\nname\ni\nwarning\nmore").is_err());
        let five = b"yrd-hello/1\nab\nname\ni\nwarning";
        assert_eq!(Hello::decode(five).map(|h| h.encode()), Ok(five.to_vec()));
    }

    #[test]
    fn a_tag_matches_its_full_id_and_nothing_else() {
        let full = hello();
        let tag = Hello { chain_id: "ab".repeat(8), ..hello() };
        let other = Hello { chain_id: "cd".repeat(32), ..hello() };
        assert!(full.same_chain(&tag) && tag.same_chain(&full) && full.same_chain(&full));
        assert!(!full.same_chain(&other) && !tag.same_chain(&other));
    }

    #[test]
    fn the_wrong_chain_message_names_both_ids_and_the_remedy() {
        let ours = hello();
        let theirs = Hello { chain_id: "cd".repeat(32), ..hello() };
        let m = wrong_chain_message(&ours, &theirs);
        assert!(m.contains(&"ab".repeat(32)) && m.contains(&"cd".repeat(32)), "{m}");
        assert!(m.contains("same genesis.json"), "{m}");
    }
}
