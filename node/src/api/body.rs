//! Reading a request body within the server's limits: the endpoint's size limit
//! (checked against `Content-Length` before a byte is read), a budget of body
//! bytes in flight over all connections (reserved before reading, held until the
//! handler is done with what it parsed), and a deadline for the whole body.
//!
//! While the handler waits for body bytes, its connection counts as waiting on
//! its client ([`Conns::body_waiting`]), so a body that stalls can be evicted like
//! an idle connection; every chunk that arrives renews its place in the queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{header, StatusCode};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::conns::{ConnId, Conns};
use super::ApiError;

/// Largest configurable budget: what a tokio semaphore can count.
pub const MAX_BODY_BYTES_IN_FLIGHT_LIMIT: usize = Semaphore::MAX_PERMITS;

/// Most bytes of a body over its endpoint's limit that are read and thrown away
/// (within the body deadline) before answering 413. A client usually sends its
/// whole body before reading the answer; closing on it mid-send would show it a
/// broken connection instead of the reason. Discarded bytes cost no memory. A
/// longer body is answered at once and its connection closed. Twice the largest
/// body any endpoint accepts, so a client that overshoots a limit by a little, or
/// posts a batch to the single endpoint, is told why.
pub const DRAIN_MAX_BYTES: usize = 2 * super::MAX_BATCH_BODY_BYTES;

/// Bodies from this size up get a buffer of at least [`OWN_MAPPING_BYTES`].
pub const LARGE_BODY_BYTES: usize = 1 << 20;

/// Capacity given to the buffer of a large body, so that the allocator maps it on
/// its own and unmaps it when the body is dropped. glibc's malloc serves requests
/// below its (adaptive) mmap threshold from per-thread arenas, which keep freed
/// memory: the node's RSS would then follow each arena's peak of bodies rather
/// than the bodies in flight (measured: 195 MB instead of 79 MB with 64 clients
/// posting 16 MB bodies). The threshold never exceeds 32 MiB on 64-bit, so a
/// request this large is always mapped on its own. Only the pages written are
/// resident; the rest is address space.
pub const OWN_MAPPING_BYTES: usize = 32 << 20;

/// The connection a request arrived on; set as a request extension by the
/// server (absent when the router is driven some other way, e.g. in tests).
#[derive(Clone)]
pub struct ConnHandle {
    pub conns: Arc<Conns>,
    pub id: ConnId,
}

/// Body limits shared by all requests of one server.
pub struct BodyLimits {
    /// Time from the start of reading to the whole body.
    pub timeout: Duration,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
}

impl BodyLimits {
    pub fn new(timeout: Duration, budget_bytes: usize) -> BodyLimits {
        let budget_bytes = budget_bytes.min(MAX_BODY_BYTES_IN_FLIGHT_LIMIT);
        BodyLimits { timeout, budget: Arc::new(Semaphore::new(budget_bytes)), budget_bytes }
    }

    /// Bytes of the budget not reserved now.
    pub fn available(&self) -> usize {
        self.budget.available_permits()
    }

    pub fn budget_bytes(&self) -> usize {
        self.budget_bytes
    }
}

/// A body read whole, with its share of the budget (released on drop).
pub struct ReadBody {
    pub bytes: Vec<u8>,
    pub permit: Option<OwnedSemaphorePermit>,
}

/// Marks the connection as waiting for body bytes while alive.
struct BodyWait<'a>(Option<&'a ConnHandle>);

impl<'a> BodyWait<'a> {
    fn start(conn: Option<&'a ConnHandle>) -> BodyWait<'a> {
        if let Some(c) = conn {
            c.conns.body_waiting(c.id, Instant::now());
        }
        BodyWait(conn)
    }
}

impl Drop for BodyWait<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.0 {
            c.conns.body_done(c.id);
        }
    }
}

fn too_large(max_bytes: usize, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request body {what} is over this endpoint's limit of {max_bytes} bytes"),
    )
}

/// Reads the body of `req`, at most `max_bytes`, within `limits`.
pub async fn read(req: Request, max_bytes: usize, limits: &BodyLimits) -> Result<ReadBody, ApiError> {
    let conn = req.extensions().get::<ConnHandle>().cloned();
    let announced = content_length(&req)?;
    let deadline = tokio::time::Instant::now() + limits.timeout;
    if let Some(n) = announced.filter(|n| *n > max_bytes as u64) {
        if n <= DRAIN_MAX_BYTES as u64 {
            drain(req.into_body().into_data_stream(), 0, DRAIN_MAX_BYTES, deadline, conn.as_ref()).await;
        }
        return Err(too_large(max_bytes, &format!("of {n} bytes (Content-Length)")));
    }
    // A body without a length (chunked) reserves the endpoint's limit.
    let reserve = announced.map_or(max_bytes, |n| n as usize);
    let permit = reserve_budget(limits, reserve)?;
    let capacity = if reserve >= LARGE_BODY_BYTES { reserve.max(OWN_MAPPING_BYTES) } else { reserve };
    let mut bytes = Vec::with_capacity(capacity);
    let mut stream = req.into_body().into_data_stream();
    loop {
        let next = {
            let _waiting = BodyWait::start(conn.as_ref());
            tokio::time::timeout_at(deadline, stream.next()).await
        };
        match next {
            Err(_) => return Err(timed_out(limits, bytes.len(), announced)),
            Ok(None) => return Ok(ReadBody { bytes, permit }),
            Ok(Some(Err(e))) => {
                return Err(ApiError::bad_request("bad_body", format!("cannot read the request body: {e}")));
            }
            Ok(Some(Ok(chunk))) if bytes.len() + chunk.len() > reserve => {
                let seen = bytes.len() + chunk.len();
                drop(bytes);
                drain(stream, seen, DRAIN_MAX_BYTES, deadline, conn.as_ref()).await;
                return Err(too_large(max_bytes, "that arrived"));
            }
            Ok(Some(Ok(chunk))) => bytes.extend_from_slice(&chunk),
        }
    }
}

/// The announced body length, if any.
fn content_length(req: &Request) -> Result<Option<u64>, ApiError> {
    let Some(v) = req.headers().get(header::CONTENT_LENGTH) else { return Ok(None) };
    v.to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("bad_body", "Content-Length is not a number"))
}

/// Takes `bytes` from the in-flight budget, or refuses with 503 `busy`.
fn reserve_budget(limits: &BodyLimits, bytes: usize) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
    if bytes == 0 {
        return Ok(None);
    }
    let busy = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "the node is already receiving {} bytes of request bodies (its limit is {}); \
                 this body of {bytes} bytes does not fit now, retry later",
                limits.budget_bytes - limits.budget.available_permits(),
                limits.budget_bytes
            ),
        )
    };
    let n = u32::try_from(bytes).map_err(|_| busy())?;
    limits.budget.clone().try_acquire_many_owned(n).map(Some).map_err(|_| busy())
}

fn timed_out(limits: &BodyLimits, arrived: usize, announced: Option<u64>) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        format!(
            "request body not complete {} ms after its head ({arrived} of {} bytes arrived)",
            limits.timeout.as_millis(),
            announced.map_or_else(|| "unknown".to_string(), |n| n.to_string())
        ),
    )
}

/// Reads and discards what is left of a refused body, up to `max_bytes` in all
/// (`seen` already read) and until `deadline`. True when the body ended within
/// both (the connection can carry the next request).
pub(super) async fn drain(
    mut stream: axum::body::BodyDataStream,
    mut seen: usize,
    max_bytes: usize,
    deadline: tokio::time::Instant,
    conn: Option<&ConnHandle>,
) -> bool {
    while seen <= max_bytes {
        let next = {
            let _waiting = BodyWait::start(conn);
            tokio::time::timeout_at(deadline, stream.next()).await
        };
        match next {
            Ok(Some(Ok(chunk))) => seen += chunk.len(),
            Ok(None) => return true,
            _ => return false,
        }
    }
    false
}
