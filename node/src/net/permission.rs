//! Permissioned connections: a `NetworkBehaviour` that refuses every connection whose
//! remote `PeerId` (authenticated by the noise handshake) is not in the allowed set.
//!
//! It must be the first field of the composed behaviour: a refusal here stops the
//! connection before any other protocol handler is created, so a refused peer is sent
//! nothing — no gossip, no subscriptions, no sync responses.

use std::{
    collections::{HashSet, VecDeque},
    fmt,
    task::{Context, Poll, Waker},
};

use libp2p::{
    core::{transport::PortUse, Endpoint},
    swarm::{
        dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
        THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};

/// A connection this node refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub peer: PeerId,
    /// `true` when the remote dialled us.
    pub inbound: bool,
    /// The remote address, when known.
    pub addr: Option<Multiaddr>,
}

/// The error given to the swarm for a refused connection.
#[derive(Debug)]
pub struct NotAllowed(pub PeerId);

impl fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer {} is not in the allowed set", self.0)
    }
}

impl std::error::Error for NotAllowed {}

pub struct Permission {
    allowed: HashSet<PeerId>,
    /// Allowed peers dropped for misbehaviour, refused until the instant given.
    banned: std::collections::HashMap<PeerId, std::time::Instant>,
    refusals: VecDeque<Refusal>,
    waker: Option<Waker>,
}

impl Permission {
    pub fn new(allowed: HashSet<PeerId>) -> Self {
        Permission {
            allowed,
            banned: std::collections::HashMap::new(),
            refusals: VecDeque::new(),
            waker: None,
        }
    }

    /// Replaces the allowed set (the membership changed). Returns the peers no
    /// longer allowed.
    pub fn set_allowed(&mut self, allowed: HashSet<PeerId>) -> Vec<PeerId> {
        let gone = self.allowed.difference(&allowed).copied().collect();
        self.allowed = allowed;
        gone
    }

    /// Refuses connections of `peer` until `until` (misbehaviour).
    pub fn ban(&mut self, peer: PeerId, until: std::time::Instant) {
        self.banned.insert(peer, until);
    }

    fn is_banned(&mut self, peer: &PeerId) -> bool {
        match self.banned.get(peer) {
            Some(until) if *until > std::time::Instant::now() => true,
            Some(_) => {
                self.banned.remove(peer);
                false
            }
            None => false,
        }
    }

    fn check(
        &mut self,
        peer: PeerId,
        inbound: bool,
        addr: Option<&Multiaddr>,
    ) -> Result<(), ConnectionDenied> {
        if self.is_banned(&peer) {
            return Err(ConnectionDenied::new(NotAllowed(peer)));
        }
        if self.allowed.contains(&peer) {
            return Ok(());
        }
        // Bounded: the swarm task drains these on every poll.
        if self.refusals.len() < 1024 {
            self.refusals.push_back(Refusal {
                peer,
                inbound,
                addr: addr.cloned(),
            });
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        Err(ConnectionDenied::new(NotAllowed(peer)))
    }
}

impl NetworkBehaviour for Permission {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Refusal;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(peer, true, Some(remote))?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        addrs: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.check(peer, false, addrs.first())?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(peer, false, Some(addr))?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(r) = self.refusals.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(r));
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
