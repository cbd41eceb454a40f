//! Durable Objects: one live instance per ID, with durable storage of its own, reached
//! through a namespace binding, as Workers has them.
//!
//! A class is an ordinary [`macro@crate::rpc_target`] impl block whose type implements
//! [`DurableObject`]; the host builder registers it by class name
//! ([`HostBuilder::durable_object`](crate::host::HostBuilder::durable_object)), and a worker
//! binds a namespace of it in the configuration:
//!
//! ```toml
//! [[worker]]
//! name = "counter-worker"
//! main = "Api"
//! durable_objects = [{ name = "COUNTER", class_name = "Counter" }]
//! ```
//!
//! `env.durable_object::<Counter>("COUNTER")?` is then a [`Namespace`]: IDs from names
//! (the same on every host), new unique IDs, IDs parsed back from text (checked), and
//! [`Namespace::get`] for a typed stub to the object, which pipelines, travels and drops
//! like any other stub.
//!
//! # One instance, one call at a time
//!
//! - For each ID there is exactly one live instance in the host: concurrent first calls
//!   make one. It stays while calls come and is evicted once it has been idle (no call
//!   running) for the namespace's idle timeout
//!   ([`HostBuilder::durable_idle_timeout`](crate::host::HostBuilder::durable_idle_timeout),
//!   default 60 s); the next call makes a new instance, which finds its state in storage.
//!   Stubs name the object, not the instance: a stub held across an eviction still works.
//! - Calls run one at a time, in the order they reach the object (the input gate). A call
//!   gives way to the next only where it waits for something outside the object (another
//!   service, another object, a timer); storage calls are synchronous, so nothing else runs
//!   between a read and the write that follows it: a `get` then `put` counter loses no
//!   update. An object that calls another that calls it back does not deadlock: the first
//!   call is waiting outside, and the call back runs.
//! - Writes are durable when the storage call returns (SQLite, WAL, `synchronous=FULL`), so
//!   before the result of the call that made them can leave the object (the output gate).

mod alarms;
mod gate;
mod id;
mod remote;
pub mod storage;

pub use id::DurableObjectId;
pub(crate) use remote::{NamespaceService, PATH as REMOTE_PATH, authorized};
pub use storage::{ListOptions, Sql, SqliteBackend, Storage, StorageBackend, Transaction};

use crate::error::RpcError;
use crate::stub::object::{CallFuture, FetchFuture, RpcObject};
use crate::stub::typed::{RpcTarget, Stub};
use crate::value::Value;
use gate::{Gate, Gated};
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// A Durable Object class: what the host calls to make an instance for an ID.
///
/// ```
/// use capwire::durable::{DurableObject, State};
/// use capwire::{RpcError, rpc_target};
///
/// pub struct Counter { state: State }
///
/// impl DurableObject for Counter {
///     fn new(state: State, _env: capwire::host::Env) -> Self { Counter { state } }
/// }
///
/// #[rpc_target]
/// impl Counter {
///     pub fn increment(&self, by: Option<i64>) -> Result<i64, RpcError> {
///         let storage = self.state.storage();
///         let n = storage.get::<i64>("n")?.unwrap_or(0) + by.unwrap_or(1);
///         storage.put("n", &n)?;
///         Ok(n)
///     }
/// }
/// ```
pub trait DurableObject: RpcObject + Sized {
    /// A new instance for the object `state` names, with the owning worker's `env`. Called
    /// on the object's first call, and again after an eviction: state that must survive
    /// lives in `state.storage()`.
    fn new(state: State, env: crate::host::Env) -> Self;
}

/// What an instance knows of its object: its ID and its storage.
#[derive(Clone)]
pub struct State {
    id: DurableObjectId,
    storage: Storage,
}

impl State {
    /// The object's ID.
    pub fn id(&self) -> DurableObjectId {
        self.id
    }

    /// The object's own durable storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }
}

/// Makes an instance of a class.
pub(crate) type ClassFactory =
    Arc<dyn Fn(State, crate::host::Env) -> Arc<dyn RpcObject> + Send + Sync>;

/// The factory of `T`.
pub(crate) fn factory_of<T: DurableObject>() -> ClassFactory {
    Arc::new(|state, env| Arc::new(T::new(state, env)))
}

/// Makes an instance of a namespace's class for an object.
pub(crate) type MakeInstance =
    Arc<dyn Fn(State) -> Result<Arc<dyn RpcObject>, RpcError> + Send + Sync>;

/// A namespace: the objects of one class owned by one worker (`worker/Class`).
#[derive(Clone)]
pub(crate) struct NamespaceInner {
    /// `worker/Class`: what IDs are tied to.
    pub(crate) name: Arc<str>,
    /// Makes an instance (the class's factory, with the owning worker's env); fails once
    /// the host is gone.
    pub(crate) make: MakeInstance,
    pub(crate) registry: Arc<Registry>,
    /// What must live as long as this namespace (the host of a standalone one).
    pub(crate) keep_alive: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

/// A namespace of Durable Objects of class `T`, from
/// [`Env::durable_object`](crate::host::Env::durable_object).
pub struct Namespace<T: ?Sized> {
    name: Arc<str>,
    place: Place,
    _class: PhantomData<fn() -> Box<T>>,
}

/// Where a namespace's objects live.
#[derive(Clone)]
enum Place {
    /// In this host.
    Local(NamespaceInner),
    /// In the host of the owning worker, reached over WebSocket.
    Remote(Arc<remote::Remote>),
}

impl<T: ?Sized> Clone for Namespace<T> {
    fn clone(&self) -> Self {
        Namespace {
            name: self.name.clone(),
            place: self.place.clone(),
            _class: PhantomData,
        }
    }
}

impl<T: ?Sized + RpcTarget> Namespace<T> {
    pub(crate) fn new(inner: NamespaceInner) -> Namespace<T> {
        Namespace {
            name: inner.name.clone(),
            place: Place::Local(inner),
            _class: PhantomData,
        }
    }

    /// The namespace `name` (`worker/Class`) of a worker that runs elsewhere: at `url`
    /// (its `/__capwire/durable/<Class>`), which admits hosts presenting `secret`.
    pub(crate) fn remote(name: Arc<str>, url: String, secret: String) -> Namespace<T> {
        Namespace {
            name,
            place: Place::Remote(remote::Remote::new(url, secret)),
            _class: PhantomData,
        }
    }

    /// This namespace, keeping `owner` alive as long as it is.
    pub(crate) fn keeping(mut self, owner: Arc<dyn std::any::Any + Send + Sync>) -> Self {
        if let Place::Local(inner) = &mut self.place {
            inner.keep_alive = Some(owner);
        }
        self
    }

    /// The ID of the object called `name`: the same on every host and every run.
    pub fn id_from_name(&self, name: &str) -> DurableObjectId {
        DurableObjectId::from_name(&self.name, name)
    }

    /// A new ID, random, never given before.
    pub fn new_unique_id(&self) -> Result<DurableObjectId, RpcError> {
        DurableObjectId::unique(&self.name)
    }

    /// The ID written as `text` (by `id.to_string()`): an error if it is malformed or an ID
    /// of another namespace, never a new object.
    pub fn id_from_string(&self, text: &str) -> Result<DurableObjectId, RpcError> {
        DurableObjectId::parse(&self.name, text)
    }

    /// A stub to the object `id`: in this host, or, for a class of a worker that runs
    /// elsewhere, in that worker's host (over one WebSocket session per namespace).
    pub fn get(&self, id: DurableObjectId) -> Stub<T> {
        match &self.place {
            Place::Local(inner) => {
                crate::TypedStub::from_raw(crate::RpcStub::from_arc(Arc::new(Handle {
                    namespace: inner.clone(),
                    id,
                })))
            }
            Place::Remote(remote) => crate::TypedStub::from_raw(remote.get(id)),
        }
    }

    /// A stub to the object called `name`: `get(id_from_name(name))`.
    pub fn get_by_name(&self, name: &str) -> Stub<T> {
        self.get(self.id_from_name(name))
    }
}

impl<T: DurableObject + RpcTarget> Namespace<T> {
    /// A namespace of class `T` outside any configuration, for a program that serves RPC
    /// without the [host](crate::host) (a [`Server`](crate::Server) of its own): its
    /// objects keep their storage under `data_dir`, and are evicted after 60 s idle. The
    /// class's `env` has no variables or bindings of its own.
    ///
    /// ```
    /// # use capwire::durable::{DurableObject, Namespace, State};
    /// # pub struct Counter { state: State }
    /// # impl DurableObject for Counter { fn new(state: State, _: capwire::host::Env) -> Self { Counter { state } } }
    /// # #[capwire::rpc_target] impl Counter {
    /// #     pub fn increment(&self) -> Result<i64, capwire::RpcError> {
    /// #         let n = self.state.storage().get::<i64>("n")?.unwrap_or(0) + 1;
    /// #         self.state.storage().put("n", &n)?;
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), capwire::RpcError> {
    /// let dir = std::env::temp_dir().join(format!("capwire-standalone-{}", std::process::id()));
    /// let counters = Namespace::<Counter>::standalone("Counter", &dir);
    /// assert_eq!(counters.get_by_name("a").increment().await?, 1);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # Ok(()) }
    /// ```
    pub fn standalone(class_name: &str, data_dir: impl Into<PathBuf>) -> Namespace<T> {
        crate::host::Host::standalone_namespace::<T>(class_name, data_dir.into())
    }
}

/// Opens each Durable Object's storage. The default keeps one SQLite file per object
/// under the host's data directory; another (a distributed database, say) is given with
/// [`HostBuilder::storage`](crate::host::HostBuilder::storage).
///
/// ```
/// use capwire::durable::{DurableObjectId, Storage, StorageProvider};
/// use capwire::RpcError;
///
/// /// Objects that need no durability: in memory, gone with the process.
/// struct InMemory;
///
/// impl StorageProvider for InMemory {
///     fn open(&self, _namespace: &str, _id: DurableObjectId) -> Result<Storage, RpcError> {
///         Storage::in_memory()
///     }
/// }
/// ```
pub trait StorageProvider: Send + Sync + 'static {
    /// The storage of object `id` of `namespace` (`worker/Class`), opened for the object's
    /// instance (again after each eviction).
    fn open(&self, namespace: &str, id: DurableObjectId) -> Result<Storage, RpcError>;

    /// The objects of `namespace` that have storage, so that the host schedules their
    /// alarms when it starts. The default knows none: their alarms are scheduled when the
    /// objects next run.
    fn objects(&self, namespace: &str) -> Vec<DurableObjectId> {
        let _ = namespace;
        Vec::new()
    }
}

/// The default provider: `<data_dir>/<worker>/<Class>/<id>.sqlite`.
pub(crate) struct SqliteFiles {
    pub(crate) dir: PathBuf,
}

impl SqliteFiles {
    fn namespace_dir(&self, namespace: &str) -> PathBuf {
        let mut path = self.dir.clone();
        for part in namespace.split('/') {
            path.push(
                part.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect::<String>(),
            );
        }
        path
    }
}

impl StorageProvider for SqliteFiles {
    fn open(&self, namespace: &str, id: DurableObjectId) -> Result<Storage, RpcError> {
        Storage::open(self.namespace_dir(namespace).join(format!("{id}.sqlite")))
    }

    fn objects(&self, namespace: &str) -> Vec<DurableObjectId> {
        let Ok(entries) = std::fs::read_dir(self.namespace_dir(namespace)) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let stem = name.to_str()?.strip_suffix(".sqlite")?;
                DurableObjectId::parse(namespace, stem).ok()
            })
            .collect()
    }
}

/// An object: its namespace's name and its ID.
type ObjectKey = (Arc<str>, DurableObjectId);

/// The live instances of every namespace of a host.
pub(crate) struct Registry {
    storage: Arc<dyn StorageProvider>,
    idle: Duration,
    /// Most instances live at once (each holds its database open).
    max_live: usize,
    live: Mutex<HashMap<ObjectKey, Arc<Instance>>>,
    sweeping: OnceLock<()>,
    /// The namespaces the host's workers own, by name: what an alarm needs to make an
    /// instance of an evicted object.
    namespaces: Mutex<HashMap<Arc<str>, NamespaceInner>>,
    pub(crate) alarms: alarms::Alarms,
}

struct Instance {
    key: ObjectKey,
    object: Arc<dyn RpcObject>,
    storage: Storage,
    registry: Weak<Registry>,
    gate: Gate,
    /// Calls made and not finished.
    busy: AtomicUsize,
    last_used: Mutex<Instant>,
    /// The storage's alarm changes last scheduled.
    alarm_seen: std::sync::atomic::AtomicU64,
}

impl Registry {
    pub(crate) fn new(
        storage: Arc<dyn StorageProvider>,
        idle: Duration,
        max_live: usize,
    ) -> Arc<Registry> {
        Arc::new(Registry {
            storage,
            idle,
            max_live: max_live.max(1),
            live: Mutex::default(),
            sweeping: OnceLock::new(),
            namespaces: Mutex::default(),
            alarms: alarms::Alarms::default(),
        })
    }

    /// Records a namespace a worker of the host owns, and schedules the alarms its objects
    /// have stored (set before a restart, say).
    pub(crate) fn own(self: &Arc<Self>, namespace: NamespaceInner) {
        let name = namespace.name.clone();
        lock(&self.namespaces).insert(name.clone(), namespace);
        for id in self.storage.objects(&name) {
            match self.storage.open(&name, id).and_then(|s| s.get_alarm()) {
                Ok(Some(at)) => self.schedule(&(name.clone(), id), Some(at)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(object = %id, error = %e, "capwire: cannot read a Durable Object's alarm")
                }
            }
        }
    }

    /// The namespace owned as `name`.
    pub(crate) fn namespace(&self, name: &str) -> Option<NamespaceInner> {
        lock(&self.namespaces).get(name).cloned()
    }

    /// The live instance of `id`, made now if there is none.
    fn instance(
        self: &Arc<Self>,
        namespace: &NamespaceInner,
        id: DurableObjectId,
    ) -> Result<Arc<Instance>, RpcError> {
        let mut live = lock(&self.live);
        let key = (namespace.name.clone(), id);
        if let Some(instance) = live.get(&key) {
            return Ok(instance.clone());
        }
        let mut evicted = Vec::new();
        if live.len() >= self.max_live {
            // Room is made by evicting the instance idle the longest; if every one is
            // running a call, the new object must wait for another time.
            let oldest = live
                .iter()
                .filter(|(_, i)| i.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, i)| *lock(&i.last_used))
                .map(|(k, _)| k.clone());
            match oldest.and_then(|k| live.remove(&k)) {
                Some(instance) => evicted.push(instance),
                None => {
                    return Err(RpcError::range(format!(
                        "more than {} Durable Objects are running calls (limit durable_max_live)",
                        self.max_live
                    )));
                }
            }
        }
        let storage = self.storage.open(&namespace.name, id)?;
        let object = (namespace.make)(State {
            id,
            storage: storage.clone(),
        })?;
        let instance = Arc::new(Instance {
            key: key.clone(),
            object,
            storage,
            registry: Arc::downgrade(self),
            gate: gate::new_gate(),
            busy: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
            alarm_seen: std::sync::atomic::AtomicU64::new(0),
        });
        live.insert(key, instance.clone());
        drop(live);
        drop(evicted);
        self.start_sweeping();
        Ok(instance)
    }

    /// Evicts idle instances from now on (once per registry, when a runtime runs).
    fn start_sweeping(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.sweeping.set(()).is_err() {
            return;
        }
        let registry: Weak<Registry> = Arc::downgrade(self);
        let every = (self.idle / 4).max(Duration::from_millis(10));
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(registry) = registry.upgrade() else {
                    return;
                };
                registry.evict_idle();
            }
        });
    }

    fn evict_idle(&self) {
        let evicted: Vec<Arc<Instance>> = {
            let mut live = lock(&self.live);
            let idle: Vec<_> = live
                .iter()
                .filter(|(_, i)| {
                    i.busy.load(Ordering::Acquire) == 0 && lock(&i.last_used).elapsed() >= self.idle
                })
                .map(|(k, _)| k.clone())
                .collect();
            idle.iter().filter_map(|k| live.remove(k)).collect()
        };
        // Dropped outside the lock: an object's drop (closing its storage) may take time.
        drop(evicted);
    }

    /// How many instances are live (for tests and monitoring).
    pub(crate) fn live(&self) -> usize {
        lock(&self.live).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A call counted as running on an instance until dropped.
struct Busy(Arc<Instance>);

impl Drop for Busy {
    fn drop(&mut self) {
        *lock(&self.0.last_used) = Instant::now();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Instance {
    /// Runs `call` on the object behind the gate: it starts when every call that reached the
    /// object before it has finished or is waiting outside.
    fn run<R: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce(Arc<dyn RpcObject>) -> std::pin::Pin<Box<dyn Future<Output = R> + Send>>
        + Send
        + 'static,
    ) -> std::pin::Pin<Box<dyn Future<Output = R> + Send>> {
        self.busy.fetch_add(1, Ordering::AcqRel);
        let busy = Busy(self.clone());
        Box::pin(Gated::new(self.gate.clone(), async move {
            let result = call(busy.0.object.clone()).await;
            // The call may have set or deleted the object's alarm.
            busy.0.sync_alarm_if_changed();
            drop(busy);
            result
        }))
    }
}

impl Instance {
    /// Schedules the alarm the object's storage holds now (or none), if it was set or
    /// deleted since it was last scheduled (reading it back costs a query).
    fn sync_alarm_if_changed(&self) {
        let changes = self.storage.alarm_changes();
        if self.alarm_seen.swap(changes, Ordering::AcqRel) != changes {
            self.sync_alarm();
        }
    }

    /// Schedules the alarm the object's storage holds now (or none).
    fn sync_alarm(&self) {
        if let Some(registry) = self.registry.upgrade() {
            match self.storage.get_alarm() {
                Ok(at) => registry.schedule(&self.key, at),
                Err(e) => {
                    tracing::warn!(error = %e, "capwire: cannot read a Durable Object's alarm")
                }
            }
        }
    }
}

/// What a stub to a Durable Object points at: the object (namespace and ID), not an
/// instance, so that it outlives evictions.
pub(crate) struct Handle {
    namespace: NamespaceInner,
    id: DurableObjectId,
}

impl Handle {
    fn instance(&self) -> Result<Arc<Instance>, RpcError> {
        self.namespace.registry.instance(&self.namespace, self.id)
    }
}

impl RpcObject for Handle {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
        let method = method.to_owned();
        match self.instance() {
            Ok(i) => i.run(move |object| object.call(&method, args)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    fn get(self: Arc<Self>, name: &str) -> CallFuture {
        let name = name.to_owned();
        match self.instance() {
            Ok(i) => i.run(move |object| object.get(&name)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    fn call_self(self: Arc<Self>, args: Vec<Value>) -> CallFuture {
        match self.instance() {
            Ok(i) => i.run(move |object| object.call_self(args)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    fn fetch(self: Arc<Self>, request: http::Request<crate::Body>) -> FetchFuture {
        match self.instance() {
            Ok(i) => i.run(move |object| object.fetch(request)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    fn handles_fetch(&self) -> bool {
        self.instance().is_ok_and(|i| i.object.handles_fetch())
    }
}
