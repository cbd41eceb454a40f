//! Transports: how messages move between two sessions.
//!
//! A transport is anything that is a [`Stream`] of incoming message texts and a [`Sink`]
//! for outgoing ones; [`Session::start`] runs a session over it. capwire ships WebSocket
//! (client and server), HTTP batch (client and server) and an in-memory pair.

pub mod batch;
pub(crate) mod context;
pub(crate) mod cors;
mod guard;
pub(crate) mod listener;
pub mod memory;
pub mod server;
pub mod websocket;

use crate::error::{ProtocolError, RpcError};
use crate::limits::Limits;
use crate::session::{SessionInner, SessionStats};
use crate::stub::RpcStub;
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use std::sync::Arc;
use tracing::Instrument;

/// A transport failure, or a frame the transport cannot turn into a message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    message: String,
    bad_input: bool,
    /// The status code the connection closes with, for a transport that can tell its peer
    /// (a WebSocket's close frame).
    close_code: Option<u16>,
}

impl TransportError {
    /// The connection failed or closed.
    pub fn new(message: impl Into<String>) -> Self {
        TransportError {
            message: message.into(),
            bad_input: false,
            close_code: None,
        }
    }

    /// The peer sent a frame that is not a message (a message over the size limit, say):
    /// the session answers with an `abort` naming the problem.
    pub fn bad_input(message: impl Into<String>) -> Self {
        TransportError {
            message: message.into(),
            bad_input: true,
            close_code: None,
        }
    }

    /// The same error, closing the connection with status `code` and the error's message
    /// as the reason (instead of the `abort`'s 3000, or no code at all).
    pub(crate) fn closing_with(mut self, code: u16) -> Self {
        self.close_code = Some(code);
        self
    }
}

/// How this side closes a connection, for a transport that can tell its peer why (a
/// WebSocket's close frame): a status code and a reason of at most
/// [`Close::MAX_REASON`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Close {
    pub(crate) code: u16,
    pub(crate) reason: String,
}

impl Close {
    /// RFC 6455: the peer broke the WebSocket protocol (a bad frame).
    pub(crate) const PROTOCOL_ERROR: u16 = 1002;
    /// RFC 6455: a kind of data this side does not take (a binary frame).
    pub(crate) const UNSUPPORTED_DATA: u16 = 1003;
    /// RFC 6455: data that does not match its frame's type (a text frame that is not UTF-8).
    pub(crate) const INVALID_PAYLOAD: u16 = 1007;
    /// RFC 6455: a message too big to process (over `max_message_size`).
    pub(crate) const TOO_BIG: u16 = 1009;
    /// Cap'n Web: the session was aborted; the reason is the `abort`'s error message.
    pub(crate) const ABORT: u16 = 3000;
    /// A close frame's payload is at most 125 bytes, two of them the code.
    pub(crate) const MAX_REASON: usize = 123;

    /// A close with `code` and `reason`, cut to [`Close::MAX_REASON`] bytes on a character
    /// boundary.
    pub(crate) fn new(code: u16, reason: &str) -> Close {
        let mut end = reason.len().min(Close::MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Close {
            code,
            reason: reason[..end].to_owned(),
        }
    }
}

/// How a transport is told the [`Close`] it ends with, before it is closed: a no-op for a
/// transport that cannot say why.
pub(crate) type CloseWith<T> = fn(&mut T, Close);

/// A running RPC session with one peer.
///
/// Dropping the `Session` handle does not end the session: it runs while the transport
/// is open. Dropping every clone of the peer's [`main`](Session::main) stub, when nothing
/// else is imported or exported, ends it, as disposing the main stub does in capnweb.
///
/// # Logs
///
/// A session logs through the [`tracing`](https://docs.rs/tracing) facade (install a
/// subscriber, such as `tracing-subscriber`'s, to see it), with the target `capwire::…`:
///
/// - a span `capwire.session` (info) for the session, with `transport` (`websocket`,
///   `batch`, `memory`, or `custom` for a transport of yours given to [`Session::start`]),
///   `side` (`client` or `server`) and `peer` (the client's address on a server, when
///   the server recorded it; the URL on a client) when known. It is a child of the span
///   current where the session starts (wrap [`Session::start`] in a span of yours to name
///   a custom transport's peer);
/// - in it, a span `capwire.call` (debug) for each call, property read or `map()` the
///   peer makes on this side's objects, with `id` (the ID of its result: the caller's
///   import ID), `target` (the ID it addresses, 0 for the main object), `method` (the
///   method or the dotted path) and `kind` (`call`, `stream`, `get`, `map`). The method
///   runs in it, up to its result being sent;
/// - events: `capwire: session opened` and `capwire: session ended` (debug, the latter
///   with the `reason`), `capwire: session aborted` (info, with the `reason` the `abort`
///   sent to the peer gives), `capwire: the peer aborted the session` (info, with its
///   `reason`), `capwire: call rejected` (debug, with `id`, `error.name` and
///   `error.message`), `capwire: application code panicked` (error, with the `panic`
///   message) when a method panics, which rejects its call, and at trace level
///   `capwire: call received` (in the call's span) and `capwire: call sent` (a call this
///   side makes: `id`, its import ID, `target` and `method`).
///
/// Spans and events cost a check of a cached flag when no subscriber wants them; their
/// fields are only formatted for one that does.
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<SessionInner>,
}

impl Session {
    /// Starts a session over `transport`, serving `main` (if any) as this side's main
    /// object. Must be called inside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // Two sessions joined in memory: the right side serves an object to the left.
    /// let (left_end, right_end) = capwire::transport::memory::channel(std::time::Duration::ZERO);
    /// # struct Api;
    /// # impl capwire::RpcObject for Api {
    /// #     fn call(self: std::sync::Arc<Self>, _m: &str, args: Vec<capwire::Value>) -> capwire::CallFuture {
    /// #         Box::pin(std::future::ready(Ok(args.into_iter().next().unwrap_or_default())))
    /// #     }
    /// # }
    /// let right = capwire::Session::start(right_end, Some(capwire::RpcStub::new(Api)), Default::default());
    /// let left = capwire::Session::start(left_end, None, Default::default());
    /// let echoed = left.main().call("echo", ("hi",)).await.unwrap();
    /// assert_eq!(echoed.as_str(), Some("hi"));
    /// # drop(right);
    /// # }
    /// ```
    pub fn start<T>(transport: T, main: Option<RpcStub>, limits: Limits) -> Session
    where
        T: Stream<Item = Result<String, TransportError>>
            + Sink<String, Error = TransportError>
            + Send
            + Unpin
            + 'static,
    {
        let name =
            if std::any::TypeId::of::<T>() == std::any::TypeId::of::<memory::MemoryTransport>() {
                "memory"
            } else {
                "custom"
            };
        let span = crate::session::session_span(name, None, None);
        Session::start_in(transport, |_, _| {}, main, limits, None, span)
    }

    /// [`Session::start`], counting what the session holds against a server's budget too,
    /// logging in `span`; `close_with` tells the transport why it closes.
    pub(crate) fn start_in<T, F>(
        transport: T,
        close_with: CloseWith<T>,
        main: Option<RpcStub>,
        limits: Limits,
        server: Option<Arc<crate::limits::budget::Budget>>,
        span: tracing::Span,
    ) -> Session
    where
        T: Stream<Item = Result<F, TransportError>>
            + Sink<String, Error = TransportError>
            + Send
            + Unpin
            + 'static,
        F: Into<crate::wire::Frame<'static>> + Send + 'static,
    {
        let (inner, out_rx, ev_rx) = SessionInner::new(main, limits, server, span.clone());
        tokio::spawn(drive(inner.clone(), transport, close_with, out_rx, ev_rx).instrument(span));
        Session { inner }
    }

    /// A stub to the peer's main object.
    pub fn main(&self) -> RpcStub {
        self.inner.main_stub()
    }

    /// The sizes of the import and export tables.
    pub fn stats(&self) -> SessionStats {
        self.inner.stats()
    }

    /// Waits until the session ends, and returns why.
    pub async fn closed(&self) -> RpcError {
        self.inner.closed().await
    }

    /// Ends the session, failing every pending call.
    pub fn close(&self) {
        self.inner.shutdown(
            RpcError::ended("RPC session was closed by the local side"),
            false,
        );
    }
}

/// Runs a session's message loop until the transport closes or the session ends, then
/// closes the transport: with the close code a transport error asked for, else with 3000
/// and the reason when this side sent an `abort` (as capnweb does), else plainly.
async fn drive<T, F>(
    inner: Arc<SessionInner>,
    transport: T,
    close_with: CloseWith<T>,
    out_rx: tokio::sync::mpsc::UnboundedReceiver<String>,
    mut ev_rx: tokio::sync::mpsc::UnboundedReceiver<crate::session::Event>,
) where
    T: Stream<Item = Result<F, TransportError>>
        + Sink<String, Error = TransportError>
        + Send
        + Unpin
        + 'static,
    F: Into<crate::wire::Frame<'static>> + Send + 'static,
{
    // Reading and writing run side by side, on both cores: this loop reads and handles
    // what the peer sends, a writer task sends what is queued (in the order queued).
    let (sink, mut stream) = transport.split();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let drained = Arc::new(tokio::sync::Notify::new());
    let writer = tokio::spawn(
        write_loop(inner.clone(), sink, out_rx, stopped, drained.clone())
            .instrument(tracing::Span::current()),
    );
    // The close a transport error asked for.
    let mut close = None;
    loop {
        // While more than a little waits to be sent, the peer's next messages wait: a peer
        // that reads slowly cannot make us queue ever more answers for it.
        let paused = inner.unsent_bytes() > MAX_UNSENT_BEFORE_READING;
        tokio::select! {
            biased;
            Some(event) = ev_rx.recv() => {
                if !inner.handle_event(event) {
                    break;
                }
            }
            // The writer sent some: check again (its word comes after each send, so none
            // is missed; a stale one costs one more turn).
            () = drained.notified(), if paused => {}
            incoming = stream.next(), if !paused => {
                // Handle every message that is already here before the writer runs, so
                // that the answers to a burst of calls leave in one write, and the callers
                // awaiting the results it brings are woken once, after it.
                let open = crate::session::wake_after_burst(|| {
                    let mut open = handle_incoming(&inner, incoming, &mut close);
                    let mut handled = 1;
                    while open && handled < BURST && inner.unsent_bytes() <= MAX_UNSENT_BEFORE_READING {
                        let Some(more) = stream.next().now_or_never() else { break };
                        open = handle_incoming(&inner, more, &mut close);
                        handled += 1;
                    }
                    open
                });
                if !open {
                    break;
                }
            }
        }
    }
    // The writer stops after what it is sending; the rest is sent below.
    let _ = stop.send(());
    let Ok((sink, mut out_rx)) = writer.await else {
        return;
    };
    let Ok(mut transport) = sink.reunite(stream) else {
        return;
    };
    if let Some(close) = close.or_else(|| {
        inner
            .abort_sent()
            .map(|e| Close::new(Close::ABORT, e.message()))
    }) {
        close_with(&mut transport, close);
    }
    // Flush what is queued (an `abort`, say), then close; a peer that takes nothing is
    // not waited for longer than the send timeout.
    let farewell = async {
        while let Ok(text) = out_rx.try_recv() {
            inner.unqueued(text.len());
            if transport.feed(text).await.is_err() {
                break;
            }
        }
        let _ = transport.close().await;
    };
    let _ = tokio::time::timeout(inner.limits().send_timeout, farewell).await;
    while let Ok(text) = out_rx.try_recv() {
        inner.unqueued(text.len());
    }
}

/// Sends what is queued, several messages per flush, until told to stop (or the transport
/// fails, which ends the session), telling `drained` after each send; gives back the sink
/// and the queue, for the farewell.
async fn write_loop<S>(
    inner: Arc<SessionInner>,
    mut sink: S,
    mut out_rx: tokio::sync::mpsc::UnboundedReceiver<String>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    drained: Arc<tokio::sync::Notify>,
) -> (S, tokio::sync::mpsc::UnboundedReceiver<String>)
where
    S: Sink<String, Error = TransportError> + Unpin,
{
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            Some(text) = out_rx.recv() => {
                if let Err(e) = feed_all(&inner, &mut sink, text, &mut out_rx).await {
                    inner.shutdown(e, false);
                    break;
                }
                drained.notify_one();
            }
            else => break,
        }
    }
    (sink, out_rx)
}

/// Bytes of queued outgoing messages past which the session stops reading its peer.
const MAX_UNSENT_BEFORE_READING: usize = 4 * 1024 * 1024;

/// Most incoming messages handled in a row before queued answers are sent.
const BURST: usize = 64;

/// Handles one item from the transport; `false` when the session is over. A transport
/// error that names a close code leaves it in `close`.
fn handle_incoming<F: Into<crate::wire::Frame<'static>>>(
    inner: &Arc<SessionInner>,
    incoming: Option<Result<F, TransportError>>,
    close: &mut Option<Close>,
) -> bool {
    if let Some(Err(TransportError {
        message,
        close_code: Some(code),
        ..
    })) = &incoming
    {
        *close = Some(Close::new(*code, message));
    }
    match incoming {
        Some(Ok(text)) => {
            if let Err(e) = inner.handle_text(text.into()) {
                let send_abort = !matches!(e, ProtocolError::PeerAborted(_));
                if let ProtocolError::PeerAborted(reason) = &e {
                    tracing::info!(%reason, "capwire: the peer aborted the session");
                }
                inner.shutdown(RpcError::from(e), send_abort);
            }
            true
        }
        Some(Err(e)) if e.bad_input => {
            inner.shutdown(RpcError::protocol(e.message), true);
            false
        }
        Some(Err(e)) => {
            inner.shutdown(RpcError::disconnected(&e.message), false);
            false
        }
        None => {
            inner.shutdown(
                RpcError::disconnected("the peer closed the connection"),
                false,
            );
            false
        }
    }
}

/// Hands `first` and whatever else is queued to the transport, and flushes; fails if the
/// transport does, or takes longer than the send timeout (a peer that stopped reading).
async fn feed_all<T>(
    inner: &SessionInner,
    transport: &mut T,
    first: String,
    out_rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Result<(), RpcError>
where
    T: Sink<String, Error = TransportError> + Unpin,
{
    let limit = inner.limits().send_timeout;
    let work = feed_all_now(inner, transport, first, out_rx);
    tokio::pin!(work);
    // Most writes finish in their first poll (the socket has room): no timer for those. The
    // send timeout runs from the first time the peer takes nothing.
    let done = match futures::poll!(&mut work) {
        std::task::Poll::Ready(done) => Ok(done),
        std::task::Poll::Pending => tokio::time::timeout(limit, work).await,
    };
    match done {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(RpcError::disconnected("the transport failed while sending")),
        Err(_) => Err(RpcError::disconnected(&format!(
            "the peer took nothing we sent for {limit:?} (limit send_timeout)"
        ))),
    }
}

async fn feed_all_now<T>(
    inner: &SessionInner,
    transport: &mut T,
    first: String,
    out_rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Result<(), TransportError>
where
    T: Sink<String, Error = TransportError> + Unpin,
{
    let mut stream_bytes = inner.outgoing_stream_size(&first);
    inner.unqueued(first.len());
    transport.feed(first).await?;
    // Batch whatever else is ready into one flush.
    for _ in 0..BURST * 4 {
        match out_rx.try_recv() {
            Ok(text) => {
                stream_bytes += inner.outgoing_stream_size(&text);
                inner.unqueued(text.len());
                transport.feed(text).await?;
            }
            Err(_) => break,
        }
    }
    let result = transport.flush().await;
    inner.stream_bytes_sent(stream_bytes);
    result
}
