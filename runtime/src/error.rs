//! Errors: the [`RpcError`] value that travels over the wire, and the [`ProtocolError`]
//! that ends a session.

use crate::value::{Object, Value};
use std::fmt;

/// An error as Cap'n Web carries it: a JavaScript error class name, a message, and
/// optionally a stack and extra properties.
///
/// A rejected call yields an `RpcError`; a served method returns one to reject.
///
/// ```
/// let e = capwire::RpcError::range("test error");
/// assert_eq!(e.name(), "RangeError");
/// assert_eq!(e.to_string(), "RangeError: test error");
/// ```
#[derive(Clone, PartialEq)]
pub struct RpcError(Box<ErrorInner>);

/// The name of the error a call that timed out rejects with (the name JavaScript gives
/// the error of `AbortSignal.timeout()`).
const TIMEOUT_ERROR: &str = "TimeoutError";

/// Boxed so that `Result<T, RpcError>` stays small on the success path.
#[derive(Debug, Clone, PartialEq)]
struct ErrorInner {
    name: String,
    message: String,
    stack: Option<String>,
    props: Option<Object>,
    origin: Origin,
}

/// Where an error came from, when this side made it for a reason of its own (the session
/// ending); it does not travel: a peer's error is always [`Origin::Raised`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Raised by code (application or runtime), here or on the peer.
    Raised,
    /// The session ended: the transport closed or failed.
    Disconnected,
    /// The session was aborted by the peer.
    Aborted,
    /// The peer broke the protocol, and the session ended.
    Protocol,
}

/// What kind of failure an [`RpcError`] is, to match on without reading its message.
///
/// ```
/// use capwire::{ErrorKind, RpcError};
/// let e = RpcError::range("no such item");
/// assert_eq!(e.kind(), ErrorKind::Remote { name: "RangeError".to_owned() });
/// assert_eq!(RpcError::timeout("late").kind(), ErrorKind::Timeout);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The session ended under the call: the transport closed or failed, the peer went
    /// away or stopped reading, or this side closed it.
    Disconnected,
    /// The peer aborted the session; the message carries the reason it sent.
    Aborted,
    /// The peer sent something the protocol does not allow, or went past a limit
    /// ([`Limits`](crate::Limits)), and this side ended the session.
    Protocol,
    /// The call did not settle within its timeout (a `TimeoutError`: see
    /// [`RpcError::is_timeout`]).
    Timeout,
    /// An error raised by the code that served the call (a method's `Err`, a panic, a
    /// JavaScript `throw`) or by the runtime for it (no such method, an argument that
    /// did not decode), with its JavaScript error name.
    Remote {
        /// The error's name: `"Error"`, `"TypeError"`, `"RangeError"`, or a type's name
        /// (a method's error type, see [`AppError`]).
        name: String,
    },
}

/// `RpcError { name: "RangeError", message: "no such item", props: {..} }`: the parts that
/// say what went wrong, not the box they are kept in.
impl fmt::Debug for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("RpcError");
        s.field("name", &self.0.name)
            .field("message", &self.0.message);
        if self.0.origin != Origin::Raised {
            s.field("kind", &self.kind());
        }
        if let Some(props) = &self.0.props {
            s.field("props", &PropsDebug(props));
        }
        if let Some(stack) = &self.0.stack {
            s.field("stack", stack);
        }
        s.finish()
    }
}

/// A value's properties as a map of their JSON-like forms.
struct PropsDebug<'a>(&'a Object);

impl fmt::Debug for PropsDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl RpcError {
    /// An error with the given class name (`"Error"`, `"TypeError"`, ...) and message.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        RpcError(Box::new(ErrorInner {
            name: name.into(),
            message: message.into(),
            stack: None,
            props: None,
            origin: Origin::Raised,
        }))
    }

    /// What kind of failure this is: the session's end, an abort, a protocol violation, a
    /// timeout, or an error raised by the code serving the call.
    ///
    /// ```
    /// # async fn demo(api: capwire::RpcStub) {
    /// use capwire::ErrorKind;
    /// match api.call("save", ()).await {
    ///     Ok(_) => {}
    ///     Err(e) => match e.kind() {
    ///         ErrorKind::Disconnected | ErrorKind::Aborted => eprintln!("reconnect: {e}"),
    ///         ErrorKind::Timeout => eprintln!("try again later"),
    ///         ErrorKind::Remote { name } if name == "RangeError" => eprintln!("bad input: {e}"),
    ///         _ => eprintln!("failed: {e}"),
    ///     },
    /// }
    /// # }
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self.0.origin {
            Origin::Disconnected => ErrorKind::Disconnected,
            Origin::Aborted => ErrorKind::Aborted,
            Origin::Protocol => ErrorKind::Protocol,
            Origin::Raised if self.is_timeout() => ErrorKind::Timeout,
            Origin::Raised => ErrorKind::Remote {
                name: self.0.name.clone(),
            },
        }
    }

    fn with_origin(mut self, origin: Origin) -> Self {
        self.0.origin = origin;
        self
    }

    /// A plain `Error`.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new("Error", message)
    }

    /// A `TypeError`.
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new("TypeError", message)
    }

    /// A `RangeError`.
    pub fn range(message: impl Into<String>) -> Self {
        Self::new("RangeError", message)
    }

    /// A `TimeoutError`: what a call that did not settle in time rejects with (see
    /// [`RpcPromise::with_timeout`](crate::RpcPromise::with_timeout) and
    /// [`Limits::max_call_duration`](crate::Limits::max_call_duration)).
    ///
    /// ```
    /// let e = capwire::RpcError::timeout("too slow");
    /// assert!(e.is_timeout());
    /// assert_eq!(e.to_string(), "TimeoutError: too slow");
    /// ```
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(TIMEOUT_ERROR, message)
    }

    /// `true` for a `TimeoutError`: a call of this side that timed out
    /// ([`RpcPromise::with_timeout`](crate::RpcPromise::with_timeout),
    /// [`RpcStub::with_timeout`](crate::RpcStub::with_timeout)), a call the peer stopped
    /// because it ran longer than its
    /// [`Limits::max_call_duration`](crate::Limits::max_call_duration), or any error a
    /// peer sent under that name (a JavaScript `AbortSignal.timeout()`'s, say).
    ///
    /// ```
    /// assert!(capwire::RpcError::new("TimeoutError", "late").is_timeout());
    /// assert!(!capwire::RpcError::error("late").is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.0.name == TIMEOUT_ERROR
    }

    /// The error class name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The stack trace, if the sender included one (capnweb redacts stacks by default).
    pub fn stack(&self) -> Option<&str> {
        self.0.stack.as_deref()
    }

    /// Extra properties carried with the error.
    pub fn props(&self) -> Option<&Object> {
        self.0.props.as_ref()
    }

    /// Sets the stack.
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        self.0.stack = Some(stack.into());
        self
    }

    /// Adds an extra property, sent in the error's `props`.
    pub fn with_prop(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0
            .props
            .get_or_insert_with(Object::new)
            .insert(key.into(), value.into());
        self
    }

    pub(crate) fn from_parts(
        name: String,
        message: String,
        stack: Option<String>,
        props: Option<Object>,
    ) -> Self {
        RpcError(Box::new(ErrorInner {
            name,
            message,
            stack,
            props,
            origin: Origin::Raised,
        }))
    }

    /// The error every pending call gets when its session ends.
    pub(crate) fn disconnected(reason: &str) -> Self {
        RpcError::error(format!("RPC session ended: {reason}")).with_origin(Origin::Disconnected)
    }

    /// The error a session ends with when this side ends it (closed, or its main stub
    /// disposed): a `Disconnected` one, with `message` as it is.
    pub(crate) fn ended(message: &str) -> Self {
        RpcError::error(message).with_origin(Origin::Disconnected)
    }

    /// The error a session ends with when its peer sent what the protocol forbids.
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        RpcError::type_error(message).with_origin(Origin::Protocol)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.name, self.0.message)
    }
}

impl std::error::Error for RpcError {}

impl From<ProtocolError> for RpcError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Session(e) => e,
            ProtocolError::PeerAborted(_) => {
                RpcError::error(e.to_string()).with_origin(Origin::Aborted)
            }
            other => RpcError::protocol(other.to_string()),
        }
    }
}

/// An I/O error as an `Error` with its message; one that carries an `RpcError` (a stream's
/// error read through `AsyncRead`) is that error again.
impl From<std::io::Error> for RpcError {
    fn from(e: std::io::Error) -> Self {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<RpcError>())
        {
            Some(inner) => inner.clone(),
            None => RpcError::error(e.to_string()),
        }
    }
}

/// An HTTP body's error; one that carries an `RpcError` (a body streamed from a
/// [`ReadableStream`](crate::ReadableStream)) is that error again.
impl From<axum::Error> for RpcError {
    fn from(e: axum::Error) -> Self {
        use std::error::Error as _;
        let mut source = e.source();
        while let Some(inner) = source {
            if let Some(rpc) = inner.downcast_ref::<RpcError>() {
                return rpc.clone();
            }
            source = inner.source();
        }
        RpcError::error(e.to_string())
    }
}

impl From<std::convert::Infallible> for RpcError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

/// A violation of the protocol by the peer, or a failure of the transport. It ends the
/// session: capwire sends `abort` with this error's text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The message text was not JSON.
    #[error("message is not valid JSON: {0}")]
    NotJson(String),
    /// A top-level message type capwire does not know.
    #[error("unknown message type: {0}")]
    UnknownMessage(String),
    /// A known message with the wrong shape.
    #[error("bad RPC message: {0}")]
    BadMessage(String),
    /// An array expression with an unknown or malformed tag.
    #[error("unknown special value: {0}")]
    UnknownSpecial(String),
    /// Some other invalid content.
    #[error("{0}")]
    Invalid(String),
    /// The message exceeded the size limit.
    #[error("message exceeds the maximum size of {limit} bytes (limit max_message_size)")]
    MessageTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The message nested deeper than the depth limit.
    #[error("message exceeds the maximum allowed depth of {limit} (limit max_depth)")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A bigint with too many digits.
    #[error("bigint exceeds the maximum length of {limit} digits (limit max_bigint_digits)")]
    BigIntTooLong {
        /// The limit.
        limit: usize,
    },
    /// The peer wrote more into streams than their readers have taken, past the limit.
    #[error(
        "the peer has more than {limit} bytes written into streams and not yet read (limit max_stream_buffer)"
    )]
    StreamBufferExceeded {
        /// The limit in bytes.
        limit: usize,
    },
    /// The peer made this session (or the server) hold more memory than a budget allows.
    #[error("the peer made this session hold more than {limit} bytes of memory (limit {name})")]
    OverBudget {
        /// The budget's name: `max_session_memory` or `max_memory`.
        name: &'static str,
        /// Its limit in bytes.
        limit: usize,
    },
    /// A reference to an export ID this side does not have.
    #[error("no such entry on exports table: {0}")]
    NoSuchExport(i64),
    /// A resolve or reject for an import ID this side does not have.
    #[error("no such entry on imports table: {0}")]
    NoSuchImport(i64),
    /// A release for more references than were handed out.
    #[error("refcount would go negative on export {id}: {have} < {released}")]
    OverRelease {
        /// The export ID.
        id: i64,
        /// References outstanding.
        have: u64,
        /// References the peer released.
        released: u64,
    },
    /// The peer aborted the session.
    #[error("peer aborted the session: {0}")]
    PeerAborted(RpcError),
    /// The transport failed or closed.
    #[error("transport closed: {0}")]
    Transport(String),
    /// The session ended with this error.
    #[error("{0}")]
    Session(RpcError),
}

/// An error type of yours that a method returns (`Result<T, MyError>`), and that travels
/// as itself: any type that is serde (`Serialize` and `Deserialize`) and a
/// `std::error::Error` is one, with nothing to implement.
///
/// On the wire it is a Cap'n Web error (`["error", name, message, null, props]`) whose
/// name is the type's name as the method's signature spells it (`MyError`), whose message
/// is its `Display`, and whose properties are its serde fields (a value that is not a
/// struct or map, or that has a field named `name`, `message` or `stack`, which an
/// `Error` keeps for itself, is the property `value`), plus `type`, the name again, unless a field
/// is called so (JavaScript's capnweb keeps only its own error classes' names, so a
/// JavaScript caller reads the name as `e.type`). A Rust caller of the typed client gets
/// it back as itself: the call's promise gives `Result<Result<T, MyError>, RpcError>`,
/// the outer error being the call's failure (the session's end, a timeout, a panic, ...).
/// An enum reads best in JavaScript internally tagged (`#[serde(tag = "kind")]`): the
/// variant is then `e.kind` and its fields are properties of the error.
///
/// ```
/// use capwire::{RpcError, Stub, TypedStub, rpc_target};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// #[serde(tag = "kind")]
/// pub enum KvError {
///     NotFound { key: String },
///     ReadOnly,
/// }
///
/// impl std::fmt::Display for KvError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         match self {
///             KvError::NotFound { key } => write!(f, "no value at {key}"),
///             KvError::ReadOnly => f.write_str("the store is read-only"),
///         }
///     }
/// }
///
/// impl std::error::Error for KvError {}
///
/// pub struct Store;
///
/// #[rpc_target]
/// impl Store {
///     pub fn get(&self, key: String) -> Result<String, KvError> {
///         Err(KvError::NotFound { key })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), RpcError> {
/// let store: Stub<Store> = TypedStub::local(Store);
/// // The outer `?` is the call's failure; the inner `Result` is the method's own.
/// match store.get("a").await? {
///     Ok(value) => println!("{value}"),
///     Err(KvError::NotFound { key }) => assert_eq!(key, "a"),
///     Err(other) => return Err(RpcError::error(other.to_string())),
/// }
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error type of an RPC method",
    label = "not `RpcError`, and not serde and `std::error::Error`",
    note = "a method's error is `RpcError`, `std::io::Error`, or a type of yours that is `serde::Serialize`, `serde::Deserialize` and `std::error::Error` (it travels as itself)"
)]
pub trait AppError:
    serde::Serialize + serde::de::DeserializeOwned + std::error::Error + Send + 'static
{
}

impl<E> AppError for E where
    E: serde::Serialize + serde::de::DeserializeOwned + std::error::Error + Send + 'static
{
}

/// The property that names an [`AppError`] for JavaScript, which keeps no other name.
const APP_ERROR_TYPE: &str = "type";

/// The property that holds an [`AppError`] that is not a struct or a map.
const APP_ERROR_VALUE: &str = "value";

impl RpcError {
    /// `error` as it travels: named `name`, its `Display` as the message, its serde fields
    /// as properties (see [`AppError`]).
    pub(crate) fn from_app<E: AppError>(name: &str, error: &E) -> RpcError {
        let mut e = RpcError::new(name, error.to_string());
        // A field named like an `Error`'s own properties could not be a property (the
        // receiver keeps its own `name`, `message` and `stack`, as capnweb does): such a
        // value travels whole, as `value`.
        let mut props = match crate::to_value(error) {
            Ok(Value::Object(fields))
                if !fields
                    .keys()
                    .any(|k| matches!(k.as_str(), "name" | "message" | "stack")) =>
            {
                *fields
            }
            Ok(value) => {
                let mut props = Object::new();
                props.insert(APP_ERROR_VALUE.to_owned(), value);
                props
            }
            // Not representable: the name and message still say what it was.
            Err(_) => Object::new(),
        };
        if !props.contains_key(APP_ERROR_TYPE) {
            props.insert(APP_ERROR_TYPE.to_owned(), Value::String(name.to_owned()));
        }
        e.0.props = Some(props);
        e
    }

    /// The [`AppError`] `E` this error carries, if it is one named `name` (an error a
    /// method with `Result<T, E>` rejected with), and its properties decode as `E`.
    pub(crate) fn to_app<E: AppError>(&self, name: &str) -> Option<E> {
        if self.0.origin != Origin::Raised || self.0.name != name {
            return None;
        }
        let props = self.0.props.clone().unwrap_or_default();
        let decode = |props: Object| crate::from_value::<E>(Value::Object(Box::new(props))).ok();
        // Only ours: the `type` added for JavaScript (or a struct field of that name).
        let without_type = |mut props: Object| {
            if props.get(APP_ERROR_TYPE) == Some(&Value::String(name.to_owned())) {
                props.shift_remove(APP_ERROR_TYPE);
            }
            props
        };
        if props
            .keys()
            .all(|k| k == APP_ERROR_VALUE || k == APP_ERROR_TYPE)
            && let Some(value) = props.get(APP_ERROR_VALUE)
            && let Ok(e) = crate::from_value::<E>(value.clone())
        {
            return Some(e);
        }
        decode(props.clone()).or_else(|| decode(without_type(props)))
    }
}
