//! Serving: a route that speaks WebSocket and HTTP batch, and a one-call server.

use super::Session;
use super::context::SessionContext;
use super::cors::CorsPolicy;
use super::guard::{GuardedWs, WsIo};
use super::websocket::ws_config;
use crate::limits::budget::{Budget, Charge};
use crate::limits::{Limits, ServerLimits};
use crate::stub::RpcStub;
use axum::response::IntoResponse;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::Instrument;

/// What a server calls to make the main object of each new session: a function taking
/// nothing (`|| Api`), or one taking the request that opened the session
/// (`|ctx: &SessionContext| Api::for(ctx)`, see [`SessionContext`]). `Args` tells the two
/// apart (`()` or `SessionContext`); it is inferred.
pub trait NewMain<Args = ()>: Send + Sync + 'static {
    /// A fresh main object for the session the request in `ctx` opens.
    fn new_main(&self, ctx: &SessionContext) -> RpcStub;

    /// Whether the factory looks at the request. The default [`CorsPolicy`] lets any
    /// origin call a factory that does not, and only the server's own origin call one
    /// that does (it may pick the user from a cookie a foreign page's request carries).
    fn reads_request(&self) -> bool;
}

impl<F, T> NewMain<()> for F
where
    F: Fn() -> T + Send + Sync + 'static,
    T: IntoStub,
{
    fn new_main(&self, _ctx: &SessionContext) -> RpcStub {
        self().into_stub()
    }

    fn reads_request(&self) -> bool {
        false
    }
}

impl<F, T> NewMain<SessionContext> for F
where
    F: Fn(&SessionContext) -> T + Send + Sync + 'static,
    T: IntoStub,
{
    fn new_main(&self, ctx: &SessionContext) -> RpcStub {
        self(ctx).into_stub()
    }

    fn reads_request(&self) -> bool {
        true
    }
}

/// A session factory with its `Args` erased.
type Factory = Arc<dyn Fn(&SessionContext) -> RpcStub + Send + Sync>;

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
/// Each session's main object comes from `new_main`. What all its sessions together may
/// hold and how long they may take are [`ServerLimits::default()`]; see [`rpc_route_with`].
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
pub fn rpc_route<S, A>(new_main: impl NewMain<A>, limits: Limits) -> axum::routing::MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    RpcRoute::new(new_main).limits(limits).build()
}

/// [`rpc_route`] with the given server limits: the route's sessions share one
/// `max_memory` budget (a WebSocket message still arriving and an HTTP batch body count
/// against it too), and WebSocket sessions keep `server_limits`' clocks
/// (`handshake_timeout`, `frame_read_timeout`, `keepalive_interval`, `idle_timeout`), as
/// do HTTP batch bodies (`body_read_timeout`). The limits on connections
/// (`max_connections`, `header_read_timeout`) belong to whatever accepts them: a
/// [`Server`] applies them, `axum::serve` does not.
///
/// ```
/// # struct Api;
/// # impl capwire::RpcObject for Api {
/// #     fn call(self: std::sync::Arc<Self>, m: &str, _a: Vec<capwire::Value>) -> capwire::CallFuture {
/// #         Box::pin(std::future::ready(Err(capwire::RpcError::not_a_function(m))))
/// #     }
/// # }
/// let server_limits = capwire::ServerLimits {
///     max_memory: 256 << 20,
///     idle_timeout: Some(std::time::Duration::from_secs(60)),
///     ..Default::default()
/// };
/// let app: axum::Router = axum::Router::new()
///     .route("/rpc", capwire::rpc_route_with(|| Api, Default::default(), server_limits));
/// ```
pub fn rpc_route_with<S, A>(
    new_main: impl NewMain<A>,
    limits: Limits,
    server_limits: ServerLimits,
) -> axum::routing::MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    RpcRoute::new(new_main)
        .limits(limits)
        .server_limits(server_limits)
        .build()
}

/// An RPC endpoint, configured: its session factory, [`Limits`], [`ServerLimits`] and
/// [`CorsPolicy`]. [`build`](Self::build) makes the axum route; [`rpc_route`] and
/// [`rpc_route_with`] are shorthands for the defaults.
///
/// ```
/// # struct Api;
/// # impl capwire::RpcObject for Api {
/// #     fn call(self: std::sync::Arc<Self>, m: &str, _a: Vec<capwire::Value>) -> capwire::CallFuture {
/// #         Box::pin(std::future::ready(Err(capwire::RpcError::not_a_function(m))))
/// #     }
/// # }
/// use capwire::{CorsPolicy, RpcRoute};
/// let app: axum::Router = axum::Router::new().route(
///     "/rpc",
///     RpcRoute::new(|| Api)
///         .cors(CorsPolicy::allow_origins(["https://app.example"]))
///         .build(),
/// );
/// ```
#[must_use = "an RpcRoute does nothing until `build` makes it a route"]
pub struct RpcRoute {
    factory: Factory,
    reads_request: bool,
    limits: Limits,
    server_limits: ServerLimits,
    cors: CorsPolicy,
}

impl RpcRoute {
    /// An endpoint whose sessions' main objects `new_main` makes.
    pub fn new<A>(new_main: impl NewMain<A>) -> RpcRoute {
        let reads_request = new_main.reads_request();
        RpcRoute {
            factory: Arc::new(move |ctx: &SessionContext| new_main.new_main(ctx)),
            reads_request,
            limits: Limits::default(),
            server_limits: ServerLimits::default(),
            cors: CorsPolicy::default(),
        }
    }

    /// The limits on what each session's peer may send.
    pub fn limits(mut self, limits: Limits) -> RpcRoute {
        self.limits = limits;
        self
    }

    /// The limits all the endpoint's sessions share (see [`rpc_route_with`]).
    pub fn server_limits(mut self, server_limits: ServerLimits) -> RpcRoute {
        self.server_limits = server_limits;
        self
    }

    /// Which web pages may call (see [`CorsPolicy`]; the default depends on whether the
    /// factory reads the request).
    pub fn cors(mut self, cors: CorsPolicy) -> RpcRoute {
        self.cors = cors;
        self
    }

    /// The axum route: `GET` with a WebSocket upgrade starts a WebSocket session, `POST`
    /// runs an HTTP batch, `OPTIONS` answers CORS preflights, anything else answers 405. A
    /// request from an origin the policy refuses gets `403` before any session starts.
    pub fn build<S>(self) -> axum::routing::MethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let endpoint = Arc::new(Endpoint {
            factory: self.factory,
            limits: self.limits,
            ctx: ServerCtx::new(self.server_limits),
            cors: self.cors.resolve(self.reads_request),
        });
        let (for_post, for_options) = (endpoint.clone(), endpoint.clone());
        axum::routing::get(move |request: axum::extract::Request| async move {
            if !is_websocket_upgrade(&request) {
                return not_rpc_method();
            }
            if let Err(refused) = endpoint.cors.check(request.headers(), request.uri()) {
                return refused.into_response();
            }
            let factory = &endpoint.factory;
            websocket_session_with(request, |c| factory(c), endpoint.limits, &endpoint.ctx)
        })
        .post(move |request: axum::extract::Request| async move {
            let endpoint = for_post;
            let cors = match endpoint.cors.check(request.headers(), request.uri()) {
                Ok(cors) => cors,
                Err(refused) => return refused.into_response(),
            };
            let factory = &endpoint.factory;
            let mut response =
                batch_request_with(request, |c| factory(c), endpoint.limits, &endpoint.ctx).await;
            response.headers_mut().extend(cors);
            response
        })
        .options(move |request: axum::extract::Request| async move {
            for_options.cors.preflight(request.headers(), request.uri())
        })
    }
}

/// One endpoint's configuration, shared by its handlers.
struct Endpoint {
    factory: Factory,
    limits: Limits,
    ctx: ServerCtx,
    cors: CorsPolicy,
}

/// The answer to a request an RPC endpoint does not take (a `GET` without a WebSocket
/// upgrade, say): `405`, as capnweb's own servers answer, with `Allow: POST` (a `GET`
/// works only as an upgrade, which `Upgrade: websocket` says).
pub(crate) fn not_rpc_method() -> axum::response::Response {
    (
        http::StatusCode::METHOD_NOT_ALLOWED,
        [
            (http::header::ALLOW, "POST"),
            (http::header::UPGRADE, "websocket"),
        ],
        "this RPC endpoint takes a WebSocket upgrade (GET) or an HTTP batch (POST)",
    )
        .into_response()
}

/// What the sessions of one server (a [`Server`], an [`rpc_route`], a host worker's
/// listener) share: its limits and its memory budget.
#[derive(Clone)]
pub(crate) struct ServerCtx {
    pub(crate) limits: ServerLimits,
    pub(crate) budget: Arc<Budget>,
}

impl ServerCtx {
    pub(crate) fn new(limits: ServerLimits) -> ServerCtx {
        ServerCtx {
            limits,
            budget: Budget::new("max_memory", limits.max_memory, None),
        }
    }
}

/// Whether `request` asks for a WebSocket (version 13) upgrade with a key.
pub(crate) fn is_websocket_upgrade<B>(request: &http::Request<B>) -> bool {
    let headers = request.headers();
    let has_token = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    request.method() == http::Method::GET
        && has_token(http::header::CONNECTION, "upgrade")
        && has_token(http::header::UPGRADE, "websocket")
        && headers
            .get(http::header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13")
        && headers.contains_key(http::header::SEC_WEBSOCKET_KEY)
}

/// The span of a server's session on the request `parts` came with, the peer's address
/// in it when the server recorded one.
fn server_span(transport: &'static str, parts: &http::request::Parts) -> tracing::Span {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    crate::session::session_span(
        transport,
        Some("server"),
        peer.as_ref().map(|p| p as &dyn std::fmt::Display),
    )
}

/// Accepts a WebSocket upgrade (check it with [`is_websocket_upgrade`] first) and serves a
/// session on it with `main`, within the server's limits: the upgrade must complete within
/// `handshake_timeout`, then the connection is guarded (see [`GuardedWs`]).
pub(crate) fn websocket_session(
    request: axum::extract::Request,
    main: RpcStub,
    limits: Limits,
    ctx: &ServerCtx,
) -> axum::response::Response {
    websocket_session_with(request, |_| main, limits, ctx)
}

/// [`websocket_session`] with the main object made from the request's parts.
pub(crate) fn websocket_session_with(
    request: axum::extract::Request,
    make_main: impl FnOnce(&SessionContext) -> RpcStub,
    limits: Limits,
    ctx: &ServerCtx,
) -> axum::response::Response {
    let (mut parts, _body) = request.into_parts();
    let (Some(key), Some(on_upgrade)) = (
        parts.headers.get(http::header::SEC_WEBSOCKET_KEY).cloned(),
        parts.extensions.remove::<hyper::upgrade::OnUpgrade>(),
    ) else {
        return (
            http::StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded to a WebSocket",
        )
            .into_response();
    };
    let conn = parts
        .extensions
        .get::<super::listener::ConnHandle>()
        .cloned();
    let span = server_span("websocket", &parts);
    let main = make_main(&SessionContext::new(parts, true));
    // From here on the session watches the connection's writes (keepalive_interval).
    if let Some(conn) = &conn {
        conn.upgrading();
    }
    let ctx = ctx.clone();
    // The upgrade's own failures are logged in the session's span too.
    let upgrade_span = span.clone();
    let serve = async move {
        let upgraded = match tokio::time::timeout(ctx.limits.handshake_timeout, on_upgrade).await {
            Ok(Ok(upgraded)) => upgraded,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "capwire: WebSocket upgrade failed");
                return;
            }
            Err(_) => {
                // The connection is still hyper's (waiting for a request body, say): close
                // it, or it would hold its slot for good.
                tracing::debug!("capwire: WebSocket upgrade timed out (handshake_timeout)");
                if let Some(conn) = conn {
                    conn.close();
                }
                return;
            }
        };
        let io = WsIo::new(
            hyper_util::rt::TokioIo::new(upgraded),
            ctx.budget.clone(),
            &ctx.limits,
        );
        let socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
            io,
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            Some(ws_config(&limits)),
        )
        .await;
        let cell = Arc::new(std::sync::OnceLock::new());
        let transport = GuardedWs::new(socket, &limits, &ctx.limits, cell.clone());
        let session = Session::start_in(
            transport,
            GuardedWs::close_with,
            Some(main),
            limits,
            Some(ctx.budget.clone()),
            span,
        );
        let _ = cell.set(Arc::downgrade(&session.inner));
        session.closed().await;
    };
    tokio::spawn(serve.instrument(upgrade_span));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    (
        http::StatusCode::SWITCHING_PROTOCOLS,
        [
            (http::header::CONNECTION, "upgrade".to_owned()),
            (http::header::UPGRADE, "websocket".to_owned()),
            (http::header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response()
}

/// Runs an HTTP batch session on a request: reads its body (at most twice the message
/// limit, within `body_read_timeout`, counted against the server's budget while it is
/// read and served), then serves it with `main`.
pub(crate) async fn batch_request(
    request: axum::extract::Request,
    main: RpcStub,
    limits: Limits,
    ctx: &ServerCtx,
) -> axum::response::Response {
    batch_request_with(request, |_| main, limits, ctx).await
}

/// [`batch_request`] with the main object made from the request's parts, once the body
/// has arrived.
pub(crate) async fn batch_request_with(
    request: axum::extract::Request,
    make_main: impl FnOnce(&SessionContext) -> RpcStub,
    limits: Limits,
    ctx: &ServerCtx,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let (body, _charge) = match read_body(body, &limits, ctx).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let span = server_span("batch", &parts);
    let main = make_main(&SessionContext::new(parts, false));
    let Ok(text) = std::str::from_utf8(&body) else {
        return (http::StatusCode::BAD_REQUEST, "request body is not UTF-8").into_response();
    };
    let served =
        super::batch::serve_batch_in(text, main, limits, Some(ctx.budget.clone()), span).await;
    let (status, body) = match served {
        Ok(body) => (http::StatusCode::OK, body),
        Err(body) => (http::StatusCode::BAD_REQUEST, body),
    };
    // The response counts against the budget until it has been written out (or the
    // connection dropped): its bytes own the charge.
    let Some(charge) = ctx.budget.charge(body.len()) else {
        return out_of_memory(ctx, "answer");
    };
    let body = bytes::Bytes::from_owner(Charged {
        text: body,
        _charge: charge,
    });
    (
        status,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A response body and its charge against the server's budget.
struct Charged {
    text: String,
    _charge: Charge,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

/// `503`, with an `abort` naming the server's memory limit: it has no room to `what` the
/// batch.
fn out_of_memory(ctx: &ServerCtx, what: &str) -> axum::response::Response {
    let message = format!(
        "the server cannot {what} this batch: its memory is full (limit {})",
        ctx.budget.name()
    );
    let abort = serde_json::json!(["abort", ["error", "Error", message]]).to_string();
    (http::StatusCode::SERVICE_UNAVAILABLE, abort).into_response()
}

/// Largest HTTP batch body: a batch holds many messages, each checked against the message
/// limit (an oversized one aborts, naming the limit); the body as a whole may be twice
/// that.
pub(crate) fn batch_body_limit(limits: &Limits) -> usize {
    limits.max_message_size.saturating_mul(2).max(1 << 20)
}

/// Reads a batch body, counting it against the server's budget as it arrives.
async fn read_body(
    mut body: axum::body::Body,
    limits: &Limits,
    ctx: &ServerCtx,
) -> Result<(Vec<u8>, Charge), axum::response::Response> {
    use http_body_util::BodyExt;
    let limit = batch_body_limit(limits);
    let out_of_memory = || out_of_memory(ctx, "hold");
    let mut charge = ctx.budget.charge(0).ok_or_else(out_of_memory)?;
    let mut bytes = Vec::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                (
                    http::StatusCode::BAD_REQUEST,
                    format!("reading the body failed: {e}"),
                )
                    .into_response()
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if bytes.len().saturating_add(data.len()) > limit {
                return Err((
                    http::StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the batch is larger than {limit} bytes"),
                )
                    .into_response());
            }
            if !charge.grow(data.len()) {
                return Err(out_of_memory());
            }
            bytes.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(ctx.limits.body_read_timeout, read).await {
        Ok(Ok(())) => Ok((bytes, charge)),
        Ok(Err(response)) => Err(response),
        Err(_) => Err((
            http::StatusCode::REQUEST_TIMEOUT,
            [(http::header::CONNECTION, "close")],
            format!(
                "the body did not arrive within {:?} (limit body_read_timeout)",
                ctx.limits.body_read_timeout
            ),
        )
            .into_response()),
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
    server_limits: ServerLimits,
    cors: CorsPolicy,
}

impl Server {
    /// Binds to `addr`.
    pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<Server> {
        Ok(Server {
            listener: tokio::net::TcpListener::bind(addr).await?,
            limits: Limits::default(),
            server_limits: ServerLimits::default(),
            cors: CorsPolicy::default(),
        })
    }

    /// Sets the limits on what clients may send.
    pub fn limits(mut self, limits: Limits) -> Server {
        self.limits = limits;
        self
    }

    /// Sets the limits on what all clients together may make the server hold, and on how
    /// long it waits for them (see [`ServerLimits`]).
    ///
    /// ```no_run
    /// # struct Api;
    /// # impl capwire::RpcObject for Api {
    /// #     fn call(self: std::sync::Arc<Self>, m: &str, _a: Vec<capwire::Value>) -> capwire::CallFuture {
    /// #         Box::pin(std::future::ready(Err(capwire::RpcError::not_a_function(m))))
    /// #     }
    /// # }
    /// # async fn demo() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let server = capwire::Server::bind("0.0.0.0:8787").await?.server_limits(capwire::ServerLimits {
    ///     max_connections: 5_000,
    ///     header_read_timeout: Duration::from_secs(5),
    ///     ..Default::default()
    /// });
    /// server.serve(|| Api).await
    /// # }
    /// ```
    pub fn server_limits(mut self, server_limits: ServerLimits) -> Server {
        self.server_limits = server_limits;
        self
    }

    /// Sets which web pages may call (see [`CorsPolicy`]).
    ///
    /// ```no_run
    /// # struct Api;
    /// # impl capwire::RpcObject for Api {
    /// #     fn call(self: std::sync::Arc<Self>, m: &str, _a: Vec<capwire::Value>) -> capwire::CallFuture {
    /// #         Box::pin(std::future::ready(Err(capwire::RpcError::not_a_function(m))))
    /// #     }
    /// # }
    /// # async fn demo() -> std::io::Result<()> {
    /// let server = capwire::Server::bind("0.0.0.0:8787")
    ///     .await?
    ///     .cors(capwire::CorsPolicy::allow_origins(["https://app.example"]));
    /// server.serve(|| Api).await
    /// # }
    /// ```
    pub fn cors(mut self, cors: CorsPolicy) -> Server {
        self.cors = cors;
        self
    }

    /// The address bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves RPC at `/` until the process ends.
    pub async fn serve<A>(self, new_main: impl NewMain<A>) -> std::io::Result<()> {
        let app = axum::Router::new().route(
            "/",
            RpcRoute::new(new_main)
                .limits(self.limits)
                .server_limits(self.server_limits)
                .cors(self.cors)
                .build(),
        );
        super::listener::serve(
            self.listener,
            app,
            self.server_limits,
            tokio_util::sync::CancellationToken::new(),
        )
        .await
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
pub async fn serve<A>(
    addr: impl tokio::net::ToSocketAddrs,
    new_main: impl NewMain<A>,
) -> std::io::Result<()> {
    Server::bind(addr).await?.serve(new_main).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// A main object that says when it is dropped.
    struct Watched(Arc<AtomicBool>);

    impl crate::RpcObject for Watched {
        fn call(self: Arc<Self>, method: &str, _args: Vec<crate::Value>) -> crate::CallFuture {
            Box::pin(std::future::ready(Err(crate::RpcError::not_a_function(
                method,
            ))))
        }
    }

    impl Drop for Watched {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn an_upgrade_that_cannot_complete_is_given_up_after_the_handshake_timeout() {
        let handshake = Duration::from_millis(200);
        let dropped = Arc::new(AtomicBool::new(false));
        let watched = dropped.clone();
        let router = axum::Router::new().route(
            "/",
            rpc_route_with(
                move || RpcStub::new(Watched(watched.clone())),
                Limits::default(),
                ServerLimits {
                    handshake_timeout: handshake,
                    ..Default::default()
                },
            ),
        );
        // A connection whose client never reads: the server cannot finish writing its
        // `101` into a 16-byte pipe, so the connection is never handed over.
        let (mut client, server) = tokio::io::duplex(16);
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(
                    hyper_util::rt::TokioIo::new(server),
                    hyper_util::service::TowerToHyperService::new(router),
                )
                .with_upgrades(),
        );
        client
            .write_all(
                b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
                  sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            )
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        // The session's main object, made for the upgrade, is let go once it times out.
        while !dropped.load(Ordering::SeqCst) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the stalled upgrade was never given up"
            );
            tokio::task::yield_now().await;
        }
        assert!(
            started.elapsed() >= handshake,
            "given up before the timeout"
        );
    }
}
