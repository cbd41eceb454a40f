//! Which web pages may talk to an RPC endpoint: the CORS and Origin policy.
//!
//! A browser attaches an `Origin` header to every WebSocket upgrade and to every
//! cross-origin `fetch`, and it sends the user's cookies along, whichever page asked.
//! A page on `https://evil.example` can therefore open a WebSocket to your server, or
//! `POST` an HTTP batch to it, *as the logged-in user*: cross-site WebSocket hijacking and
//! cross-site request forgery. CORS headers alone do not stop this: they only decide
//! whether the page may *read* the answer, and a batch runs its calls before anyone
//! reads anything. So a [`CorsPolicy`] refuses a request from an origin it does not allow
//! with `403` before any call runs, for WebSocket upgrades and batches alike, and answers
//! the CORS headers (and preflights) for the origins it allows.
//!
//! Requests without an `Origin` header (other servers, command-line tools, capwire's own
//! client) are never refused: they carry no ambient credential a browser added, and they
//! could claim any origin anyway.

use std::time::Duration;

use axum::response::IntoResponse;
use http::{HeaderMap, HeaderValue, header};

/// Which origins may call an RPC endpoint from a browser, and what CORS answers they get.
///
/// | constructor | a page on another origin | CORS headers |
/// |---|---|---|
/// | [`CorsPolicy::default()`] | allowed when the session factory ignores the request (`\|\| Api`); refused when it reads the request (`\|ctx: &SessionContext\| ...`), since it may pick the user from a cookie | `*`, or none |
/// | [`CorsPolicy::any()`] | allowed | `Access-Control-Allow-Origin: *`, never credentials |
/// | [`CorsPolicy::same_origin()`] | refused | none |
/// | [`CorsPolicy::allow_origins`] | allowed when listed | the origin that asked, `Vary: Origin`, credentials if [`allow_credentials`](Self::allow_credentials) |
///
/// A request without `Origin` is allowed by every policy. A page on the server's own
/// origin (its `Origin` names the request's `Host`) is allowed by the default and by
/// [`same_origin`](Self::same_origin), and by a list only with
/// [`allow_same_origin`](Self::allow_same_origin): a list means exactly what it names,
/// which also keeps out a DNS-rebinding page whose host name points at the server.
///
/// **Where the credential is checked matters.** [`any`](Self::any), and the default for a
/// factory that ignores the request, are safe only when nothing ambient picks the user:
/// when a login middleware in front of the route checks a cookie, an authenticating proxy
/// or a client certificate admits the browser, or the server trusts its network position
/// (localhost, an intranet), list the origins of your pages instead.
///
/// The default follows capnweb, whose servers answer `Access-Control-Allow-Origin: *`: that
/// is safe while the session's main object is the same for everyone, because then a page
/// elsewhere can do nothing that any program could not. Once the factory reads the request
/// (a cookie, say), a foreign page would act as the user, so the default becomes
/// same-origin only; list the origins of your front ends with
/// [`allow_origins`](Self::allow_origins), or say [`any`](Self::any) when the request
/// carries no ambient credential (a bearer token the page adds itself).
///
/// ```
/// use std::time::Duration;
/// let policy = capwire::CorsPolicy::allow_origins(["https://app.example", "http://localhost:5173"])
///     .allow_credentials(true)
///     .max_age(Duration::from_secs(3600));
/// # struct Api;
/// # impl capwire::RpcObject for Api {
/// #     fn call(self: std::sync::Arc<Self>, m: &str, _a: Vec<capwire::Value>) -> capwire::CallFuture {
/// #         Box::pin(std::future::ready(Err(capwire::RpcError::not_a_function(m))))
/// #     }
/// # }
/// let app: axum::Router = axum::Router::new()
///     .route("/rpc", capwire::RpcRoute::new(|| Api).cors(policy).build());
/// ```
#[derive(Clone, Debug, Default)]
pub struct CorsPolicy {
    origins: Origins,
    /// Whether a list also admits the server's own origin.
    own_origin: bool,
    credentials: bool,
    allow_headers: Option<Vec<HeaderValue>>,
    max_age: Option<Duration>,
}

#[derive(Clone, Debug, Default)]
enum Origins {
    /// [`Origins::Any`] for a factory that ignores the request, else
    /// [`Origins::SameOrigin`].
    #[default]
    Auto,
    Any,
    SameOrigin,
    List(Vec<String>),
}

/// How long a browser may cache a preflight's answer unless the policy says otherwise.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

impl CorsPolicy {
    /// Any origin may call; answers carry `Access-Control-Allow-Origin: *`, which browsers
    /// never combine with credentials (cookies are not sent to a `fetch` that reads the
    /// answer). Safe only when no cookie or other ambient credential picks the user.
    pub fn any() -> CorsPolicy {
        CorsPolicy {
            origins: Origins::Any,
            ..CorsPolicy::default()
        }
    }

    /// Only pages of the server's own origin (and requests without `Origin`).
    pub fn same_origin() -> CorsPolicy {
        CorsPolicy {
            origins: Origins::SameOrigin,
            ..CorsPolicy::default()
        }
    }

    /// Pages of exactly these origins (`scheme://host[:port]`, as browsers write them in
    /// `Origin`; compared without regard to ASCII case, a default port or a trailing `/`);
    /// any other is refused with `403`, `Origin: null` included. Entries that can never
    /// name a page's origin (`null`, `*`, an empty one, one with a path) are left out, with
    /// a warning in the log.
    pub fn allow_origins<I, S>(origins: I) -> CorsPolicy
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = origins
            .into_iter()
            .filter_map(|o| {
                let o = o.into();
                let normal = normalize_origin(&o);
                if normal.is_none() {
                    tracing::warn!(
                        origin = %o,
                        "capwire: CorsPolicy::allow_origins ignores an entry that is no page's origin"
                    );
                }
                normal
            })
            .collect();
        CorsPolicy {
            origins: Origins::List(list),
            ..CorsPolicy::default()
        }
    }

    /// Whether a list (see [`allow_origins`](Self::allow_origins)) also admits pages of
    /// the server's own origin, the one the request's `Host` names. Off by default.
    pub fn allow_same_origin(mut self, allow: bool) -> CorsPolicy {
        self.own_origin = allow;
        self
    }

    /// Whether a listed origin's page may send cookies and read the answer
    /// (`Access-Control-Allow-Credentials: true`). Off by default. It has no effect with
    /// [`any`](Self::any): browsers refuse credentials with a wildcard origin, and echoing
    /// every origin with credentials would hand the user's session to any site.
    pub fn allow_credentials(mut self, allow: bool) -> CorsPolicy {
        self.credentials = allow;
        self
    }

    /// The request headers a page may send (`Access-Control-Allow-Headers`). By default a
    /// preflight is answered with the headers it asked for.
    pub fn allow_headers<I, S>(mut self, headers: I) -> CorsPolicy
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.allow_headers = Some(
            headers
                .into_iter()
                .filter_map(|h| HeaderValue::from_str(h.as_ref()).ok())
                .collect(),
        );
        self
    }

    /// How long a browser may cache a preflight's answer (`Access-Control-Max-Age`);
    /// 10 minutes unless set.
    pub fn max_age(mut self, max_age: Duration) -> CorsPolicy {
        self.max_age = Some(max_age);
        self
    }

    /// The policy in force for a factory that does (or does not) read the request.
    pub(crate) fn resolve(mut self, factory_reads_request: bool) -> CorsPolicy {
        if matches!(self.origins, Origins::Auto) {
            self.origins = if factory_reads_request {
                Origins::SameOrigin
            } else {
                Origins::Any
            };
        }
        self
    }

    /// Whether a request to `uri` with `headers` may be served; `Ok` carries the CORS
    /// headers for the answer.
    pub(crate) fn check(&self, headers: &HeaderMap, uri: &http::Uri) -> Result<HeaderMap, Refused> {
        let mut cors = HeaderMap::new();
        if matches!(self.origins, Origins::Any) {
            cors.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            return Ok(cors);
        }
        // The answer depends on the request's Origin: caches must keep them apart.
        cors.insert(header::VARY, HeaderValue::from_static("Origin"));
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let Some(origin) = origins.next() else {
            return Ok(cors);
        };
        let raw = origin.to_str().unwrap_or("");
        if origins.next().is_some() {
            // No browser sends two: something between it and us is confused.
            return Err(Refused(raw.to_owned()));
        }
        let text = raw.trim_end_matches('/');
        let own = match &self.origins {
            Origins::List(_) => self.own_origin,
            _ => true,
        };
        let same = own && same_origin(text, headers, uri);
        match &self.origins {
            Origins::Any => {}
            _ if same => {}
            Origins::List(list) if normalize_origin(text).is_some_and(|t| list.contains(&t)) => {
                cors.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                if self.credentials {
                    cors.insert(
                        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        HeaderValue::from_static("true"),
                    );
                }
            }
            _ => {
                tracing::debug!(origin = raw, "capwire: request refused by the CORS policy");
                return Err(Refused(raw.to_owned()));
            }
        }
        Ok(cors)
    }

    /// The answer to an `OPTIONS` request: a preflight from an allowed origin gets `204`
    /// with what it may do, one from a refused origin `403`; a plain `OPTIONS` gets `204`
    /// with `Allow`.
    pub(crate) fn preflight(
        &self,
        headers: &HeaderMap,
        uri: &http::Uri,
    ) -> axum::response::Response {
        let mut cors = match self.check(headers, uri) {
            Ok(cors) => cors,
            Err(refused) => return refused.into_response(),
        };
        cors.insert(
            header::ALLOW,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        if headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            cors.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            let allowed = match &self.allow_headers {
                Some(list) => join(list),
                None => headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
            };
            if let Some(allowed) = allowed {
                cors.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
            }
            let max_age = self.max_age.unwrap_or(DEFAULT_MAX_AGE).as_secs();
            cors.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age));
            cors.append(
                header::VARY,
                HeaderValue::from_static("Access-Control-Request-Headers"),
            );
        }
        (http::StatusCode::NO_CONTENT, cors).into_response()
    }
}

/// A request from an origin the policy does not allow; answered with `403`.
#[derive(Debug)]
pub(crate) struct Refused(String);

impl IntoResponse for Refused {
    fn into_response(self) -> axum::response::Response {
        (
            http::StatusCode::FORBIDDEN,
            [(header::VARY, "Origin")],
            format!(
                "origin {:?} may not call this RPC endpoint (CorsPolicy)",
                self.0
            ),
        )
            .into_response()
    }
}

/// `a, b, c`, or nothing for an empty list.
fn join(list: &[HeaderValue]) -> Option<HeaderValue> {
    let text = list
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::from_str(&text).ok().filter(|v| !v.is_empty())
}

/// `scheme://host[:port]` in lowercase without a default port or a trailing `/`, or
/// `None` for what cannot be a page's origin (`null`, `*`, no scheme, a path).
fn normalize_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    if scheme.is_empty() || authority.is_empty() || authority.contains(['/', '?', '#', '*']) {
        return None;
    }
    let authority = match scheme {
        "http" => authority.strip_suffix(":80").unwrap_or(authority),
        "https" => authority.strip_suffix(":443").unwrap_or(authority),
        _ => authority,
    };
    Some(format!("{scheme}://{authority}"))
}

/// Whether `origin` (`scheme://authority`) names the host the request was sent to (its
/// `Host`, or for HTTP/2 the URI's authority). The scheme is not compared: behind a
/// TLS-terminating proxy the server cannot know it, and a page cannot choose the `Host`
/// its browser sends. A proxy in front must pass `Host` through.
fn same_origin(origin: &str, headers: &HeaderMap, uri: &http::Uri) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let Some(host) = host else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let strip = |a: &str| -> String {
        a.strip_suffix(default_port)
            .unwrap_or(a)
            .to_ascii_lowercase()
    };
    strip(authority) == strip(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    fn allowed(policy: &CorsPolicy, origin: Option<&str>) -> bool {
        policy
            .check(
                &request(origin, "api.example:8787"),
                &http::Uri::from_static("/"),
            )
            .is_ok()
    }

    #[test]
    fn the_default_depends_on_whether_the_factory_reads_the_request() {
        let open = CorsPolicy::default().resolve(false);
        assert!(allowed(&open, Some("http://evil.example")));
        let guarded = CorsPolicy::default().resolve(true);
        assert!(!allowed(&guarded, Some("http://evil.example")));
        assert!(allowed(&guarded, Some("http://api.example:8787")));
        assert!(allowed(&guarded, None));
    }

    #[test]
    fn a_list_allows_exactly_its_origins() {
        let policy =
            CorsPolicy::allow_origins(["https://App.example:443/", "null", "*", ""]).resolve(true);
        assert!(allowed(&policy, Some("https://app.example")));
        assert!(!allowed(&policy, Some("http://app.example")));
        assert!(!allowed(&policy, Some("https://app.example.evil")));
        assert!(!allowed(&policy, Some("null")));
        assert!(!allowed(&policy, Some("")));
        assert!(!allowed(&policy, Some("http://api.example:8787")));
        assert!(allowed(&policy, None));
        let with_own = policy.allow_same_origin(true);
        assert!(allowed(&with_own, Some("http://api.example:8787")));
    }

    #[test]
    fn two_origin_headers_are_refused() {
        let mut headers = request(Some("https://app.example"), "api.example");
        headers.append(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example"),
        );
        let policy = CorsPolicy::allow_origins(["https://app.example"]);
        assert!(
            policy
                .check(&headers, &http::Uri::from_static("/"))
                .is_err()
        );
    }

    #[test]
    fn without_a_host_header_the_uri_authority_names_the_server() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://api.example"),
        );
        let uri = http::Uri::from_static("https://api.example/rpc");
        assert!(CorsPolicy::same_origin().check(&headers, &uri).is_ok());
        assert!(
            CorsPolicy::same_origin()
                .check(&headers, &http::Uri::from_static("/rpc"))
                .is_err()
        );
    }

    #[test]
    fn same_origin_ignores_default_ports_and_case() {
        let headers = request(None, "API.example");
        let uri = http::Uri::from_static("/");
        assert!(same_origin("https://api.example:443", &headers, &uri));
        assert!(same_origin("http://api.example", &headers, &uri));
        assert!(!same_origin("http://api.example:8080", &headers, &uri));
        assert!(!same_origin("null", &headers, &uri));
    }

    #[test]
    fn credentials_go_only_to_a_listed_origin() {
        let listed = CorsPolicy::allow_origins(["https://app.example"])
            .allow_credentials(true)
            .resolve(true);
        let cors = listed
            .check(
                &request(Some("https://app.example"), "api.example"),
                &http::Uri::from_static("/"),
            )
            .unwrap();
        assert_eq!(
            cors[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example"
        );
        assert_eq!(cors[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        let any = CorsPolicy::any().allow_credentials(true).resolve(true);
        let cors = any
            .check(
                &request(Some("https://app.example"), "api.example"),
                &http::Uri::from_static("/"),
            )
            .unwrap();
        assert_eq!(cors[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!cors.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
    }
}
