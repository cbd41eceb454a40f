//! The job every system in the side-by-side benchmark serves: `add(a, b)`.
//!
//! `benches/side_by_side.rs` runs capwire, tarpc (bincode over TCP), jsonrpsee (WebSocket)
//! and a raw tokio-tungstenite echo on this job, in one process each in turn, and prints
//! the ratios; see BENCHMARKS.md.

/// The capwire service.
pub struct Calc;

#[capwire::entrypoint]
impl Calc {
    /// `a + b`.
    pub fn add(&self, a: f64, b: f64) -> f64 {
        a + b
    }

    /// How many numbers `values` holds, and their sum (the memory benchmark's job: it
    /// sends a million of them).
    pub fn count(&self, values: Vec<i64>) -> (usize, i64) {
        (values.len(), values.iter().sum())
    }
}

/// The tarpc service.
#[tarpc::service]
pub trait TarpcCalc {
    /// `a + b`.
    async fn add(a: i64, b: i64) -> i64;
}

/// The tarpc server.
#[derive(Clone)]
pub struct TarpcServer;

impl TarpcCalc for TarpcServer {
    async fn add(self, _: tarpc::context::Context, a: i64, b: i64) -> i64 {
        a + b
    }
}

/// The jsonrpsee service.
#[jsonrpsee::proc_macros::rpc(server, client)]
pub trait JsonRpcCalc {
    /// `a + b`.
    #[method(name = "add")]
    fn add(&self, a: i64, b: i64) -> jsonrpsee::core::RpcResult<i64>;
}

/// The jsonrpsee server.
pub struct JsonRpcServer;

impl JsonRpcCalcServer for JsonRpcServer {
    fn add(&self, a: i64, b: i64) -> jsonrpsee::core::RpcResult<i64> {
        Ok(a + b)
    }
}

impl capwire::host::Entrypoint for Calc {
    fn new(_: capwire::host::Env, _: capwire::host::Ctx) -> Self {
        Calc
    }
}

/// A counter held by reference, for the memory-per-stub measurement.
pub struct Counter(std::sync::atomic::AtomicI64);

#[capwire::rpc_target]
impl Counter {
    /// Adds `n`; the new value.
    pub fn add(&self, n: i64) -> i64 {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n
    }
}

/// Hands out counters.
pub struct Counters;

#[capwire::entrypoint]
impl Counters {
    /// A new counter, by reference.
    pub fn make(&self) -> Counter {
        Counter(std::sync::atomic::AtomicI64::new(0))
    }
}

/// A tarpc server of [`TarpcCalc`] on a free loopback port (bincode over TCP, default
/// configuration, each request spawned); its address.
pub async fn tarpc_server() -> std::net::SocketAddr {
    use futures::StreamExt;
    use tarpc::server::Channel;
    let mut listener = tarpc::serde_transport::tcp::listen(
        "127.0.0.1:0",
        tarpc::tokio_serde::formats::Bincode::default,
    )
    .await
    .expect("bind a tarpc server");
    let addr = listener.local_addr();
    listener.config_mut().max_frame_length(usize::MAX);
    tokio::spawn(async move {
        while let Some(Ok(transport)) = listener.next().await {
            let channel = tarpc::server::BaseChannel::with_defaults(transport);
            tokio::spawn(
                channel
                    .execute(TarpcServer.serve())
                    .for_each(|response| async move {
                        tokio::spawn(response);
                    }),
            );
        }
    });
    addr
}

/// A tarpc client of the server at `addr`, with the default configuration.
pub async fn tarpc_client(addr: std::net::SocketAddr) -> TarpcCalcClient {
    let transport =
        tarpc::serde_transport::tcp::connect(addr, tarpc::tokio_serde::formats::Bincode::default)
            .await
            .expect("connect to the tarpc server");
    TarpcCalcClient::new(tarpc::client::Config::default(), transport).spawn()
}
