//! What the peer sends: each message parsed, checked against the budgets, and applied to
//! the tables; the session's end.

use super::*;

impl SessionInner {
    /// Evaluates an expression from the peer into a value.
    pub(crate) fn evaluate(self: &Arc<Self>, expr: Expr) -> Result<Value, ProtocolError> {
        crate::session::eval::evaluate(expr, &mut SessionScope(self))
    }

    /// The error a `reject` or `abort` carries (a non-error value is described as one).
    pub(super) fn evaluate_error(self: &Arc<Self>, expr: Expr) -> RpcError {
        match self.evaluate(expr) {
            Ok(Value::Error(e)) => e,
            Ok(other) => RpcError::error(format!("{other:?}")),
            Err(e) => e.into(),
        }
    }

    /// Handles one incoming message. An error ends the session.
    ///
    /// An owned text (a WebSocket frame) can be kept, without a copy, by a call whose
    /// arguments are read straight from it.
    pub(crate) fn handle_text(
        self: &Arc<Self>,
        text: crate::wire::Frame<'_>,
    ) -> Result<(), ProtocolError> {
        if let Some(e) = self.broken() {
            return Err(ProtocolError::Session(e));
        }
        if let Some(call) = crate::wire::plain_call(&text, &self.limits) {
            let size = text.len();
            self.handle_plain_call(call, text.into_static(), size)?;
        } else {
            self.handle_message(&text)?;
        }
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

    /// Handles one message of a session that is not broken.
    pub(super) fn handle_message(self: &Arc<Self>, text: &str) -> Result<(), ProtocolError> {
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
    pub(super) fn charge_entry(&self, size: usize) -> Result<Charge, ProtocolError> {
        self.memory
            .charge(ENTRY_COST.saturating_add(size))
            .ok_or_else(|| self.over_budget())
    }

    /// Counts `size` more bytes for export `id` (its result, now known and held until the
    /// peer releases it); a session that passes its budget so is ended.
    pub(super) fn charge_result(&self, id: i64, size: usize) {
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
    pub(super) fn over_budget(&self) -> ProtocolError {
        let full = self.memory.exceeded_budget();
        ProtocolError::OverBudget {
            name: full.map_or(self.memory.name(), |e| e.name),
            limit: full.map_or(self.memory.limit(), |e| e.limit),
        }
    }

    /// A `push` (or a `stream` call) of `size` bytes: a new export for its result, counted
    /// against the session's memory with what it holds (the message's size stands for its
    /// arguments; a result known at once is measured).
    pub(super) fn handle_push(
        self: &Arc<Self>,
        expr: Expr,
        stream: bool,
        size: usize,
    ) -> Result<(), ProtocolError> {
        self.push_entry(stream, size, |this, id| {
            let span = this.call_span(id, &expr, stream);
            let hook = span.in_scope(|| {
                tracing::trace!("capwire: call received");
                this.evaluate(expr).map(crate::session::eval::hook_of)
            })?;
            Ok((hook, span))
        })
    }

    /// A `push` (or `stream`) of a call whose arguments hold no capability, `text` its
    /// message: handled as [`Self::handle_push`] handles the same message, but a local
    /// object's method reads its arguments from the text, with no [`Value`] in between.
    pub(super) fn handle_plain_call(
        self: &Arc<Self>,
        call: crate::wire::PlainCall,
        text: crate::wire::Frame<'static>,
        size: usize,
    ) -> Result<(), ProtocolError> {
        let crate::wire::PlainCall {
            stream,
            id: target,
            path,
            args,
        } = call;
        self.push_entry(stream, size, |this, id| {
            let kind = if stream { "stream" } else { "call" };
            let span = this.span_of_call(id, Some(target), Some(&path), kind);
            let args = crate::stub::object::Args::text(text, args, this.limits);
            let hook = span.in_scope(|| {
                tracing::trace!("capwire: call received");
                let hook = this.export_of(target)?;
                if let (Hook::Local(object), [PathKey::Name(name)]) = (&hook, &path[..])
                    && !crate::stub::is_prototype_name(name)
                {
                    return Ok(Hook::invoke_answer(|| object.clone().call_args(name, args)));
                }
                // Any other callee (a promise, an import, a path): the arguments as values,
                // which is what evaluating the message would have made of them.
                let args = args
                    .into_values()
                    .map_err(|e| ProtocolError::Invalid(e.message().to_owned()))?;
                Ok(crate::session::eval::hook_of(
                    crate::session::eval::reference_value(
                        &hook,
                        Some(path.into_vec()),
                        Some(args),
                        true,
                    ),
                ))
            })?;
            Ok((hook, span))
        })
    }

    /// Makes the export for the result of a `push` (or `stream`) of `size` bytes: `make`
    /// gives its hook and call span, for the export ID it is given.
    fn push_entry(
        self: &Arc<Self>,
        stream: bool,
        size: usize,
        make: impl FnOnce(&Arc<Self>, i64) -> Result<(Hook, tracing::Span), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let id = {
            let mut state = self.lock();
            let id = state.next_peer_push;
            state.next_peer_push += 1;
            id
        };
        // A stream write's bytes are counted by the stream buffer.
        let mut charge = self.charge_entry(if stream { 0 } else { size })?;
        // The call starts here (a local target's method runs up to its first await): in
        // its span, which its task and its answer keep.
        let (mut hook, span) = make(self, id)?;
        if let (Hook::Pending(..), Some(limit)) = (&hook, self.limits.max_call_duration) {
            hook = within_duration(hook, limit);
        }
        // (A value shared with another entry, a pipelined reference to an earlier result,
        // is counted there.)
        if let Hook::Ready(v) = &hook
            && Arc::strong_count(v) == 1
        {
            let held = crate::limits::budget::value_size(v, self.memory.limit());
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
        entry.span = span;
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

    /// The span of the call a `push` (or `stream`) of `expr` makes, whose result is export
    /// `id` (the caller's import ID): `capwire.call`, a child of the session's span, with
    /// `id`, the `target` ID it addresses (0 for the main object), the `method` (a dotted
    /// path) and its `kind` (`call`, `stream`, `get` for a property read, `map`, or
    /// `value` for a push of a plain value). Nothing is formatted unless a subscriber
    /// wants the span.
    fn call_span(&self, id: i64, expr: &Expr, stream: bool) -> tracing::Span {
        let (target, path, kind) = match expr {
            Expr::Pipeline {
                id: target,
                path,
                args,
            }
            | Expr::Import {
                id: target,
                path,
                args,
            } => {
                let kind = match (args, stream) {
                    (None, _) => "get",
                    (Some(_), true) => "stream",
                    (Some(_), false) => "call",
                };
                (Some(*target), path.as_deref(), kind)
            }
            Expr::Remap(r) => (Some(r.id), Some(&r.path[..]), "map"),
            _ => (None, None, "value"),
        };
        self.span_of_call(id, target, path, kind)
    }

    /// The `capwire.call` span of [`Self::call_span`], from its fields.
    fn span_of_call(
        &self,
        id: i64,
        target: Option<i64>,
        path: Option<&[PathKey]>,
        kind: &'static str,
    ) -> tracing::Span {
        tracing::debug_span!(
            parent: &self.span,
            "capwire.call",
            id,
            target,
            method = path.map(|p| tracing::field::display(PathText(p))),
            kind
        )
    }

    pub(super) fn settle_import(&self, id: i64, result: Result<Value, RpcError>) {
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
                        RpcError::ended("RPC session was shut down by disposing the main stub"),
                        false,
                    );
                    return false;
                }
                true
            }
            Event::OverBudget => match self.check_budgets() {
                Ok(()) => true,
                Err(e) => {
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
            state.abort_sent = send_abort;
            state.resolving = 0;
            (
                std::mem::take(&mut state.imports),
                std::mem::take(&mut state.exports),
            )
        };
        if send_abort {
            tracing::info!(parent: &self.span, reason = %error, "capwire: session aborted");
        } else {
            tracing::debug!(parent: &self.span, reason = %error, "capwire: session ended");
        }
        let _ = self.events.send(Event::Shutdown);
        // Every import fails, and every `on_broken` callback runs, before anything awaiting
        // an import (or the session's end) may see it: whatever the table's order.
        let imports: Vec<Arc<Import>> = imports
            .into_values()
            .filter_map(|slot| slot.import.upgrade())
            .collect();
        for import in &imports {
            import.settle_quietly(Err(error.clone()));
        }
        for import in &imports {
            import.announce();
        }
        drop(imports);
        drop(exports);
        self.lock().ended = true;
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
        // As at the session's end: every callback runs before any awaiter wakes.
        let pending: Vec<Arc<Import>> = pending
            .into_iter()
            .filter(|import| import.promise && !import.stream)
            .collect();
        for import in &pending {
            import.settle_quietly(Err(error.clone()));
        }
        for import in &pending {
            import.announce();
        }
    }
}

/// `hook`, a call of the peer's still running, stopped after `limit`
/// ([`Limits::max_call_duration`]): its future is dropped, and it rejects naming the limit.
fn within_duration(hook: Hook, limit: std::time::Duration) -> Hook {
    if tokio::runtime::Handle::try_current().is_err() {
        return hook;
    }
    Hook::start(async move {
        let result = hook.resolve();
        // The call's own hook goes with the timer: nothing else holds its task, which is
        // cancelled.
        drop(hook);
        tokio::time::timeout(limit, result)
            .await
            .unwrap_or_else(|_| {
                Err(RpcError::timeout(format!(
                    "the call ran longer than {limit:?} (limit max_call_duration)"
                )))
            })
    })
}
