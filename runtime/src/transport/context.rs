//! What a session's main object may know of the request that opened the session.

use std::net::SocketAddr;

/// The HTTP request that opened a session (a WebSocket upgrade or an HTTP batch), as the
/// function that makes the session's main object sees it: method, URI, headers, the
/// peer's address, and the [`http::Extensions`] that middleware put there (an
/// authenticated user, say). The body is not included.
///
/// A factory that takes it is written `|ctx: &SessionContext| ...`; the plain `|| Api`
/// form keeps working. Note that a factory that reads the request changes the default
/// [`CorsPolicy`](crate::CorsPolicy) to same-origin only, since what it reads (a cookie)
/// may be an ambient credential a foreign page's request carries too.
///
/// ```
/// use capwire::SessionContext;
///
/// #[derive(Clone)]
/// struct User(String);
///
/// struct Api {
///     user: Option<User>,
/// }
/// # impl capwire::RpcObject for Api {
/// #     fn call(self: std::sync::Arc<Self>, m: &str, _a: Vec<capwire::Value>) -> capwire::CallFuture {
/// #         Box::pin(std::future::ready(Err(capwire::RpcError::not_a_function(m))))
/// #     }
/// # }
///
/// // An axum middleware put `User` into the request's extensions.
/// let app: axum::Router = axum::Router::new().route(
///     "/rpc",
///     capwire::rpc_route(
///         |ctx: &SessionContext| Api { user: ctx.extensions().get::<User>().cloned() },
///         Default::default(),
///     ),
/// );
/// ```
#[derive(Debug, Clone)]
pub struct SessionContext {
    parts: http::request::Parts,
    websocket: bool,
}

impl SessionContext {
    pub(crate) fn new(parts: http::request::Parts, websocket: bool) -> SessionContext {
        SessionContext { parts, websocket }
    }

    /// The request's method: `GET` for a WebSocket upgrade, `POST` for a batch.
    pub fn method(&self) -> &http::Method {
        &self.parts.method
    }

    /// The request's URI, query included.
    pub fn uri(&self) -> &http::Uri {
        &self.parts.uri
    }

    /// The request's headers (cookies, `Authorization`, `Origin`, ...).
    pub fn headers(&self) -> &http::HeaderMap {
        &self.parts.headers
    }

    /// What middleware and the server attached to the request: values a tower layer
    /// inserted, and [`axum::extract::ConnectInfo`] when the server records it.
    pub fn extensions(&self) -> &http::Extensions {
        &self.parts.extensions
    }

    /// The peer's address, when the server recorded it ([`Server`](crate::Server),
    /// [`serve`](crate::serve) and the worker host do; with `axum::serve`, use
    /// `into_make_service_with_connect_info::<SocketAddr>()`). Behind a reverse proxy it
    /// is the proxy's; do not authorize by it (a DNS-rebinding page reaches a local
    /// server from the browser's own address).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
    }

    /// Whether the session runs over a WebSocket (else it is one HTTP batch).
    pub fn is_websocket(&self) -> bool {
        self.websocket
    }

    /// All of the request's parts.
    pub fn parts(&self) -> &http::request::Parts {
        &self.parts
    }
}
