//! The dynamic [`Value`]: anything Cap'n Web can carry, capabilities included.
//!
//! It owns the value model and its bridges to the rest of Rust: `ser` ([`to_value`]: any
//! `Serialize` type to a [`Value`]), `de` ([`from_value`]: a [`Value`] to any
//! `Deserialize` type) and `web` (the web platform types a value can be: `Blob`,
//! `Headers`, `Request`, `Response`, `URL`). A value can hold stubs and streams, so it
//! names [`crate::stub`] and [`crate::stream`]; it knows nothing of sessions or the wire.
//!
//! [`to_value`]: crate::to_value
//! [`from_value`]: crate::from_value

pub(crate) mod de;
pub(crate) mod ser;
pub(crate) mod web;

use crate::error::RpcError;
use crate::stream::{ReadableStream, WritableStream};
use crate::stub::{RpcPromise, RpcStub};
use crate::value::web::{Blob, Request, Response};
use std::fmt;

/// A JavaScript object's own properties, in insertion order.
pub type Object = indexmap::IndexMap<String, Value>;

/// Any value Cap'n Web can carry.
///
/// Plain data maps to JSON; the rest (`undefined`, non-finite numbers, bigints, dates,
/// bytes, errors, URLs, headers, stubs and promises) maps to the protocol's tagged forms.
/// Convert to and from ordinary serde types with [`to_value`](crate::to_value) and
/// [`from_value`](crate::from_value).
///
/// ```
/// use capwire::Value;
/// let v = Value::from(vec![1, 2, 3]);
/// assert_eq!(v, Value::Array(vec![1.into(), 2.into(), 3.into()]));
/// assert_eq!(Value::from("hi").as_str(), Some("hi"));
/// ```
#[derive(Clone, Default)]
pub enum Value {
    /// `undefined`.
    #[default]
    Undefined,
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A JavaScript number (any `f64`, non-finite ones included).
    Number(f64),
    /// A JavaScript `bigint`.
    BigInt(BigInt),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// A plain object (boxed: a value is the size of its largest kind, and an array of a
    /// million numbers should not pay for a map's inline size in each).
    Object(Box<Object>),
    /// A `Date`.
    Date(Date),
    /// A byte container (`Uint8Array` unless another type is named).
    Bytes(Bytes),
    /// An `Error` value (as data, not a rejection).
    Error(RpcError),
    /// A `URL`, by its `href`.
    Url(String),
    /// A `Headers` object, as name/value pairs.
    Headers(Vec<(String, String)>),
    /// A stub: a reference to an object that lives elsewhere (or here).
    Stub(RpcStub),
    /// A promise: a reference to a value not yet known (boxed, as [`Value::Object`] is).
    Promise(Box<RpcPromise>),
    /// A `ReadableStream` of bytes (moved when sent).
    Readable(ReadableStream),
    /// A `WritableStream` of bytes (moved when sent).
    Writable(WritableStream),
    /// A `Blob`.
    Blob(Blob),
    /// A `Request`.
    Request(Box<Request>),
    /// A `Response`.
    Response(Box<Response>),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The number as an `i64`, if this is an integral number or bigint that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) if n.fract() == 0.0 && n.abs() <= crate::wire::MAX_SAFE_INTEGER => {
                Some(*n as i64)
            }
            Value::BigInt(b) => b.to_i128().and_then(|i| i64::try_from(i).ok()),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The properties, if this is an object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The stub, if this is one.
    pub fn as_stub(&self) -> Option<&RpcStub> {
        match self {
            Value::Stub(s) => Some(s),
            _ => None,
        }
    }

    /// `true` for `null` and `undefined`.
    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Null | Value::Undefined)
    }

    /// The property `key` of an object, or the element `key` of an array.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(o) => o.get(key),
            Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
    }

    /// Builds an object from key/value pairs.
    ///
    /// ```
    /// let v = capwire::Value::object([("id", 3.into()), ("name", "user3".into())]);
    /// assert_eq!(v.get("id"), Some(&capwire::Value::from(3)));
    /// ```
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(Box::new(
            pairs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        ))
    }

    /// `true` if the value holds a stub or promise anywhere inside.
    pub fn has_capabilities(&self) -> bool {
        match self {
            Value::Stub(_) | Value::Promise(_) | Value::Readable(_) | Value::Writable(_) => true,
            Value::Request(r) => r.body.is_some(),
            Value::Response(r) => r.body.is_some(),
            Value::Array(a) => a.iter().any(Value::has_capabilities),
            Value::Object(o) => o.values().any(Value::has_capabilities),
            Value::Error(e) => e
                .props()
                .is_some_and(|p| p.values().any(Value::has_capabilities)),
            _ => false,
        }
    }

    /// `true` if a promise sits anywhere inside (where a received value must be resolved
    /// before the application sees it).
    pub(crate) fn has_promises(&self) -> bool {
        match self {
            Value::Promise(_) => true,
            Value::Array(a) => a.iter().any(Value::has_promises),
            Value::Object(o) => o.values().any(Value::has_promises),
            _ => false,
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::BigInt(_) => "a bigint",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
            Value::Date(_) => "a date",
            Value::Bytes(_) => "bytes",
            Value::Error(_) => "an error",
            Value::Url(_) => "a URL",
            Value::Headers(_) => "headers",
            Value::Stub(_) => "a stub",
            Value::Promise(_) => "a promise",
            Value::Readable(_) => "a ReadableStream",
            Value::Writable(_) => "a WritableStream",
            Value::Blob(_) => "a Blob",
            Value::Request(_) => "a Request",
            Value::Response(_) => "a Response",
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Undefined => f.write_str("undefined"),
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::BigInt(b) => write!(f, "{}n", b.0),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Array(a) => f.debug_list().entries(a).finish(),
            Value::Object(o) => f.debug_map().entries(o.iter()).finish(),
            Value::Date(d) => write!(f, "Date({})", d.0),
            Value::Bytes(b) => write!(f, "Bytes({:?}, {:?})", b.data, b.kind),
            Value::Error(e) => write!(f, "Error({e})"),
            Value::Url(u) => write!(f, "URL({u})"),
            Value::Headers(h) => write!(f, "Headers({h:?})"),
            Value::Stub(s) => write!(f, "{s:?}"),
            Value::Promise(p) => write!(f, "{p:?}"),
            Value::Readable(r) => write!(f, "{r:?}"),
            Value::Writable(w) => write!(f, "{w:?}"),
            Value::Blob(b) => write!(f, "Blob({:?}, {} bytes)", b.mime_type(), b.len()),
            Value::Request(r) => write!(f, "Request({} {})", r.method, r.url),
            Value::Response(r) => write!(f, "Response({})", r.status),
        }
    }
}

/// Structural equality. `NaN` equals `NaN` here (unlike `f64`), so that round-trip checks
/// work; stubs and promises compare equal when they refer to the same target.
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Value::BigInt(a), Value::BigInt(b)) => a == b,
            (Value::String(a), Value::String(b)) | (Value::Url(a), Value::Url(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            (Value::Date(a), Value::Date(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Error(a), Value::Error(b)) => a == b,
            (Value::Headers(a), Value::Headers(b)) => a == b,
            (Value::Stub(a), Value::Stub(b)) => a.same_target(b),
            (Value::Promise(a), Value::Promise(b)) => a.same_target(b),
            (Value::Readable(a), Value::Readable(b)) => a.same(b),
            (Value::Writable(a), Value::Writable(b)) => a.same(b),
            (Value::Blob(a), Value::Blob(b)) => a == b,
            (Value::Request(a), Value::Request(b)) => a == b,
            (Value::Response(a), Value::Response(b)) => a == b,
            _ => false,
        }
    }
}

/// A JavaScript `bigint`, held as its canonical decimal text.
///
/// ```
/// let b = capwire::BigInt::from(u64::MAX);
/// assert_eq!(b.to_string(), "18446744073709551615");
/// assert_eq!(b.to_i128(), Some(u64::MAX as i128));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BigInt(String);

impl BigInt {
    /// Parses decimal text (an optional `-`, then digits), as JavaScript's `BigInt()` does.
    pub fn parse(text: &str) -> Result<BigInt, RpcError> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RpcError::new(
                "SyntaxError",
                format!("Cannot convert {text} to a BigInt"),
            ));
        }
        let trimmed = digits.trim_start_matches('0');
        let canonical = match (trimmed.is_empty(), text.starts_with('-')) {
            (true, _) => "0".to_owned(),
            (false, true) => format!("-{trimmed}"),
            (false, false) => trimmed.to_owned(),
        };
        Ok(BigInt(canonical))
    }

    /// The value as an `i128`, if it fits.
    pub fn to_i128(&self) -> Option<i128> {
        self.0.parse().ok()
    }

    /// The value as a `u128`, if it fits.
    pub fn to_u128(&self) -> Option<u128> {
        self.0.parse().ok()
    }

    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! bigint_from {
    ($($t:ty),*) => {$(
        impl From<$t> for BigInt {
            fn from(v: $t) -> Self {
                BigInt(v.to_string())
            }
        }
    )*};
}
bigint_from!(i64, u64, i128, u128);

/// A JavaScript `Date`: milliseconds since the Unix epoch (`NaN` for an invalid date).
///
/// ```
/// let d = capwire::Date::from_millis(1749342170815.0);
/// assert_eq!(d.millis(), 1749342170815.0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Date(f64);

impl Date {
    /// A date at `ms` milliseconds since the epoch.
    pub fn from_millis(ms: f64) -> Date {
        Date(ms)
    }

    /// Milliseconds since the epoch; `NaN` for an invalid date.
    pub fn millis(&self) -> f64 {
        self.0
    }

    /// The current time.
    pub fn now() -> Date {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Date(d.as_millis() as f64)
    }
}

impl PartialEq for Date {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || (self.0.is_nan() && other.0.is_nan())
    }
}

impl From<std::time::SystemTime> for Date {
    fn from(t: std::time::SystemTime) -> Self {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Date(d.as_secs_f64() * 1000.0),
            Err(e) => Date(-e.duration().as_secs_f64() * 1000.0),
        }
    }
}

/// A byte container: `Uint8Array` by default, or another typed array named by `kind`.
///
/// ```
/// let b = capwire::Bytes::from(vec![1u8, 2, 3]);
/// assert_eq!(&b.data[..], &[1, 2, 3]);
/// assert_eq!(b.kind, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes {
    /// The bytes (little-endian for multi-byte element types).
    pub data: bytes::Bytes,
    /// The JavaScript container type (`"Uint16Array"`, `"ArrayBuffer"`, ...); `None` is a
    /// plain `Uint8Array`.
    pub kind: Option<String>,
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes {
            data: v.into(),
            kind: None,
        }
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes {
            data: bytes::Bytes::copy_from_slice(v),
            kind: None,
        }
    }
}

impl From<bytes::Bytes> for Bytes {
    fn from(data: bytes::Bytes) -> Self {
        Bytes { data, kind: None }
    }
}

macro_rules! value_from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Number(v as f64)
            }
        }
    )*};
}
value_from_number!(i8, i16, i32, u8, u16, u32, f32, f64);

macro_rules! value_from_wide_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            /// Integers a JavaScript number cannot hold exactly become a `bigint`.
            fn from(v: $t) -> Self {
                let f = v as f64;
                if f.abs() <= crate::wire::MAX_SAFE_INTEGER {
                    Value::Number(f)
                } else {
                    Value::BigInt(BigInt::from(v))
                }
            }
        }
    )*};
}
value_from_wide_int!(i64, u64, i128, u128);

impl From<isize> for Value {
    fn from(v: isize) -> Self {
        Value::from(v as i64)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::from(v as u64)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}

impl From<()> for Value {
    fn from((): ()) -> Self {
        Value::Undefined
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

impl From<Object> for Value {
    fn from(v: Object) -> Self {
        Value::Object(Box::new(v))
    }
}

impl From<BigInt> for Value {
    fn from(v: BigInt) -> Self {
        Value::BigInt(v)
    }
}

impl From<Date> for Value {
    fn from(v: Date) -> Self {
        Value::Date(v)
    }
}

impl From<Bytes> for Value {
    fn from(v: Bytes) -> Self {
        Value::Bytes(v)
    }
}

impl From<RpcError> for Value {
    fn from(v: RpcError) -> Self {
        Value::Error(v)
    }
}

impl From<RpcStub> for Value {
    fn from(v: RpcStub) -> Self {
        Value::Stub(v)
    }
}

impl<T> From<RpcPromise<T>> for Value {
    fn from(v: RpcPromise<T>) -> Self {
        Value::Promise(Box::new(v.untyped()))
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Value::from(i),
                (None, Some(u)) => Value::from(u),
                _ => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => Value::Object(Box::new(
                o.into_iter().map(|(k, v)| (k, Value::from(v))).collect(),
            )),
        }
    }
}

static UNDEFINED: Value = Value::Undefined;

impl std::ops::Index<&str> for Value {
    type Output = Value;

    /// The property `key` of an object (or element of an array), `undefined` when absent,
    /// as JavaScript reads it.
    ///
    /// ```
    /// let v = capwire::deserialize(r#"{"a":{"b":[[1,2]]}}"#).unwrap();
    /// assert_eq!(v["a"]["b"][1].as_f64(), Some(2.0));
    /// assert!(v["missing"]["deeper"].is_nullish());
    /// ```
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&UNDEFINED)
    }
}

impl std::ops::Index<usize> for Value {
    type Output = Value;

    /// Element `index` of an array; `undefined` when absent or not an array.
    fn index(&self, index: usize) -> &Value {
        self.as_array()
            .and_then(|a| a.get(index))
            .unwrap_or(&UNDEFINED)
    }
}

/// Why [`count_nodes`] stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Overrun {
    /// More than the given number of nodes.
    Nodes,
    /// Nested deeper than the given depth.
    Depth,
}

/// The number of nodes of `value` (itself, and every element, property and error property
/// inside it, recursively, with every 64 bytes of text or bytes counted as one more),
/// walked without recursion; stops as soon as there are more than
/// `max_nodes` or a node lies deeper than `max_depth`.
pub(crate) fn count_nodes(
    value: &Value,
    max_nodes: usize,
    max_depth: usize,
) -> Result<usize, Overrun> {
    let mut nodes = 0usize;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        nodes += 1;
        if nodes > max_nodes {
            return Err(Overrun::Nodes);
        }
        if depth >= max_depth {
            return Err(Overrun::Depth);
        }
        match v {
            // Text and bytes are copied too: every 64 bytes count as one more node.
            Value::String(t) => nodes += t.len() / 64,
            Value::Bytes(b) => nodes += b.data.len() / 64,
            Value::Array(a) => stack.extend(a.iter().map(|v| (v, depth + 1))),
            Value::Object(o) => stack.extend(o.values().map(|v| (v, depth + 1))),
            Value::Error(e) => {
                if let Some(p) = e.props() {
                    stack.extend(p.values().map(|v| (v, depth + 1)));
                }
            }
            _ => {}
        }
    }
    Ok(nodes)
}
