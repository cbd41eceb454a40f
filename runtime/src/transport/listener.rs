//! The accept loop of [`Server`](crate::Server) and the [host](crate::host): HTTP/1 with
//! upgrades on every accepted connection, a cap on open connections, a header timeout,
//! and graceful shutdown.

use crate::limits::ServerLimits;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

/// Serves `router` on every connection `listener` accepts, until `stop` is cancelled; then
/// stops accepting, lets each HTTP connection finish the request it is serving (idle ones
/// close at once), and returns once they have. WebSocket sessions are not waited for.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ServerLimits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let conns = Conns::new(limits.max_connections);
    let tracker = tokio_util::task::TaskTracker::new();
    let service = hyper_util::service::TowerToHyperService::new(router);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors (or another resource): make room if a connection that
                // never sent a request can go, and try again shortly.
                tracing::warn!(error = %e, "capwire: accept failed");
                conns.evict_one();
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // RPC messages are small and latency-bound: send them without Nagle's delay.
        let _ = tcp.set_nodelay(true);
        let Some(slot) = conns.admit() else {
            tracing::debug!("capwire: connection refused: max_connections reached");
            drop(tcp);
            continue;
        };
        let peer = tcp.peer_addr().ok();
        let state = slot.state.clone();
        let service = service.clone();
        let stop = stop.clone();
        tracker.spawn(async move {
            let io = TokioIo::new(Tracked {
                io: tcp,
                slot,
                stall: super::guard::WriteStall::new(
                    limits.body_read_timeout,
                    "the client took none of its response within body_read_timeout",
                ),
            });
            let requested = state.clone();
            let service = hyper::service::service_fn(move |mut request: http::Request<_>| {
                requested.mark_requested();
                let extensions = request.extensions_mut();
                extensions.insert(ConnHandle(requested.clone()));
                if let Some(peer) = peer {
                    extensions.insert(axum::extract::ConnectInfo(peer));
                }
                hyper::service::Service::call(&service, request)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(io, service).with_upgrades();
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "capwire: HTTP connection ended");
                        }
                        break;
                    }
                    // Evicted to make room: drop the connection, which closes it.
                    () = state.evicted.cancelled() => break,
                    () = stop.cancelled(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Errors of one connection attempt, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}

/// The open connections of one listener.
struct Conns {
    max: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    /// Open connections, evicted ones excepted.
    open: usize,
    /// Those of them that have not sent a complete request yet, oldest first.
    waiting: BTreeMap<u64, Arc<ConnState>>,
}

/// One connection, as its slot and its service see it.
struct ConnState {
    id: u64,
    conns: Arc<Conns>,
    requested: AtomicBool,
    /// Upgraded to a WebSocket, whose session watches writes itself.
    upgraded: AtomicBool,
    evicted: CancellationToken,
}

/// The connection a request came on, in the request's extensions.
#[derive(Clone)]
pub(crate) struct ConnHandle(Arc<ConnState>);

impl ConnHandle {
    /// The connection is being upgraded to a WebSocket.
    pub(crate) fn upgrading(&self) {
        self.0.upgraded.store(true, Ordering::Release);
    }

    /// Closes the connection (as an eviction does).
    pub(crate) fn close(&self) {
        self.0.evicted.cancel();
    }
}

/// A connection's place among the open ones, given back when dropped (when the socket
/// closes: the slot lives in the socket's wrapper, which an upgrade carries along).
struct Slot {
    state: Arc<ConnState>,
}

impl Conns {
    fn new(max: usize) -> Arc<Conns> {
        Arc::new(Conns {
            max: max.max(1),
            table: Mutex::new(Table::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for a new connection: at the cap, the oldest connection that has not sent a
    /// complete request is evicted to make room; `None` if there is none.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut table = self.lock();
        if table.open >= self.max && !Self::evict_oldest(&mut table) {
            return None;
        }
        let id = table.next_id;
        table.next_id += 1;
        table.open += 1;
        let state = Arc::new(ConnState {
            id,
            conns: self.clone(),
            requested: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            evicted: CancellationToken::new(),
        });
        table.waiting.insert(id, state.clone());
        Some(Slot { state })
    }

    /// Evicts the oldest connection that has not sent a complete request, if any.
    fn evict_one(&self) {
        Self::evict_oldest(&mut self.lock());
    }

    fn evict_oldest(table: &mut Table) -> bool {
        let Some((_, victim)) = table.waiting.pop_first() else {
            return false;
        };
        table.open -= 1;
        victim.evicted.cancel();
        true
    }
}

impl ConnState {
    /// The connection sent a complete request: it is no longer evicted to make room.
    fn mark_requested(&self) {
        if !self.requested.swap(true, Ordering::AcqRel) {
            self.conns.lock().waiting.remove(&self.id);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.state.evicted.is_cancelled() {
            return;
        }
        let mut table = self.state.conns.lock();
        table.open -= 1;
        table.waiting.remove(&self.state.id);
    }
}

/// A socket carrying its connection's slot. Until the connection is upgraded, a write
/// the client has taken nothing of for `stall_limit` fails: a client that stops reading
/// its responses does not hold them (and the connection) forever.
struct Tracked<T> {
    io: T,
    slot: Slot,
    stall: super::guard::WriteStall,
}

impl<T> Tracked<T> {
    fn unstall<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        // An upgraded connection's writes are the WebSocket's to time.
        if self.slot.state.upgraded.load(Ordering::Acquire) {
            self.stall.reset();
            return poll;
        }
        self.stall.check(cx, poll)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.unstall(cx, poll)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.unstall(cx, poll)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_connection_without_a_request_makes_room() {
        let conns = Conns::new(2);
        let a = conns.admit().expect("room");
        let b = conns.admit().expect("room");
        a.state.mark_requested();
        // Full: b (no request yet) goes, a (served a request) stays.
        let c = conns.admit().expect("b makes room");
        assert!(b.state.evicted.is_cancelled() && !a.state.evicted.is_cancelled());
        drop(b);
        c.state.mark_requested();
        // Full of connections that sent requests: refused.
        assert!(conns.admit().is_none());
        drop(a);
        assert!(conns.admit().is_some());
        assert_eq!(conns.lock().open, 1, "c is open; the last one was dropped");
    }
}
