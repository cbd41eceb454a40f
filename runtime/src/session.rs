//! The session: import and export tables, the message loop, and value encoding.
//!
//! Vocabulary follows the protocol. From this side's point of view, an *import* is an
//! object or promise the peer holds and we reference (positive IDs when we chose them, by
//! `push`; negative when the peer did, by `export`/`promise`); an *export* is one we hold
//! and the peer references. ID 0 is the main object on both sides. IDs are never reused.

use crate::budget::{Budget, Charge};
use crate::codec::{Capability, encode, error_expr};
use crate::error::{ProtocolError, RpcError};
use crate::eval::Scope;
use crate::limits::Limits;
use crate::stream::{ReadableStream, RemoteWriter, WritableStream};
use crate::stub::{Hook, RpcStub, value_op};
use crate::value::Value;
use crate::wire::{Capture, Expr, Message, PathKey};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use tokio::sync::{Notify, mpsc};

/// An entry of the import table, shared by every stub or promise that refers to it. When
/// the last one is dropped, the session sends `release`.
pub(crate) struct Import {
    session: Arc<SessionInner>,
    id: i64,
    generation: u64,
    promise: bool,
    /// The result of a `stream` call: an acknowledgement the peer sends by itself.
    stream: bool,
    pulled: AtomicBool,
    /// Its table entry is gone already (released when it settled): nothing to do on drop.
    released: AtomicBool,
    /// Its call went as a `stream` (see [`SessionInner::send_as_stream`]): the peer answers
    /// and releases it by itself, and its ID must not be referenced again.
    sent_as_stream: AtomicBool,
    resolution: OnceLock<Result<Value, RpcError>>,
    resolved: Notify,
    /// Callbacks of `on_broken`, run when this settles.
    watchers: Mutex<Vec<BrokenCallback>>,
}

/// What `on_broken` runs.
pub(crate) type BrokenCallback = Box<dyn FnOnce(RpcError) + Send>;

impl Import {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    fn settle(&self, result: Result<Value, RpcError>) {
        if self.resolution.set(result).is_ok() {
            self.resolved.notify_waiters();
            // Taken after the resolution is set: a watcher added meanwhile sees it.
            let watchers = std::mem::take(&mut *lock(&self.watchers));
            if let Some(result) = self.resolution.get() {
                for watcher in watchers {
                    crate::stub::notify_broken(result, watcher);
                }
            }
        }
    }

    /// Runs `callback` when this import breaks: its session ends, or (a promise) it
    /// rejects or resolves to something that breaks.
    pub(crate) fn on_broken(&self, callback: BrokenCallback) {
        let mut watchers = lock(&self.watchers);
        match self.resolution.get() {
            None => {
                watchers.push(callback);
                drop(watchers);
                // Whether a promise rejects is known only once its result is asked for.
                self.pull();
            }
            Some(result) => {
                drop(watchers);
                crate::stub::notify_broken(result, callback);
            }
        }
    }

    pub(crate) fn op(self: &Arc<Self>, path: &[PathKey], args: Option<Vec<Value>>) -> Hook {
        match self.resolution.get() {
            Some(Ok(v)) => value_op(v, path, args),
            Some(Err(e)) => Hook::Error(e.clone()),
            // Its ID is the peer's to forget: wait for the result here, then apply.
            None if self.sent_as_stream.load(Ordering::Acquire) => {
                let (this, path) = (self.clone(), path.to_vec());
                Hook::start(async move {
                    let value = Import::resolve(&this).await?;
                    value_op(&value, &path, args).resolve().await
                })
            }
            None => match self.session.send_call(self.id, path, args) {
                Ok(import) => Hook::Import(import),
                Err(e) => Hook::Error(e),
            },
        }
    }

    /// Sends a recorded mapper to the peer if the value is still theirs (not settled);
    /// gives it back otherwise, to be replayed here.
    pub(crate) fn remap(
        self: &Arc<Self>,
        mapper: crate::eval::Mapper,
    ) -> Result<Hook, crate::eval::Mapper> {
        if self.resolution.get().is_some() || self.sent_as_stream.load(Ordering::Acquire) {
            return Err(mapper);
        }
        Ok(
            match self
                .session
                .send_remap(self.id, &mapper.captures, mapper.instructions)
            {
                Ok(import) => Hook::Import(import),
                Err(e) => Hook::Error(e),
            },
        )
    }

    /// Sends a `stream` call of `method` on this import (a writable): auto-pulled, never
    /// released by us. Returns the import of its result and the message's size.
    pub(crate) fn stream_call(
        &self,
        method: &str,
        args: Vec<Value>,
    ) -> Result<(Arc<Import>, usize), RpcError> {
        self.session.send_stream(self.id, method, args)
    }

    /// [`Import::stream_call`] of `write` with one chunk of bytes, written directly.
    pub(crate) fn stream_write(&self, chunk: &[u8]) -> Result<(Arc<Import>, usize), RpcError> {
        let text = Message::stream_write_text(self.id, chunk);
        self.session.send_stream_text(text, Pending::default())
    }

    /// Completes when this import's session has ended.
    pub(crate) async fn session_closed(&self) {
        self.session.closed().await;
    }

    /// Waits until the session's queue of stream writes has room.
    pub(crate) async fn stream_queue_room(&self) {
        self.session.stream_queue_room().await;
    }

    pub(crate) fn pull(&self) {
        if self.promise
            && self.resolution.get().is_none()
            && !self.pulled.swap(true, Ordering::AcqRel)
        {
            self.session.send(&Message::Pull(self.id));
        }
    }

    pub(crate) fn resolve(this: &Arc<Self>) -> BoxFuture<'static, Result<Value, RpcError>> {
        if !this.promise {
            return futures::future::ready(Ok(Value::Stub(RpcStub {
                hook: Hook::Import(this.clone()),
            })))
            .boxed();
        }
        // Awaited by its only holder with nothing pipelined on it yet: the call can still
        // go as a `stream`, which the peer answers without a `pull` and releases by itself.
        if Arc::strong_count(this) == 1 && !this.pulled.load(Ordering::Acquire) {
            this.session.send_as_stream(this);
        }
        let this = this.clone();
        async move {
            loop {
                let notified = this.resolved.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(r) = this.resolution.get() {
                    return r.clone();
                }
                this.pull();
                notified.await;
            }
        }
        .boxed()
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        if self.released.load(Ordering::Acquire) {
            return;
        }
        // Never lock here: a drop can happen anywhere, including under the session lock.
        let _ = self.session.events.send(Event::Dropped {
            id: self.id,
            generation: self.generation,
        });
    }
}

/// What an import refers to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ImportKind {
    /// An object.
    Stub,
    /// A result to come.
    Promise,
    /// The acknowledgement of a `stream` call (a promise the peer answers unasked, and
    /// releases by itself).
    StreamCall,
}

struct ImportSlot {
    /// The entry, counted against the session's memory when the peer made it.
    charge: Option<Charge>,
    import: Weak<Import>,
    generation: u64,
    /// Times the peer introduced this ID to us: what a `release` must report.
    remote_refcount: u64,
}

struct ExportEntry {
    hook: Hook,
    refcount: u64,
    resolution: Resolution,
    kind: ExportKind,
    /// What the entry holds for the peer, counted against the session's memory.
    charge: Option<Charge>,
}

/// What a table entry costs beyond the message that made it (the entry, its hook, the
/// call's task): a rough figure, so that a million entries cost what they take.
const ENTRY_COST: usize = 256;

/// What an export is, beyond its hook.
enum ExportKind {
    Plain,
    /// The result of a `stream` call: an acknowledgement, which waits for a reader. Not
    /// counted among the results a drain waits for, since nothing may ever read.
    StreamCall,
    /// A pipe the peer made: its writable end (the hook, typed), and its readable end until
    /// a `["readable", id]` claims it.
    Pipe {
        writer: Arc<crate::stream::PipeWriter>,
        readable: Option<ReadableStream>,
    },
}

/// Where sending an export's resolution stands.
#[derive(Default)]
enum Resolution {
    #[default]
    NotPulled,
    /// A task is waiting for the value (its handle, once spawned).
    Running(Option<tokio::task::AbortHandle>),
    Sent,
}

impl ExportEntry {
    fn is_stream_call(&self) -> bool {
        matches!(self.kind, ExportKind::StreamCall)
    }

    fn new(hook: Hook) -> ExportEntry {
        ExportEntry {
            hook,
            refcount: 1,
            resolution: Resolution::NotPulled,
            kind: ExportKind::Plain,
            charge: None,
        }
    }
}

impl Drop for ExportEntry {
    /// An export that goes away stops waiting for its value: nobody will read it.
    fn drop(&mut self) {
        if let Resolution::Running(Some(task)) = &self.resolution {
            task.abort();
        }
    }
}

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

#[derive(Default)]
struct State {
    imports: HashMap<i64, ImportSlot>,
    next_import: i64,
    next_generation: u64,
    exports: HashMap<i64, ExportEntry>,
    next_export: i64,
    next_peer_push: i64,
    resolving: usize,
    /// Streams being pumped to the peer that have not sent their end yet.
    pumping: usize,
    broken: Option<RpcError>,
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
        BoxStream<'static, Result<bytes::Bytes, RpcError>>,
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
    /// `limits.max_session_memory` and, when given, the server's budget.
    pub(crate) fn new(
        main: Option<RpcStub>,
        limits: Limits,
        server: Option<Arc<Budget>>,
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
        });
        (inner, out_rx, ev_rx)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Queues a message for the transport. Its bytes count against the session's memory
    /// until the transport takes them ([`Self::unqueued`]): a peer that reads slowly while
    /// results pile up for it passes its budget and is aborted. (A failed charge is
    /// remembered by the budget; the session loop ends the session.)
    fn queue(&self, text: String) -> Result<(), ()> {
        if !self.defers_calls.load(Ordering::Relaxed) {
            return self.queue_now(text);
        }
        // A deferred call goes first: the peer numbers pushes in the order they arrive.
        let mut deferred = lock(&self.deferred);
        if let Some((_, call)) = deferred.take() {
            self.queue_now(call)?;
        }
        let queued = self.queue_now(text);
        drop(deferred);
        queued
    }

    /// Queues `call`, a `push` whose import is `id`, as the deferred call (queuing the one
    /// before it), and asks the session loop to queue it soon if nothing else does.
    fn defer(&self, id: i64, call: String) -> Result<(), ()> {
        let mut deferred = lock(&self.deferred);
        if let Some((_, before)) = deferred.replace((id, call)) {
            self.queue_now(before)?;
        }
        drop(deferred);
        if !self.flush_requested.swap(true, Ordering::AcqRel) {
            let _ = self.events.send(Event::FlushDeferred);
        }
        Ok(())
    }

    /// Queues the deferred call, if any, as the `push` it is.
    fn flush_deferred(&self) {
        self.flush_requested.store(false, Ordering::Release);
        let mut deferred = lock(&self.deferred);
        if let Some((_, call)) = deferred.take() {
            let _ = self.queue_now(call);
        }
    }

    /// Sends the call of `import` as `["stream", expr]` instead of `["push", expr]`, if it
    /// is still the deferred call: the peer then answers it without a `pull` and releases
    /// it by itself ("The expression is automatically considered pulled … the export is
    /// implicitly released"), so the call costs two messages instead of four. The caller
    /// must not refer to its ID again, which [`Import::op`], [`Import::remap`] and
    /// encoding respect.
    fn send_as_stream(&self, import: &Import) {
        let mut state = self.lock();
        let mut deferred = lock(&self.deferred);
        let Some((id, call)) = deferred.as_ref() else {
            return;
        };
        if *id != import.id || state.broken.is_some() {
            return;
        }
        let stream = call
            .strip_prefix(r#"["push","#)
            .map(|rest| format!(r#"["stream",{rest}"#))
            .filter(|text| text.len() <= self.limits.max_message_size);
        let (Some(stream), Some(slot)) = (stream, state.imports.get_mut(&import.id)) else {
            return;
        };
        slot.remote_refcount = 0;
        import.pulled.store(true, Ordering::Release);
        import.sent_as_stream.store(true, Ordering::Release);
        *deferred = None;
        let _ = self.queue_now(stream);
    }

    fn queue_now(&self, text: String) -> Result<(), ()> {
        let len = text.len();
        if self.memory.try_add(len).is_err() {
            let _ = self.events.send(Event::OverBudget);
            return Err(());
        }
        self.unsent_bytes.fetch_add(len, Ordering::AcqRel);
        if self.out.send(text).is_err() {
            self.unqueued(len);
            return Err(());
        }
        Ok(())
    }

    /// The transport took `bytes` of queued messages (or they were dropped).
    pub(crate) fn unqueued(&self, bytes: usize) {
        self.memory.sub(bytes);
        let _ = self
            .unsent_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(bytes))
            });
    }

    /// Bytes of messages queued and not yet taken by the transport.
    pub(crate) fn unsent_bytes(&self) -> usize {
        self.unsent_bytes.load(Ordering::Acquire)
    }

    pub(crate) fn send(&self, msg: &Message) {
        let state = self.lock();
        if state.broken.is_none() {
            let _ = self.queue(msg.to_text());
        }
    }

    /// The peer's main object. Dropping every clone of it (with nothing else imported or
    /// exported) ends a client session, as disposing the main stub does in capnweb.
    pub(crate) fn main_stub(self: &Arc<Self>) -> RpcStub {
        let mut state = self.lock();
        let slot = state.imports.get(&0).and_then(|s| s.import.upgrade());
        let import = match slot {
            Some(i) => i,
            None => {
                state.main_taken = true;
                self.new_import(&mut state, 0, ImportKind::Stub, 0, None)
            }
        };
        RpcStub {
            hook: Hook::Import(import),
        }
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

    fn new_import(
        self: &Arc<Self>,
        state: &mut State,
        id: i64,
        kind: ImportKind,
        remote_refcount: u64,
        charge: Option<Charge>,
    ) -> Arc<Import> {
        state.next_generation += 1;
        let promise = kind != ImportKind::Stub;
        let stream = kind == ImportKind::StreamCall;
        let import = Arc::new(Import {
            session: self.clone(),
            id,
            generation: state.next_generation,
            promise,
            stream,
            // The peer's promises, and stream calls, are answered without a `pull`.
            pulled: AtomicBool::new(promise && (id < 0 || stream)),
            released: AtomicBool::new(false),
            sent_as_stream: AtomicBool::new(false),
            resolution: OnceLock::new(),
            resolved: Notify::new(),
            watchers: Mutex::default(),
        });
        state.imports.insert(
            id,
            ImportSlot {
                charge,
                import: Arc::downgrade(&import),
                generation: import.generation,
                remote_refcount,
            },
        );
        import
    }

    /// Sends a call (or, with no `args`, a property read) on import `id` as a `push`.
    fn send_call(
        self: &Arc<Self>,
        id: i64,
        path: &[PathKey],
        args: Option<Vec<Value>>,
    ) -> Result<Arc<Import>, RpcError> {
        let mut pending = Pending::default();
        let args = match args {
            Some(args) => Some(self.encode_all(&args, &mut pending)?),
            None => None,
        };
        let defer = self.defers_calls.load(Ordering::Relaxed) && pending.is_empty();
        self.push_maybe_deferred(
            Expr::Pipeline {
                id,
                path: Some(path.to_vec()),
                args,
            },
            pending,
            defer,
        )
    }

    /// The text of `msg`, or an error naming `max_message_size` if it would be longer (a
    /// message the peer would have to abort on is never sent).
    fn text_within_limit(&self, msg: &Message) -> Result<String, RpcError> {
        msg.to_text_within(self.limits.max_message_size)
            .ok_or_else(|| self.too_big())
    }

    /// The error for a message that would pass `max_message_size`.
    fn too_big(&self) -> RpcError {
        RpcError::range(format!(
            "the message would exceed the maximum size of {} bytes (limit max_message_size)",
            self.limits.max_message_size
        ))
    }

    /// Sends `["push", expr]`; `pending` is what encoding it made. The result is a new
    /// promise import.
    fn push(self: &Arc<Self>, expr: Expr, pending: Pending) -> Result<Arc<Import>, RpcError> {
        self.push_maybe_deferred(expr, pending, false)
    }

    /// [`Self::push`]; with `defer` (a call that started nothing of its own), it waits
    /// as the deferred call (see [`Self::send_as_stream`]).
    fn push_maybe_deferred(
        self: &Arc<Self>,
        expr: Expr,
        pending: Pending,
        defer: bool,
    ) -> Result<Arc<Import>, RpcError> {
        let text = match self.text_within_limit(&Message::Push(expr)) {
            Ok(text) => text,
            Err(e) => {
                self.abandon(pending);
                return Err(e);
            }
        };
        let mut state = self.lock();
        if let Some(e) = state.broken.as_ref().or(state.deaf.as_ref()) {
            let e = e.clone();
            drop(state);
            self.abandon(pending);
            return Err(e);
        }
        let new_id = state.next_import;
        state.next_import += 1;
        let _ = if defer {
            self.defer(new_id, text)
        } else {
            self.queue(text)
        };
        let import = self.new_import(&mut state, new_id, ImportKind::Promise, 1, None);
        drop(state);
        self.start_pending(pending);
        Ok(import)
    }

    /// Sends a mapper recorded by `RpcPromise::map` for import `id` (a `remap`).
    pub(crate) fn send_remap(
        self: &Arc<Self>,
        id: i64,
        captures: &[Hook],
        instructions: Vec<Expr>,
    ) -> Result<Arc<Import>, RpcError> {
        let mut pending = Pending::default();
        let captures = captures
            .iter()
            .map(|hook| match self.export_hook(hook, false, &mut pending)? {
                Expr::Import { id, .. } | Expr::Pipeline { id, .. } => Ok(Capture::Import(id)),
                Expr::Export(id) => Ok(Capture::Export(id)),
                _ => Err(RpcError::type_error(
                    "a map() mapper can only capture stubs and unresolved promises",
                )),
            })
            .collect::<Result<Vec<_>, _>>();
        let captures = match captures {
            Ok(captures) => captures,
            Err(e) => {
                self.abandon(pending);
                return Err(e);
            }
        };
        self.push(
            Expr::Remap {
                id,
                path: Vec::new(),
                captures,
                instructions,
            },
            pending,
        )
    }

    /// Encodes a value for the peer, exporting the capabilities inside it. What must start
    /// once the message carrying the expression is sent is added to `pending`: pass it to
    /// [`Self::start_pending`] then.
    pub(crate) fn encode_value(
        self: &Arc<Self>,
        value: &Value,
        pending: &mut Pending,
    ) -> Result<Expr, RpcError> {
        encode(value, self.limits.max_depth, &mut |capability| {
            self.export_capability(capability, pending)
        })
    }

    /// Exports a capability found while encoding a value (see [`Self::encode_value`]).
    fn export_capability(
        self: &Arc<Self>,
        capability: Capability<'_>,
        pending: &mut Pending,
    ) -> Result<Expr, RpcError> {
        match capability {
            Capability::Stub(hook) => self.export_hook(hook, false, pending),
            Capability::Promise(hook) => self.export_hook(hook, true, pending),
            Capability::Readable(stream) => self.export_readable(stream, pending),
            Capability::Writable(stream) => {
                let target = stream.take_target(self.stream_buffer.clone())?;
                let id = self.new_export(Hook::Local(target))?;
                pending.exported.push(id);
                Ok(Expr::Writable(id))
            }
        }
    }

    /// The text of `["resolve", id, value]`, written straight from the value (a big result
    /// costs its text, not an expression tree as well), within `max_message_size`.
    fn resolve_text(
        self: &Arc<Self>,
        id: i64,
        value: &Value,
        pending: &mut Pending,
    ) -> Result<String, RpcError> {
        use std::io::Write;
        let mut out = crate::wire::Limited::new(self.limits.max_message_size);
        write!(out, "[\"resolve\",{id},").map_err(|_| self.too_big())?;
        crate::codec::write_value(&mut out, value, self.limits.max_depth, &mut |capability| {
            self.export_capability(capability, pending)
        })
        .map_err(|e| match e {
            crate::codec::WriteError::Value(e) => e,
            crate::codec::WriteError::Full => self.too_big(),
        })?;
        out.write_all(b"]").map_err(|_| self.too_big())?;
        out.into_string().ok_or_else(|| self.too_big())
    }

    /// Encodes each of `values` (a call's arguments); if one cannot be encoded, what the
    /// others made is undone and the error returned.
    fn encode_all(
        self: &Arc<Self>,
        values: &[Value],
        pending: &mut Pending,
    ) -> Result<Vec<Expr>, RpcError> {
        let encoded = values
            .iter()
            .map(|v| self.encode_value(v, pending))
            .collect::<Result<Vec<_>, _>>();
        if encoded.is_err() {
            self.abandon(std::mem::take(pending));
        }
        encoded
    }

    /// Undoes what encoding a message that will not be sent made: its exports leave the
    /// table (the peer never heard of them), and its streams' pipes are released.
    fn abandon(&self, pending: Pending) {
        let entries: Vec<ExportEntry> = {
            let mut state = self.lock();
            pending
                .exported
                .iter()
                .filter_map(|id| state.exports.remove(id))
                .collect()
        };
        drop(entries);
        drop(pending);
    }

    /// Resolves the promises and starts the pumps that encoding a sent message made.
    fn start_pending(self: &Arc<Self>, pending: Pending) {
        for id in pending.promises {
            self.resolve_export(id, false);
        }
        for (source, writer) in pending.pumps {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                // Dropping the writer releases the pipe: the reader sees the stream fail.
                tracing::warn!("capwire: no tokio runtime to send a stream on");
                continue;
            };
            self.lock().pumping += 1;
            let busy = Pumping(self.clone());
            runtime.spawn(crate::stream::pump(source, writer, busy));
        }
    }

    /// A readable stream goes as a pipe: `["pipe"]` now (before the message that refers to
    /// it), the chunks once that message is sent.
    fn export_readable(
        self: &Arc<Self>,
        stream: &ReadableStream,
        pending: &mut Pending,
    ) -> Result<Expr, RpcError> {
        let source = stream.take()?;
        let mut state = self.lock();
        if let Some(e) = &state.broken {
            return Err(e.clone());
        }
        let id = state.next_import;
        state.next_import += 1;
        let _ = self.queue(Message::Pipe.to_text());
        let import = self.new_import(&mut state, id, ImportKind::Stub, 1, None);
        drop(state);
        pending
            .pumps
            .push((source, RemoteWriter::new(Hook::Import(import))));
        Ok(Expr::Readable(id))
    }

    /// Sends `["stream", ["pipeline", id, [method], args]]`: a call whose result is pulled
    /// by itself and released by the peer once answered.
    fn send_stream(
        self: &Arc<Self>,
        id: i64,
        method: &str,
        args: Vec<Value>,
    ) -> Result<(Arc<Import>, usize), RpcError> {
        let mut pending = Pending::default();
        let args = self.encode_all(&args, &mut pending)?;
        let text = match self.text_within_limit(&Message::Stream(Expr::Pipeline {
            id,
            path: Some(vec![PathKey::from(method)]),
            args: Some(args),
        })) {
            Ok(text) => text,
            Err(e) => {
                self.abandon(pending);
                return Err(e);
            }
        };
        self.send_stream_text(text, pending)
    }

    /// Sends a `stream` message; `pending` is what encoding it made.
    fn send_stream_text(
        self: &Arc<Self>,
        text: String,
        pending: Pending,
    ) -> Result<(Arc<Import>, usize), RpcError> {
        let size = text.len();
        let mut state = self.lock();
        let refused = match (&state.broken, state.one_way_streams) {
            (Some(e), _) => Some(e.clone()),
            (None, Some(room)) if room < size => Some(RpcError::range(format!(
                "a stream sent over an HTTP batch is limited to {} bytes (limit max_stream_buffer)",
                self.limits.max_stream_buffer
            ))),
            _ => None,
        };
        if let Some(e) = refused {
            drop(state);
            self.abandon(pending);
            return Err(e);
        }
        let one_way = match state.one_way_streams {
            Some(room) => {
                state.one_way_streams = Some(room - size);
                true
            }
            None => false,
        };
        let new_id = state.next_import;
        state.next_import += 1;
        if !one_way {
            self.unsent_stream_bytes.fetch_add(size, Ordering::AcqRel);
        }
        let _ = self.queue(text);
        let import = self.new_import(&mut state, new_id, ImportKind::StreamCall, 0, None);
        drop(state);
        if one_way {
            import.settle(Ok(Value::Undefined));
        }
        self.start_pending(pending);
        Ok((import, size))
    }

    /// The size `text` counts for in [`Self::stream_bytes_sent`]: a stream write's length,
    /// or 0 for any other message.
    pub(crate) fn outgoing_stream_size(&self, text: &str) -> usize {
        if text.starts_with(r#"["stream","#) {
            text.len()
        } else {
            0
        }
    }

    /// The transport took `bytes` of stream writes.
    pub(crate) fn stream_bytes_sent(&self, bytes: usize) {
        if bytes > 0 {
            let _ =
                self.unsent_stream_bytes
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        Some(n.saturating_sub(bytes))
                    });
            self.unsent_drained.notify_waiters();
        }
    }

    /// Waits while more than [`MAX_UNSENT_STREAM_BYTES`] of stream writes wait for the
    /// transport (or until the session ends).
    pub(crate) async fn stream_queue_room(&self) {
        loop {
            let drained = self.unsent_drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.unsent_stream_bytes.load(Ordering::Acquire) <= MAX_UNSENT_STREAM_BYTES
                || self.lock().broken.is_some()
            {
                return;
            }
            drained.await;
        }
    }

    /// Adds `hook` to the export table under a new ID.
    fn new_export(&self, hook: Hook) -> Result<i64, RpcError> {
        let mut state = self.lock();
        if let Some(e) = &state.broken {
            return Err(e.clone());
        }
        // Every introduction gets a new ID, even for an object exported before: capnweb
        // releases an import with a count of 1 however often it was introduced, so a
        // reused ID would never be fully released by a capnweb peer.
        let id = state.next_export;
        state.next_export -= 1;
        state.exports.insert(id, ExportEntry::new(hook));
        Ok(id)
    }

    fn export_hook(
        self: &Arc<Self>,
        hook: &Hook,
        promise: bool,
        pending: &mut Pending,
    ) -> Result<Expr, RpcError> {
        if let Hook::Recorded(_) = hook {
            return Err(crate::map::placeholder_error());
        }
        if let Hook::Import(imp) = hook
            && Arc::ptr_eq(&imp.session, self)
            && !(imp.sent_as_stream.load(Ordering::Acquire) && imp.resolution.get().is_none())
        {
            match imp.resolution.get() {
                // A settled promise import was released: send what it settled to.
                Some(Ok(v)) if imp.promise => return self.encode_value(v, pending),
                Some(Err(e)) if imp.promise => {
                    return self.export_hook(&Hook::Error(e.clone()), promise, pending);
                }
                _ => {
                    return Ok(if imp.promise || promise {
                        Expr::Pipeline {
                            id: imp.id,
                            path: None,
                            args: None,
                        }
                    } else {
                        Expr::Import {
                            id: imp.id,
                            path: None,
                            args: None,
                        }
                    });
                }
            }
        }
        let id = self.new_export(hook.clone())?;
        pending.exported.push(id);
        if promise {
            // Resolved only after the message introducing it has been sent.
            pending.promises.push(id);
            Ok(Expr::Promise(id))
        } else {
            Ok(Expr::Export(id))
        }
    }

    /// Starts sending the resolution of export `id` once it is known (once per export).
    fn resolve_export(self: &Arc<Self>, id: i64, auto_release: bool) {
        let hook = {
            let mut state = self.lock();
            let Some(entry) = state.exports.get_mut(&id) else {
                return;
            };
            if !matches!(entry.resolution, Resolution::NotPulled) {
                return;
            }
            entry.resolution = Resolution::Running(None);
            let hook = entry.hook.clone();
            if !entry.is_stream_call() {
                state.resolving += 1;
            }
            hook
        };
        match hook {
            // Known already: answer now, without a task.
            Hook::Ready(v) if !matches!(*v, Value::Promise(_)) => {
                self.finish_resolution(id, Ok(v), auto_release);
            }
            Hook::Error(e) => self.finish_resolution(id, Err(e), auto_release),
            hook => {
                let this = self.clone();
                let task = async move {
                    let mut result = hook.resolve().await;
                    // A promise that resolves to another promise: follow it to the end.
                    while let Ok(Value::Promise(p)) = &result {
                        let next = p.hook.resolve();
                        result = next.await;
                    }
                    this.finish_resolution(id, result.map(Arc::new), auto_release);
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        let handle = rt.spawn(task).abort_handle();
                        let mut state = self.lock();
                        if let Some(entry) = state.exports.get_mut(&id)
                            && matches!(entry.resolution, Resolution::Running(None))
                        {
                            entry.resolution = Resolution::Running(Some(handle));
                        } else if !state.exports.contains_key(&id) {
                            handle.abort();
                        }
                    }
                    Err(_) => tracing::warn!("capwire: no tokio runtime to resolve export {id}"),
                }
            }
        }
    }

    /// Sends `resolve` or `reject` for export `id`.
    fn finish_resolution(
        self: &Arc<Self>,
        id: i64,
        result: Result<Arc<Value>, RpcError>,
        auto_release: bool,
    ) {
        let mut pending = Pending::default();
        let text = result.and_then(|v| self.resolve_text(id, &v, &mut pending));
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                self.abandon(std::mem::take(&mut pending));
                Message::Reject(id, error_expr(&e)).to_text()
            }
        };
        let released;
        {
            let mut state = self.lock();
            let Some(entry) = state.exports.get_mut(&id) else {
                // Released meanwhile: the peer no longer wants it.
                drop(state);
                self.abandon(pending);
                return;
            };
            // Not running any more: the handle must not abort this task on release below.
            entry.resolution = Resolution::Sent;
            let counted = !entry.is_stream_call();
            if state.broken.is_none() {
                let _ = self.queue(text);
            }
            if counted {
                Self::settled_one(&mut state, &self.idle);
            }
            released = if auto_release {
                self.release_locked(&mut state, id, 1).ok().flatten()
            } else {
                None
            };
        }
        drop(released);
        self.start_pending(pending);
    }

    fn settled_one(state: &mut State, idle: &Notify) {
        state.resolving -= 1;
        if state.resolving == 0 {
            idle.notify_waiters();
        }
    }

    /// Releases `count` references to export `id`; returns the entry if that was the
    /// last, to be dropped outside the lock.
    fn release_locked(
        &self,
        state: &mut State,
        id: i64,
        count: u64,
    ) -> Result<Option<ExportEntry>, ProtocolError> {
        let entry = state
            .exports
            .get_mut(&id)
            .ok_or(ProtocolError::NoSuchExport(id))?;
        if entry.refcount < count {
            return Err(ProtocolError::OverRelease {
                id,
                have: entry.refcount,
                released: count,
            });
        }
        entry.refcount -= count;
        if entry.refcount > 0 {
            return Ok(None);
        }
        let entry = state.exports.remove(&id).expect("present above");
        if matches!(entry.resolution, Resolution::Running(_)) && !entry.is_stream_call() {
            Self::settled_one(state, &self.idle);
        }
        Ok(Some(entry))
    }

    fn export_of(&self, id: i64) -> Result<Hook, ProtocolError> {
        self.lock()
            .exports
            .get(&id)
            .map(|e| e.hook.clone())
            .ok_or(ProtocolError::NoSuchExport(id))
    }

    /// The peer introduced a stub (`export`) or promise (`promise`) with ID `id`.
    fn import_from_peer(
        self: &Arc<Self>,
        id: i64,
        promise: bool,
    ) -> Result<Arc<Import>, ProtocolError> {
        let mut state = self.lock();
        if let Some(e) = &state.broken {
            return Err(ProtocolError::Session(e.clone()));
        }
        if let Some(slot) = state.imports.get_mut(&id) {
            if promise {
                return Err(ProtocolError::Invalid(format!(
                    "the peer sent a promise reusing an existing export ID: {id}"
                )));
            }
            slot.remote_refcount += 1;
            if let Some(import) = slot.import.upgrade() {
                return Ok(import);
            }
            // The last local reference is gone but its release is not sent yet: a new
            // generation takes over the count, so the pending release is skipped.
            let count = slot.remote_refcount;
            let charge = slot.charge.take();
            return Ok(self.new_import(&mut state, id, ImportKind::Stub, count, charge));
        }
        let kind = if promise {
            ImportKind::Promise
        } else {
            ImportKind::Stub
        };
        let charge = self.charge_entry(0)?;
        Ok(self.new_import(&mut state, id, kind, 1, Some(charge)))
    }

    /// Evaluates an expression from the peer into a value.
    pub(crate) fn evaluate(self: &Arc<Self>, expr: Expr) -> Result<Value, ProtocolError> {
        crate::eval::evaluate(expr, &mut SessionScope(self))
    }

    /// The error a `reject` or `abort` carries (a non-error value is described as one).
    fn evaluate_error(self: &Arc<Self>, expr: Expr) -> RpcError {
        match self.evaluate(expr) {
            Ok(Value::Error(e)) => e,
            Ok(other) => RpcError::error(format!("{other:?}")),
            Err(e) => e.into(),
        }
    }

    /// Handles one incoming message. An error ends the session.
    pub(crate) fn handle_text(self: &Arc<Self>, text: &str) -> Result<(), ProtocolError> {
        self.handle_message(text)?;
        self.check_budgets()
    }

    /// Ends the session if its peer made it hold more than a budget allows: its stream
    /// buffer (a peer that writes more than its readers take ignores flow control), its
    /// memory, or the server's.
    pub(crate) fn check_budgets(&self) -> Result<(), ProtocolError> {
        match self
            .stream_buffer
            .exceeded_budget()
            .or_else(|| self.memory.exceeded_budget())
        {
            None => Ok(()),
            Some(e) if e.name == "max_stream_buffer" => {
                Err(ProtocolError::StreamBufferExceeded { limit: e.limit })
            }
            Some(e) => Err(ProtocolError::OverBudget {
                name: e.name,
                limit: e.limit,
            }),
        }
    }

    fn handle_message(self: &Arc<Self>, text: &str) -> Result<(), ProtocolError> {
        if let Some(e) = self.broken() {
            return Err(ProtocolError::Session(e));
        }
        match Message::parse(text, &self.limits)? {
            Message::Push(expr) => {
                self.handle_push(expr, false, text.len())?;
            }
            Message::Stream(expr) => {
                self.handle_push(expr, true, text.len())?;
            }
            Message::Pipe => {
                let (writer, reader) = crate::stream::pipe_ends(Some(self.stream_buffer.clone()));
                let mut entry = ExportEntry::new(Hook::Local(writer.clone()));
                entry.charge = Some(self.charge_entry(0)?);
                entry.kind = ExportKind::Pipe {
                    writer,
                    readable: Some(reader),
                };
                let mut state = self.lock();
                let id = state.next_peer_push;
                state.next_peer_push += 1;
                state.exports.insert(id, entry);
            }
            Message::Pull(id) => {
                if !self.lock().exports.contains_key(&id) {
                    return Err(ProtocolError::NoSuchExport(id));
                }
                self.resolve_export(id, false);
            }
            Message::Resolve(id, expr) => {
                let value = self.evaluate(expr);
                self.settle_import(id, value.map_err(RpcError::from));
            }
            Message::Reject(id, expr) => {
                let error = self.evaluate_error(expr);
                self.settle_import(id, Err(error));
            }
            Message::Release(id, count) => {
                let released = {
                    let mut state = self.lock();
                    self.release_locked(&mut state, id, count)?
                };
                drop(released);
            }
            Message::Abort(expr) => {
                return Err(ProtocolError::PeerAborted(self.evaluate_error(expr)));
            }
        }
        Ok(())
    }

    /// Counts a new table entry, made by a message of `size` bytes, against the session's
    /// memory.
    fn charge_entry(&self, size: usize) -> Result<Charge, ProtocolError> {
        self.memory
            .charge(ENTRY_COST.saturating_add(size))
            .ok_or_else(|| self.over_budget())
    }

    /// Counts `size` more bytes for export `id` (its result, now known and held until the
    /// peer releases it); a session that passes its budget so is ended.
    fn charge_result(&self, id: i64, size: usize) {
        let mut state = self.lock();
        let Some(entry) = state.exports.get_mut(&id) else {
            return;
        };
        let full = match &mut entry.charge {
            Some(charge) => !charge.grow(size),
            None => false,
        };
        drop(state);
        if full {
            let _ = self.events.send(Event::OverBudget);
        }
    }

    /// The error for a charge the session's memory (or the server's) refused.
    fn over_budget(&self) -> ProtocolError {
        let full = self.memory.exceeded_budget();
        ProtocolError::OverBudget {
            name: full.map_or(self.memory.name(), |e| e.name),
            limit: full.map_or(self.memory.limit(), |e| e.limit),
        }
    }

    /// A `push` (or a `stream` call) of `size` bytes: a new export for its result, counted
    /// against the session's memory with what it holds (the message's size stands for its
    /// arguments; a result known at once is measured).
    fn handle_push(
        self: &Arc<Self>,
        expr: Expr,
        stream: bool,
        size: usize,
    ) -> Result<(), ProtocolError> {
        let id = {
            let mut state = self.lock();
            let id = state.next_peer_push;
            state.next_peer_push += 1;
            id
        };
        // A stream write's bytes are counted by the stream buffer.
        let mut charge = self.charge_entry(if stream { 0 } else { size })?;
        let hook = crate::eval::hook_of(self.evaluate(expr)?);
        // (A value shared with another entry, a pipelined reference to an earlier result,
        // is counted there.)
        if let Hook::Ready(v) = &hook
            && Arc::strong_count(v) == 1
        {
            let held = crate::budget::value_size(v, self.memory.limit());
            if !charge.grow(held) {
                return Err(self.over_budget());
            }
        }
        // A result still to come is counted when it comes, if the entry is still there.
        if let Hook::Pending(_, turns) = &hook {
            let session = Arc::downgrade(self);
            turns.on_settled(Box::new(move |size| {
                if let Some(session) = session.upgrade() {
                    session.charge_result(id, size);
                }
            }));
        }
        let mut entry = ExportEntry::new(hook);
        entry.charge = Some(charge);
        if stream {
            entry.kind = ExportKind::StreamCall;
        }
        let mut state = self.lock();
        state.exports.insert(id, entry);
        drop(state);
        if stream {
            self.resolve_export(id, true);
        }
        Ok(())
    }

    fn settle_import(&self, id: i64, result: Result<Value, RpcError>) {
        let import = {
            let mut state = self.lock();
            let Some(slot) = state.imports.get(&id) else {
                // Released already (a race capnweb tolerates too): drop the value.
                return;
            };
            let import = slot.import.upgrade();
            if let Some(import) = &import {
                // We keep the resolution locally; the peer can let go of its export.
                import.released.store(true, Ordering::Release);
                let slot = state.imports.remove(&id).expect("present above");
                if slot.remote_refcount > 0 && state.broken.is_none() {
                    let _ = self.queue(Message::Release(id, slot.remote_refcount).to_text());
                }
            }
            import
        };
        if let Some(import) = import {
            import.settle(result);
        }
    }

    /// A local reference went away: release the import if nothing re-introduced it.
    pub(crate) fn handle_event(self: &Arc<Self>, event: Event) -> bool {
        match event {
            Event::Dropped { id, generation } => {
                let mut state = self.lock();
                let current = state
                    .imports
                    .get(&id)
                    .is_some_and(|s| s.generation == generation && s.import.strong_count() == 0);
                if current {
                    let slot = state.imports.remove(&id).expect("present above");
                    if slot.remote_refcount > 0 && state.broken.is_none() {
                        let _ = self.queue(Message::Release(id, slot.remote_refcount).to_text());
                    }
                }
                // A client-only session ends once its main stub and every other reference
                // (imports, exports, results on their way) are gone.
                let done = state.main_taken
                    && !state.serves_main
                    && state.imports.is_empty()
                    && state.exports.len() == 1
                    && state.resolving == 0;
                drop(state);
                if done {
                    self.shutdown(
                        RpcError::error("RPC session was shut down by disposing the main stub"),
                        false,
                    );
                    return false;
                }
                true
            }
            Event::OverBudget => match self.check_budgets() {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!("capwire: ending session: {e}");
                    self.shutdown(RpcError::from(e), true);
                    false
                }
            },
            Event::FlushDeferred => {
                self.flush_deferred();
                true
            }
            Event::Shutdown => false,
        }
    }

    /// Ends the session: optionally sends `abort`, fails every pending import, and frees
    /// every table entry.
    pub(crate) fn shutdown(self: &Arc<Self>, error: RpcError, send_abort: bool) {
        let (imports, exports) = {
            let mut state = self.lock();
            if state.broken.is_some() {
                return;
            }
            if send_abort {
                let expr = error_expr(&error);
                // Sent whatever the budget: it says why the session ends.
                let text = Message::Abort(expr).to_text();
                self.memory.force_add(text.len());
                self.unsent_bytes.fetch_add(text.len(), Ordering::AcqRel);
                let _ = self.out.send(text);
            }
            state.broken = Some(error.clone());
            state.resolving = 0;
            (
                std::mem::take(&mut state.imports),
                std::mem::take(&mut state.exports),
            )
        };
        let _ = self.events.send(Event::Shutdown);
        for slot in imports.into_values() {
            if let Some(import) = slot.import.upgrade() {
                import.settle(Err(error.clone()));
            }
        }
        drop(exports);
        self.idle.notify_waiters();
        self.ended.notify_waiters();
    }

    /// The peer will send nothing more: every result still expected from it fails with
    /// `error`, and so does every later call to it.
    pub(crate) fn peer_done(&self, error: RpcError) {
        let (pending, unread, pipes) = {
            let mut state = self.lock();
            state.deaf = Some(error.clone());
            let pending: Vec<Arc<Import>> = state
                .imports
                .values()
                .filter_map(|slot| slot.import.upgrade())
                .collect();
            let mut unread: Vec<ReadableStream> = Vec::new();
            let mut pipes = Vec::new();
            for entry in state.exports.values_mut() {
                if let ExportKind::Pipe { writer, readable } = &mut entry.kind {
                    unread.extend(readable.take());
                    pipes.push(writer.clone());
                }
            }
            (pending, unread, pipes)
        };
        // No message can claim a pipe or write to it any more: unclaimed pipes are
        // dropped (failing writes that wait for a reader), unfinished ones are aborted.
        drop(unread);
        for pipe in pipes {
            pipe.abort_unfinished(error.clone());
        }
        self.streams_one_way();
        for import in pending {
            if import.promise && !import.stream {
                import.settle(Err(error.clone()));
            }
        }
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
            if let Some(e) = self.broken() {
                return e;
            }
            notified.await;
        }
    }
}
