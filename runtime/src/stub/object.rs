//! Local objects: what a stub points at when the object lives in this process.

use crate::error::RpcError;
use crate::value::Value;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// An HTTP body that can stream: what `fetch` handlers take and return.
pub type Body = axum::body::Body;

/// The future an HTTP `fetch` on a local object returns.
pub type FetchFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, RpcError>> + Send + 'static>>;

/// The future a call on a local object returns.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send + 'static>>;

/// An object that can be called over RPC.
///
/// This is the runtime's object-facing trait: a local object answers "call method `name`
/// with these arguments" and "read property `name`". `#[rpc_target]` and `#[entrypoint]`
/// implement it for you; implement it by hand for dynamic objects.
///
/// Only names the object chooses to answer are reachable. An unknown method should reject
/// with [`RpcError::not_a_function`], as capnweb's peers do; an unknown property reads as
/// `undefined`.
///
/// ```
/// use capwire::{CallFuture, RpcError, RpcObject, Value};
/// use std::sync::Arc;
///
/// struct Greeter;
///
/// impl RpcObject for Greeter {
///     fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
///         let result = match method {
///             "greet" => capwire::arg::<String>(&args, 0, "greet", "name").map(|n| format!("hello, {n}").into()),
///             other => Err(RpcError::not_a_function(other)),
///         };
///         Box::pin(std::future::ready(result))
///     }
/// }
///
/// let stub = capwire::RpcStub::new(Greeter);
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let hello = stub.call("greet", ("ada",)).await.unwrap();
/// assert_eq!(hello.as_str(), Some("hello, ada"));
/// # });
/// ```
pub trait RpcObject: Send + Sync + 'static {
    /// Calls the method `method` with positional arguments.
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture;

    /// [`RpcObject::call`] with the arguments as they arrived: `#[rpc_target]` reads them
    /// from the message's text straight into its parameters' types when they hold no
    /// capabilities. Not for implementing by hand: the default calls
    /// [`RpcObject::call`] with the arguments as values.
    #[doc(hidden)]
    fn call_args(self: Arc<Self>, method: &str, args: Args) -> Answer {
        match args.into_values() {
            Ok(values) => Answer::Later(self.call(method, values)),
            Err(e) => Answer::Now(Err(e)),
        }
    }

    /// Reads the property `name`. The default answers `undefined` for every name.
    fn get(self: Arc<Self>, name: &str) -> CallFuture {
        let _ = name;
        Box::pin(std::future::ready(Ok(Value::Undefined)))
    }

    /// Handles an HTTP request, as a Worker's `fetch` does. `#[entrypoint]` implements it
    /// when the entrypoint defines `fetch`; the default answers that there is none
    /// ([`RpcError::no_fetch`]).
    fn fetch(self: Arc<Self>, request: http::Request<Body>) -> FetchFuture {
        let _ = request;
        Box::pin(std::future::ready(Err(RpcError::no_fetch())))
    }

    /// Whether [`RpcObject::fetch`] handles HTTP (the default: no).
    fn handles_fetch(&self) -> bool {
        false
    }

    /// Calls the object itself as a function. The default rejects: objects are not
    /// functions unless they say so.
    fn call_self(self: Arc<Self>, args: Vec<Value>) -> CallFuture {
        let _ = args;
        Box::pin(std::future::ready(Err(RpcError::type_error(
            "RPC target is not a function.",
        ))))
    }
}

impl RpcError {
    /// The error of [`RpcObject::fetch`] on an object that handles no HTTP.
    pub fn no_fetch() -> Self {
        RpcError::type_error("this entrypoint has no fetch() handler")
    }

    /// The error capnweb's peers answer for a call of a name that is not a method:
    /// `TypeError: 'name' is not a function.`
    pub fn not_a_function(name: &str) -> Self {
        RpcError::type_error(format!("'{name}' is not a function."))
    }
}

/// Decodes positional argument `index` of `method` (called `name` in messages).
///
/// A missing argument reads as `undefined`, so `Option<T>` arguments may be left out. A
/// wrong type rejects with a `TypeError` naming the method and the argument.
///
/// ```
/// let args = vec![capwire::Value::from(2)];
/// let n: i64 = capwire::arg(&args, 0, "increment", "amount").unwrap();
/// assert_eq!(n, 2);
/// let missing: Option<i64> = capwire::arg(&args, 1, "increment", "step").unwrap();
/// assert_eq!(missing, None);
/// let err = capwire::arg::<String>(&args, 0, "increment", "amount").unwrap_err();
/// assert_eq!(err.name(), "TypeError");
/// ```
pub fn arg<T: DeserializeOwned>(
    args: &[Value],
    index: usize,
    method: &str,
    name: &str,
) -> Result<T, RpcError> {
    let value = args.get(index).cloned().unwrap_or(Value::Undefined);
    crate::from_value(value).map_err(|e| arg_error(method, index, name, &e))
}

/// A call's positional arguments: values, or (for a call whose arguments hold no
/// capability) the message's text and where each argument is in it, read into a
/// parameter's type without a [`Value`] in between (see `session::text`). What generated
/// code takes arguments from; not a public API.
#[doc(hidden)]
pub struct Args(ArgsInner);

/// What generated dispatch gives for a call: its result, when the method returned it at
/// once (a method that is not `async`: no future to allocate), or the future of it. Not a
/// public API.
#[doc(hidden)]
pub enum Answer {
    /// The result, known now.
    Now(Result<Value, RpcError>),
    /// The result to come.
    Later(CallFuture),
}

impl Answer {
    /// The answer as a future, for [`RpcObject::call`].
    pub fn into_future(self) -> CallFuture {
        match self {
            Answer::Now(result) => Box::pin(std::future::ready(result)),
            Answer::Later(fut) => fut,
        }
    }
}

enum ArgsInner {
    Values(Vec<Value>),
    Text {
        text: crate::wire::Frame<'static>,
        ranges: crate::wire::ArgRanges,
        limits: crate::limits::Limits,
    },
}

impl From<Vec<Value>> for Args {
    fn from(values: Vec<Value>) -> Self {
        Args(ArgsInner::Values(values))
    }
}

impl Args {
    /// Arguments that are values.
    pub fn values(values: Vec<Value>) -> Self {
        Args(ArgsInner::Values(values))
    }

    /// Arguments at `ranges` of `text`, each checked to be plain data.
    pub(crate) fn text(
        text: crate::wire::Frame<'static>,
        ranges: crate::wire::ArgRanges,
        limits: crate::limits::Limits,
    ) -> Self {
        Args(ArgsInner::Text {
            text,
            ranges,
            limits,
        })
    }

    /// Decodes argument `index` of `method` (called `name` in messages) as `T`, as
    /// [`arg`] does, moving it out if it is a value. A missing argument reads as
    /// `undefined`.
    pub fn take<T: DeserializeOwned>(
        &mut self,
        index: usize,
        method: &str,
        name: &str,
    ) -> Result<T, RpcError> {
        match &mut self.0 {
            ArgsInner::Values(values) => {
                let value = values
                    .get_mut(index)
                    .map(std::mem::take)
                    .unwrap_or_default();
                crate::from_value(value).map_err(|e| arg_error(method, index, name, &e))
            }
            ArgsInner::Text {
                text,
                ranges,
                limits,
            } => match ranges.get(index) {
                Some(range) => crate::session::text::from_text(&text[range.clone()], limits)
                    .map_err(|e| {
                        arg_error(method, index, name, &RpcError::type_error(e.to_string()))
                    }),
                None => crate::from_value(Value::Undefined)
                    .map_err(|e| arg_error(method, index, name, &e)),
            },
        }
    }

    /// The arguments as values.
    pub fn into_values(self) -> Result<Vec<Value>, RpcError> {
        match self.0 {
            ArgsInner::Values(values) => Ok(values),
            ArgsInner::Text {
                text,
                ranges,
                limits,
            } => ranges
                .into_iter()
                .map(|r| {
                    crate::session::text::value_of(&text[r], &limits)
                        .map_err(|e| RpcError::type_error(e.to_string()))
                })
                .collect(),
        }
    }
}

/// The error of an argument that does not decode as its type.
pub(crate) fn arg_error(method: &str, index: usize, name: &str, e: &RpcError) -> RpcError {
    RpcError::type_error(format!(
        "{method}: argument {index} ({name}): {}",
        e.message()
    ))
}
