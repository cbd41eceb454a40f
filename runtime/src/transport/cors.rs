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
/// A page on the server's own origin (its `Origin` names the request's `Host`) and a
/// request without `Origin` are allowed by every policy.
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

    /// Pages of these origins (`scheme://host[:port]`, as browsers write them in `Origin`,
    /// compared without regard to ASCII case) and of the server's own origin; any other is
    /// refused with `403`, `Origin: null` included.
    pub fn allow_origins<I, S>(origins: I) -> CorsPolicy
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CorsPolicy {
            origins: Origins::List(
                origins
                    .into_iter()
                    .map(|o| o.into().trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            ),
            ..CorsPolicy::default()
        }
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

    /// Whether `headers` may be served; `Ok` carries the CORS headers for the answer.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<HeaderMap, Refused> {
        let mut cors = HeaderMap::new();
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(cors);
        };
        let text = origin.to_str().unwrap_or("").trim_end_matches('/');
        let same = same_origin(text, headers);
        match &self.origins {
            Origins::Any | Origins::Auto => {
                cors.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            _ if same => {}
            Origins::List(list) if list.iter().any(|o| o.eq_ignore_ascii_case(text)) => {
                cors.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                cors.insert(header::VARY, HeaderValue::from_static("Origin"));
                if self.credentials {
                    cors.insert(
                        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        HeaderValue::from_static("true"),
                    );
                }
            }
            _ => {
                tracing::debug!(origin = text, "capwire: request refused by the CORS policy");
                return Err(Refused(text.to_owned()));
            }
        }
        Ok(cors)
    }

    /// The answer to an `OPTIONS` request: a preflight from an allowed origin gets `204`
    /// with what it may do, one from a refused origin `403`; a plain `OPTIONS` gets `204`
    /// with `Allow`.
    pub(crate) fn preflight(&self, headers: &HeaderMap) -> axum::response::Response {
        let mut cors = match self.check(headers) {
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

/// Whether `origin` (`scheme://authority`) names the host the request was sent to. The
/// scheme is not compared: behind a TLS-terminating proxy the server cannot know it, and a
/// page cannot choose the `Host` its browser sends.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
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
        policy.check(&request(origin, "api.example:8787")).is_ok()
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
    fn a_list_allows_exactly_its_origins_and_the_servers_own() {
        let policy = CorsPolicy::allow_origins(["https://App.example/"]).resolve(true);
        assert!(allowed(&policy, Some("https://app.example")));
        assert!(!allowed(&policy, Some("http://app.example")));
        assert!(!allowed(&policy, Some("https://app.example.evil")));
        assert!(!allowed(&policy, Some("null")));
        assert!(allowed(&policy, Some("https://api.example:8787")));
        assert!(allowed(&policy, None));
    }

    #[test]
    fn same_origin_ignores_default_ports_and_case() {
        let headers = request(None, "API.example");
        assert!(same_origin("https://api.example:443", &headers));
        assert!(same_origin("http://api.example", &headers));
        assert!(!same_origin("http://api.example:8080", &headers));
        assert!(!same_origin("null", &headers));
    }

    #[test]
    fn credentials_go_only_to_a_listed_origin() {
        let listed = CorsPolicy::allow_origins(["https://app.example"])
            .allow_credentials(true)
            .resolve(true);
        let cors = listed
            .check(&request(Some("https://app.example"), "api.example"))
            .unwrap();
        assert_eq!(
            cors[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example"
        );
        assert_eq!(cors[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        let any = CorsPolicy::any().allow_credentials(true).resolve(true);
        let cors = any
            .check(&request(Some("https://app.example"), "api.example"))
            .unwrap();
        assert_eq!(cors[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!cors.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
    }
}
