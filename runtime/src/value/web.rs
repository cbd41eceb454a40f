//! Web platform values over RPC: [`Blob`], [`Request`], [`Response`], [`Headers`] and
//! [`Url`], as capnweb sends JavaScript's `Blob`, `Request`, `Response`, `Headers` and
//! `URL`.
//!
//! [`Request`] and [`Response`] convert to and from the `http` crate's types with
//! [`axum`'s streaming body](crate::Body): bodies travel as [`ReadableStream`]s, with flow
//! control, so they are never held whole in memory on the way.
//!
//! ```
//! use capwire::{Request, Response, http};
//!
//! pub struct Echo;
//!
//! #[capwire::rpc_target]
//! impl Echo {
//!     /// Answers 200 with the request's body.
//!     pub fn echo(&self, request: Request) -> Response {
//!         let request: http::Request<capwire::Body> = request.into();
//!         http::Response::new(request.into_body()).into()
//!     }
//! }
//! ```

use crate::error::{ProtocolError, RpcError};
use crate::stream::ReadableStream;
use crate::value::Value;
use crate::wire::Expr;
use bytes::Bytes;
use serde_json::{Map, Value as Json};

/// A `Blob`: bytes and a MIME type. A received blob has arrived whole.
///
/// ```
/// let blob = capwire::Blob::new("hello", "text/plain");
/// assert_eq!(blob.mime_type(), "text/plain");
/// assert_eq!(&blob.data()[..], b"hello");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blob {
    data: Bytes,
    mime: String,
}

impl Blob {
    /// A blob of `data` with MIME type `mime` (which may be empty).
    pub fn new(data: impl Into<Bytes>, mime: impl Into<String>) -> Blob {
        Blob {
            data: data.into(),
            mime: mime.into(),
        }
    }

    /// The bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The MIME type (`""` when none was given).
    pub fn mime_type(&self) -> &str {
        &self.mime
    }

    /// The size in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// `true` for a blob of no bytes.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The bytes, without the type.
    pub fn into_bytes(self) -> Bytes {
        self.data
    }
}

/// HTTP headers, `Headers` in JavaScript (names lower-case, as both sides keep them).
///
/// ```
/// let mut h = capwire::Headers::default();
/// h.0.insert("x-a", "1".parse().unwrap());
/// assert_eq!(capwire::to_value(&h).unwrap(), capwire::Value::Headers(vec![("x-a".into(), "1".into())]));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Headers(pub http::HeaderMap);

/// A URL, `URL` in JavaScript, by its `href`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Url(pub String);

impl Url {
    /// The `href`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An HTTP request, `Request` in JavaScript. Its body streams.
///
/// Convert from and to `http::Request<capwire::Body>` with `From`/`Into`. Sent to a
/// JavaScript peer, the URL must be absolute: a request converted from one with a path
/// alone takes its scheme-less authority from the `Host` header.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method.
    pub method: http::Method,
    /// The absolute URL.
    pub url: String,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body; `None` for none (a `GET`, say).
    pub body: Option<ReadableStream>,
}

/// An HTTP response, `Response` in JavaScript. Its body streams.
///
/// Convert from and to `http::Response<capwire::Body>` with `From`/`Into`.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status.
    pub status: http::StatusCode,
    /// The status text (`statusText`), empty unless set.
    pub status_text: String,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body; `None` for none.
    pub body: Option<ReadableStream>,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: http::Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: http::HeaderMap::new(),
            body: None,
        }
    }

    /// The same request with `body`.
    pub fn with_body(mut self, body: impl Into<ReadableStream>) -> Request {
        self.body = Some(body.into());
        self
    }
}

impl Response {
    /// A response with `status` and no headers or body.
    pub fn new(status: http::StatusCode) -> Response {
        Response {
            status,
            status_text: String::new(),
            headers: http::HeaderMap::new(),
            body: None,
        }
    }

    /// The same response with `body`.
    pub fn with_body(mut self, body: impl Into<ReadableStream>) -> Response {
        self.body = Some(body.into());
        self
    }
}

fn same_body(a: &Option<ReadableStream>, b: &Option<ReadableStream>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same(b),
        _ => false,
    }
}

impl PartialEq for Request {
    /// Same method, URL and headers, and the same body stream.
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method
            && self.url == other.url
            && self.headers == other.headers
            && same_body(&self.body, &other.body)
    }
}

impl PartialEq for Response {
    /// Same status, status text and headers, and the same body stream.
    fn eq(&self, other: &Self) -> bool {
        self.status == other.status
            && self.status_text == other.status_text
            && self.headers == other.headers
            && same_body(&self.body, &other.body)
    }
}

/// An `http` body as an optional stream: `None` when it is known to be empty.
fn body_of(body: crate::Body) -> Option<ReadableStream> {
    use axum::body::HttpBody;
    (!body.is_end_stream()).then(|| ReadableStream::from(body))
}

fn http_body(body: Option<ReadableStream>) -> crate::Body {
    body.map_or_else(crate::Body::empty, crate::Body::from)
}

impl From<http::Request<crate::Body>> for Request {
    fn from(request: http::Request<crate::Body>) -> Self {
        let (parts, body) = request.into_parts();
        let url = match (parts.uri.scheme(), parts.headers.get(http::header::HOST)) {
            (None, Some(host)) => format!(
                "http://{}{}",
                String::from_utf8_lossy(host.as_bytes()),
                parts.uri.path_and_query().map_or("/", |p| p.as_str())
            ),
            _ => parts.uri.to_string(),
        };
        Request {
            method: parts.method,
            url,
            headers: parts.headers,
            body: body_of(body),
        }
    }
}

impl From<Request> for http::Request<crate::Body> {
    /// The request as the `http` crate's. A URL that is not a valid URI becomes `/`.
    fn from(request: Request) -> Self {
        let mut out = http::Request::new(http_body(request.body));
        *out.method_mut() = request.method;
        *out.uri_mut() = request.url.parse().unwrap_or_default();
        *out.headers_mut() = request.headers;
        out
    }
}

impl From<http::Response<crate::Body>> for Response {
    fn from(response: http::Response<crate::Body>) -> Self {
        let (parts, body) = response.into_parts();
        Response {
            status: parts.status,
            status_text: String::new(),
            headers: parts.headers,
            body: body_of(body),
        }
    }
}

impl From<Response> for http::Response<crate::Body> {
    fn from(response: Response) -> Self {
        let mut out = http::Response::new(http_body(response.body));
        *out.status_mut() = response.status;
        *out.headers_mut() = response.headers;
        out
    }
}

// ---------------------------------------------------------------------------------------
// Wire forms

/// The headers as the wire carries them: each value a JavaScript byte string, one
/// character U+0000–U+00FF per byte (the Fetch standard's isomorphic decoding), so that
/// bytes that are not UTF-8 arrive as they were sent.
pub(crate) fn header_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.as_bytes().iter().map(|&b| char::from(b)).collect(),
            )
        })
        .collect()
}

fn pairs_json(headers: &http::HeaderMap) -> Json {
    Json::Array(
        header_pairs(headers)
            .into_iter()
            .map(|(k, v)| Json::Array(vec![Json::String(k), Json::String(v)]))
            .collect(),
    )
}

pub(crate) fn header_map(pairs: &[(String, String)]) -> Result<http::HeaderMap, RpcError> {
    let mut map = http::HeaderMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| RpcError::type_error(format!("invalid header name: {k:?}")))?;
        // A byte string, as JavaScript's `Headers` holds one: a byte per character.
        let bytes = v
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| {
                RpcError::type_error(format!(
                    "invalid value of header {k}: a character beyond U+00FF is not a byte"
                ))
            })?;
        let value = http::HeaderValue::from_bytes(&bytes)
            .map_err(|_| RpcError::type_error(format!("invalid value of header {k}")))?;
        map.append(name, value);
    }
    Ok(map)
}

fn init_headers(init: &Map<String, Json>) -> Result<http::HeaderMap, ProtocolError> {
    let pairs: Vec<(String, String)> = match init.get("headers") {
        Some(Json::Array(pairs)) => pairs
            .iter()
            .filter_map(|p| match p.as_array()?.as_slice() {
                [Json::String(k), Json::String(v)] => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    header_map(&pairs).map_err(|e| ProtocolError::Invalid(e.message().to_owned()))
}

/// A body as a peer may send it: a stream, text or bytes inline, or nothing.
fn received_body(body: Option<Value>) -> Result<Option<ReadableStream>, ProtocolError> {
    match body {
        None | Some(Value::Null | Value::Undefined) => Ok(None),
        Some(Value::Readable(r)) => Ok(Some(r)),
        Some(Value::String(s)) => Ok(Some(ReadableStream::from_bytes(s))),
        Some(Value::Bytes(b)) => Ok(Some(ReadableStream::from_bytes(b.data))),
        Some(other) => Err(ProtocolError::Invalid(format!(
            "a Request or Response body cannot be {}",
            other.type_name()
        ))),
    }
}

impl Request {
    pub(crate) fn to_expr(
        &self,
        body: impl FnOnce(&ReadableStream) -> Result<Expr, RpcError>,
    ) -> Result<Expr, RpcError> {
        let mut init = Map::new();
        if self.method != http::Method::GET {
            init.insert("method".into(), Json::String(self.method.to_string()));
        }
        if !self.headers.is_empty() {
            init.insert("headers".into(), pairs_json(&self.headers));
        }
        let body = match &self.body {
            Some(stream) => {
                init.insert("duplex".into(), Json::String("half".into()));
                Some(Box::new(body(stream)?))
            }
            None => None,
        };
        Ok(Expr::Request {
            url: self.url.clone(),
            body,
            init: Box::new(init),
        })
    }

    pub(crate) fn from_wire(
        url: String,
        body: Option<Value>,
        init: &Map<String, Json>,
    ) -> Result<Request, ProtocolError> {
        let method = match init.get("method") {
            Some(Json::String(m)) => http::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| ProtocolError::Invalid(format!("invalid method: {m:?}")))?,
            _ => http::Method::GET,
        };
        Ok(Request {
            method,
            url,
            headers: init_headers(init)?,
            body: received_body(body)?,
        })
    }
}

impl Response {
    pub(crate) fn to_expr(
        &self,
        body: impl FnOnce(&ReadableStream) -> Result<Expr, RpcError>,
    ) -> Result<Expr, RpcError> {
        let mut init = Map::new();
        if self.status != http::StatusCode::OK {
            init.insert("status".into(), Json::from(self.status.as_u16()));
        }
        if !self.status_text.is_empty() {
            init.insert("statusText".into(), Json::String(self.status_text.clone()));
        }
        if !self.headers.is_empty() {
            init.insert("headers".into(), pairs_json(&self.headers));
        }
        let body = match &self.body {
            Some(stream) => body(stream)?,
            None => Expr::Null,
        };
        Ok(Expr::Response {
            body: Box::new(body),
            init: Box::new(init),
        })
    }

    pub(crate) fn from_wire(
        body: Value,
        init: &Map<String, Json>,
    ) -> Result<Response, ProtocolError> {
        let status = match init.get("status") {
            None => http::StatusCode::OK,
            Some(s) => s
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .and_then(|s| http::StatusCode::from_u16(s).ok())
                .ok_or_else(|| ProtocolError::Invalid(format!("invalid status: {s}")))?,
        };
        Ok(Response {
            status,
            status_text: init
                .get("statusText")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned(),
            headers: init_headers(init)?,
            body: received_body(Some(body))?,
        })
    }
}

/// The value of `["blob", type, content]`: known once the content has arrived whole. One
/// larger than `limit` fails (and stops its stream).
pub(crate) fn received_blob(
    mime: String,
    content: Value,
    limit: usize,
) -> Result<Value, ProtocolError> {
    use futures::StreamExt;
    match content {
        Value::Readable(mut stream) => Ok(Value::from(crate::RpcPromise::<Value>::from_future(
            async move {
                let mut data = bytes::BytesMut::new();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    if data.len() + chunk.len() > limit {
                        return Err(RpcError::range(format!(
                            "a Blob larger than {limit} bytes was refused (limit max_blob_size)"
                        )));
                    }
                    data.extend_from_slice(&chunk);
                }
                Ok(Value::Blob(Blob {
                    data: data.freeze(),
                    mime,
                }))
            },
        ))),
        Value::Bytes(b) if b.data.len() > limit => Err(ProtocolError::Invalid(format!(
            "a Blob larger than {limit} bytes was refused (limit max_blob_size)"
        ))),
        Value::Bytes(b) => Ok(Value::Blob(Blob { data: b.data, mime })),
        other => Err(ProtocolError::Invalid(format!(
            "a Blob's content must be a stream, not {}",
            other.type_name()
        ))),
    }
}

macro_rules! via_value {
    ($($t:ty => $variant:ident $(($wrap:expr, $unwrap:expr))?, $what:literal);* $(;)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                crate::value::ser::serialize_special(&via_value!(@wrap self $(, $wrap)?; $variant), serializer)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                match crate::value::de::deserialize_value(deserializer)? {
                    Value::$variant(x) => via_value!(@unwrap x $(, $unwrap)?),
                    other => Err(serde::de::Error::custom(format!(
                        concat!("expected ", $what, ", found {}"),
                        other.type_name()
                    ))),
                }
            }
        }
    )*};
    (@wrap $self:ident; $variant:ident) => { Value::$variant(Box::new($self.clone())) };
    (@wrap $self:ident, $wrap:expr; $variant:ident) => { Value::$variant($wrap($self)) };
    (@unwrap $x:ident) => { Ok(*$x) };
    (@unwrap $x:ident, $unwrap:expr) => { $unwrap($x).map_err(serde::de::Error::custom) };
}

via_value! {
    Request => Request, "a Request";
    Response => Response, "a Response";
    Headers => Headers (|h: &Headers| header_pairs(&h.0), |p: Vec<(String, String)>| header_map(&p).map(Headers)), "headers";
    Url => Url (|u: &Url| u.0.clone(), |u| Ok::<_, RpcError>(Url(u))), "a URL";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_round_trip_as_bytes() {
        let mut map = http::HeaderMap::new();
        let bytes = [0x66, 0xFF, 0x80, 0x20, 0x7E];
        map.insert("x-bin", http::HeaderValue::from_bytes(&bytes).unwrap());
        map.insert(
            "x-utf8",
            http::HeaderValue::from_bytes("café".as_bytes()).unwrap(),
        );
        let pairs = header_pairs(&map);
        assert_eq!(pairs[0], ("x-bin".to_owned(), "f\u{ff}\u{80} ~".to_owned()));
        // UTF-8 bytes read as JavaScript reads them from an HTTP response: a byte each.
        assert_eq!(pairs[1].1, "caf\u{c3}\u{a9}");
        assert_eq!(header_map(&pairs).unwrap(), map);
        // A JavaScript byte string: "\u00e9" is the byte 0xE9.
        let from_js = header_map(&[("x-latin".into(), "\u{e9}".into())]).unwrap();
        assert_eq!(from_js["x-latin"].as_bytes(), [0xE9]);
        // JavaScript's `Headers` refuses a character that is not a byte; so does this.
        let e = header_map(&[("x".into(), "€".into())]).unwrap_err();
        assert!(e.message().contains("U+00FF"), "{e}");
    }
}
