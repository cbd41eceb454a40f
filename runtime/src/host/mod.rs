//! A Workers-style host: workers declared in a TOML file, each served by a registered
//! entrypoint type that gets a fresh instance per invocation with its `env` and a `ctx`,
//! and service bindings between them, in this process or over WebSocket.
//!
//! ```
//! use capwire::host::{Ctx, Entrypoint, Env, Host};
//! use capwire::{RpcError, Stub, entrypoint};
//!
//! pub struct WorkerB;
//! impl Entrypoint for WorkerB {
//!     fn new(_env: Env, _ctx: Ctx) -> Self { WorkerB }
//! }
//! #[entrypoint]
//! impl WorkerB {
//!     pub fn add(&self, a: i64, b: i64) -> i64 { a + b }
//! }
//!
//! pub struct WorkerA { env: Env }
//! impl Entrypoint for WorkerA {
//!     fn new(env: Env, _ctx: Ctx) -> Self { WorkerA { env } }
//! }
//! #[entrypoint]
//! impl WorkerA {
//!     pub async fn compute(&self) -> Result<i64, RpcError> {
//!         self.env.service::<Stub<WorkerB>>("WORKER_B")?.add(1, 2).await
//!     }
//!     pub fn greet(&self, name: String) -> Result<String, RpcError> {
//!         Ok(format!("{}, {name}!", self.env.var::<String>("GREETING")?))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = r#"
//!     [[worker]]
//!     name = "worker-a"
//!     main = "WorkerA"
//!     vars = { GREETING = "Hello" }
//!     services = [{ binding = "WORKER_B", service = "worker-b" }]
//!
//!     [[worker]]
//!     name = "worker-b"
//!     main = "WorkerB"
//! "#;
//! let host = Host::builder()
//!     .entrypoint::<WorkerA>("WorkerA")
//!     .entrypoint::<WorkerB>("WorkerB")
//!     .config_str(config, "workers.toml")?;
//! let a = host.service::<Stub<WorkerA>>("worker-a", None)?;
//! assert_eq!(a.compute().await?, 3);
//! assert_eq!(a.greet("Ada").await?, "Hello, Ada!");
//! # Ok(()) }
//! ```

mod config;

pub use config::{Config, ConfigError, DurableObjectBinding, ServiceBinding, WorkerConfig};

use crate::error::RpcError;
use crate::stub::typed::RpcTarget;
use crate::stub::{RpcPromise, RpcStub};
use crate::transport::server::{self, ServerCtx};
use crate::value::Value;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// An entrypoint type the host can instantiate: a fresh instance for every invocation
/// (every binding stub obtained, every session a client opens), as a Worker's class is.
/// State that must outlive an invocation lives elsewhere: a binding, a database, an
/// object handed out by reference.
pub trait Entrypoint: crate::RpcObject + Sized {
    /// A new instance, with its worker's `env` and this invocation's `ctx`.
    fn new(env: Env, ctx: Ctx) -> Self;
}

type Factory = Arc<dyn Fn(Env, Ctx) -> Arc<dyn crate::RpcObject> + Send + Sync>;

/// Registers entrypoint types, then reads the configuration.
#[derive(Default)]
pub struct HostBuilder {
    registry: HashMap<String, Factory>,
    classes: HashMap<String, crate::durable::ClassFactory>,
    data_dir: Option<std::path::PathBuf>,
    durable_idle: Option<Duration>,
    durable_max_live: Option<usize>,
    host_secret: Option<String>,
    storage: Option<Arc<dyn crate::durable::StorageProvider>>,
    resources: HashMap<String, Resource>,
    shutdown_grace: Option<Duration>,
    server_limits: crate::ServerLimits,
    cors: crate::CorsPolicy,
}

type Resource = Arc<dyn std::any::Any + Send + Sync>;

impl HostBuilder {
    /// Registers `T` under `name`, the name a config's `main` or `entrypoints` uses.
    pub fn entrypoint<T: Entrypoint>(mut self, name: &str) -> Self {
        self.registry.insert(
            name.to_owned(),
            Arc::new(|env, ctx| Arc::new(T::new(env, ctx))),
        );
        self
    }

    /// Registers the Durable Object class `T` under `class_name`, the name a config's
    /// `durable_objects = [{ name, class_name }]` uses.
    pub fn durable_object<T: crate::durable::DurableObject>(mut self, class_name: &str) -> Self {
        self.classes
            .insert(class_name.to_owned(), crate::durable::factory_of::<T>());
        self
    }

    /// Where Durable Objects keep their storage: one SQLite file per object, under
    /// `<dir>/<worker>/<class>/`. Overrides the config's `data_dir`; the default is
    /// `.capwire-data` in the current directory.
    pub fn data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// How long a Durable Object's instance stays with no call running before it is
    /// evicted (default 60 s); its next call makes a new one from storage.
    pub fn durable_idle_timeout(mut self, idle: Duration) -> Self {
        self.durable_idle = Some(idle);
        self
    }

    /// Where Durable Objects keep their storage, instead of SQLite files under the data
    /// directory: a provider that opens each object's [`Storage`](crate::durable::Storage)
    /// (on another database, say).
    pub fn storage(mut self, provider: impl crate::durable::StorageProvider) -> Self {
        self.storage = Some(Arc::new(provider));
        self
    }

    /// The secret this host and others present to each other to reach the Durable Objects
    /// of a worker that runs on another host (overrides the config's `host_secret`). A
    /// host with a secret serves the classes its listening workers define at
    /// `/__capwire/durable/<Class>` to peers presenting it (`Authorization: Bearer`).
    pub fn host_secret(mut self, secret: impl Into<String>) -> Self {
        self.host_secret = Some(secret.into());
        self
    }

    /// Most Durable Object instances live at once in this host (default 1024): each holds
    /// its database open (three file descriptors), and a peer may be able to name new
    /// objects at will. At the limit, the instance idle the longest is evicted to make
    /// room; if every one is running a call, the call to a new object fails with a
    /// `RangeError` naming `durable_max_live`.
    pub fn durable_max_live(mut self, max: usize) -> Self {
        self.durable_max_live = Some(max);
        self
    }

    /// Makes `value` available to every worker as `env.resource::<T>(name)`: a database
    /// handle, a client, any state that outlives invocations (what a D1 or KV binding is
    /// to a Worker).
    pub fn resource<T: Clone + Send + Sync + 'static>(mut self, name: &str, value: T) -> Self {
        self.resources.insert(name.to_owned(), Arc::new(value));
        self
    }

    /// How long a graceful shutdown waits for `wait_until` work (default 30 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = Some(grace);
        self
    }

    /// The limits each listening worker applies to its clients, each with a memory budget
    /// of its own (default [`ServerLimits::default()`](crate::ServerLimits)).
    ///
    /// ```
    /// # pub struct Api;
    /// # impl capwire::host::Entrypoint for Api { fn new(_: capwire::host::Env, _: capwire::host::Ctx) -> Self { Api } }
    /// # #[capwire::entrypoint] impl Api { pub fn ping(&self) -> String { "pong".into() } }
    /// let builder = capwire::host::Host::builder()
    ///     .entrypoint::<Api>("Api")
    ///     .server_limits(capwire::ServerLimits {
    ///         idle_timeout: Some(std::time::Duration::from_secs(120)),
    ///         ..Default::default()
    ///     });
    /// ```
    pub fn server_limits(mut self, server_limits: crate::ServerLimits) -> Self {
        self.server_limits = server_limits;
        self
    }

    /// Which web pages may open RPC sessions with this host's workers (see
    /// [`CorsPolicy`](crate::CorsPolicy)); a worker's `allowed_origins` in the config
    /// overrides it for that worker. The default lets any origin in: a worker's entrypoint
    /// does not see the request, so no cookie can pick its user. The policy covers the RPC
    /// paths (WebSocket upgrades, and batches when the worker has no `fetch`); a worker
    /// with `fetch` answers its own HTTP.
    ///
    /// ```
    /// let builder = capwire::host::Host::builder()
    ///     .cors(capwire::CorsPolicy::allow_origins(["https://app.example"]));
    /// ```
    pub fn cors(mut self, cors: crate::CorsPolicy) -> Self {
        self.cors = cors;
        self
    }

    /// Reads and checks the configuration file at `path`.
    pub fn config_file(self, path: impl AsRef<Path>) -> Result<Host, ConfigErrors> {
        let config = Config::load_with(path.as_ref(), &self.names(), &self.class_names())
            .map_err(ConfigErrors)?;
        Ok(self.build(config))
    }

    /// Checks configuration text; `path` names it in errors.
    pub fn config_str(self, text: &str, path: impl AsRef<Path>) -> Result<Host, ConfigErrors> {
        let config = Config::parse_with(text, path.as_ref(), &self.names(), &self.class_names())
            .map_err(ConfigErrors)?;
        Ok(self.build(config))
    }

    fn names(&self) -> HashSet<String> {
        self.registry.keys().cloned().collect()
    }

    fn class_names(&self) -> HashSet<String> {
        self.classes.keys().cloned().collect()
    }

    fn build(self, config: Config) -> Host {
        let workers = config
            .workers
            .into_iter()
            .map(|w| {
                let vars = w
                    .vars
                    .iter()
                    .map(|(k, v)| (k.clone(), toml_to_json(v)))
                    .collect();
                let services = w
                    .services
                    .iter()
                    .map(|b| (b.binding.clone(), b.clone()))
                    .collect();
                let durable = w
                    .durable_objects
                    .iter()
                    .map(|b| {
                        let owner = b.script_name.clone().unwrap_or_else(|| w.name.clone());
                        (b.name.clone(), (owner, b.class_name.clone()))
                    })
                    .collect();
                let worker = Worker {
                    cors: w
                        .allowed_origins
                        .as_ref()
                        .map(|list| crate::CorsPolicy::allow_origins(list).resolve(false)),
                    vars: Arc::new(vars),
                    services: Arc::new(services),
                    durable: Arc::new(durable),
                    config: w,
                };
                (worker.config.name.clone(), Arc::new(worker))
            })
            .collect();
        let data_dir = self
            .data_dir
            .or(config.data_dir)
            .unwrap_or_else(|| ".capwire-data".into());
        let idle = self.durable_idle.unwrap_or(Duration::from_secs(60));
        let host_secret = self.host_secret.or(config.host_secret);
        let host = Host {
            inner: Arc::new(HostInner {
                workers,
                registry: self.registry,
                classes: self.classes,
                host_secret,
                durable: crate::durable::Registry::new(
                    self.storage
                        .unwrap_or_else(|| Arc::new(crate::durable::SqliteFiles { dir: data_dir })),
                    idle,
                    self.durable_max_live.unwrap_or(1024),
                ),
                resources: self.resources,
                tracker: TaskTracker::new(),
                grace: self.shutdown_grace.unwrap_or(Duration::from_secs(30)),
                server_limits: self.server_limits,
                cors: self.cors.resolve(false),
            }),
        };
        host.own_durable_objects();
        host
    }
}

/// The one-call runner: reads the configuration at `path` with the entrypoint types
/// `builder` registered (every problem is reported, naming file and key, before anything
/// starts), serves what it says, logs through `tracing`, and on Ctrl-C shuts down
/// gracefully, waiting (bounded) for `wait_until` work.
///
/// ```no_run
/// # pub struct Api;
/// # impl capwire::host::Entrypoint for Api { fn new(_: capwire::host::Env, _: capwire::host::Ctx) -> Self { Api } }
/// # #[capwire::entrypoint] impl Api { pub fn ping(&self) -> String { "pong".into() } }
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// capwire::host::run(capwire::host::Host::builder().entrypoint::<Api>("Api"), "workers.toml").await
/// # }
/// ```
pub async fn run(
    builder: HostBuilder,
    path: impl AsRef<Path>,
) -> Result<(), Box<dyn std::error::Error>> {
    let host = builder.config_file(path)?;
    host.serve_until(
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
        |bound| {
            for (worker, addr) in bound {
                tracing::info!(%worker, "listening on http://{addr}");
            }
        },
    )
    .await?;
    Ok(())
}

/// A host serving in the background, from [`Host::start`].
pub struct Serving {
    bound: Vec<(String, std::net::SocketAddr)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Serving {
    /// The address worker `worker` listens on.
    pub fn addr(&self, worker: &str) -> Option<std::net::SocketAddr> {
        self.bound
            .iter()
            .find(|(name, _)| name == worker)
            .map(|(_, addr)| *addr)
    }

    /// Every listening worker's name and address.
    pub fn addrs(&self) -> &[(String, std::net::SocketAddr)] {
        &self.bound
    }

    /// Shuts down gracefully (as [`Host::serve_until`] does once its `shutdown` completes)
    /// and waits until it has.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.map_err(std::io::Error::other)?
    }
}

/// Every problem found in a configuration, each naming its file and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

struct Worker {
    config: WorkerConfig,
    vars: Arc<HashMap<String, serde_json::Value>>,
    services: Arc<HashMap<String, ServiceBinding>>,
    /// Durable Object bindings: the owning worker and the class.
    durable: Arc<HashMap<String, (String, String)>>,
    /// The worker's own policy, from its `allowed_origins`.
    cors: Option<crate::CorsPolicy>,
}

struct HostInner {
    workers: HashMap<String, Arc<Worker>>,
    registry: HashMap<String, Factory>,
    classes: HashMap<String, crate::durable::ClassFactory>,
    host_secret: Option<String>,
    durable: Arc<crate::durable::Registry>,
    resources: HashMap<String, Resource>,
    tracker: TaskTracker,
    grace: Duration,
    server_limits: crate::ServerLimits,
    cors: crate::CorsPolicy,
}

/// A running set of workers. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

impl Host {
    /// Starts registering entrypoint types.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// A stub to worker `service`'s entrypoint (`None`: its default), as a binding to it
    /// would give: a fresh instance if it runs here, a WebSocket session if elsewhere. A
    /// typed [`Stub<T>`](crate::Stub) or an untyped [`RpcStub`], as annotated
    /// (`let a: Stub<WorkerA> = host.service(..)?` or `host.service::<Stub<WorkerA>>(..)`).
    pub fn service<S: crate::FromStub>(
        &self,
        service: &str,
        entrypoint: Option<&str>,
    ) -> Result<S, RpcError> {
        self.inner.connect(service, entrypoint).map(S::from_stub)
    }

    /// The namespace worker `worker` binds as `binding`, as its
    /// [`Env::durable_object`] would give it.
    pub fn durable_object<T: ?Sized + RpcTarget>(
        &self,
        worker: &str,
        binding: &str,
    ) -> Result<crate::durable::Namespace<T>, RpcError> {
        let env = Env {
            host: self.inner.clone(),
            worker: self.inner.worker(worker)?.clone(),
        };
        env.durable_object(binding)
    }

    /// Records the Durable Object namespaces the host's workers own (each class a worker
    /// binds without `script_name`), which schedules the alarms their objects stored.
    fn own_durable_objects(&self) {
        for worker in self.inner.workers.values() {
            if worker.config.url.is_some() {
                continue;
            }
            for b in &worker.config.durable_objects {
                if b.script_name.is_some() {
                    continue;
                }
                let Some(factory) = self.inner.classes.get(&b.class_name).cloned() else {
                    continue;
                };
                let host = Arc::downgrade(&self.inner);
                let owner = worker.clone();
                self.inner.durable.own(crate::durable::NamespaceInner {
                    name: format!("{}/{}", worker.config.name, b.class_name).into(),
                    make: Arc::new(move |state| {
                        let host = host
                            .upgrade()
                            .ok_or_else(|| RpcError::error("the host has shut down"))?;
                        Ok(factory(
                            state,
                            Env {
                                host,
                                worker: owner.clone(),
                            },
                        ))
                    }),
                    registry: self.inner.durable.clone(),
                    keep_alive: None,
                });
            }
        }
    }

    /// A host of one worker named like the class, which defines it and nothing else: what
    /// [`Namespace::standalone`](crate::durable::Namespace::standalone) uses.
    pub(crate) fn standalone_namespace<T: crate::durable::DurableObject + RpcTarget>(
        class_name: &str,
        data_dir: std::path::PathBuf,
    ) -> crate::durable::Namespace<T> {
        let worker = WorkerConfig {
            name: class_name.to_owned(),
            main: None,
            entrypoints: Vec::new(),
            url: None,
            listen: None,
            vars: toml::Table::new(),
            services: Vec::new(),
            durable_objects: vec![DurableObjectBinding {
                name: class_name.to_owned(),
                class_name: class_name.to_owned(),
                script_name: None,
            }],
            allowed_origins: None,
        };
        let host = Host::builder()
            .durable_object::<T>(class_name)
            .data_dir(data_dir)
            .build(Config {
                data_dir: None,
                host_secret: None,
                workers: vec![worker],
            });
        let namespace = host
            .durable_object::<T>(class_name, class_name)
            .expect("the standalone worker binds its class");
        namespace.keeping(host.inner.clone())
    }

    /// How many Durable Object instances are live (made and not yet evicted).
    pub fn live_durable_objects(&self) -> usize {
        self.inner.durable.live()
    }

    /// The workers this host serves over the network, with their `listen` addresses.
    fn listeners(&self) -> Vec<(Arc<Worker>, String)> {
        self.inner
            .workers
            .values()
            .filter_map(|w| w.config.listen.clone().map(|l| (w.clone(), l)))
            .collect()
    }

    /// Starts serving every worker that has a `listen` address in the background (as
    /// [`Host::serve_until`] does) and returns once all are listening, with their
    /// addresses; [`Serving::stop`] shuts down gracefully.
    ///
    /// ```
    /// # pub struct Api;
    /// # impl capwire::host::Entrypoint for Api { fn new(_: capwire::host::Env, _: capwire::host::Ctx) -> Self { Api } }
    /// # #[capwire::entrypoint] impl Api { pub fn ping(&self) -> String { "pong".into() } }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let host = capwire::host::Host::builder().entrypoint::<Api>("Api").config_str(
    ///     "[[worker]]\nname = \"api\"\nmain = \"Api\"\nlisten = \"127.0.0.1:0\"",
    ///     "workers.toml",
    /// )?;
    /// let serving = host.start().await?;
    /// let addr = serving.addr("api").expect("api listens");
    /// let api: capwire::RpcStub = capwire::connect(&format!("ws://{addr}/")).await?;
    /// assert_eq!(api.call("ping", ()).await?.as_str(), Some("pong"));
    /// serving.stop().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self) -> std::io::Result<Serving> {
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let host = self.clone();
        let task = tokio::spawn(async move {
            host.serve_until(
                async move {
                    let _ = stopped.await;
                },
                move |bound| {
                    let _ = bound_tx.send(bound);
                },
            )
            .await
        });
        match bound_rx.await {
            Ok(bound) => Ok(Serving {
                bound,
                stop: Some(stop),
                task,
            }),
            // Binding failed: the task ended with the error.
            Err(_) => Err(task
                .await
                .map_err(std::io::Error::other)?
                .err()
                .unwrap_or_else(|| std::io::Error::other("the host stopped before listening"))),
        }
    }

    /// Serves every worker that has a `listen` address (RPC over WebSocket and HTTP
    /// batch at `/` for the default entrypoint and `/<Name>` for each named one) until
    /// `shutdown` completes, then waits (up to the grace period) for `wait_until` work.
    /// Returns the bound addresses through `on_bound` once listening.
    pub async fn serve_until(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        on_bound: impl FnOnce(Vec<(String, std::net::SocketAddr)>),
    ) -> std::io::Result<()> {
        // Bind every address before serving any, so a failure leaves nothing running.
        let mut listeners = Vec::new();
        for (worker, listen) in self.listeners() {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            listeners.push((worker, listener));
        }
        let mut bound = Vec::new();
        let mut servers = Vec::new();
        let stop = tokio_util::sync::CancellationToken::new();
        for (worker, listener) in listeners {
            let addr = listener.local_addr()?;
            bound.push((worker.config.name.clone(), addr));
            tracing::info!(worker = %worker.config.name, %addr, "serving");
            // Each listener has its own memory budget.
            let limits = self.inner.server_limits;
            let router = self.router(&worker, ServerCtx::new(limits));
            servers.push(tokio::spawn(crate::transport::listener::serve(
                listener,
                router,
                limits,
                stop.clone(),
            )));
        }
        on_bound(bound);
        shutdown.await;
        tracing::info!("shutting down");
        stop.cancel();
        for s in servers {
            let _ = s.await;
        }
        self.drain().await;
        Ok(())
    }

    /// Serves (see [`Host::serve_until`]) until Ctrl-C.
    pub async fn serve(&self) -> std::io::Result<()> {
        self.serve_until(
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            |_| {},
        )
        .await
    }

    /// Waits for every `wait_until` task, up to the grace period; returns whether all
    /// finished.
    pub async fn drain(&self) -> bool {
        self.inner.tracker.close();
        let done = tokio::time::timeout(self.inner.grace, self.inner.tracker.wait())
            .await
            .is_ok();
        if !done {
            tracing::warn!(
                left = self.inner.tracker.len(),
                "wait_until work still running after the shutdown grace period"
            );
        }
        done
    }

    /// One worker's HTTP surface. At `/` (the default entrypoint) and `/<Name>` (each
    /// named one), a WebSocket upgrade starts an RPC session. Any other request goes to the
    /// default entrypoint's `fetch` if it has one. Without one, a `POST` at `/` or `/<Name>`
    /// is an HTTP batch session, and anything else answers 405 (or 404 elsewhere).
    fn router(&self, worker: &Arc<Worker>, ctx: ServerCtx) -> axum::Router {
        let host = self.inner.clone();
        let worker = worker.clone();
        axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (host, worker, ctx) = (host.clone(), worker.clone(), ctx.clone());
            // Each request's logs (its RPC session's among them) name the worker, and the
            // entrypoint once the path has chosen it.
            let span = tracing::info_span!(
                "capwire.worker",
                worker = %worker.config.name,
                entrypoint = tracing::field::Empty
            );
            async move { host.handle_http(&worker, request, &ctx).await }.instrument(span)
        })
    }
}

impl HostInner {
    async fn handle_http(
        self: &Arc<Self>,
        worker: &Arc<Worker>,
        request: axum::extract::Request,
        ctx: &ServerCtx,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let limits = crate::Limits::default();
        let path = request.uri().path().trim_start_matches('/').to_owned();
        if let Some(class) = path.strip_prefix(crate::durable::REMOTE_PATH) {
            return self.serve_namespace(worker, class, request, ctx);
        }
        let entrypoint = match path.as_str() {
            "" => Some(None),
            name if worker.config.entrypoints.iter().any(|e| e == name) => Some(Some(name)),
            _ => None,
        };
        // A named entrypoint serves its path; the default one everything else.
        let serving = entrypoint.flatten().or(worker.config.main.as_deref());
        if let Some(name) = serving {
            tracing::Span::current().record("entrypoint", name);
        }
        let rpc_main = |e: Option<&str>| {
            self.instantiate(worker, e)
                .map_or_else(RpcStub::broken, RpcStub::from_arc)
        };
        // The policy guards the RPC paths (upgrades, batches, preflights), not `fetch`.
        let cors = worker.cors.as_ref().unwrap_or(&self.cors);
        if let Some(e) = entrypoint
            && server::is_websocket_upgrade(&request)
        {
            return match cors.check(request.headers(), request.uri()) {
                Err(refused) => refused.into_response(),
                Ok(_) => server::websocket_session(request, rpc_main(e), limits, ctx),
            };
        }
        let default = match self.instantiate(worker, None) {
            Ok(object) => object,
            Err(e) => return (http::StatusCode::NOT_FOUND, e.to_string()).into_response(),
        };
        match entrypoint {
            _ if default.handles_fetch() => match default.fetch(request).await {
                Ok(response) => response,
                Err(e) => {
                    tracing::error!(
                        worker = %worker.config.name,
                        entrypoint = worker.config.main.as_deref(),
                        error = %e,
                        "fetch failed"
                    );
                    (http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                }
            },
            Some(e) if request.method() == http::Method::POST => {
                let cors_headers = match cors.check(request.headers(), request.uri()) {
                    Err(refused) => return refused.into_response(),
                    Ok(headers) => headers,
                };
                let main = match e {
                    None => RpcStub::from_arc(default),
                    named => rpc_main(named),
                };
                let mut response = server::batch_request(request, main, limits, ctx).await;
                response.headers_mut().extend(cors_headers);
                response
            }
            Some(_) if request.method() == http::Method::OPTIONS => {
                cors.preflight(request.headers(), request.uri())
            }
            Some(_) => server::not_rpc_method(),
            None => http::StatusCode::NOT_FOUND.into_response(),
        }
    }

    /// A session for another host, presenting the host secret, to reach the objects of
    /// class `class` that `worker` defines.
    fn serve_namespace(
        &self,
        worker: &Arc<Worker>,
        class: &str,
        request: axum::extract::Request,
        ctx: &ServerCtx,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let Some(secret) = &self.host_secret else {
            return http::StatusCode::NOT_FOUND.into_response();
        };
        if !crate::durable::authorized(request.headers().get(http::header::AUTHORIZATION), secret) {
            return http::StatusCode::UNAUTHORIZED.into_response();
        }
        let Some(namespace) = self
            .durable
            .namespace(&format!("{}/{class}", worker.config.name))
        else {
            return http::StatusCode::NOT_FOUND.into_response();
        };
        if !server::is_websocket_upgrade(&request) {
            return server::not_rpc_method();
        }
        let main = RpcStub::new(crate::durable::NamespaceService(namespace));
        server::websocket_session(request, main, crate::Limits::default(), ctx)
    }

    fn worker(&self, name: &str) -> Result<&Arc<Worker>, RpcError> {
        self.workers
            .get(name)
            .ok_or_else(|| RpcError::error(format!("no worker is named {name:?}")))
    }

    fn connect(
        self: &Arc<Self>,
        service: &str,
        entrypoint: Option<&str>,
    ) -> Result<RpcStub, RpcError> {
        let worker = self.worker(service)?;
        match &worker.config.url {
            None => self.instantiate(worker, entrypoint).map(RpcStub::from_arc),
            Some(base) => {
                let url = format!(
                    "{}/{}",
                    base.trim_end_matches('/'),
                    entrypoint.unwrap_or_default()
                );
                let main = RpcPromise::<Value>::from_future(async move {
                    let stub: RpcStub = crate::connect(&url).await?;
                    Ok(Value::Stub(stub))
                });
                Ok(main.as_stub())
            }
        }
    }

    /// A fresh instance of `worker`'s entrypoint (`None`: its default).
    fn instantiate(
        self: &Arc<Self>,
        worker: &Arc<Worker>,
        entrypoint: Option<&str>,
    ) -> Result<Arc<dyn crate::RpcObject>, RpcError> {
        // The named entrypoint's place in the worker's list (`None`: the default).
        let named = entrypoint.map(|e| worker.config.entrypoints.iter().position(|n| n == e));
        let ty = match named {
            None => worker.config.main.as_deref(),
            Some(i) => i.map(|i| worker.config.entrypoints[i].as_str()),
        };
        let factory = ty.and_then(|t| self.registry.get(t)).ok_or_else(|| {
            RpcError::error(format!(
                "worker {:?} has no entrypoint {:?}",
                worker.config.name,
                entrypoint.unwrap_or("(default)")
            ))
        })?;
        let env = Env {
            host: self.clone(),
            worker: worker.clone(),
        };
        let ctx = Ctx {
            tracker: self.tracker.clone(),
            worker: worker.clone(),
            entrypoint: named.flatten(),
        };
        Ok(factory(env, ctx))
    }
}

/// A worker's environment: its variables and service bindings.
#[derive(Clone)]
pub struct Env {
    host: Arc<HostInner>,
    worker: Arc<Worker>,
}

impl Env {
    /// Variable `name` from the worker's `vars`, converted to `T` (a `String`, a number,
    /// or any `Deserialize` type for a table or array).
    pub fn var<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, RpcError> {
        let value = self.worker.vars.get(name).ok_or_else(|| {
            RpcError::error(format!(
                "worker {:?} has no variable {name:?}",
                self.worker.config.name
            ))
        })?;
        serde_json::from_value(value.clone())
            .map_err(|e| RpcError::type_error(format!("variable {name:?}: {e}")))
    }

    /// The service bound as `binding`, as a typed stub (`Stub<T>`, as annotated:
    /// `let b: Stub<WorkerB> = env.service("WORKER_B")?`, or
    /// `env.service::<Stub<WorkerB>>(..)`). Calls go to a fresh instance of the bound
    /// entrypoint: in this process when the service runs here (no socket, no JSON), over
    /// WebSocket when it runs elsewhere.
    pub fn service<S: crate::FromStub>(&self, binding: &str) -> Result<S, RpcError> {
        self.service_raw(binding).map(S::from_stub)
    }

    /// The service bound as `binding`, as an untyped stub (calls by name).
    pub fn service_raw(&self, binding: &str) -> Result<RpcStub, RpcError> {
        let b = self.binding(binding)?;
        self.host.connect(&b.service, b.entrypoint.as_deref())
    }

    fn binding(&self, name: &str) -> Result<&ServiceBinding, RpcError> {
        self.worker.services.get(name).ok_or_else(|| {
            RpcError::error(format!(
                "worker {:?} has no service binding {name:?}",
                self.worker.config.name
            ))
        })
    }

    /// The HTTP side of the service bound as `binding`: its default entrypoint's `fetch`,
    /// called in this process, or over HTTP when the service runs elsewhere.
    pub fn fetcher(&self, binding: &str) -> Result<Fetcher, RpcError> {
        let worker = self.host.worker(&self.binding(binding)?.service)?;
        Ok(Fetcher(match &worker.config.url {
            Some(url) => FetchTarget::Remote(
                url.replacen("ws://", "http://", 1)
                    .replacen("wss://", "https://", 1)
                    .trim_end_matches('/')
                    .to_owned(),
            ),
            None => FetchTarget::Local(self.host.clone(), worker.clone()),
        }))
    }

    /// The namespace of Durable Objects bound as `binding` (`durable_objects = [{ name =
    /// binding, class_name, script_name? }]`), of class `T`.
    ///
    /// ```
    /// # use capwire::durable::{DurableObject, State};
    /// # pub struct Counter { state: State }
    /// # impl DurableObject for Counter { fn new(state: State, _: capwire::host::Env) -> Self { Counter { state } } }
    /// # #[capwire::rpc_target] impl Counter {
    /// #     pub fn increment(&self) -> Result<i64, capwire::RpcError> {
    /// #         let n = self.state.storage().get::<i64>("n")?.unwrap_or(0) + 1;
    /// #         self.state.storage().put("n", &n)?;
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # pub struct Api { env: capwire::host::Env }
    /// # impl capwire::host::Entrypoint for Api { fn new(env: capwire::host::Env, _: capwire::host::Ctx) -> Self { Api { env } } }
    /// # #[capwire::entrypoint] impl Api {
    /// pub async fn count(&self, name: String) -> Result<i64, capwire::RpcError> {
    ///     let counters = self.env.durable_object::<Counter>("COUNTER")?;
    ///     counters.get_by_name(&name).increment().await
    /// }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("capwire-doc-{}", std::process::id()));
    /// # let host = capwire::host::Host::builder()
    /// #     .entrypoint::<Api>("Api")
    /// #     .durable_object::<Counter>("Counter")
    /// #     .data_dir(&dir)
    /// #     .config_str(r#"
    /// #         [[worker]]
    /// #         name = "w"
    /// #         main = "Api"
    /// #         durable_objects = [{ name = "COUNTER", class_name = "Counter" }]
    /// #     "#, "workers.toml")?;
    /// # let api = host.service::<capwire::Stub<Api>>("w", None)?;
    /// # let first = api.count("alice").await?;
    /// # assert_eq!(api.count("alice").await?, first + 1);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # Ok(()) }
    /// ```
    pub fn durable_object<T: ?Sized + RpcTarget>(
        &self,
        binding: &str,
    ) -> Result<crate::durable::Namespace<T>, RpcError> {
        let (owner, class) = self.worker.durable.get(binding).ok_or_else(|| {
            RpcError::error(format!(
                "worker {:?} has no Durable Object binding {binding:?}",
                self.worker.config.name
            ))
        })?;
        let name = format!("{owner}/{class}");
        if let Some(url) = &self.host.worker(owner)?.config.url {
            let secret = self.host.host_secret.clone().ok_or_else(|| {
                RpcError::error(format!(
                    "worker {owner:?} runs elsewhere: reaching its Durable Objects needs the \
                     same host_secret on both hosts"
                ))
            })?;
            let url = format!(
                "{}/{}{class}",
                url.trim_end_matches('/'),
                crate::durable::REMOTE_PATH
            );
            return Ok(crate::durable::Namespace::remote(name.into(), url, secret));
        }
        let namespace = self.host.durable.namespace(&name).ok_or_else(|| {
            RpcError::error(format!(
                "worker {owner:?} defines no Durable Object class {class:?}"
            ))
        })?;
        Ok(crate::durable::Namespace::new(namespace))
    }

    /// The resource registered as `name` with [`HostBuilder::resource`].
    pub fn resource<T: Clone + 'static>(&self, name: &str) -> Result<T, RpcError> {
        self.host
            .resources
            .get(name)
            .and_then(|r| r.downcast_ref::<T>())
            .cloned()
            .ok_or_else(|| {
                RpcError::error(format!(
                    "no resource {name:?} of type {} is registered with the host",
                    std::any::type_name::<T>()
                ))
            })
    }

    /// The worker's name.
    pub fn worker_name(&self) -> &str {
        &self.worker.config.name
    }
}

/// Sends HTTP requests to a bound worker's `fetch` (see [`Env::fetcher`]).
pub struct Fetcher(FetchTarget);

enum FetchTarget {
    /// A worker of this host.
    Local(Arc<HostInner>, Arc<Worker>),
    /// A worker elsewhere, at this base URL.
    Remote(String),
}

impl Fetcher {
    /// Sends `request` (its path and query are kept; scheme and host are the worker's).
    pub async fn fetch(
        &self,
        request: http::Request<crate::Body>,
    ) -> Result<http::Response<crate::Body>, RpcError> {
        match &self.0 {
            FetchTarget::Local(host, worker) => {
                host.instantiate(worker, None)?.fetch(request).await
            }
            FetchTarget::Remote(base) => {
                let (mut parts, body) = request.into_parts();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                parts.uri = format!("{base}{path}")
                    .parse()
                    .map_err(|e| RpcError::error(format!("bad URL {base}{path}: {e}")))?;
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build_http::<crate::Body>();
                let response = client
                    .request(http::Request::from_parts(parts, body))
                    .await
                    .map_err(|e| RpcError::error(format!("fetch to {base} failed: {e}")))?;
                Ok(response.map(crate::Body::new))
            }
        }
    }
}

/// An invocation's context: work that continues after the result is returned.
#[derive(Clone)]
pub struct Ctx {
    tracker: TaskTracker,
    /// Whose invocation it is, for the logs.
    worker: Arc<Worker>,
    /// The entrypoint's place in the worker's `entrypoints` (`None`: its `main`).
    entrypoint: Option<usize>,
}

impl Ctx {
    /// Runs `work` to completion even after the call has returned its result, in the span
    /// current now (the call's). An error (or a panic) is logged through `tracing`, with
    /// the `worker` and `entrypoint` names; a graceful shutdown of the host waits for it,
    /// up to its grace period.
    pub fn wait_until<F, E>(&self, work: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        use futures::FutureExt;
        let (worker, entrypoint) = (self.worker.clone(), self.entrypoint);
        let task = async move {
            let outcome = std::panic::AssertUnwindSafe(work).catch_unwind().await;
            let name = &worker.config.name;
            let entrypoint = match entrypoint {
                Some(i) => Some(worker.config.entrypoints[i].as_str()),
                None => worker.config.main.as_deref(),
            };
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(worker = %name, entrypoint, error = %e, "wait_until task failed");
                }
                Err(_) => tracing::error!(worker = %name, entrypoint, "wait_until task panicked"),
            }
        };
        self.tracker.spawn(task.in_current_span());
    }
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => a.iter().map(toml_to_json).collect(),
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect(),
    }
}
