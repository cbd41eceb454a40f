//! The import table's entries: what this side references of the peer's, shared by every
//! stub and promise that refers to it.

use super::*;

/// An entry of the import table, shared by every stub or promise that refers to it. When
/// the last one is dropped, the session sends `release`.
pub(crate) struct Import {
    pub(super) session: Arc<SessionInner>,
    pub(super) id: i64,
    pub(super) generation: u64,
    pub(super) promise: bool,
    /// The result of a `stream` call: an acknowledgement the peer sends by itself.
    pub(super) stream: bool,
    pub(super) pulled: AtomicBool,
    /// Its table entry is gone already (released when it settled): nothing to do on drop.
    pub(super) released: AtomicBool,
    /// Its call went as a `stream` (see [`SessionInner::send_as_stream`]): the peer answers
    /// and releases it by itself, and its ID must not be referenced again.
    pub(super) sent_as_stream: AtomicBool,
    pub(super) resolution: OnceLock<Result<Value, RpcError>>,
    /// The resolution is set and its `on_broken` callbacks have run: awaiting it may end.
    pub(super) announced: AtomicBool,
    /// Who awaits the resolution: woken once it is announced (a list under a lock, not a
    /// `Notify`: most imports have one awaiter, and waking is deferred to the end of a
    /// burst, see [`wake_after_burst`]). Room for one inline: no allocation for the
    /// common case.
    pub(super) awaiting: Mutex<smallvec::SmallVec<[std::task::Waker; 1]>>,
    /// Callbacks of `on_broken`, run when this settles.
    pub(super) watchers: Mutex<Vec<BrokenCallback>>,
}

/// What `on_broken` runs.
pub(crate) type BrokenCallback = Box<dyn FnOnce(RpcError) + Send>;

impl Import {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// Sets the result (the first one set wins), runs the `on_broken` callbacks, then
    /// wakes whoever awaits it: code that awaits a call sees it fail only after its
    /// callbacks ran.
    pub(super) fn settle(&self, result: Result<Value, RpcError>) {
        if self.settle_quietly(result) {
            self.announce();
        }
    }

    /// [`Import::settle`] without waking its awaiters ([`Import::announce`] does): a
    /// session that ends settles every import first, so that no code awaiting one sees
    /// the end before every callback of every import ran. `false` if it was settled
    /// already.
    pub(super) fn settle_quietly(&self, result: Result<Value, RpcError>) -> bool {
        if self.resolution.set(result).is_err() {
            return false;
        }
        // Taken after the resolution is set: a watcher added meanwhile sees it.
        let watchers = std::mem::take(&mut *lock(&self.watchers));
        if let Some(result) = self.resolution.get() {
            for watcher in watchers {
                crate::stub::notify_broken(result, watcher);
            }
        }
        true
    }

    /// Lets whoever awaits the result (settled already) have it.
    pub(super) fn announce(&self) {
        self.announced.store(true, Ordering::Release);
        let awaiting = std::mem::take(&mut *lock(&self.awaiting));
        for waker in awaiting {
            wake(waker);
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

    /// Lets go of `this` (a promise that timed out): settled with `error` first, running
    /// its `on_broken` callbacks, if nothing else holds it; dropping it then releases it,
    /// which cancels the call on the peer.
    pub(crate) fn give_up(this: Arc<Self>, error: RpcError) {
        if Arc::strong_count(&this) == 1 {
            this.settle(Err(error));
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
        mapper: crate::session::eval::Mapper,
    ) -> Result<Hook, crate::session::eval::Mapper> {
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

    /// How long the session waits for a peer that takes nothing (`send_timeout`).
    pub(crate) fn send_timeout(&self) -> std::time::Duration {
        self.session.limits().send_timeout
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
            return futures::future::ready(Ok(Value::Stub(RpcStub::from_hook(Hook::Import(
                this.clone(),
            )))))
            .boxed();
        }
        // Awaited by its only holder with nothing pipelined on it yet: the call can still
        // go as a `stream`, which the peer answers without a `pull` and releases by itself.
        if Arc::strong_count(this) == 1 && !this.pulled.load(Ordering::Acquire) {
            this.session.send_as_stream(this);
        }
        Resolution {
            import: this.clone(),
            pulled: false,
        }
        .boxed()
    }

    /// The resolution, once announced.
    fn announced_result(&self) -> Option<Result<Value, RpcError>> {
        if self.announced.load(Ordering::Acquire) {
            self.resolution.get().cloned()
        } else {
            None
        }
    }
}

/// Awaits an import's resolution: pulls it when first polled, and registers to be woken
/// when it is announced.
struct Resolution {
    import: Arc<Import>,
    pulled: bool,
}

impl std::future::Future for Resolution {
    type Output = Result<Value, RpcError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if let Some(result) = self.import.announced_result() {
            return std::task::Poll::Ready(result);
        }
        {
            let mut awaiting = lock(&self.import.awaiting);
            // Checked again under the lock that `announce` takes after announcing: either
            // this sees the result, or `announce` sees this waker.
            if let Some(result) = self.import.announced_result() {
                return std::task::Poll::Ready(result);
            }
            if !awaiting.iter().any(|w| w.will_wake(cx.waker())) {
                awaiting.push(cx.waker().clone());
            }
        }
        if !self.pulled {
            self.pulled = true;
            self.import.pull();
        }
        std::task::Poll::Pending
    }
}

thread_local! {
    /// Wakers of awaiters whose results were announced while a burst of incoming
    /// messages is handled on this thread (see [`wake_after_burst`]).
    static DEFERRED: std::cell::RefCell<Option<Vec<std::task::Waker>>> =
        const { std::cell::RefCell::new(None) };
}

/// Wakes `waker` now, or at the end of the burst being handled on this thread.
fn wake(waker: std::task::Waker) {
    let deferred = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(wakers) => {
            if !wakers.iter().any(|w| w.will_wake(&waker)) {
                wakers.push(waker);
            }
            None
        }
        None => Some(waker),
    });
    if let Some(waker) = deferred {
        waker.wake();
    }
}

/// Runs `burst` (the handling of several incoming messages), waking the awaiters of the
/// results it announces once each, after it: a task awaiting many calls is woken once per
/// burst, not once per answer, and runs when every answer of the burst is in.
pub(crate) fn wake_after_burst<R>(burst: impl FnOnce() -> R) -> R {
    let outer = DEFERRED.with(|d| d.borrow_mut().replace(Vec::new()));
    // Nested (a burst handled inside another's): the outer one wakes.
    if let Some(outer) = outer {
        DEFERRED.with(|d| *d.borrow_mut() = Some(outer));
        return burst();
    }
    struct Flush;
    impl Drop for Flush {
        fn drop(&mut self) {
            let wakers = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
            for waker in wakers {
                waker.wake();
            }
        }
    }
    let _flush = Flush;
    burst()
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
pub(super) enum ImportKind {
    /// An object.
    Stub,
    /// A result to come.
    Promise,
    /// The acknowledgement of a `stream` call (a promise the peer answers unasked, and
    /// releases by itself).
    StreamCall,
}

pub(super) struct ImportSlot {
    /// The entry, counted against the session's memory when the peer made it.
    pub(super) charge: Option<Charge>,
    pub(super) import: Weak<Import>,
    pub(super) generation: u64,
    /// Times the peer introduced this ID to us: what a `release` must report.
    pub(super) remote_refcount: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counting(AtomicUsize);

    impl std::task::Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_task_woken_for_several_results_of_one_burst_is_woken_once_after_it() {
        let counter = Arc::new(Counting(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(counter.clone());
        let other = Arc::new(Counting(AtomicUsize::new(0)));
        wake_after_burst(|| {
            for _ in 0..3 {
                wake(waker.clone());
            }
            wake(std::task::Waker::from(other.clone()));
            // A burst handled inside this one defers to it.
            wake_after_burst(|| wake(waker.clone()));
            assert_eq!(
                counter.0.load(Ordering::SeqCst),
                0,
                "woken inside the burst"
            );
        });
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(other.0.load(Ordering::SeqCst), 1);
        // Outside a burst, a wake is at once.
        wake(waker);
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
    }
}
