//! Serving: a route that speaks WebSocket and HTTP batch, and a one-call server.

use super::Session;
use super::websocket::{READ_BUFFER, WsTransport, frame_limit};
use crate::limits::Limits;
use crate::stub::RpcStub;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::IntoResponse;
use std::net::SocketAddr;
use std::sync::Arc;

/// What a server calls to make the main object of each new session.
pub trait NewMain: Send + Sync + 'static {
    /// A fresh main object for one session.
    fn new_main(&self) -> RpcStub;
}

impl<F, T> NewMain for F
where
    F: Fn() -> T + Send + Sync + 'static,
    T: IntoStub,
{
    fn new_main(&self) -> RpcStub {
        self().into_stub()
    }
}

/// Things that can be served: local objects and stubs.
pub trait IntoStub {
    /// The stub.
    fn into_stub(self) -> RpcStub;
}

impl IntoStub for RpcStub {
    fn into_stub(self) -> RpcStub {
        self
    }
}

impl<T: crate::RpcObject> IntoStub for T {
    fn into_stub(self) -> RpcStub {
        RpcStub::new(self)
    }
}

/// An axum route serving RPC at its path: `GET` with a WebSocket upgrade starts a
/// WebSocket session, `POST` runs an HTTP batch session, any other method answers 405.
/// Each session's main object comes from `new_main`.
///
/// ```
/// # struct Api;
/// # impl capwire::RpcObject for Api {
/// #     fn call(self: std::sync::Arc<Self>, m: &str, _a: Vec<capwire::Value>) -> capwire::CallFuture {
/// #         Box::pin(std::future::ready(Err(capwire::RpcError::not_a_function(m))))
/// #     }
/// # }
/// let app: axum::Router = axum::Router::new().route("/rpc", capwire::rpc_route(|| Api, Default::default()));
/// ```
pub fn rpc_route<S>(new_main: impl NewMain, limits: Limits) -> axum::routing::MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let new_main: Arc<dyn NewMain> = Arc::new(new_main);
    let for_ws = new_main.clone();
    axum::routing::get(move |ws: WebSocketUpgrade| async move {
        websocket_session(ws, for_ws.new_main(), limits)
    })
    .post(move |body: axum::body::Bytes| async move {
        batch_session(&body, new_main.new_main(), limits).await
    })
    // A batch holds many messages; each is checked against the message limit (and an
    // oversized one aborts, naming the limit). The body as a whole may be twice that.
    .layer(axum::extract::DefaultBodyLimit::max(frame_limit(&limits)))
}

/// Accepts a WebSocket upgrade and serves a session on it with `main`.
pub(crate) fn websocket_session(
    ws: WebSocketUpgrade,
    main: RpcStub,
    limits: Limits,
) -> axum::response::Response {
    ws.max_message_size(frame_limit(&limits))
        .max_frame_size(frame_limit(&limits))
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| async move {
            let session = Session::start(WsTransport::new(socket), Some(main), limits);
            session.closed().await;
        })
}

/// Runs an HTTP batch session on a request body, with `main`.
pub(crate) async fn batch_session(
    body: &[u8],
    main: RpcStub,
    limits: Limits,
) -> axum::response::Response {
    let Ok(text) = std::str::from_utf8(body) else {
        return (http::StatusCode::BAD_REQUEST, "request body is not UTF-8").into_response();
    };
    match super::batch::serve_batch(text, main, limits).await {
        Ok(body) => body.into_response(),
        Err(body) => (http::StatusCode::BAD_REQUEST, body).into_response(),
    }
}

/// A bound RPC server, not yet serving: bind first to learn the port.
///
/// ```no_run
/// # struct Api;
/// # impl capwire::RpcObject for Api {
/// #     fn call(self: std::sync::Arc<Self>, m: &str, _a: Vec<capwire::Value>) -> capwire::CallFuture {
/// #         Box::pin(std::future::ready(Err(capwire::RpcError::not_a_function(m))))
/// #     }
/// # }
/// # async fn demo() -> std::io::Result<()> {
/// let server = capwire::Server::bind("127.0.0.1:0").await?;
/// println!("listening on http://{}", server.local_addr()?);
/// server.serve(|| Api).await
/// # }
/// ```
pub struct Server {
    listener: tokio::net::TcpListener,
    limits: Limits,
}

impl Server {
    /// Binds to `addr`.
    pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<Server> {
        Ok(Server {
            listener: tokio::net::TcpListener::bind(addr).await?,
            limits: Limits::default(),
        })
    }

    /// Sets the limits on what clients may send.
    pub fn limits(mut self, limits: Limits) -> Server {
        self.limits = limits;
        self
    }

    /// The address bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves RPC at `/` until the process ends.
    pub async fn serve(self, new_main: impl NewMain) -> std::io::Result<()> {
        use axum::serve::ListenerExt;
        let app = axum::Router::new().route("/", rpc_route(new_main, self.limits));
        // RPC messages are small and latency-bound: send them without Nagle's delay.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await
    }
}

/// Serves RPC at `/` on `addr` (WebSocket and HTTP batch), each session's main object made
/// by `new_main`. Runs until the process ends.
///
/// ```no_run
/// # struct Api;
/// # impl capwire::RpcObject for Api {
/// #     fn call(self: std::sync::Arc<Self>, m: &str, _a: Vec<capwire::Value>) -> capwire::CallFuture {
/// #         Box::pin(std::future::ready(Err(capwire::RpcError::not_a_function(m))))
/// #     }
/// # }
/// # async fn demo() -> std::io::Result<()> {
/// capwire::serve("127.0.0.1:8787", || Api).await
/// # }
/// ```
pub async fn serve(
    addr: impl tokio::net::ToSocketAddrs,
    new_main: impl NewMain,
) -> std::io::Result<()> {
    Server::bind(addr).await?.serve(new_main).await
}
