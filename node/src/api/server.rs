//! The API's HTTP/1 server: an accept loop with a cap on connections, and every
//! wait on a client bounded.
//!
//! - **Cap.** At most `max_connections` connections are served (derived at start
//!   from the descriptor limit, `crate::fdlimit`). A connection beyond the cap
//!   closes the open connection that has waited longest on its client
//!   ([`Conns::admit`]); if every connection has a request in progress, it is
//!   answered 503 `too_many_connections` and closed at once. The listener keeps
//!   accepting, so the kernel's backlog never fills with clients nobody will see.
//! - **Timeouts.** A new connection's first request head must be complete within
//!   the header timeout, the next head after an answer within the idle timeout
//!   (checked every [`SWEEP_INTERVAL`]); a body within the body timeout (in the
//!   body reader, answered 408). A request head is at most [`MAX_HEAD_BYTES`].
//!   An answer the client stops taking (no byte of it accepted by the socket for
//!   [`WRITE_STALL`]: a client that pipelines requests and never reads, or reads
//!   nothing of a large answer) closes the connection ([`StallGuard`]): else its
//!   request would stay in progress, and a few thousand such clients would hold
//!   every connection slot.
//! - **Shutdown.** Stop accepting, close the connections waiting on their client,
//!   let requests in progress finish (long polls are woken) for at most
//!   [`SHUTDOWN_GRACE`], then close whatever is left.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use super::body::ConnHandle;
use super::conns::{Admit, ConnId, Conns};
use crate::config::HttpConfig;
use crate::metrics::Metrics;

/// How often waiting connections are checked against the header and idle
/// timeouts: the timeouts are kept to within this.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// Longest the socket may refuse every byte of an answer before the connection
/// is closed.
pub const WRITE_STALL: Duration = Duration::from_secs(30);

/// A TCP stream whose writes fail (`TimedOut`) once the socket has accepted none
/// of our bytes for `stall`; reads are untouched (their waits are bounded by the
/// header, idle and body timeouts). Linux wakes a writer when a third or so of
/// the send buffer is free, so with [`WRITE_STALL`] only a client reading less
/// than about a tenth of a megabyte per 30 s is cut off.
pub struct StallGuard {
    inner: TcpStream,
    stall: Duration,
    /// Set when a write first found the socket full; cleared by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl StallGuard {
    pub fn new(inner: TcpStream, stall: Duration) -> StallGuard {
        StallGuard { inner, stall, stalled: None }
    }

    /// Called when a write or flush is pending: starts the stall clock, or fails
    /// once it ran out.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let stall = self.stall;
        let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client took no byte of the answer for {} s", stall.as_secs_f64()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(&mut self, ready: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        self.stalled = None;
        ready
    }
}

impl tokio::io::AsyncRead for StallGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for StallGuard {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            ready => self.progress(ready),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            ready => self.progress(ready),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending(cx),
            ready => self.progress(ready),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Largest request head (request line and headers). It bounds hyper's read
/// buffer (8 KiB is its minimum), and so the memory of every connection that is
/// sending a head; a larger head is refused by hyper with an empty 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Length of the listening socket's accept queue (the kernel caps it at
/// `net.core.somaxconn`, 4096 by default). A connection whose handshake completes
/// while the queue is full is left half-open by the kernel and retried for up to a
/// minute; a long queue absorbs a burst of connections until the accept loop,
/// which never pauses, takes them.
pub const LISTEN_BACKLOG: u32 = 4096;

/// How long a shutdown lets requests in progress finish before closing them.
/// Less than the 5 s the node waits for the API task.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Wait after `accept` fails for lack of descriptors or memory before trying
/// again: retrying at once would spin a core while nothing can change.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The server's limits, from `[http]` of the config with the connection cap
/// already derived from the descriptor limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeLimits {
    pub max_connections: usize,
    /// Long polls (`GET /v1/wait`) held at once: [`long_poll_cap`] of the
    /// connection cap, so that waiting clients cannot hold every connection.
    pub max_long_polls: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub max_body_bytes_in_flight: usize,
    /// Half-width of the accepted window of signed requests' timestamps (docs/access.md).
    pub request_skew_ms: u64,
}

impl ServeLimits {
    pub fn new(http: &HttpConfig, max_connections: usize) -> ServeLimits {
        ServeLimits {
            max_connections,
            max_long_polls: long_poll_cap(max_connections),
            header_timeout: Duration::from_millis(http.header_timeout_ms),
            idle_timeout: Duration::from_millis(http.idle_timeout_ms),
            body_timeout: Duration::from_millis(http.body_timeout_ms),
            max_body_bytes_in_flight: http.max_body_bytes_in_flight,
            request_skew_ms: http.request_skew_ms,
        }
    }
}

/// Long polls a server with `max_connections` holds at once: half of them (at
/// least one). A long poll keeps its connection busy for up to 30 s and the cap
/// never closes a busy connection, so without this a client opening enough of
/// them kept every other client at 503 `too_many_connections`; with it, the other
/// half stays for requests that end in milliseconds.
pub fn long_poll_cap(max_connections: usize) -> usize {
    (max_connections / 2).max(1)
}

impl Default for ServeLimits {
    fn default() -> Self {
        let http = HttpConfig::default();
        ServeLimits::new(&http, http.max_connections)
    }
}

/// Binds the API's listening socket (address reuse on, [`LISTEN_BACKLOG`]).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The answer to a connection refused at the cap, written straight to the socket.
fn refusal(max_connections: usize) -> Vec<u8> {
    let body = serde_json::json!({
        "error": format!(
            "the node is at its limit of {max_connections} API connections, all with a request in progress \
             (none could make room for this one); retry later"
        ),
        "code": "too_many_connections",
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Whether an `accept` error means the process is out of descriptors or memory.
fn is_resource_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM)
    )
}

/// Serves `router` on `listener` until `shutdown` completes (see the module docs).
/// `stopping` is set when the shutdown begins.
pub async fn run(
    listener: TcpListener,
    router: Router,
    conns: Arc<Conns>,
    limits: &ServeLimits,
    metrics: &Metrics,
    stopping: Arc<watch::Sender<bool>>,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        // A backstop only: the sweep closes connections at the header and idle
        // timeouts; hyper's timer runs from the same moments.
        .header_read_timeout(limits.header_timeout.max(limits.idle_timeout) + SWEEP_INTERVAL * 2)
        .max_buf_size(MAX_HEAD_BYTES);
    let refused_answer = refusal(conns.max_connections());
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_resource_warning: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            _ = sweep.tick() => {
                let cut = conns.expire(Instant::now(), limits.header_timeout, limits.idle_timeout);
                metrics.api_connections_timed_out.inc_by(cut as u64);
                let (open, closing) = conns.counts();
                metrics.api_connections.set((open + closing) as i64);
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match conns.admit(Instant::now()) {
                    Admit::Open { id, kill, evicted } => {
                        if evicted {
                            metrics.api_connections_evicted.inc();
                        }
                        let _ = stream.set_nodelay(true);
                        let task = serve_connection(
                            stream, id, kill, conns.clone(), router.clone(), http.clone(), stopping.subscribe(),
                        );
                        tokio::spawn(task);
                    }
                    Admit::AllBusy | Admit::Closing => {
                        metrics.api_connections_refused.inc();
                        // Best effort: the socket's send buffer is empty, so this
                        // does not block; the socket is closed right after.
                        let _ = stream.try_write(&refused_answer);
                    }
                },
                Err(e) if is_resource_error(&e) => {
                    if last_resource_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "API cannot accept connections: out of descriptors or memory");
                        last_resource_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
                Err(e) => tracing::debug!(error = %e, "API accept failed"),
            },
        }
    }
    drop(listener);
    // Connections waiting on their client have nothing in progress: close them
    // now. The others finish their request (long polls are woken) and close.
    let idle = conns.kill_waiting();
    stopping.send_replace(true);
    let (open, _) = conns.counts();
    tracing::info!(closed = idle, open, "HTTP API stopping: no new connections, finishing requests in progress");
    if !drained(&conns, SHUTDOWN_GRACE).await {
        let (open, _) = conns.counts();
        tracing::warn!(open, grace_ms = SHUTDOWN_GRACE.as_millis() as u64, "closing API connections still open");
        conns.kill_all();
        drained(&conns, Duration::from_secs(1)).await;
    }
    metrics.api_connections.set(0);
}

/// Waits (bounded) until no connection is left; true if none is.
async fn drained(conns: &Conns, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if conns.counts() == (0, 0) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One connection, until it ends, is told to close, or is drained at shutdown.
async fn serve_connection(
    stream: TcpStream,
    id: ConnId,
    kill: Arc<Notify>,
    conns: Arc<Conns>,
    router: Router,
    http: http1::Builder,
    mut stopping: watch::Receiver<bool>,
) {
    let handle = ConnHandle { conns: conns.clone(), id };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let guard = RequestGuard::start(handle.clone());
        req.extensions_mut().insert(handle.clone());
        let mut router = router.clone();
        async move {
            let resp = match tower_service::Service::call(&mut router, req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(resp.map(|inner| Body::new(GuardedBody { inner, _guard: guard })))
        }
    });
    let conn = http.serve_connection(TokioIo::new(StallGuard::new(stream, WRITE_STALL)), service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "API connection ended with an error");
                }
                break;
            }
            _ = kill.notified() => break,
            _ = stopping.wait_for(|s| *s), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
    conns.closed(id);
}

/// A request in progress on its connection, from its complete head until its
/// answer has been handed over (the answer's body is dropped).
struct RequestGuard(ConnHandle);

impl RequestGuard {
    fn start(conn: ConnHandle) -> RequestGuard {
        conn.conns.request_started(conn.id);
        RequestGuard(conn)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.conns.request_ended(self.0.id, Instant::now());
    }
}

/// An answer's body that ends its request's [`RequestGuard`] when dropped.
struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    #[tokio::test]
    async fn a_client_that_takes_no_byte_fails_the_write_and_a_slow_reader_does_not() {
        // A client that reads nothing: the socket buffers fill, then the write
        // stalls and fails within the stall time.
        let (server, client) = pair().await;
        let mut guarded = StallGuard::new(server, Duration::from_millis(300));
        let chunk = vec![7u8; 64 * 1024];
        let started = Instant::now();
        let err = loop {
            match tokio::time::timeout(Duration::from_secs(30), guarded.write_all(&chunk)).await {
                Ok(Ok(())) => assert!(started.elapsed() < Duration::from_secs(30), "writes never stalled"),
                Ok(Err(e)) => break e,
                Err(_) => panic!("the stalled write neither failed nor finished in 30 s"),
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        drop(client);

        // A client that reads in pauses but steadily (up to 1 MiB every 50 ms, so
        // the kernel wakes the writer — it waits for a third of the send buffer to
        // free — well within the 1 s stall): every write completes.
        let (server, mut client) = pair().await;
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 1024 * 1024];
            let mut total = 0usize;
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        let mut guarded = StallGuard::new(server, Duration::from_secs(1));
        let total = 8 * 1024 * 1024;
        let mut sent = 0;
        while sent < total {
            guarded.write_all(&chunk).await.expect("a steady reader never trips the stall");
            sent += chunk.len();
        }
        guarded.shutdown().await.unwrap();
        drop(guarded);
        assert_eq!(reader.await.unwrap(), total);
    }
}
