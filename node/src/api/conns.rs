//! Bookkeeping of the API's open connections: which ones wait on their client and
//! since when, and which have a request being worked on.
//!
//! A connection *waits on its client* while it has no complete request head (just
//! opened, or kept alive after an answer) and while its handler waits for body
//! bytes. Such a connection costs the node a descriptor and a buffer and gives
//! nothing back, so it is what gets closed: when it has waited too long
//! ([`Conns::expire`]: the header and idle timeouts), and when a new connection
//! needs its place at the cap ([`Conns::admit`] closes the one that has waited the
//! longest). A connection with a request in progress (a handler working, a long
//! poll) is never closed here; it ends by itself, bounded by the handler.
//!
//! So attackers holding connections open without finishing requests cannot keep a
//! client out: each new connection, theirs or the client's, pushes out the
//! stalest waiter, and a real client's request is complete a moment after it
//! connects. The structure is pure bookkeeping with the clock passed in; closing
//! is done by the connection's task when its `kill` is notified.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub type ConnId = u64;

/// What a waiting connection waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Its first request head (the header timeout applies).
    Head = 0,
    /// The next request head after an answer (the idle timeout applies).
    NextHead = 1,
    /// More bytes of a request body (the handler's body timeout applies).
    Body = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting(Wait, Instant),
    Busy,
}

struct Entry {
    state: State,
    kill: Arc<Notify>,
}

#[derive(Default)]
struct Inner {
    next_id: ConnId,
    open: HashMap<ConnId, Entry>,
    /// Waiting connections by what they wait for, ordered by since when.
    waiting: [BTreeSet<(Instant, ConnId)>; 3],
    /// Connections told to close whose task has not ended yet (each still holds
    /// its descriptor).
    closing: usize,
}

impl Inner {
    fn set(&mut self, id: ConnId, state: State) {
        let Some(e) = self.open.get_mut(&id) else { return };
        if let State::Waiting(w, since) = e.state {
            self.waiting[w as usize].remove(&(since, id));
        }
        if let State::Waiting(w, since) = state {
            self.waiting[w as usize].insert((since, id));
        }
        e.state = state;
    }

    /// Removes `id` from the open set and tells its task to close it.
    fn kill(&mut self, id: ConnId) {
        self.set(id, State::Busy);
        if let Some(e) = self.open.remove(&id) {
            self.closing += 1;
            e.kill.notify_one();
        }
    }

    /// The connection that has waited on its client the longest.
    fn stalest(&self) -> Option<ConnId> {
        self.waiting.iter().filter_map(|s| s.first()).min().map(|&(_, id)| id)
    }
}

/// Outcome of [`Conns::admit`].
#[derive(Debug)]
pub enum Admit {
    /// Serve it; close it when `kill` is notified. `evicted` is true when a
    /// waiting connection was closed to make room.
    Open { id: ConnId, kill: Arc<Notify>, evicted: bool },
    /// Every connection has a request in progress: answer 503 and close.
    AllBusy,
    /// Too many connections are still being closed: close this one at once.
    Closing,
}

/// The open connections of one API server.
pub struct Conns {
    inner: Mutex<Inner>,
    max_connections: usize,
    closing_slack: usize,
}

impl Conns {
    /// At most `max_connections` open, plus at most `closing_slack` being closed.
    pub fn new(max_connections: usize, closing_slack: usize) -> Conns {
        Conns { inner: Mutex::new(Inner::default()), max_connections, closing_slack }
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The bookkeeping stays consistent even if a holder panicked: every
        // method leaves it valid before anything can panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection at `now`: room for it, room made by closing the stalest
    /// waiting connection, or no room.
    pub fn admit(&self, now: Instant) -> Admit {
        let mut g = self.lock();
        if g.open.len() + g.closing >= self.max_connections + self.closing_slack {
            return Admit::Closing;
        }
        let mut evicted = false;
        if g.open.len() >= self.max_connections {
            match g.stalest() {
                Some(victim) => {
                    g.kill(victim);
                    evicted = true;
                }
                None => return Admit::AllBusy,
            }
        }
        let id = g.next_id;
        g.next_id += 1;
        let kill = Arc::new(Notify::new());
        g.open.insert(id, Entry { state: State::Busy, kill: kill.clone() });
        g.set(id, State::Waiting(Wait::Head, now));
        Admit::Open { id, kill, evicted }
    }

    /// A request head is complete: the connection is busy until [`Self::request_ended`].
    pub fn request_started(&self, id: ConnId) {
        self.lock().set(id, State::Busy);
    }

    /// The answer went out at `now`: the connection waits for the next request.
    pub fn request_ended(&self, id: ConnId, now: Instant) {
        self.lock().set(id, State::Waiting(Wait::NextHead, now));
    }

    /// The handler waits for body bytes (again) from `now`.
    pub fn body_waiting(&self, id: ConnId, now: Instant) {
        self.lock().set(id, State::Waiting(Wait::Body, now));
    }

    /// The body is complete (or abandoned): the request is being worked on.
    pub fn body_done(&self, id: ConnId) {
        self.lock().set(id, State::Busy);
    }

    /// The connection's task ended (whatever the reason).
    pub fn closed(&self, id: ConnId) {
        let mut g = self.lock();
        if g.open.contains_key(&id) {
            g.set(id, State::Busy);
            g.open.remove(&id);
        } else {
            g.closing = g.closing.saturating_sub(1);
        }
    }

    /// Closes the connections whose first head is not complete `header_timeout`
    /// after they opened, or whose next head is not complete `idle_timeout` after
    /// their last answer. Returns how many.
    pub fn expire(&self, now: Instant, header_timeout: Duration, idle_timeout: Duration) -> usize {
        let mut g = self.lock();
        let mut n = 0;
        for (wait, timeout) in [(Wait::Head, header_timeout), (Wait::NextHead, idle_timeout)] {
            while let Some(&(since, id)) = g.waiting[wait as usize].first() {
                if now.saturating_duration_since(since) < timeout {
                    break;
                }
                g.kill(id);
                n += 1;
            }
        }
        n
    }

    /// Tells every connection that waits on its client to close (start of a
    /// shutdown: nothing is in progress on them). Returns how many.
    pub fn kill_waiting(&self) -> usize {
        let mut g = self.lock();
        let ids: Vec<ConnId> = g.waiting.iter().flat_map(|s| s.iter().map(|&(_, id)| id)).collect();
        for &id in &ids {
            g.kill(id);
        }
        ids.len()
    }

    /// Tells every open connection to close (end of a shutdown's grace period).
    pub fn kill_all(&self) {
        let mut g = self.lock();
        let ids: Vec<ConnId> = g.open.keys().copied().collect();
        for id in ids {
            g.kill(id);
        }
    }

    /// Connections open, and being closed.
    pub fn counts(&self) -> (usize, usize) {
        let g = self.lock();
        (g.open.len(), g.closing)
    }

    /// How many open connections wait for `wait`.
    pub fn waiting(&self, wait: Wait) -> usize {
        self.lock().waiting[wait as usize].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(c: &Conns, now: Instant) -> (ConnId, Arc<Notify>, bool) {
        match c.admit(now) {
            Admit::Open { id, kill, evicted } => (id, kill, evicted),
            other => panic!("not admitted: {other:?}"),
        }
    }

    /// Whether `kill` has been notified (without waiting).
    fn killed(kill: &Notify) -> bool {
        use std::future::Future;
        let fut = kill.notified();
        let mut fut = std::pin::pin!(fut);
        let waker = std::task::Waker::noop();
        fut.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_ready()
    }

    #[test]
    fn at_the_cap_the_connection_that_waited_longest_is_closed() {
        let t = Instant::now();
        let s = |ms| t + Duration::from_millis(ms);
        let c = Conns::new(3, 8);
        let (a, ka, _) = open(&c, s(0));
        let (b, kb, _) = open(&c, s(1));
        let (d, kd, _) = open(&c, s(2));
        // `a` sends a request and gets its answer at 5 ms: it now waits from 5 ms,
        // so `b` (waiting since 1 ms) is the stalest.
        c.request_started(a);
        c.request_ended(a, s(5));
        let (_, ke, evicted) = open(&c, s(6));
        assert!(evicted);
        assert!(killed(&kb) && !killed(&ka) && !killed(&kd) && !killed(&ke));
        assert_eq!(c.counts(), (3, 1));
        // The evicted connection's task ends: nothing is left of it.
        c.closed(b);
        assert_eq!(c.counts(), (3, 0));
        // Next in line: `d` (2 ms), then `a` (5 ms).
        open(&c, s(7));
        assert!(killed(&kd));
        open(&c, s(8));
        assert!(killed(&ka));
        c.closed(d);
        c.closed(a);
        assert_eq!(c.counts(), (3, 0));
    }

    #[test]
    fn busy_connections_are_never_evicted_and_a_full_house_of_them_refuses() {
        let t = Instant::now();
        let c = Conns::new(2, 8);
        let (a, ka, _) = open(&c, t);
        let (b, kb, _) = open(&c, t);
        c.request_started(a);
        c.request_started(b);
        assert!(matches!(c.admit(t), Admit::AllBusy));
        assert!(!killed(&ka) && !killed(&kb));
        // A handler waiting for body bytes waits on its client: evictable.
        c.body_waiting(b, t);
        let (e, _, evicted) = open(&c, t);
        assert!(evicted && killed(&kb) && !killed(&ka));
        c.request_started(e);
        // A body that arrives in time makes it busy again.
        c.body_waiting(a, t);
        c.body_done(a);
        assert!(matches!(c.admit(t), Admit::AllBusy));
    }

    #[test]
    fn a_body_that_keeps_arriving_is_not_the_stalest() {
        let t = Instant::now();
        let s = |ms| t + Duration::from_millis(ms);
        let c = Conns::new(2, 8);
        let (up, kup, _) = open(&c, s(0));
        let (idle, kidle, _) = open(&c, s(1));
        c.request_started(up);
        c.body_waiting(up, s(0));
        // A chunk arrives at 10 ms: the upload now waits from 10 ms.
        c.body_done(up);
        c.body_waiting(up, s(10));
        open(&c, s(11));
        assert!(killed(&kidle) && !killed(&kup));
        c.closed(idle);
    }

    #[test]
    fn closing_connections_count_against_the_descriptor_budget() {
        let t = Instant::now();
        let c = Conns::new(1, 2);
        let (a, _, _) = open(&c, t);
        let (b, _, _) = open(&c, t); // evicts a
        let (_, _, _) = open(&c, t); // evicts b
        assert_eq!(c.counts(), (1, 2));
        // 1 open + 2 closing: the slack is used up until a task ends.
        assert!(matches!(c.admit(t), Admit::Closing));
        c.closed(a);
        assert!(matches!(c.admit(t), Admit::Open { evicted: true, .. }));
        c.closed(b);
    }

    #[test]
    fn header_and_idle_timeouts_close_only_what_waited_too_long() {
        let t = Instant::now();
        let s = |ms| t + Duration::from_millis(ms);
        let c = Conns::new(100, 8);
        let (fresh_old, k1, _) = open(&c, s(0));
        let (_fresh_new, k2, _) = open(&c, s(900));
        let (kept, k3, _) = open(&c, s(0));
        c.request_started(kept);
        c.request_ended(kept, s(100));
        let (busy, k4, _) = open(&c, s(0));
        c.request_started(busy);
        let (body, k5, _) = open(&c, s(0));
        c.request_started(body);
        c.body_waiting(body, s(0));
        // Header timeout 1 s, idle timeout 2 s, at 1.5 s: only `fresh_old`.
        assert_eq!(c.expire(s(1500), Duration::from_secs(1), Duration::from_secs(2)), 1);
        assert!(killed(&k1) && !killed(&k2) && !killed(&k3) && !killed(&k4) && !killed(&k5));
        // At 2.2 s: the kept-alive one (answered at 0.1 s) and the newer fresh one.
        assert_eq!(c.expire(s(2200), Duration::from_secs(1), Duration::from_secs(2)), 2);
        assert!(killed(&k2) && killed(&k3));
        // Busy and body-waiting connections are left to their handler.
        assert_eq!(c.expire(s(60_000), Duration::from_secs(1), Duration::from_secs(2)), 0);
        assert!(!killed(&k4) && !killed(&k5));
        assert_eq!(c.counts(), (2, 3));
        c.closed(fresh_old);
        assert_eq!(c.counts(), (2, 2));
    }

    #[test]
    fn kill_all_and_late_calls_for_closed_connections_are_harmless() {
        let t = Instant::now();
        let c = Conns::new(10, 8);
        let ids: Vec<_> = (0..5).map(|_| open(&c, t)).collect();
        c.request_started(ids[0].0);
        // At the start of a shutdown, only the four waiting on their client.
        assert_eq!(c.kill_waiting(), 4);
        assert!(!killed(&ids[0].1) && ids[1..].iter().all(|(_, k, _)| killed(k)));
        assert_eq!(c.counts(), (1, 4));
        c.kill_all();
        assert!(killed(&ids[0].1));
        assert_eq!(c.counts(), (0, 5));
        // A request guard dropped after its connection was killed.
        c.request_ended(ids[0].0, t);
        c.body_waiting(ids[0].0, t);
        assert_eq!(c.waiting(Wait::NextHead) + c.waiting(Wait::Body), 0);
        for (id, _, _) in &ids {
            c.closed(*id);
        }
        assert_eq!(c.counts(), (0, 0));
    }
}
