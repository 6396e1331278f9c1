//! Peers' names for the logs: the genesis name (agency) of each key allowed to
//! connect, so an operator reads `agency=jiangsu` next to the peer id.

use std::collections::HashMap;

use libp2p::PeerId;

/// What a peer with no known name is logged as.
pub const UNKNOWN: &str = "?";

#[derive(Debug, Default, Clone)]
pub struct PeerNames(HashMap<PeerId, String>);

impl PeerNames {
    /// From `(ed25519 public key, name)` pairs; keys that are not valid ed25519
    /// keys are skipped (they cannot connect either).
    pub fn new(names: &[([u8; 32], String)]) -> PeerNames {
        PeerNames(names.iter().filter_map(|(k, n)| Some((super::peer_id_from_ed25519(k).ok()?, n.clone()))).collect())
    }

    /// Adds (or renames) keys, keeping the others: a member removed by governance
    /// is still named in the lines about its disconnection.
    pub fn add(&mut self, names: &[([u8; 32], String)]) {
        self.0.extend(PeerNames::new(names).0);
    }

    /// The peer's name, or [`UNKNOWN`].
    pub fn of(&self, peer: &PeerId) -> &str {
        self.0.get(peer).map(String::as_str).unwrap_or(UNKNOWN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_known_key_and_marks_an_unknown_one() {
        let key = [7u8; 32];
        let seed = ed25519_dalek::SigningKey::from_bytes(&key);
        let public = seed.verifying_key().to_bytes();
        let names = PeerNames::new(&[(public, "jiangsu".into())]);
        let peer = super::super::peer_id_from_ed25519(&public).unwrap();
        assert_eq!(names.of(&peer), "jiangsu");
        assert_eq!(names.of(&PeerId::random()), UNKNOWN);
    }
}
