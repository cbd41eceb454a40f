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
}

impl fmt::Debug for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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
        }))
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
        }))
    }

    /// The error every pending call gets when its session ends.
    pub(crate) fn disconnected(reason: &str) -> Self {
        RpcError::error(format!("RPC session ended: {reason}"))
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
            other => RpcError::type_error(other.to_string()),
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
