//! What this side sends: the outgoing queue (with the deferred call that may go as a
//! `stream`), calls and their imports, and values encoded with their capabilities exported.

use super::*;

impl SessionInner {
    /// Queues a message for the transport. Its bytes count against the session's memory
    /// until the transport takes them ([`Self::unqueued`]): a peer that reads slowly while
    /// results pile up for it passes its budget and is aborted. (A failed charge is
    /// remembered by the budget; the session loop ends the session.)
    pub(super) fn queue(&self, text: String) -> Result<(), ()> {
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
    pub(super) fn defer(&self, id: i64, call: String) -> Result<(), ()> {
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
    pub(super) fn flush_deferred(&self) {
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
    pub(super) fn send_as_stream(&self, import: &Import) {
        let mut state = self.lock();
        let mut deferred = lock(&self.deferred);
        let Some((id, call)) = deferred.as_ref() else {
            return;
        };
        const PUSH: &str = r#"["push","#;
        const STREAM: &str = r#"["stream","#;
        if *id != import.id
            || state.broken.is_some()
            || !call.starts_with(PUSH)
            || call.len() - PUSH.len() + STREAM.len() > self.limits.max_message_size
        {
            return;
        }
        let Some(slot) = state.imports.get_mut(&import.id) else {
            return;
        };
        let Some((_, mut stream)) = deferred.take() else {
            return; // (present: matched above)
        };
        slot.remote_refcount = 0;
        import.pulled.store(true, Ordering::Release);
        import.sent_as_stream.store(true, Ordering::Release);
        // Rewritten in place (a call's text is shorter than its buffer, so this does not
        // reallocate).
        stream.replace_range(..PUSH.len(), STREAM);
        // Counted as the transport counts it when taken: every `stream` message is.
        let size = stream.len();
        self.unsent_stream_bytes.fetch_add(size, Ordering::AcqRel);
        if self.queue_now(stream).is_err() {
            self.stream_bytes_sent(size);
        }
    }

    pub(super) fn queue_now(&self, text: String) -> Result<(), ()> {
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

    pub(super) fn new_import(
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
            announced: AtomicBool::new(false),
            awaiting: Mutex::default(),
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
    pub(super) fn send_call(
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
        let text = self.text_within_limit(&crate::wire::PushCall {
            id,
            path,
            args: args.as_deref(),
        });
        let import = self.push_text(text, pending, defer)?;
        tracing::trace!(
            parent: &self.span,
            id = import.id,
            target = id,
            method = %PathText(path),
            "capwire: call sent"
        );
        Ok(import)
    }

    /// The text of `msg`, or an error naming `max_message_size` if it would be longer (a
    /// message the peer would have to abort on is never sent).
    pub(super) fn text_within_limit(
        &self,
        msg: &impl serde::Serialize,
    ) -> Result<String, RpcError> {
        crate::wire::text_within(msg, self.limits.max_message_size).ok_or_else(|| self.too_big())
    }

    /// The error for a message that would pass `max_message_size`.
    pub(super) fn too_big(&self) -> RpcError {
        RpcError::range(format!(
            "the message would exceed the maximum size of {} bytes (limit max_message_size)",
            self.limits.max_message_size
        ))
    }

    /// Sends `["push", expr]`; `pending` is what encoding it made. The result is a new
    /// promise import.
    pub(super) fn push(
        self: &Arc<Self>,
        expr: Expr,
        pending: Pending,
    ) -> Result<Arc<Import>, RpcError> {
        let text = self.text_within_limit(&Message::Push(expr));
        self.push_text(text, pending, false)
    }

    /// Sends a `push` whose text is `text` (or fails with its encoding error); with
    /// `defer` (a call that started nothing of its own), it waits as the deferred call
    /// (see [`Self::send_as_stream`]).
    fn push_text(
        self: &Arc<Self>,
        text: Result<String, RpcError>,
        pending: Pending,
        defer: bool,
    ) -> Result<Arc<Import>, RpcError> {
        let text = match text {
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
            Expr::Remap(Box::new(crate::wire::RemapExpr {
                id,
                path: Vec::new(),
                captures,
                instructions,
            })),
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
    pub(super) fn export_capability(
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
    pub(super) fn resolve_text(
        self: &Arc<Self>,
        id: i64,
        value: &Value,
        pending: &mut Pending,
    ) -> Result<String, RpcError> {
        use std::io::Write;
        let mut out = crate::wire::Limited::new(self.limits.max_message_size);
        write!(out, "[\"resolve\",{id},").map_err(|_| self.too_big())?;
        crate::session::codec::write_value(
            &mut out,
            value,
            self.limits.max_depth,
            &mut |capability| self.export_capability(capability, pending),
        )
        .map_err(|e| match e {
            crate::session::codec::WriteError::Value(e) => e,
            crate::session::codec::WriteError::Full => self.too_big(),
        })?;
        out.write_all(b"]").map_err(|_| self.too_big())?;
        out.into_string().ok_or_else(|| self.too_big())
    }

    /// Encodes each of `values` (a call's arguments); if one cannot be encoded, what the
    /// others made is undone and the error returned.
    pub(super) fn encode_all(
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
    pub(super) fn abandon(&self, pending: Pending) {
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
    pub(super) fn start_pending(self: &Arc<Self>, pending: Pending) {
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
    pub(super) fn export_readable(
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
    pub(super) fn send_stream(
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
    pub(super) fn send_stream_text(
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

    /// The size `text` counts for in [`Self::stream_bytes_sent`]: the length of a `stream`
    /// message (a stream write, or a call sent as a stream, which both count when queued),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn a_call_sent_as_a_stream_counts_as_the_transport_counts_it() {
        let (inner, mut out_rx, _events) =
            SessionInner::new(None, Limits::default(), None, tracing::Span::none());
        inner.defers_calls.store(true, Ordering::Release);
        // A stream write of 100 bytes waits for the transport.
        inner.unsent_stream_bytes.fetch_add(100, Ordering::AcqRel);
        let call = inner.main_stub().call("add", (1, 2));
        // Its first poll sends the awaited call as `["stream", ...]`.
        assert!(call.now_or_never().is_none());
        let text = out_rx.try_recv().expect("the call was queued");
        assert!(text.starts_with(r#"["stream","#), "{text}");
        // The transport takes it, as `feed_all` does.
        inner.unqueued(text.len());
        inner.stream_bytes_sent(inner.outgoing_stream_size(&text));
        assert_eq!(inner.unsent_stream_bytes.load(Ordering::Acquire), 100);
    }
}
