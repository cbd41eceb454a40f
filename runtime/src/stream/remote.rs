//! Writing into a writable that lives at a peer, under flow control, and pumping a local
//! stream into a pipe at a peer.

use super::flow::{FlowController, Sent};
use super::{Chunk, MAX_CHUNK};
use crate::error::RpcError;
use crate::session::{Import, Pumping};
use crate::stub::Hook;
use crate::value::Value;
use crate::wire::PathKey;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Notify;

/// A writable at a peer (a pipe it made for us, or a `WritableStream` it sent). Writes are
/// `stream` calls; each is acknowledged when the peer's reader has taken it. Dropping the
/// writer releases the peer's writable, which aborts it unless it was closed.
pub(crate) struct RemoteWriter {
    target: Hook,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    flow: FlowController,
    /// The first write that failed: every later operation fails with it.
    error: Option<RpcError>,
}

impl Shared {
    fn settle(&self, sent: &Sent, result: Result<(), RpcError>) {
        {
            let mut state = super::lock(&self.state);
            match result {
                Ok(()) => state.flow.on_ack(sent, Instant::now()),
                Err(e) => {
                    state.flow.on_reject(sent);
                    state.error.get_or_insert(e);
                }
            }
        }
        self.changed.notify_waiters();
    }

    /// The error of the first write that failed, if one has.
    fn check(&self) -> Result<(), RpcError> {
        match &super::lock(&self.state).error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Waits until `ready` holds, or a write has failed.
    async fn wait(&self, ready: impl Fn(&State) -> bool) -> Result<(), RpcError> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let state = super::lock(&self.state);
                if let Some(e) = &state.error {
                    return Err(e.clone());
                }
                if ready(&state) {
                    return Ok(());
                }
            }
            changed.await;
        }
    }
}

/// One `write` message's chunk.
enum Piece {
    Bytes(Bytes),
    Value(Value),
}

fn method(name: &str) -> [PathKey; 1] {
    [PathKey::from(name)]
}

impl RemoteWriter {
    pub(crate) fn new(target: Hook) -> RemoteWriter {
        RemoteWriter {
            target,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    flow: FlowController::default(),
                    error: None,
                }),
                changed: Notify::new(),
            }),
        }
    }

    /// Writes `chunk`: bytes split into messages of at most [`MAX_CHUNK`] bytes, a value
    /// as one message. Completes when the window has room for more.
    pub(crate) async fn write(&mut self, chunk: Chunk) -> Result<(), RpcError> {
        match chunk {
            Chunk::Bytes(mut bytes) => {
                while !bytes.is_empty() {
                    let piece = bytes.split_to(bytes.len().min(MAX_CHUNK));
                    self.write_piece(Piece::Bytes(piece)).await?;
                }
                Ok(())
            }
            Chunk::Value(value) => self.write_piece(Piece::Value(value)).await,
        }
    }

    async fn write_piece(&mut self, piece: Piece) -> Result<(), RpcError> {
        self.shared.check()?;
        let Hook::Import(import) = &self.target else {
            // A writable in this process: each write in turn, no window.
            let args = vec![match piece {
                Piece::Bytes(b) => Value::Bytes(b.into()),
                Piece::Value(v) => v,
            }];
            return self
                .target
                .op(&method("write"), Some(args))
                .resolve()
                .await
                .map(drop);
        };
        // Bytes are written straight into the message; a value is encoded as a call's
        // argument, its stubs exported with it. Either way the window counts the
        // message's length, as capnweb's does; for a value, at least what it will cost
        // the reader to hold, which is what a capwire reader charges against its
        // `max_stream_buffer` (a list of small numbers holds more than its text): a
        // sender within its window then stays within the reader's budget.
        let (ack, size) = match piece {
            Piece::Bytes(b) => import.stream_write(&b)?,
            Piece::Value(v) => {
                let held = crate::limits::budget::value_size(&v, usize::MAX);
                let (ack, size) = import.stream_call("write", vec![v])?;
                (ack, size.max(held))
            }
        };
        let sent = super::lock(&self.shared.state)
            .flow
            .on_send(size, Instant::now());
        let shared = self.shared.clone();
        let acked = async move {
            let result = Import::resolve(&ack).await;
            shared.settle(&sent, result.map(drop));
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(acked)),
            // Outside a tokio runtime: one write at a time.
            Err(_) => acked.await,
        }
        self.shared.wait(|state| state.flow.open()).await?;
        import.stream_queue_room().await;
        Ok(())
    }

    /// Closes the stream and waits until the peer has taken every chunk.
    pub(crate) async fn close(self) -> Result<(), RpcError> {
        self.shared.check()?;
        self.send_close().await
    }

    /// Sends `close` now; the future tells whether the peer took every chunk.
    fn send_close(self) -> BoxFuture<'static, Result<(), RpcError>> {
        match &self.target {
            Hook::Import(import) => match import.stream_call("close", Vec::new()) {
                Ok((ack, _)) => async move {
                    Import::resolve(&ack).await?;
                    self.shared.wait(|state| state.flow.in_flight() == 0).await
                }
                .boxed(),
                Err(e) => futures::future::ready(Err(e)).boxed(),
            },
            local => {
                let closed = local.op(&method("close"), Some(Vec::new())).resolve();
                closed.map(|r| r.map(drop)).boxed()
            }
        }
    }

    /// Aborts the stream at the peer with `reason` (without waiting for it to be seen).
    pub(crate) fn abort(self, reason: RpcError) {
        let args = vec![Value::Error(reason)];
        match &self.target {
            Hook::Import(import) => {
                let _ = import.stream_call("abort", args);
            }
            local => drop(local.op(&method("abort"), Some(args))),
        }
    }

    /// How long to wait for a peer that takes nothing: the session's `send_timeout` (the
    /// default limits' for a writable in this process).
    fn send_timeout(&self) -> std::time::Duration {
        match &self.target {
            Hook::Import(import) => import.send_timeout(),
            _ => crate::Limits::default().send_timeout,
        }
    }

    /// Completes when the session the writable lives in has ended.
    async fn session_ended(&self) {
        match &self.target {
            Hook::Import(import) => {
                import.session_closed().await;
            }
            _ => std::future::pending().await,
        }
    }
}

/// Feeds `source` into a pipe at the peer: every chunk is written under flow control, the
/// end closes the pipe, an error aborts it once the chunks before it were acknowledged. If
/// the peer stops reading, the source is dropped (cancelled). `busy` is dropped once the
/// last message is sent.
pub(crate) async fn pump(
    mut source: BoxStream<'static, Result<Chunk, RpcError>>,
    mut writer: RemoteWriter,
    busy: Pumping,
) {
    loop {
        let item = tokio::select! {
            item = source.next() => item,
            () = writer.session_ended() => return,
        };
        match item {
            Some(Ok(chunk)) => {
                if let Err(e) = writer.write(chunk).await {
                    // Failed here (a chunk over `max_message_size`, say), not at the peer:
                    // the reader learns why, rather than that the writer went away.
                    if writer.shared.check().is_ok() {
                        writer.abort(e);
                    }
                    return;
                }
            }
            Some(Err(e)) => {
                // The chunks before the error first: a capnweb reader's pipe drops what its
                // reader has not taken when it is aborted, so the abort waits until every
                // write was acknowledged (or one failed, or the session ended), for no
                // longer than `send_timeout`, without holding the source meanwhile.
                drop(source);
                let limit = writer.send_timeout();
                let acked = writer.shared.wait(|state| state.flow.in_flight() == 0);
                tokio::select! {
                    _ = tokio::time::timeout(limit, acked) => {}
                    () = writer.session_ended() => return,
                }
                return writer.abort(e);
            }
            None => {
                if writer.shared.check().is_ok() {
                    let closed = writer.send_close();
                    drop(busy);
                    let _ = closed.await;
                }
                return;
            }
        }
    }
}
