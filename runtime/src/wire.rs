//! The Cap'n Web wire format: top-level messages and expressions, parsed from JSON text
//! into typed Rust and encoded back exactly as the `capnweb` package encodes them.
//!
//! This layer knows nothing about sessions: an [`Expr`] is a syntax tree. Evaluating it
//! (turning `["export", -1]` into a stub, say) is the session's job.

use crate::error::ProtocolError;
use crate::json::Json;
use crate::limits::Limits;
use std::borrow::Cow;

/// One element of a property path: a property name or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathKey {
    /// A property name.
    Name(String),
    /// An array index.
    Index(u64),
}

impl PathKey {
    /// The key as a string, as JavaScript would see it.
    pub fn as_name(&self) -> std::borrow::Cow<'_, str> {
        match self {
            PathKey::Name(s) => std::borrow::Cow::Borrowed(s),
            PathKey::Index(i) => std::borrow::Cow::Owned(i.to_string()),
        }
    }
}

impl From<&str> for PathKey {
    fn from(s: &str) -> Self {
        PathKey::Name(s.to_owned())
    }
}

impl From<String> for PathKey {
    fn from(s: String) -> Self {
        PathKey::Name(s)
    }
}

impl From<u64> for PathKey {
    fn from(i: u64) -> Self {
        PathKey::Index(i)
    }
}

impl From<usize> for PathKey {
    fn from(i: usize) -> Self {
        PathKey::Index(i as u64)
    }
}

impl std::fmt::Display for PathKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_name())
    }
}

/// A capture of a `remap` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Capture {
    /// `["import", id]`: an entry of the sender's import table.
    Import(i64),
    /// `["export", id]`: an entry of the sender's export table.
    Export(i64),
}

/// The byte container types a `bytes` expression may name.
pub const BYTE_CONTAINER_TYPES: [&str; 13] = [
    "ArrayBuffer",
    "DataView",
    "Int8Array",
    "Uint8Array",
    "Uint8ClampedArray",
    "Int16Array",
    "Uint16Array",
    "Int32Array",
    "Uint32Array",
    "BigInt64Array",
    "BigUint64Array",
    "Float32Array",
    "Float64Array",
];

fn element_size(kind: &str) -> usize {
    match kind {
        "Int16Array" | "Uint16Array" => 2,
        "Int32Array" | "Uint32Array" | "Float32Array" => 4,
        "BigInt64Array" | "BigUint64Array" | "Float64Array" => 8,
        _ => 1,
    }
}

/// A Cap'n Web expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// JSON `null`.
    Null,
    /// JSON `true` / `false`.
    Bool(bool),
    /// A finite JSON number.
    Number(f64),
    /// A JSON string.
    String(String),
    /// `[[...]]`: an array whose elements are expressions.
    Array(Vec<Expr>),
    /// A JSON object whose values are expressions.
    Object(Vec<(String, Expr)>),
    /// `["undefined"]`.
    Undefined,
    /// `["inf"]`.
    Inf,
    /// `["-inf"]`.
    NegInf,
    /// `["nan"]`.
    NaN,
    /// `["bigint", decimal]`.
    BigInt(String),
    /// `["date", ms]`; `None` is an invalid date (`null` on the wire).
    Date(Option<f64>),
    /// `["bytes", base64]` or `["bytes", base64, type]`.
    Bytes {
        /// The decoded bytes.
        data: Vec<u8>,
        /// The byte container type, when the sender named one.
        kind: Option<String>,
    },
    /// `["error", type, message, stack?, props?]`.
    Error {
        /// The error class name, e.g. `TypeError`.
        name: String,
        /// The message.
        message: String,
        /// The stack, when the sender included one.
        stack: Option<String>,
        /// Extra properties.
        props: Option<Vec<(String, Expr)>>,
    },
    /// `["import", id, path?, args?]`.
    Import {
        /// The sender's import ID.
        id: i64,
        /// Property path.
        path: Option<Vec<PathKey>>,
        /// Call arguments.
        args: Option<Vec<Expr>>,
    },
    /// `["pipeline", id, path?, args?]`.
    Pipeline {
        /// The sender's import ID.
        id: i64,
        /// Property path.
        path: Option<Vec<PathKey>>,
        /// Call arguments.
        args: Option<Vec<Expr>>,
    },
    /// `["export", id]`.
    Export(i64),
    /// `["promise", id]`.
    Promise(i64),
    /// `["remap", id, path, captures, instructions]`.
    Remap {
        /// The sender's import ID.
        id: i64,
        /// Property path.
        path: Vec<PathKey>,
        /// Captured stubs.
        captures: Vec<Capture>,
        /// Mapper instructions.
        instructions: Vec<Expr>,
    },
    /// `["readable", id]`.
    Readable(i64),
    /// `["writable", id]`.
    Writable(i64),
    /// `["url", href]`.
    Url(String),
    /// `["headers", pairs]`.
    Headers(Vec<(String, String)>),
    /// `["request", url, init]`.
    Request {
        /// The request URL.
        url: String,
        /// The body expression, if any.
        body: Option<Box<Expr>>,
        /// The other properties of `init`, kept as plain JSON.
        init: serde_json::Map<String, serde_json::Value>,
    },
    /// `["response", body, init]`.
    Response {
        /// The body expression.
        body: Box<Expr>,
        /// `init`, kept as plain JSON.
        init: serde_json::Map<String, serde_json::Value>,
    },
    /// `["blob", type, readable]`.
    Blob {
        /// The MIME type.
        mime: String,
        /// The expression of the content stream.
        content: Box<Expr>,
    },
}

/// A top-level Cap'n Web message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `["push", expr]`.
    Push(Expr),
    /// `["pull", importId]`.
    Pull(i64),
    /// `["resolve", exportId, expr]`.
    Resolve(i64, Expr),
    /// `["reject", exportId, expr]`.
    Reject(i64, Expr),
    /// `["release", importId, refcount]`.
    Release(i64, u64),
    /// `["abort", expr]`.
    Abort(Expr),
    /// `["stream", expr]`.
    Stream(Expr),
    /// `["pipe"]`.
    Pipe,
}

/// Largest integer a JavaScript number holds exactly.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn bad(msg: &Json) -> ProtocolError {
    ProtocolError::BadMessage(truncate(&msg.to_string()))
}

pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The deepest bracket nesting in `text`, outside of strings; stops counting past `cap`.
fn json_nesting_exceeds(text: &str, cap: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > cap {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses JSON text under the size and depth limits.
fn parse_json<'a>(text: &'a str, limits: &Limits) -> Result<Json<'a>, ProtocolError> {
    if text.len() > limits.max_message_size {
        return Err(ProtocolError::MessageTooLarge {
            limit: limits.max_message_size,
        });
    }
    // Each expression level is at most two JSON levels (`[[...]]`), plus the message's own
    // array and a call's argument list. Anything deeper cannot be valid, and refusing it
    // before parsing keeps the parser's recursion bounded.
    if json_nesting_exceeds(text, limits.max_depth.saturating_mul(2).saturating_add(4)) {
        return Err(ProtocolError::TooDeep {
            limit: limits.max_depth,
        });
    }
    Json::parse(text).map_err(ProtocolError::NotJson)
}

impl Message {
    /// Parses one message from its JSON text, enforcing `limits`.
    pub fn parse(text: &str, limits: &Limits) -> Result<Message, ProtocolError> {
        if text.len() <= limits.max_message_size
            && let Some(write) = parse_stream_write(text)
        {
            return Ok(write);
        }
        Message::from_tree(&parse_json(text, limits)?, limits)
    }

    /// The text of `["stream",["pipeline",id,["write"],[["bytes",b64]]]]`, the message
    /// that carries a chunk of a byte stream, written straight from the bytes.
    pub fn stream_write_text(id: i64, data: &[u8]) -> String {
        const HEAD: &str = r#"["stream",["pipeline","#;
        const MIDDLE: &str = r#",["write"],[["bytes",""#;
        const TAIL: &str = r#""]]]]"#;
        let mut text = String::with_capacity(
            HEAD.len() + 20 + MIDDLE.len() + data.len().div_ceil(3) * 4 + TAIL.len(),
        );
        text.push_str(HEAD);
        text.push_str(&id.to_string());
        text.push_str(MIDDLE);
        base64_simd::STANDARD_NO_PAD.encode_append(data, &mut text);
        text.push_str(TAIL);
        text
    }

    /// Converts a parsed JSON value into a message.
    pub fn from_json(json: &serde_json::Value, limits: &Limits) -> Result<Message, ProtocolError> {
        Message::from_tree(&Json::from_serde(json), limits)
    }

    fn from_tree(json: &Json<'_>, limits: &Limits) -> Result<Message, ProtocolError> {
        let arr = json.as_array().ok_or_else(|| bad(json))?;
        let kind = arr
            .first()
            .and_then(Json::as_str)
            .ok_or_else(|| bad(json))?;
        let p = Parser { limits };
        let int = |i: usize| arr.get(i).and_then(as_id).ok_or_else(|| bad(json));
        let msg = match kind {
            "push" if arr.len() == 2 => Message::Push(p.expr(&arr[1], 0)?),
            "stream" if arr.len() == 2 => Message::Stream(p.expr(&arr[1], 0)?),
            "pull" if arr.len() == 2 => Message::Pull(int(1)?),
            "resolve" if arr.len() == 3 => Message::Resolve(int(1)?, p.expr(&arr[2], 0)?),
            "reject" if arr.len() == 3 => Message::Reject(int(1)?, p.expr(&arr[2], 0)?),
            "release" if arr.len() == 3 => {
                let count = arr[2]
                    .as_u64()
                    .or_else(|| {
                        arr[2]
                            .as_f64()
                            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                            .map(|f| f as u64)
                    })
                    .ok_or_else(|| bad(json))?;
                Message::Release(int(1)?, count)
            }
            "abort" if arr.len() == 2 => Message::Abort(p.expr(&arr[1], 0)?),
            "pipe" if arr.len() == 1 => Message::Pipe,
            "push" | "stream" | "pull" | "resolve" | "reject" | "release" | "abort" | "pipe" => {
                return Err(bad(json));
            }
            other => return Err(ProtocolError::UnknownMessage(truncate(other))),
        };
        Ok(msg)
    }

    /// Encodes the message as capnweb does, as a JSON tree.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Encodes the message as one line of JSON text, unless the text would be longer than
    /// `limit` bytes: then `None`, having written no more than the limit (a message over
    /// the limit is never built whole).
    pub fn to_text_within(&self, limit: usize) -> Option<String> {
        let mut out = Limited::new(limit);
        serde_json::to_writer(&mut out, self).ok()?;
        out.into_string()
    }

    /// Encodes the message as one line of JSON text.
    pub fn to_text(&self) -> String {
        // Straight to text, without building a JSON tree first. Serializing these types to
        // a string cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Expr {
    /// Parses one expression from JSON text, enforcing `limits`.
    pub fn parse(text: &str, limits: &Limits) -> Result<Expr, ProtocolError> {
        Parser { limits }.expr(&parse_json(text, limits)?, 0)
    }
}

/// A buffer that refuses to grow past `limit` bytes.
pub(crate) struct Limited {
    buf: Vec<u8>,
    limit: usize,
}

impl Limited {
    pub(crate) fn new(limit: usize) -> Limited {
        Limited {
            buf: Vec::new(),
            limit,
        }
    }

    /// The text written (only ever JSON, so UTF-8).
    pub(crate) fn into_string(self) -> Option<String> {
        String::from_utf8(self.buf).ok()
    }
}

impl std::io::Write for Limited {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            return Err(std::io::Error::other("over the message limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn as_id(v: &Json) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER)
        .map(|f| f as i64)
}

struct Parser<'a> {
    limits: &'a Limits,
}

impl Parser<'_> {
    fn expr(&self, json: &Json, depth: usize) -> Result<Expr, ProtocolError> {
        if depth >= self.limits.max_depth {
            return Err(ProtocolError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        Ok(match json {
            Json::Null => Expr::Null,
            Json::Bool(b) => Expr::Bool(*b),
            Json::Number(n, _) => Expr::Number(*n),
            Json::String(s) => Expr::String(s.to_string()),
            Json::Object(map) => Expr::Object(self.object(map, depth)?),
            Json::Array(arr) => self.special(json, arr, depth)?,
        })
    }

    fn object(
        &self,
        map: &[(Cow<'_, str>, Json<'_>)],
        depth: usize,
    ) -> Result<Vec<(String, Expr)>, ProtocolError> {
        map.iter()
            .map(|(k, v)| Ok((k.to_string(), self.expr(v, depth + 1)?)))
            .collect()
    }

    fn elements(&self, items: &[Json], depth: usize) -> Result<Vec<Expr>, ProtocolError> {
        items.iter().map(|v| self.expr(v, depth + 1)).collect()
    }

    fn path(&self, json: &Json) -> Option<Vec<PathKey>> {
        json.as_array()?
            .iter()
            .map(|p| match p {
                Json::String(s) => Some(PathKey::Name(s.to_string())),
                Json::Number(f, int) => int
                    .and_then(|i| u64::try_from(i).ok())
                    .or_else(|| {
                        Some(*f)
                            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                            .map(|f| f as u64)
                    })
                    .map(PathKey::Index),
                _ => None,
            })
            .collect()
    }

    fn special(&self, json: &Json, arr: &[Json], depth: usize) -> Result<Expr, ProtocolError> {
        let unknown = || ProtocolError::UnknownSpecial(truncate(&json.to_string()));
        if arr.len() == 1
            && let Json::Array(inner) = &arr[0]
        {
            return Ok(Expr::Array(self.elements(inner, depth)?));
        }
        let tag = arr.first().and_then(Json::as_str).ok_or_else(unknown)?;
        let str_at = |i: usize| arr.get(i).and_then(Json::as_str);
        let id_at = |i: usize| arr.get(i).and_then(as_id);
        let expr = match (tag, arr.len()) {
            ("undefined", 1) => Expr::Undefined,
            ("inf", 1) => Expr::Inf,
            ("-inf", 1) => Expr::NegInf,
            ("nan", 1) => Expr::NaN,
            ("bigint", 2) => {
                let digits = str_at(1).ok_or_else(unknown)?;
                if digits.len() > self.limits.max_bigint_digits {
                    return Err(ProtocolError::BigIntTooLong {
                        limit: self.limits.max_bigint_digits,
                    });
                }
                crate::value::BigInt::parse(digits).map_err(|_| unknown())?;
                Expr::BigInt(digits.to_owned())
            }
            ("date", 2) => match &arr[1] {
                Json::Null => Expr::Date(None),
                Json::Number(n, _) => Expr::Date(Some(*n)),
                _ => return Err(unknown()),
            },
            ("bytes", 2 | 3) => {
                let b64 = str_at(1).ok_or_else(unknown)?;
                let data = decode_base64(b64).ok_or_else(unknown)?;
                let kind = match arr.get(2) {
                    None => None,
                    Some(Json::String(k)) if BYTE_CONTAINER_TYPES.contains(&k.as_ref()) => {
                        if data.len() % element_size(k) != 0 {
                            return Err(ProtocolError::Invalid(format!(
                                "Invalid byte length {} for {k}; expected a multiple of {}",
                                data.len(),
                                element_size(k)
                            )));
                        }
                        Some(k.to_string())
                    }
                    Some(other) => {
                        return Err(ProtocolError::Invalid(format!(
                            "Unknown bytes type marker: {}",
                            truncate(&other.to_string())
                        )));
                    }
                };
                Expr::Bytes { data, kind }
            }
            ("error", 3..=5) => {
                let (Some(name), Some(message)) = (str_at(1), str_at(2)) else {
                    return Err(unknown());
                };
                let stack = str_at(3).map(str::to_owned);
                let props = match arr.get(4) {
                    None => None,
                    Some(Json::Object(map)) => Some(self.object(map, depth)?),
                    Some(_) => return Err(unknown()),
                };
                Expr::Error {
                    name: name.to_owned(),
                    message: message.to_owned(),
                    stack,
                    props,
                }
            }
            ("import" | "pipeline", 2..=4) => {
                let id = id_at(1).ok_or_else(unknown)?;
                let path = match arr.get(2) {
                    None => None,
                    Some(p) => Some(self.path(p).ok_or_else(unknown)?),
                };
                let args = match arr.get(3) {
                    None => None,
                    Some(Json::Array(items)) => Some(self.elements(items, depth)?),
                    Some(_) => return Err(unknown()),
                };
                if tag == "import" {
                    Expr::Import { id, path, args }
                } else {
                    Expr::Pipeline { id, path, args }
                }
            }
            ("export", 2) => Expr::Export(id_at(1).ok_or_else(unknown)?),
            ("promise", 2) => Expr::Promise(id_at(1).ok_or_else(unknown)?),
            ("remap", 5) => {
                let id = id_at(1).ok_or_else(unknown)?;
                let path = self.path(&arr[2]).ok_or_else(unknown)?;
                let captures = arr[3]
                    .as_array()
                    .ok_or_else(unknown)?
                    .iter()
                    .map(|c| {
                        let pair = c.as_array().filter(|a| a.len() == 2);
                        match pair.map(|a| (a[0].as_str(), as_id(&a[1]))) {
                            Some((Some("import"), Some(i))) => Ok(Capture::Import(i)),
                            Some((Some("export"), Some(i))) => Ok(Capture::Export(i)),
                            _ => Err(ProtocolError::Invalid(format!(
                                "unknown map capture: {}",
                                truncate(&c.to_string())
                            ))),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                let instructions = match &arr[4] {
                    Json::Array(items) => self.elements(items, depth)?,
                    _ => return Err(unknown()),
                };
                Expr::Remap {
                    id,
                    path,
                    captures,
                    instructions,
                }
            }
            ("readable", 2) => Expr::Readable(id_at(1).ok_or_else(unknown)?),
            ("writable", 2) => Expr::Writable(id_at(1).ok_or_else(unknown)?),
            ("url", 2) => Expr::Url(str_at(1).ok_or_else(unknown)?.to_owned()),
            ("headers", 2) => {
                let pairs = arr[1].as_array().ok_or_else(unknown)?;
                Expr::Headers(
                    pairs
                        .iter()
                        .map(header_pair)
                        .collect::<Option<_>>()
                        .ok_or_else(unknown)?,
                )
            }
            ("request", 3) => {
                let url = str_at(1).ok_or_else(unknown)?.to_owned();
                let fields = arr[2].as_object().ok_or_else(unknown)?;
                let body = match fields.iter().find(|(k, _)| k == "body") {
                    None | Some((_, Json::Null)) => None,
                    Some((_, b)) => Some(Box::new(self.expr(b, depth + 1)?)),
                };
                check_header_pairs(fields)?;
                let init = init_map(fields);
                Expr::Request { url, body, init }
            }
            ("response", 3) => {
                let body = Box::new(self.expr(&arr[1], depth + 1)?);
                let fields = arr[2].as_object().ok_or_else(unknown)?;
                check_header_pairs(fields)?;
                let init = fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_serde()))
                    .collect();
                Expr::Response { body, init }
            }
            ("blob", 3) => Expr::Blob {
                mime: str_at(1).ok_or_else(unknown)?.to_owned(),
                content: Box::new(self.expr(&arr[2], depth + 1)?),
            },
            _ => return Err(unknown()),
        };
        Ok(expr)
    }
}

fn header_pair(p: &Json<'_>) -> Option<(String, String)> {
    match p.as_array()?.as_slice() {
        [Json::String(k), Json::String(v)] => Some((k.to_string(), v.to_string())),
        _ => None,
    }
}

fn check_header_pairs(init: &[(Cow<'_, str>, Json<'_>)]) -> Result<(), ProtocolError> {
    match init.iter().find(|(k, _)| k == "headers").map(|(_, v)| v) {
        None => Ok(()),
        Some(Json::Array(pairs)) if pairs.iter().all(|p| header_pair(p).is_some()) => Ok(()),
        Some(_) => Err(ProtocolError::Invalid(
            "Request headers must be serialized as an array of pairs.".into(),
        )),
    }
}

/// A request's init as kept in its expression: every field but the body.
fn init_map(fields: &[(Cow<'_, str>, Json<'_>)]) -> serde_json::Map<String, serde_json::Value> {
    fields
        .iter()
        .filter(|(k, _)| k != "body")
        .map(|(k, v)| (k.to_string(), v.to_serde()))
        .collect()
}

/// The message that carries a chunk of a byte stream, in the exact form capnweb and
/// capwire write it, parsed without building a JSON tree (the chunk is most of the text,
/// and is decoded once). Anything else, or anything unusual, is left to the full parser.
fn parse_stream_write(text: &str) -> Option<Message> {
    let rest = text.strip_prefix(r#"["stream",["pipeline","#)?;
    let digits = rest.find(|c: char| c != '-' && !c.is_ascii_digit())?;
    let id: i64 = rest[..digits].parse().ok()?;
    let rest = rest[digits..].strip_prefix(r#",["write"],[["bytes",""#)?;
    let b64 = rest.strip_suffix(r#""]]]]"#)?;
    // Anything but base64 in between (a quote that ends the string early, an escape) fails
    // to decode, and goes to the full parser.
    let data = decode_base64(b64)?;
    Some(Message::Stream(Expr::Pipeline {
        id,
        path: Some(vec![PathKey::Name("write".to_owned())]),
        args: Some(vec![Expr::Bytes { data, kind: None }]),
    }))
}

/// Decodes base64 as capnweb's peers accept it: standard alphabet, padding optional.
/// (SIMD-accelerated: stream chunks make base64 the largest cost of a transfer.)
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    base64_simd::STANDARD_NO_PAD
        .decode_to_vec(s.trim_end_matches('='))
        .ok()
}

/// Encodes base64 as capnweb does: standard alphabet, no padding.
pub(crate) fn encode_base64(data: &[u8]) -> String {
    base64_simd::STANDARD_NO_PAD.encode_to_string(data)
}

/// A finite number as `JSON.stringify` writes it (an object key, say).
pub(crate) fn number_text(n: f64) -> String {
    serde_json::to_string(&Num(n)).unwrap_or_default()
}

impl Expr {
    /// Encodes the expression as capnweb does, as a JSON tree.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Writes a JSON array of the given elements (each any `Serialize` expression).
macro_rules! json_array {
    ($serializer:expr; $($element:expr),* $(,)?) => {{
        let mut seq = $serializer.serialize_seq(None)?;
        $(seq.serialize_element(&$element)?;)*
        seq.end()
    }};
}

/// A number as `JSON.stringify` writes it: integers without a fraction (and -0 as 0).
struct Num(f64);

impl serde::Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.fract() == 0.0 && self.0.abs() <= MAX_SAFE_INTEGER {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl serde::Serialize for PathKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PathKey::Name(n) => s.serialize_str(n),
            PathKey::Index(i) => s.serialize_u64(*i),
        }
    }
}

impl serde::Serialize for Capture {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            Capture::Import(i) => json_array!(s; "import", i),
            Capture::Export(i) => json_array!(s; "export", i),
        }
    }
}

/// An object written from fields whose values are expressions.
struct Fields<'a>(&'a [(String, Expr)]);

impl serde::Serialize for Fields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `init` of a request, with its body expression put back.
struct Init<'a>(
    &'a serde_json::Map<String, serde_json::Value>,
    Option<&'a Expr>,
);

impl serde::Serialize for Init<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        if let Some(body) = self.1 {
            map.serialize_entry("body", body)?;
        }
        map.end()
    }
}

impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            Expr::Null => s.serialize_unit(),
            Expr::Bool(b) => s.serialize_bool(*b),
            Expr::Number(n) if n.is_nan() => json_array!(s; "nan"),
            Expr::Number(n) if n.is_infinite() && *n > 0.0 => json_array!(s; "inf"),
            Expr::Number(n) if n.is_infinite() => json_array!(s; "-inf"),
            Expr::Number(n) => Num(*n).serialize(s),
            Expr::String(x) => s.serialize_str(x),
            Expr::Array(items) => json_array!(s; items),
            Expr::Object(fields) => Fields(fields).serialize(s),
            Expr::Undefined => json_array!(s; "undefined"),
            Expr::Inf => json_array!(s; "inf"),
            Expr::NegInf => json_array!(s; "-inf"),
            Expr::NaN => json_array!(s; "nan"),
            Expr::BigInt(d) => json_array!(s; "bigint", d),
            Expr::Date(ms) => json_array!(s; "date", ms.map(Num)),
            Expr::Bytes { data, kind: None } => json_array!(s; "bytes", encode_base64(data)),
            Expr::Bytes {
                data,
                kind: Some(k),
            } => json_array!(s; "bytes", encode_base64(data), k),
            Expr::Error {
                name,
                message,
                stack,
                props,
            } => match (stack, props) {
                (stack, Some(props)) => {
                    json_array!(s; "error", name, message, stack, Fields(props))
                }
                (Some(stack), None) => json_array!(s; "error", name, message, stack),
                (None, None) => json_array!(s; "error", name, message),
            },
            Expr::Import { id, path, args } => {
                reference(s, "import", *id, path.as_deref(), args.as_deref())
            }
            Expr::Pipeline { id, path, args } => {
                reference(s, "pipeline", *id, path.as_deref(), args.as_deref())
            }
            Expr::Export(id) => json_array!(s; "export", id),
            Expr::Promise(id) => json_array!(s; "promise", id),
            Expr::Remap {
                id,
                path,
                captures,
                instructions,
            } => json_array!(s; "remap", id, path, captures, instructions),
            Expr::Readable(id) => json_array!(s; "readable", id),
            Expr::Writable(id) => json_array!(s; "writable", id),
            Expr::Url(href) => json_array!(s; "url", href),
            Expr::Headers(pairs) => json_array!(s; "headers", pairs),
            Expr::Request { url, body, init } => {
                json_array!(s; "request", url, Init(init, body.as_deref()))
            }
            Expr::Response { body, init } => json_array!(s; "response", body, init),
            Expr::Blob { mime, content } => json_array!(s; "blob", mime, content),
        }
    }
}

fn reference<S: serde::Serializer>(
    s: S,
    tag: &str,
    id: i64,
    path: Option<&[PathKey]>,
    args: Option<&[Expr]>,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    match (path, args) {
        (None, None) => json_array!(s; tag, id),
        (path, None) => json_array!(s; tag, id, path.unwrap_or(&[])),
        (path, Some(args)) => json_array!(s; tag, id, path.unwrap_or(&[]), args),
    }
}

impl serde::Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            Message::Push(e) => json_array!(s; "push", e),
            Message::Stream(e) => json_array!(s; "stream", e),
            Message::Pull(id) => json_array!(s; "pull", id),
            Message::Resolve(id, e) => json_array!(s; "resolve", id, e),
            Message::Reject(id, e) => json_array!(s; "reject", id, e),
            Message::Release(id, n) => json_array!(s; "release", id, n),
            Message::Abort(e) => json_array!(s; "abort", e),
            Message::Pipe => json_array!(s; "pipe"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let limits = Limits::default();
        let msg = Message::parse(text, &limits).unwrap_or_else(|e| panic!("{text}: {e}"));
        let back = msg.to_text();
        let a: serde_json::Value = serde_json::from_str(text).unwrap();
        let b: serde_json::Value = serde_json::from_str(&back).unwrap();
        assert_eq!(a, b, "{text} re-encoded as {back}");
    }

    #[test]
    fn every_message_and_expression_form_round_trips() {
        for text in [
            r#"["push",["pipeline",0,["square"],[5]]]"#,
            r#"["push",["pipeline",0,["a",1,"b"]]]"#,
            r#"["pull",1]"#,
            r#"["resolve",1,[[1,"two",null,true,{"a":["undefined"]}]]]"#,
            r#"["reject",1,["error","RangeError","test error"]]"#,
            r#"["reject",1,["error","Error","x","stack here"]]"#,
            r#"["reject",1,["error","Error","x",null,{"code":42,"cause":["error","Error","inner"]}]]"#,
            r#"["release",-1,2]"#,
            r#"["abort",["error","Error","bye"]]"#,
            r#"["stream",["pipeline",-2,["write"],[["bytes","AQID"]]]]"#,
            r#"["pipe"]"#,
            r#"["push",[[["inf"],["-inf"],["nan"],["bigint","-123456789012345678901234567890"]]]]"#,
            r#"["push",[[["date",1749342170815],["date",null],["bytes",""],["bytes","AQ","Uint8Array"]]]]"#,
            r#"["push",["import",3]]"#,
            r#"["push",["import",3,["x"],[1]]]"#,
            r#"["push",[[["export",-1],["promise",-2],["readable",4],["writable",-3]]]]"#,
            r#"["push",["remap",1,["items"],[["import",2],["export",-1]],[["pipeline",0,["id"]],["pipeline",-1,["getUser"],[["pipeline",1]]]]]]"#,
            r#"["push",[[["url","https://example.com/?q=1"],["headers",[["a","b"]]]]]]"#,
            r#"["push",["request","https://x/",{"method":"POST","headers":[["a","b"]],"body":["readable",1],"duplex":"half"}]]"#,
            r#"["push",["response",null,{"status":404}]]"#,
            r#"["push",["blob","text/plain",["readable",1]]]"#,
        ] {
            round_trip(text);
        }
    }

    #[test]
    fn base64_agrees_with_the_base64_crate_on_what_it_accepts_and_gives() {
        use base64::Engine;
        let reference = base64::engine::general_purpose::STANDARD_NO_PAD;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        const ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ !";
        for len in 0..3000 {
            let data: Vec<u8> = (0..len % 300).map(|_| next() as u8).collect();
            assert_eq!(encode_base64(&data), reference.encode(&data));
            assert_eq!(decode_base64(&encode_base64(&data)), Some(data.clone()));
            // Text that is mostly base64, with padding, odd lengths, stray characters and
            // non-zero trailing bits: both accept and refuse alike.
            let text: String = (0..len % 23)
                .map(|_| {
                    let i = next() as usize % if next() % 8 == 0 { ALPHABET.len() } else { 64 };
                    ALPHABET[i] as char
                })
                .collect();
            let ours = decode_base64(&text);
            let theirs = reference.decode(text.trim_end_matches('=')).ok();
            assert_eq!(ours, theirs, "{text:?}");
        }
    }

    #[test]
    fn stream_writes_take_a_shortcut_that_agrees_with_the_full_parser() {
        let limits = Limits::default();
        for data in [
            &b""[..],
            b"\x01",
            b"\x01\x02",
            b"\x01\x02\x03",
            &[255; 1000],
        ] {
            for id in [1, -3, 12345] {
                let text = Message::stream_write_text(id, data);
                let general = Message::Stream(Expr::Pipeline {
                    id,
                    path: Some(vec![PathKey::from("write")]),
                    args: Some(vec![Expr::Bytes {
                        data: data.to_vec(),
                        kind: None,
                    }]),
                });
                assert_eq!(text, general.to_text());
                assert_eq!(parse_stream_write(&text), Some(general.clone()));
                let tree = Message::from_tree(&parse_json(&text, &limits).unwrap(), &limits);
                assert_eq!(tree.unwrap(), general);
            }
        }
        // Other forms go to the full parser, which accepts or refuses them as ever.
        for text in [
            r#"["stream",["pipeline",1,["write"],[["bytes","AQ=="]]]]"#,
            r#"["stream",["pipeline",1,["write"],[["bytes","AQ\u0041"]]]]"#,
            r#"["stream",["pipeline",1,["write"],[["bytes","AQ","Uint8Array"]]]]"#,
            r#"["stream",["pipeline",1,["close"],[]]]"#,
            r#"["stream", ["pipeline",1,["write"],[["bytes","AQ"]]]]"#,
        ] {
            assert!(
                parse_stream_write(text).is_none() || text.contains("AQ=="),
                "{text}"
            );
            assert!(Message::parse(text, &limits).is_ok(), "{text}");
        }
        for text in [
            r#"["stream",["pipeline",1,["write"],[["bytes","A!"]]]]"#,
            r#"["stream",["pipeline",1x,["write"],[["bytes","AQ"]]]]"#,
            r#"["stream",["pipeline",1,["write"],[["bytes","AQ"]]]]]"#,
        ] {
            assert!(Message::parse(text, &limits).is_err(), "{text}");
        }
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let limits = Limits::default();
        for text in [
            "",
            "not json",
            "{}",
            "[]",
            "[1]",
            r#"["bogus"]"#,
            r#"["push"]"#,
            r#"["pull","x"]"#,
            r#"["release",1]"#,
            r#"["push",["unknown-tag"]]"#,
            r#"["push",["bytes","!!!"]]"#,
            r#"["push",["bytes","AQ","NotAType"]]"#,
            r#"["push",["bytes","AQ","Uint16Array"]]"#,
            r#"["push",["bigint","12x"]]"#,
            r#"["push",["error",1,2]]"#,
            r#"["push",["import","x"]]"#,
            r#"["push",["remap",1,[],[["bad",1]],[]]]"#,
            r#"["push",["headers",[[1,2]]]]"#,
            r#"["push",1] trailing"#,
        ] {
            assert!(
                Message::parse(text, &limits).is_err(),
                "{text} should be refused"
            );
        }
    }

    #[test]
    fn limits_are_enforced_with_named_errors() {
        let limits = Limits {
            max_message_size: 1024,
            max_depth: 8,
            max_bigint_digits: 4,
            ..Limits::default()
        };
        let big = format!(r#"["push","{}"]"#, "x".repeat(2000));
        assert!(matches!(
            Message::parse(&big, &limits),
            Err(ProtocolError::MessageTooLarge { limit: 1024 })
        ));
        let deep = format!(r#"["push",{}1{}]"#, "[[".repeat(9), "]]".repeat(9));
        assert!(matches!(
            Message::parse(&deep, &limits),
            Err(ProtocolError::TooDeep { limit: 8 })
        ));
        let very_deep = format!(r#"["push",{}1{}]"#, "[".repeat(60), "]".repeat(60));
        assert!(matches!(
            Message::parse(&very_deep, &limits),
            Err(ProtocolError::TooDeep { .. })
        ));
        assert!(matches!(
            Message::parse(r#"["push",["bigint","12345"]]"#, &limits),
            Err(ProtocolError::BigIntTooLong { limit: 4 })
        ));
    }
}
