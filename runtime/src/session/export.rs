//! The export table: what this side holds for the peer, and how each entry's resolution
//! goes out and is released.

use super::*;
use tracing::Instrument;

pub(super) struct ExportEntry {
    pub(super) hook: Hook,
    pub(super) refcount: u64,
    pub(super) resolution: Resolution,
    pub(super) kind: ExportKind,
    /// What the entry holds for the peer, counted against the session's memory.
    pub(super) charge: Option<Charge>,
    /// The call that made the entry (`capwire.call`), in which its answer is sent; none
    /// for other entries, or when no subscriber wants it.
    pub(super) span: tracing::Span,
}

/// What a table entry costs beyond the message that made it (the entry, its hook, the
/// call's task): a rough figure, so that a million entries cost what they take.
pub(super) const ENTRY_COST: usize = 256;

/// What an export is, beyond its hook.
pub(super) enum ExportKind {
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
pub(super) enum Resolution {
    #[default]
    NotPulled,
    /// A task is waiting for the value (its handle, once spawned).
    Running(Option<tokio::task::AbortHandle>),
    Sent,
}

impl ExportEntry {
    pub(super) fn is_stream_call(&self) -> bool {
        matches!(self.kind, ExportKind::StreamCall)
    }

    pub(super) fn new(hook: Hook) -> ExportEntry {
        ExportEntry {
            hook,
            refcount: 1,
            resolution: Resolution::NotPulled,
            kind: ExportKind::Plain,
            charge: None,
            span: tracing::Span::none(),
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

impl SessionInner {
    /// Adds `hook` to the export table under a new ID.
    pub(super) fn new_export(&self, hook: Hook) -> Result<i64, RpcError> {
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

    pub(super) fn export_hook(
        self: &Arc<Self>,
        hook: &Hook,
        promise: bool,
        pending: &mut Pending,
    ) -> Result<Expr, RpcError> {
        if let Hook::Recorded(_) = hook {
            return Err(crate::session::map::placeholder_error());
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
    pub(super) fn resolve_export(self: &Arc<Self>, id: i64, auto_release: bool) {
        let (hook, span) = {
            let mut state = self.lock();
            let Some(entry) = state.exports.get_mut(&id) else {
                return;
            };
            if !matches!(entry.resolution, Resolution::NotPulled) {
                return;
            }
            entry.resolution = Resolution::Running(None);
            let hook = entry.hook.clone();
            let span = entry.span.clone();
            if !entry.is_stream_call() {
                state.resolving += 1;
            }
            (hook, span)
        };
        match hook {
            // Known already: answer now, without a task.
            Hook::Ready(v) if !matches!(*v, Value::Promise(_)) => {
                span.in_scope(|| self.finish_resolution(id, Ok(v), auto_release));
            }
            Hook::Error(e) => span.in_scope(|| self.finish_resolution(id, Err(e), auto_release)),
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
                }
                .instrument(span);
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
    pub(super) fn finish_resolution(
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
                tracing::debug!(
                    id,
                    error.name = e.name(),
                    error.message = e.message(),
                    "capwire: call rejected"
                );
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

    pub(super) fn settled_one(state: &mut State, idle: &Notify) {
        state.resolving -= 1;
        if state.resolving == 0 {
            idle.notify_waiters();
        }
    }

    /// Releases `count` references to export `id`; returns the entry if that was the
    /// last, to be dropped outside the lock.
    pub(super) fn release_locked(
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

    pub(super) fn export_of(&self, id: i64) -> Result<Hook, ProtocolError> {
        self.lock()
            .exports
            .get(&id)
            .map(|e| e.hook.clone())
            .ok_or(ProtocolError::NoSuchExport(id))
    }

    /// The peer introduced a stub (`export`) or promise (`promise`) with ID `id`.
    pub(super) fn import_from_peer(
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
}
