//! Stubs and promises: the handles users hold on objects and results that live elsewhere.
//!
//! It owns [`RpcStub`], [`RpcPromise`] and the `Hook` behind both (local object, import
//! of a session, settled value, error), and the two ends of a call in user code: `object`
//! ([`RpcObject`], what a local target implements), `function` (closures as targets) and
//! `typed` (the typed [`Stub`](crate::Stub) and [`RpcTarget`](crate::RpcTarget) that the
//! macros generate code against).

pub(crate) mod function;
pub(crate) mod object;
pub(crate) mod typed;

use crate::error::RpcError;
use crate::session::{BrokenCallback, Import};
use crate::stub::object::{Answer, CallFuture, RpcObject};
use crate::value::Value;
use crate::wire::PathKey;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tracing::Instrument;

type SharedResult = Shared<BoxFuture<'static, Result<Value, RpcError>>>;

/// What a stub or promise points at.
#[derive(Clone)]
pub(crate) enum Hook {
    /// An object in this process.
    Local(Arc<dyn RpcObject>),
    /// An entry of a session's import table.
    Import(Arc<Import>),
    /// A value being computed here, and the order in which calls on it were made.
    Pending(SharedResult, Arc<Turns>),
    /// A value known here.
    Ready(Arc<Value>),
    /// A broken reference.
    Error(RpcError),
    /// A placeholder in a mapper being recorded (see `map.rs`): an ID of its table.
    Recorded(i64),
}

/// Tickets that order the calls made on a pending value: each call takes the next ticket
/// when made, and is delivered only after every earlier ticket's call was (or was dropped).
#[derive(Default)]
pub(crate) struct Turns {
    state: Mutex<TurnState>,
    changed: tokio::sync::Notify,
    /// Who wants to know how much the value holds once it is known.
    settled: Mutex<Settled>,
}

/// The size of a pending value, told to whoever counts it (the session whose peer asked
/// for it, so that results not yet pulled count against its memory).
#[derive(Default)]
enum Settled {
    #[default]
    Waiting,
    Watched(Box<dyn FnOnce(usize) + Send>),
    Done(usize),
}

impl Turns {
    /// Runs `watch` with the value's size once it is known (now, if it is).
    pub(crate) fn on_settled(&self, watch: Box<dyn FnOnce(usize) + Send>) {
        let mut settled = lock_plain(&self.settled);
        match *settled {
            Settled::Done(size) => {
                drop(settled);
                watch(size);
            }
            _ => *settled = Settled::Watched(watch),
        }
    }

    fn settle(&self, result: &Result<Value, RpcError>) {
        let size = match result {
            Ok(v) => crate::limits::budget::value_size(v, usize::MAX),
            Err(_) => 0,
        };
        let previous = std::mem::replace(&mut *lock_plain(&self.settled), Settled::Done(size));
        if let Settled::Watched(watch) = previous {
            watch(size);
        }
    }
}

fn lock_plain<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct TurnState {
    issued: u64,
    served: u64,
    /// Tickets given up before their turn: skipped when it comes.
    abandoned: std::collections::BTreeSet<u64>,
}

/// A place in line; giving it up (dropping it) lets the next call go.
pub(crate) struct Ticket {
    turns: Arc<Turns>,
    number: u64,
    served: bool,
}

impl Turns {
    fn lock(&self) -> std::sync::MutexGuard<'_, TurnState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(self: &Arc<Self>) -> Ticket {
        let mut state = self.lock();
        state.issued += 1;
        Ticket {
            turns: self.clone(),
            number: state.issued - 1,
            served: false,
        }
    }

    fn all_served(&self) -> bool {
        let state = self.lock();
        state.served == state.issued
    }
}

impl Ticket {
    async fn wait(&self) {
        loop {
            let changed = self.turns.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.turns.lock().served == self.number {
                return;
            }
            changed.await;
        }
    }

    fn done(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if self.served {
            return;
        }
        self.served = true;
        let mut state = self.turns.lock();
        if state.served == self.number {
            state.served += 1;
            loop {
                let next = state.served;
                if !state.abandoned.remove(&next) {
                    break;
                }
                state.served += 1;
            }
        } else {
            state.abandoned.insert(self.number);
        }
        drop(state);
        self.turns.changed.notify_waiters();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Property names every JavaScript object inherits from `Object.prototype`; capnweb never
/// follows them, so neither do we.
pub(crate) fn is_prototype_name(name: &str) -> bool {
    matches!(
        name,
        "constructor"
            | "__proto__"
            | "toString"
            | "toLocaleString"
            | "valueOf"
            | "hasOwnProperty"
            | "isPrototypeOf"
            | "propertyIsEnumerable"
            | "__defineGetter__"
            | "__defineSetter__"
            | "__lookupGetter__"
            | "__lookupSetter__"
    )
}

fn is_prototype_key(key: &PathKey) -> bool {
    matches!(key, PathKey::Name(n) if is_prototype_name(n))
}

fn path_text(path: &[PathKey]) -> String {
    path.iter()
        .map(|k| k.as_name().into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

/// Where following a path through a value ends.
enum Followed<'a> {
    Value(&'a Value),
    Hook(&'a Hook, &'a [PathKey]),
}

static UNDEFINED: Value = Value::Undefined;

/// Follows `path` through `value` by reference: only what the path ends at is ever copied,
/// so reading one field of a big result (many times over) costs that field.
fn follow<'a>(mut value: &'a Value, path: &'a [PathKey]) -> Followed<'a> {
    for (i, key) in path.iter().enumerate() {
        if is_prototype_key(key) {
            value = &UNDEFINED;
            continue;
        }
        value = match value {
            Value::Object(o) => o.get(key.as_name().as_ref()).unwrap_or(&UNDEFINED),
            Value::Array(a) => match key {
                PathKey::Index(idx) => usize::try_from(*idx)
                    .ok()
                    .and_then(|i| a.get(i))
                    .unwrap_or(&UNDEFINED),
                PathKey::Name(_) => &UNDEFINED,
            },
            Value::Stub(s) => return Followed::Hook(&s.hook, &path[i..]),
            Value::Promise(p) => return Followed::Hook(&p.hook, &path[i..]),
            _ => &UNDEFINED,
        };
    }
    match value {
        Value::Promise(p) => Followed::Hook(&p.hook, &[]),
        other => Followed::Value(other),
    }
}

/// Applies a call (`args` is `Some`) or a property read at `path` to a plain value.
pub(crate) fn value_op(value: &Value, path: &[PathKey], args: Option<Vec<Value>>) -> Hook {
    match follow(value, path) {
        Followed::Hook(hook, rest) => hook.op(rest, args),
        Followed::Value(v) => match args {
            // A call on a stub held in a value: call the stub itself.
            Some(args) if let Value::Stub(s) = v => s.hook.op(&[], Some(args)),
            None => Hook::ready(Ok(v.clone())),
            Some(_) => Hook::Error(RpcError::not_a_function(&path_text(path))),
        },
    }
}

/// [`value_op`] on a value known here: reading it whole shares it instead of copying.
fn shared_value_op(value: &Arc<Value>, path: &[PathKey], args: Option<Vec<Value>>) -> Hook {
    if path.is_empty() && args.is_none() && !matches!(**value, Value::Promise(_)) {
        return Hook::Ready(value.clone());
    }
    value_op(value, path, args)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// The rejection for a panic in application code, logged at error level (in the span of
/// the call, when it came from a peer).
fn panicked(payload: &(dyn std::any::Any + Send)) -> RpcError {
    let message = panic_message(payload);
    tracing::error!(panic = %message, "capwire: application code panicked");
    RpcError::error(format!("internal error: {message}"))
}

/// `fut` boxed, with a panic inside it turned into a rejection.
fn caught<F>(fut: F) -> BoxFuture<'static, Result<Value, RpcError>>
where
    F: Future<Output = Result<Value, RpcError>> + Send + 'static,
{
    std::panic::AssertUnwindSafe(fut)
        .catch_unwind()
        .map(|r| r.unwrap_or_else(|p| Err(panicked(&*p))))
        .boxed()
}

/// Resolves every promise inside `value`, as capnweb does before delivering a call.
///
/// A promise's result takes its place, so a value can grow deeper here than any message
/// was (each of a chain of pipelined calls wrapping the previous result, say): a value that
/// would nest deeper than the default `max_depth` rejects instead, before its walk (and any
/// later one) can exhaust the stack.
pub(crate) fn resolve_promises(value: Value) -> BoxFuture<'static, Result<Value, RpcError>> {
    resolve_within(value, crate::Limits::default().max_depth)
}

fn resolve_within(value: Value, room: usize) -> BoxFuture<'static, Result<Value, RpcError>> {
    async move {
        if room == 0 {
            return Err(crate::session::codec::too_deep(
                crate::Limits::default().max_depth,
            ));
        }
        Ok(match value {
            Value::Promise(p) => resolve_within(p.hook.resolve().await?, room).await?,
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for v in items {
                    out.push(resolve_within(v, room - 1).await?);
                }
                Value::Array(out)
            }
            Value::Object(o) => {
                let mut out = crate::value::Object::with_capacity(o.len());
                for (k, v) in *o {
                    out.insert(k, resolve_within(v, room - 1).await?);
                }
                Value::Object(Box::new(out))
            }
            other => other,
        })
    }
    .boxed()
}

impl Hook {
    pub(crate) fn ready(result: Result<Value, RpcError>) -> Hook {
        match result {
            Ok(v) => Hook::Ready(Arc::new(v)),
            Err(e) => Hook::Error(e),
        }
    }

    /// Calls into application code: a panic there becomes a rejection.
    pub(crate) fn invoke(call: impl FnOnce() -> CallFuture) -> Hook {
        Hook::invoke_answer(|| Answer::Later(call()))
    }

    /// [`Hook::invoke`] for generated dispatch, which answers a method that is not `async`
    /// at once. A future is polled here first, as [`Hook::start`] does, and boxed again
    /// (to catch its panics) only if it is not done.
    pub(crate) fn invoke_answer(call: impl FnOnce() -> Answer) -> Hook {
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match call() {
            Answer::Now(result) => Hook::ready(result),
            Answer::Later(fut) => Hook::first_poll(fut, caught),
        }));
        answer.unwrap_or_else(|p| Hook::Error(panicked(&*p)))
    }

    /// Starts `fut` now: it runs up to its first suspension point before this returns (so
    /// calls begin in the order they were made), then continues on the runtime, in the
    /// span current now (a call's). A panic inside becomes a rejection.
    pub(crate) fn start<F>(fut: F) -> Hook
    where
        F: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        Hook::first_poll(caught(fut), std::convert::identity)
    }

    /// Polls `fut` once, here: done, its result; else it goes on on the runtime, boxed by
    /// `pending` (as [`caught`] boxes it) if it is not yet.
    fn first_poll<F>(
        mut fut: Pin<Box<F>>,
        pending: impl FnOnce(Pin<Box<F>>) -> BoxFuture<'static, Result<Value, RpcError>>,
    ) -> Hook
    where
        F: Future<Output = Result<Value, RpcError>> + Send + ?Sized + 'static,
    {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(r) => Hook::ready(r),
            Poll::Pending => Hook::spawn(pending(fut)),
        }
    }

    /// Runs `fut`, polled once already, on the runtime, in the span current now.
    fn spawn(fut: BoxFuture<'static, Result<Value, RpcError>>) -> Hook {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                // When nothing wants the result any more (its holders were dropped, or
                // its session ended), the task is cancelled rather than left running.
                let turns = Arc::<Turns>::default();
                let settled = turns.clone();
                let task = AbortOnDrop(
                    rt.spawn(
                        async move {
                            let result = fut.await;
                            settled.settle(&result);
                            result
                        }
                        .in_current_span(),
                    ),
                );
                Hook::Pending(
                    async move {
                        task.await.unwrap_or_else(|e| {
                            Err(RpcError::error(format!("call cancelled: {e}")))
                        })
                    }
                    .boxed()
                    .shared(),
                    turns,
                )
            }
            Err(_) => Hook::Pending(fut.shared(), Arc::default()),
        }
    }

    /// A call (`args` is `Some`) or a property read at `path`.
    pub(crate) fn op(&self, path: &[PathKey], args: Option<Vec<Value>>) -> Hook {
        let args = match crate::session::map::intercept(self, path, args) {
            Ok(recorded) => return recorded,
            Err(args) => args,
        };
        match self {
            Hook::Recorded(_) => Hook::Error(crate::session::map::placeholder_error()),
            Hook::Error(e) => Hook::Error(e.clone()),
            Hook::Local(obj) => local_op(obj, path, args),
            Hook::Import(imp) => imp.op(path, args),
            Hook::Ready(v) => shared_value_op(v, path, args),
            Hook::Pending(shared, turns) => match shared.peek() {
                Some(Ok(v)) if turns.all_served() => value_op(v, path, args),
                Some(Err(e)) => Hook::Error(e.clone()),
                _ => {
                    // Calls made before the value is known are delivered, once it is, in
                    // the order they were made (E-order), each taking its turn.
                    let ticket = turns.take();
                    let shared = shared.clone();
                    let path = path.to_vec();
                    Hook::start(async move {
                        let value = shared.await;
                        ticket.wait().await;
                        let hook = match value {
                            Ok(v) => value_op(&v, &path, args),
                            Err(e) => Hook::Error(e),
                        };
                        ticket.done();
                        hook.resolve().await
                    })
                }
            },
        }
    }

    /// The value this refers to: a stub resolves to itself, a promise to its result.
    pub(crate) fn resolve(&self) -> BoxFuture<'static, Result<Value, RpcError>> {
        match self {
            Hook::Local(_) => {
                futures::future::ready(Ok(Value::Stub(RpcStub::from_hook(self.clone())))).boxed()
            }
            Hook::Import(imp) => Import::resolve(imp),
            Hook::Pending(shared, _) => shared.clone().boxed(),
            Hook::Ready(v) => futures::future::ready(Ok(Value::clone(v))).boxed(),
            Hook::Error(e) => futures::future::ready(Err(e.clone())).boxed(),
            Hook::Recorded(_) => {
                futures::future::ready(Err(crate::session::map::placeholder_error())).boxed()
            }
        }
    }

    /// The value with every promise inside it replaced by its result, as an application
    /// receives it.
    pub(crate) fn resolve_deep(&self) -> BoxFuture<'static, Result<Value, RpcError>> {
        let first = self.resolve();
        async move {
            let v = first.await?;
            if v.has_promises() {
                resolve_promises(v).await
            } else {
                Ok(v)
            }
        }
        .boxed()
    }

    /// Runs `callback` once if this reference breaks: its session ends, or the promise
    /// rejects, or it resolves to a reference that breaks.
    pub(crate) fn on_broken(&self, callback: BrokenCallback) {
        match self {
            Hook::Local(_) | Hook::Recorded(_) => {}
            Hook::Import(imp) => imp.on_broken(callback),
            Hook::Ready(v) => watch_value(v, callback),
            Hook::Error(e) => run_broken(e.clone(), callback),
            Hook::Pending(shared, _) => {
                if let Some(result) = shared.peek() {
                    return notify_broken(result, callback);
                }
                let shared = shared.clone();
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move { notify_broken(&shared.await, callback) });
                }
            }
        }
    }

    /// Identity of the target, for "same object" checks and for capturing a stub once in a
    /// mapper.
    pub(crate) fn identity(&self) -> Option<usize> {
        match self {
            Hook::Local(obj) => Some(Arc::as_ptr(obj) as *const () as usize),
            Hook::Import(imp) => Some(Arc::as_ptr(imp) as usize),
            Hook::Pending(..) | Hook::Ready(_) | Hook::Error(_) | Hook::Recorded(_) => None,
        }
    }
}

/// Runs `callback` for a settled reference: now if it failed, later if it settled to a
/// reference that may still break, never otherwise.
pub(crate) fn notify_broken(result: &Result<Value, RpcError>, callback: BrokenCallback) {
    match result {
        Err(e) => run_broken(e.clone(), callback),
        Ok(v) => watch_value(v, callback),
    }
}

/// A value that is a reference passes the watch on to it; any other never breaks.
fn watch_value(value: &Value, callback: BrokenCallback) {
    match value {
        Value::Stub(s) => s.hook.on_broken(callback),
        Value::Promise(p) => p.hook.on_broken(callback),
        _ => {}
    }
}

fn run_broken(error: RpcError, callback: BrokenCallback) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(error))).is_err() {
        tracing::error!("capwire: an on_broken callback panicked");
    }
}

/// A task handle that cancels the task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn local_op(obj: &Arc<dyn RpcObject>, path: &[PathKey], args: Option<Vec<Value>>) -> Hook {
    match (path, args) {
        ([], None) => Hook::ready(Ok(Value::Stub(RpcStub::from_hook(Hook::Local(
            obj.clone(),
        ))))),
        (_, Some(args)) if args.iter().any(Value::has_promises) => {
            // Promises among the arguments are replaced by their results before delivery.
            let obj = obj.clone();
            let path = path.to_vec();
            Hook::start(async move {
                let Value::Array(args) = resolve_promises(Value::Array(args)).await? else {
                    unreachable!("an array resolves to an array")
                };
                local_op(&obj, &path, Some(args)).resolve().await
            })
        }
        ([], Some(args)) => Hook::invoke(|| obj.clone().call_self(args)),
        ([name], Some(args)) => {
            if is_prototype_key(name) {
                return Hook::Error(RpcError::not_a_function(&name.as_name()));
            }
            Hook::invoke(|| obj.clone().call(&name.as_name(), args))
        }
        ([name], None) => {
            if is_prototype_key(name) {
                return Hook::ready(Ok(Value::Undefined));
            }
            Hook::invoke(|| obj.clone().get(&name.as_name()))
        }
        ([name, rest @ ..], args) => {
            let first = local_op(obj, std::slice::from_ref(name), None);
            let rest = rest.to_vec();
            Hook::start(async move {
                value_op(&first.resolve().await?, &rest, args)
                    .resolve()
                    .await
            })
        }
    }
}

/// Anything that names a method or property: a name, or a path of names and indexes.
///
/// ```
/// use capwire::{IntoPath, PathKey};
/// assert_eq!("square".into_path(), vec![PathKey::from("square")]);
/// assert_eq!(["bar", "baz"].into_path().len(), 2);
/// ```
pub trait IntoPath {
    /// The path.
    fn into_path(self) -> Vec<PathKey>;
}

impl IntoPath for &str {
    fn into_path(self) -> Vec<PathKey> {
        vec![PathKey::from(self)]
    }
}

impl IntoPath for String {
    fn into_path(self) -> Vec<PathKey> {
        vec![PathKey::Name(self)]
    }
}

impl IntoPath for Vec<PathKey> {
    fn into_path(self) -> Vec<PathKey> {
        self
    }
}

impl IntoPath for &[PathKey] {
    fn into_path(self) -> Vec<PathKey> {
        self.to_vec()
    }
}

impl<const N: usize> IntoPath for [&str; N] {
    fn into_path(self) -> Vec<PathKey> {
        self.iter().map(|s| PathKey::from(*s)).collect()
    }
}

fn args_of<A: serde::Serialize>(args: &A) -> Result<Vec<Value>, RpcError> {
    match crate::to_value(args)? {
        Value::Array(items) => Ok(items),
        Value::Undefined | Value::Null => Ok(Vec::new()),
        other => Err(RpcError::type_error(format!(
            "call arguments must serialize to a list (use a tuple such as `(5,)`), not {}",
            other.type_name()
        ))),
    }
}

/// A reference to an object that may live in another process.
///
/// Calls on a stub go to wherever the object lives: another session's peer, or this
/// process. Cloning a stub is cheap and refers to the same object; when the last clone of a
/// stub to a remote object is dropped, the remote side is told to release it.
///
/// ```
/// # use capwire::{RpcStub, Value};
/// # async fn demo(api: RpcStub) -> Result<(), capwire::RpcError> {
/// let sum = api.call("add", (2, 3)).await?;
/// let user_name = api.call("getUser", (7,)).get("name").await?; // pipelined
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RpcStub {
    pub(crate) hook: Hook,
    /// The timeout of each call made through it ([`RpcStub::with_timeout`]); boxed, so
    /// that a stub (and a [`Value`] holding one) stays as small as its hook.
    timeout: Option<Box<Duration>>,
}

impl RpcStub {
    /// A stub to a local object; pass it in a value to hand the object out by reference.
    pub fn new(object: impl RpcObject) -> RpcStub {
        RpcStub::from_hook(Hook::Local(Arc::new(object)))
    }

    /// A stub to a local object already in an `Arc`.
    pub fn from_arc(object: Arc<dyn RpcObject>) -> RpcStub {
        RpcStub::from_hook(Hook::Local(object))
    }

    /// A stub whose every call fails with `error`.
    pub fn broken(error: RpcError) -> RpcStub {
        RpcStub::from_hook(Hook::Error(error))
    }

    pub(crate) fn from_hook(hook: Hook) -> RpcStub {
        RpcStub {
            hook,
            timeout: None,
        }
    }

    /// The same stub, each call made through it (and each call pipelined on such a call's
    /// promise) timing out `timeout` after it is made: awaiting it then rejects with a
    /// `TimeoutError` ([`RpcError::is_timeout`]), and the call is released, which cancels
    /// it on the peer (see [`RpcPromise::with_timeout`]). `None` removes the default.
    /// Only calls through this stub and its clones have the default: stubs received in
    /// results do not inherit it.
    ///
    /// ```
    /// # use capwire::RpcStub;
    /// # use std::time::Duration;
    /// # async fn demo(api: RpcStub) -> Result<(), capwire::RpcError> {
    /// let api = api.with_timeout(Duration::from_secs(5));
    /// match api.call("slowReport", ()).await {
    ///     Err(e) if e.is_timeout() => eprintln!("no report within 5 s"),
    ///     other => println!("{:?}", other?),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_timeout(&self, timeout: impl Into<Option<Duration>>) -> RpcStub {
        RpcStub {
            hook: self.hook.clone(),
            timeout: timeout.into().map(Box::new),
        }
    }

    fn call_timeout(&self) -> Option<Duration> {
        self.timeout.as_deref().copied()
    }

    /// Calls the method at `path` with `args`, a tuple or list of serializable values.
    /// The call is sent at once; the returned promise can be awaited or used for further
    /// (pipelined) calls.
    pub fn call<A: serde::Serialize>(&self, path: impl IntoPath, args: A) -> RpcPromise {
        let hook = match args_of(&args) {
            Ok(args) => self.hook.op(&path.into_path(), Some(args)),
            Err(e) => Hook::Error(e),
        };
        RpcPromise::<Value>::from_hook(hook).timed(self.call_timeout())
    }

    /// Reads the property at `path`.
    pub fn get(&self, path: impl IntoPath) -> RpcPromise {
        RpcPromise::<Value>::from_hook(self.hook.op(&path.into_path(), None))
            .timed(self.call_timeout())
    }

    /// Runs `callback` once, with the reason, if this stub breaks: when the session it
    /// came through ends (disconnect, abort, or the peer going away), or when the promise
    /// it was made from rejects. A stub to a local object never breaks. The callback runs
    /// on the session's task: keep it short, and spawn for anything longer. It is dropped
    /// unrun when the last clone of this stub (or promise) is dropped first: keep the stub
    /// while you want to hear of it (a dropped promise is a cancelled call).
    ///
    /// When a session ends (closed, aborted, or its peer gone, whatever state its calls
    /// are in: not yet sent, running on the peer, or awaited), every callback registered
    /// on its stubs and pending promises runs before any awaited call of the session
    /// rejects and before [`Session::closed`](crate::Session::closed) returns.
    ///
    /// ```
    /// # use capwire::{RpcError, RpcStub};
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let stub = RpcStub::broken(RpcError::error("gone"));
    /// stub.on_broken(move |e| tx.send(e.message().to_owned()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), "gone");
    /// ```
    pub fn on_broken(&self, callback: impl FnOnce(RpcError) + Send + 'static) {
        self.hook.on_broken(Box::new(callback));
    }

    /// `true` if both stubs refer to the same object.
    pub fn same_target(&self, other: &RpcStub) -> bool {
        match (self.hook.identity(), other.hook.identity()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for RpcStub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hook {
            Hook::Local(_) => f.write_str("RpcStub(local)"),
            Hook::Import(imp) => write!(f, "RpcStub(import {})", imp.id()),
            Hook::Pending(..) | Hook::Ready(_) => f.write_str("RpcStub(pending)"),
            Hook::Error(e) => write!(f, "RpcStub(broken: {e})"),
            Hook::Recorded(id) => write!(f, "RpcStub(map placeholder {id})"),
        }
    }
}

impl serde::Serialize for RpcStub {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::value::ser::serialize_special(&Value::Stub(self.clone()), serializer)
    }
}

impl<'de> serde::Deserialize<'de> for RpcStub {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match crate::value::de::deserialize_value(deserializer)? {
            Value::Stub(s) => Ok(s),
            Value::Promise(p) => Ok(p.as_stub()),
            other => Err(serde::de::Error::custom(format!(
                "expected a stub, found {}",
                other.type_name()
            ))),
        }
    }
}

/// The result of a call that may not have arrived yet.
///
/// Await it for the value (converted to `T`, [`Value`] by default), or call methods and
/// read properties on it right away: those calls are pipelined, sent before the result is
/// known, so a chain of dependent calls costs one round trip.
///
/// ```
/// # use capwire::RpcStub;
/// # async fn demo(api: RpcStub) -> Result<(), capwire::RpcError> {
/// let counter = api.call("makeCounter", (2,));        // not awaited
/// let five: i64 = counter.call("increment", (3,)).typed().await?;
/// # Ok(()) }
/// ```
///
/// # Cancellation and timeouts
///
/// **Dropping a promise cancels its call.** When the last clone of a promise (and of
/// every promise pipelined on it) is dropped before its result came, the peer is told to
/// release the call; a capwire peer then drops the method's future, so the method stops
/// at its next `.await` (capnweb in JavaScript cannot stop a running function, but drops
/// the result). Wrapping the await in `tokio::time::timeout` or `select!` therefore
/// cancels the remote work too when the other branch wins.
///
/// [`RpcPromise::with_timeout`] gives a promise a deadline, and
/// [`RpcStub::with_timeout`] (or [`TypedStub::with_timeout`](crate::TypedStub::with_timeout)) a
/// default for every call made through a stub: past it, awaiting rejects with a
/// `TimeoutError` ([`RpcError::is_timeout`]) and the call is let go of as if dropped. A
/// server bounds how long any one call may run with
/// [`Limits::max_call_duration`](crate::Limits::max_call_duration).
///
/// ```
/// # use capwire::{RpcPromise, RpcStub};
/// # use std::time::Duration;
/// # async fn demo(api: RpcStub) {
/// let slow = api.call("slowReport", ());
/// drop(slow); // cancelled on the server
///
/// let slow = RpcPromise::with_timeout(api.call("slowReport", ()), Duration::from_secs(5));
/// match slow.await {
///     Err(e) if e.is_timeout() => eprintln!("no report within 5 s; the call was released"),
///     Err(e) => eprintln!("failed: {e}"),
///     Ok(report) => println!("{report:?}"),
/// }
/// # }
/// ```
pub struct RpcPromise<T = Value> {
    pub(crate) hook: Hook,
    pending: Mutex<Awaiting>,
    /// When awaiting it gives up ([`RpcPromise::with_timeout`]).
    deadline: Option<Deadline>,
    /// The timeout of calls pipelined on it: its stub's ([`RpcStub::with_timeout`]).
    call_timeout: Option<Duration>,
    _type: PhantomData<fn() -> T>,
}

/// What an awaited promise waits on: its result, and the timer of its deadline (both
/// made on first poll).
#[derive(Default)]
struct Awaiting {
    result: Option<BoxFuture<'static, Result<Value, RpcError>>>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// When an awaited promise gives up, and the timeout that set it (named in the error).
#[derive(Clone, Copy)]
struct Deadline {
    at: tokio::time::Instant,
    after: Duration,
}

impl Deadline {
    /// `after` from now; none if that is past the end of time.
    fn after(after: Duration) -> Option<Deadline> {
        let at = tokio::time::Instant::now().checked_add(after)?;
        Some(Deadline { at, after })
    }

    fn error(&self) -> RpcError {
        RpcError::timeout(format!(
            "the call did not settle within its timeout of {:?}",
            self.after
        ))
    }
}

impl<T> RpcPromise<T> {
    pub(crate) fn from_hook(hook: Hook) -> Self {
        RpcPromise {
            hook,
            pending: Mutex::default(),
            deadline: None,
            call_timeout: None,
            _type: PhantomData,
        }
    }

    /// A promise already resolved to `value`.
    pub fn resolved(value: Value) -> Self {
        Self::from_hook(Hook::ready(Ok(value)))
    }

    /// A promise already rejected with `error`.
    pub fn rejected(error: RpcError) -> Self {
        Self::from_hook(Hook::Error(error))
    }

    /// A promise of the result of a future running in this process.
    pub fn from_future<F>(fut: F) -> Self
    where
        F: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        Self::from_hook(Hook::start(fut))
    }

    /// Calls the method at `path` on the promised value (pipelined).
    pub fn call<A: serde::Serialize>(&self, path: impl IntoPath, args: A) -> RpcPromise {
        let hook = match args_of(&args) {
            Ok(args) => self.hook.op(&path.into_path(), Some(args)),
            Err(e) => Hook::Error(e),
        };
        RpcPromise::<Value>::from_hook(hook).timed(self.call_timeout)
    }

    /// Reads the property at `path` of the promised value (pipelined).
    pub fn get(&self, path: impl IntoPath) -> RpcPromise {
        RpcPromise::<Value>::from_hook(self.hook.op(&path.into_path(), None))
            .timed(self.call_timeout)
    }

    /// The same promise, resolving to a [`Value`].
    pub fn untyped(&self) -> RpcPromise {
        self.same_timing(self.hook.clone())
    }

    /// The same promise, converting its result to `U`.
    pub fn typed<U>(&self) -> RpcPromise<U> {
        self.same_timing(self.hook.clone())
    }

    /// A promise of `hook` with this one's deadline and default timeout.
    fn same_timing<U>(&self, hook: Hook) -> RpcPromise<U> {
        let mut promise = RpcPromise::from_hook(hook);
        promise.deadline = self.deadline;
        promise.call_timeout = self.call_timeout;
        promise
    }

    /// This promise with the deadline `timeout` (from now) and `timeout` as the default
    /// of calls pipelined on it: a call made through a stub with a default timeout.
    fn timed(mut self, timeout: Option<Duration>) -> Self {
        self.call_timeout = timeout;
        self.deadline = timeout.and_then(Deadline::after);
        self
    }

    /// `promise`, giving up `timeout` from now: awaited, it rejects with a `TimeoutError`
    /// ([`RpcError::is_timeout`]) if its result has not come by then. Giving up lets go
    /// of the call as dropping the promise does: the peer is told to release it, which
    /// cancels it there, unless a clone of the promise (or a call pipelined on it) still
    /// wants it. A callback of [`on_broken`](RpcPromise::on_broken) registered on it runs
    /// with the `TimeoutError`, if nothing else held the call. `None` removes a deadline
    /// (one the promise got from its stub's [`RpcStub::with_timeout`]).
    ///
    /// The clock runs from this call, and the promise gives up only when awaited (with
    /// tokio's timer): an un-awaited promise used for pipelining is not cut short. (A typed
    /// promise of a stub, whose methods are a target's, has
    /// [`TypedPromise::with_timeout`](crate::TypedPromise::with_timeout) instead.)
    ///
    /// ```
    /// # use capwire::{RpcPromise, RpcStub};
    /// # use std::time::Duration;
    /// # async fn demo(api: RpcStub) -> Result<(), capwire::RpcError> {
    /// let report = RpcPromise::with_timeout(api.call("slowReport", ()), Duration::from_secs(5));
    /// match report.await {
    ///     Err(e) if e.is_timeout() => eprintln!("no report within 5 s"),
    ///     other => println!("{:?}", other?),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.deadline = timeout.into().and_then(Deadline::after);
        self.pending
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .timer = None;
        self
    }

    /// Asks for the result now without waiting for it. Awaiting does this by itself; an
    /// HTTP batch uses it to put the request for a result into the batch before sending.
    pub fn pull(&self) {
        if let Hook::Import(imp) = &self.hook {
            imp.pull();
        }
    }

    /// Runs `callback` once, with the reason, if this promise rejects, its session ends
    /// before it resolves, or it resolves to a stub that breaks later. See
    /// [`RpcStub::on_broken`].
    pub fn on_broken(&self, callback: impl FnOnce(RpcError) + Send + 'static) {
        self.hook.on_broken(Box::new(callback));
    }

    /// A stub on the promised object: calls on it are pipelined.
    pub fn as_stub(&self) -> RpcStub {
        RpcStub {
            hook: self.hook.clone(),
            timeout: self.call_timeout.map(Box::new),
        }
    }

    pub(crate) fn same_target(&self, other: &RpcPromise) -> bool {
        match (self.hook.identity(), other.hook.identity()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

impl<T> Clone for RpcPromise<T> {
    fn clone(&self) -> Self {
        self.same_timing(self.hook.clone())
    }
}

impl<T> fmt::Debug for RpcPromise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hook {
            Hook::Import(imp) => write!(f, "RpcPromise(import {})", imp.id()),
            _ => f.write_str("RpcPromise(local)"),
        }
    }
}

impl<T: DeserializeOwned> Future for RpcPromise<T> {
    type Output = Result<T, RpcError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let hook = &this.hook;
        let awaiting = this
            .pending
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = awaiting.result.get_or_insert_with(|| hook.resolve_deep());
        if let Poll::Ready(r) = result.as_mut().poll(cx) {
            return Poll::Ready(r.and_then(crate::from_value));
        }
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        let timer = awaiting
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.at)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        // Out of time: let go of the call (and of everything holding it here), so that it
        // is released, and cancelled by the peer, unless something else still wants it.
        *awaiting = Awaiting::default();
        let error = deadline.error();
        this.deadline = None;
        if let Hook::Import(import) = std::mem::replace(&mut this.hook, Hook::Error(error.clone()))
        {
            Import::give_up(import, error.clone());
        }
        Poll::Ready(Err(error))
    }
}

impl<T> serde::Serialize for RpcPromise<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::value::ser::serialize_special(&Value::Promise(Box::new(self.untyped())), serializer)
    }
}

impl<'de, T> serde::Deserialize<'de> for RpcPromise<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match crate::value::de::deserialize_value(deserializer)? {
            Value::Promise(p) => p.typed(),
            Value::Stub(s) => RpcPromise::from_hook(s.hook),
            other => RpcPromise::resolved(other),
        })
    }
}
