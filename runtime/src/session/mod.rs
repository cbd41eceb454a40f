//! The session: import and export tables, the message loop, and value encoding.
//!
//! This module holds the session's state ([`SessionInner`]) and its life cycle; the rest
//! is in rooms named for what they do: `import` and `export` (the two tables),
//! `outgoing` (the send queue, calls, encoding a value's capabilities), `incoming` (each
//! message from the peer), `codec` (a [`Value`] to an expression), `eval` (an expression
//! to a [`Value`], and pipelined calls on results), `text` (a call's plain arguments read
//! from the message text straight into serde types) and `map` (the `remap` instruction
//! recorder). It sits on [`crate::wire`], [`crate::value`] and [`crate::stub`]; transports
//! drive it from above.
//!
//! Vocabulary follows the protocol. From this side's point of view, an *import* is an
//! object or promise the peer holds and we reference (positive IDs when we chose them, by
//! `push`; negative when the peer did, by `export`/`promise`); an *export* is one we hold
//! and the peer references. ID 0 is the main object on both sides. IDs are never reused.

pub(crate) mod codec;
pub(crate) mod eval;
mod export;
mod import;
mod incoming;
pub(crate) mod map;
mod outgoing;
pub(crate) mod text;

use export::{ENTRY_COST, ExportEntry, ExportKind};
pub(crate) use import::{BrokenCallback, Import, wake_after_burst};
use import::{ImportKind, ImportSlot};

use crate::error::{ProtocolError, RpcError};
use crate::limits::Limits;
use crate::limits::budget::{Budget, Charge};
use crate::session::codec::{Capability, encode, error_expr};
use crate::session::eval::Scope;
use crate::stream::{ReadableStream, RemoteWriter, WritableStream};
use crate::stub::{Hook, RpcStub, value_op};
use crate::value::Value;
use crate::wire::{Capture, Expr, Message, PathKey};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use tokio::sync::{Notify, mpsc};

pub(crate) enum Event {
    Dropped {
        id: i64,
        generation: u64,
    },
    /// A charge found a memory budget full: the session must end.
    OverBudget,
    /// A deferred call waits: queue it if its caller has not sent it yet.
    FlushDeferred,
    Shutdown,
}

/// A table of the session, by ID. Its keys come from the peer too (the IDs of the
/// peer's exports), so it keeps a seeded hasher; foldhash's costs a few nanoseconds where
/// SipHash's costs tens, and a call looks several up.
type Table<V> = std::collections::HashMap<i64, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct State {
    imports: Table<ImportSlot>,
    next_import: i64,
    next_generation: u64,
    exports: Table<ExportEntry>,
    next_export: i64,
    next_peer_push: i64,
    resolving: usize,
    /// Streams being pumped to the peer that have not sent their end yet.
    pumping: usize,
    broken: Option<RpcError>,
    /// The session ended by sending the peer an `abort` (with `broken` as its error).
    abort_sent: bool,
    /// The session has ended and every import has failed (their `on_broken` callbacks
    /// run): [`SessionInner::closed`] may return.
    ended: bool,
    /// The peer can send nothing more (an HTTP batch's request body is used up): calls to
    /// it could never be answered, so they fail with this error.
    deaf: Option<RpcError>,
    /// The peer cannot acknowledge stream writes (an HTTP batch): each counts as delivered
    /// when sent, and these many more bytes may be sent so.
    one_way_streams: Option<usize>,
    main_taken: bool,
    serves_main: bool,
}

/// Sizes of a session's tables, for leak checks and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    /// Live entries of the import table.
    pub imports: usize,
    /// Live entries of the export table (the main object included).
    pub exports: usize,
    /// Bytes the session counts as held on its peer's behalf, against
    /// [`Limits::max_session_memory`](crate::Limits::max_session_memory): an estimate.
    pub memory: usize,
}

pub(crate) struct SessionInner {
    state: Mutex<State>,
    out: mpsc::UnboundedSender<String>,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    limits: Limits,
    /// Memory held on the peer's behalf (`max_session_memory`, within the server's).
    memory: Arc<Budget>,
    /// Bytes of messages queued for the transport, not yet taken by it.
    unsent_bytes: std::sync::atomic::AtomicUsize,
    /// Bytes the peer wrote into our streams that no reader has taken yet (within
    /// `memory`).
    stream_buffer: Arc<Budget>,
    /// Bytes of our stream writes queued but not yet handed to the transport, and a wake-up
    /// when they go: flow control trusts the peer's acknowledgements, so this bounds the
    /// queue against a peer that acknowledges without reading.
    unsent_stream_bytes: std::sync::atomic::AtomicUsize,
    unsent_drained: Notify,
    idle: Notify,
    ended: Notify,
    /// Whether calls wait in [`Self::deferred`] (a WebSocket client's session).
    pub(crate) defers_calls: AtomicBool,
    /// The last call made, its `push` not yet queued: its import ID and text. Whatever is
    /// queued next goes after it; until then, awaiting it may send it as a `stream`.
    deferred: Mutex<Option<(i64, String)>>,
    /// An [`Event::FlushDeferred`] is on its way to the session loop.
    flush_requested: AtomicBool,
    /// `capwire.session`: the parent of the session's call spans and events.
    pub(crate) span: tracing::Span,
}

/// The span of a session: `capwire.session`, with its transport's name (`websocket`,
/// `batch`, `memory`, `custom`), this side (`client` or `server`) and the peer (its
/// address, or the URL a client connected to) when known. Its parent is the span current
/// where it is made (a request's, say).
pub(crate) fn session_span(
    transport: &'static str,
    side: Option<&'static str>,
    peer: Option<&dyn std::fmt::Display>,
) -> tracing::Span {
    tracing::info_span!(
        "capwire.session",
        transport,
        side,
        peer = peer.map(tracing::field::display)
    )
}

/// A path as the dotted text logs show (`counter.increment`), written out only when a log
/// wants it.
pub(crate) struct PathText<'a>(pub(crate) &'a [PathKey]);

impl std::fmt::Display for PathText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, key) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(&key.as_name())?;
        }
        Ok(())
    }
}

/// IDs at the top level of a message: entries of the session's tables.
struct SessionScope<'a>(&'a Arc<SessionInner>);

impl Scope for SessionScope<'_> {
    fn hook(&mut self, id: i64) -> Result<Hook, ProtocolError> {
        self.0.export_of(id)
    }

    fn introduce(&mut self, id: i64, promise: bool) -> Result<Hook, ProtocolError> {
        Ok(Hook::Import(self.0.import_from_peer(id, promise)?))
    }

    fn readable(&mut self, id: i64) -> Result<ReadableStream, ProtocolError> {
        let mut state = self.0.lock();
        let entry = state
            .exports
            .get_mut(&id)
            .ok_or(ProtocolError::NoSuchExport(id))?;
        let readable = match &mut entry.kind {
            ExportKind::Pipe { readable, .. } => readable.take(),
            _ => None,
        };
        readable.ok_or_else(|| {
            ProtocolError::Invalid(format!(
                "export {id} is not a pipe, or its readable end was already used"
            ))
        })
    }

    fn max_blob_size(&self) -> usize {
        self.0.limits.max_blob_size
    }

    fn limits(&self) -> Limits {
        self.0.limits
    }

    fn writable(&mut self, id: i64) -> Result<WritableStream, ProtocolError> {
        let import = self.0.import_from_peer(id, false)?;
        Ok(WritableStream::from_writer(crate::stream::Writer::Remote(
            RemoteWriter::new(Hook::Import(import)),
        )))
    }
}

/// Most bytes of stream writes queued for the transport before writers wait.
const MAX_UNSENT_STREAM_BYTES: usize = 16 * 1024 * 1024;

/// A stream being pumped to the peer: the session is not drained until it is dropped,
/// once the stream's last message is sent.
pub(crate) struct Pumping(Arc<SessionInner>);

impl Drop for Pumping {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.pumping = state.pumping.saturating_sub(1);
        if state.pumping == 0 {
            self.0.idle.notify_waiters();
        }
    }
}

/// What encoding a message made that must start once the message is sent: promises to
/// resolve, and streams to pump into the pipes it introduced.
#[derive(Default)]
pub(crate) struct Pending {
    /// Every export made (undone by [`SessionInner::abandon`] if the message is not sent).
    exported: Vec<i64>,
    promises: Vec<i64>,
    pumps: Vec<(
        BoxStream<'static, Result<crate::stream::Chunk, RpcError>>,
        RemoteWriter,
    )>,
}

/// Locks `m`. No code path panics while holding one of the session's locks; recover the
/// data if one ever did.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pending {
    /// Whether encoding made nothing that must start once the message is sent.
    fn is_empty(&self) -> bool {
        self.exported.is_empty() && self.promises.is_empty() && self.pumps.is_empty()
    }
}

impl SessionInner {
    /// A session serving `main`; what it holds for its peer counts against
    /// `limits.max_session_memory` and, when given, the server's budget. Its calls and
    /// events are logged in `span` (see [`session_span`]).
    pub(crate) fn new(
        main: Option<RpcStub>,
        limits: Limits,
        server: Option<Arc<Budget>>,
        span: tracing::Span,
    ) -> (
        Arc<SessionInner>,
        mpsc::UnboundedReceiver<String>,
        mpsc::UnboundedReceiver<Event>,
    ) {
        let (out, out_rx) = mpsc::unbounded_channel();
        let (events, ev_rx) = mpsc::unbounded_channel();
        let mut state = State {
            next_import: 1,
            next_export: -1,
            next_peer_push: 1,
            ..State::default()
        };
        state.serves_main = main.is_some();
        let main_hook = main.map_or_else(
            || Hook::Error(RpcError::error("This connection has no main object.")),
            |s| s.hook,
        );
        state.exports.insert(0, ExportEntry::new(main_hook));
        let memory = Budget::new("max_session_memory", limits.max_session_memory, server);
        let inner = Arc::new(SessionInner {
            state: Mutex::new(state),
            out,
            events,
            stream_buffer: Budget::new(
                "max_stream_buffer",
                limits.max_stream_buffer,
                Some(memory.clone()),
            ),
            memory,
            unsent_bytes: std::sync::atomic::AtomicUsize::new(0),
            unsent_stream_bytes: std::sync::atomic::AtomicUsize::new(0),
            unsent_drained: Notify::new(),
            limits,
            idle: Notify::new(),
            ended: Notify::new(),
            defers_calls: AtomicBool::new(false),
            deferred: Mutex::new(None),
            flush_requested: AtomicBool::new(false),
            span,
        });
        tracing::debug!(parent: &inner.span, "capwire: session opened");
        (inner, out_rx, ev_rx)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The peer's main object. Dropping every clone of it (with nothing else imported or
    /// exported) ends a client session, as disposing the main stub does in capnweb.
    pub(crate) fn main_stub(self: &Arc<Self>) -> RpcStub {
        let mut state = self.lock();
        if let Some(e) = &state.broken {
            // The session has ended (its table emptied, never to be failed again): a new
            // import would never break, and its `on_broken` callbacks never run.
            return RpcStub::broken(e.clone());
        }
        let slot = state.imports.get(&0).and_then(|s| s.import.upgrade());
        let import = match slot {
            Some(i) => i,
            None => {
                state.main_taken = true;
                self.new_import(&mut state, 0, ImportKind::Stub, 0, None)
            }
        };
        RpcStub::from_hook(Hook::Import(import))
    }

    pub(crate) fn stats(&self) -> SessionStats {
        let state = self.lock();
        SessionStats {
            imports: state.imports.len(),
            exports: state.exports.len(),
            memory: self.memory.used(),
        }
    }

    pub(crate) fn broken(&self) -> Option<RpcError> {
        self.lock().broken.clone()
    }

    /// The error of the `abort` this side sent its peer, if the session ended so.
    pub(crate) fn abort_sent(&self) -> Option<RpcError> {
        let state = self.lock();
        state.broken.clone().filter(|_| state.abort_sent)
    }

    /// From now on the peer cannot acknowledge stream writes (the two ends of an HTTP
    /// batch): each counts as delivered when sent, up to `max_stream_buffer` bytes in all,
    /// so that streams go whole into the batch. Writes waiting for an acknowledgement
    /// count as delivered now.
    pub(crate) fn streams_one_way(&self) {
        let waiting: Vec<Arc<Import>> = {
            let mut state = self.lock();
            if state.one_way_streams.is_some() {
                return;
            }
            state.one_way_streams = Some(self.limits.max_stream_buffer);
            state
                .imports
                .values()
                .filter_map(|slot| slot.import.upgrade())
                .filter(|import| import.stream)
                .collect()
        };
        for import in waiting {
            import.settle(Ok(Value::Undefined));
        }
    }

    /// Waits until every stream being sent has sent its end (or the session ended).
    pub(crate) async fn streams_sent(&self) {
        self.idle_when(|state| state.pumping == 0).await;
    }

    /// Waits until every pulled result has been sent, and every stream being sent has
    /// sent its end (or the session ended).
    pub(crate) async fn drained(&self) {
        self.idle_when(|state| state.resolving == 0 && state.pumping == 0)
            .await;
    }

    /// Waits until `done` holds, checked whenever results or streams finish, or until the
    /// session has ended.
    async fn idle_when(&self, done: impl Fn(&State) -> bool) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.lock();
                if done(&state) || state.broken.is_some() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Waits until the session has ended, and returns why.
    pub(crate) async fn closed(&self) -> RpcError {
        loop {
            let notified = self.ended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.lock();
                if state.ended
                    && let Some(e) = &state.broken
                {
                    return e.clone();
                }
            }
            notified.await;
        }
    }
}
