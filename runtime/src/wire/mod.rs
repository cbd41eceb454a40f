//! The Cap'n Web wire format: top-level messages and expressions, parsed from JSON text
//! into typed Rust and encoded back exactly as the `capnweb` package encodes them.
//!
//! This layer knows nothing about sessions or values: an [`Expr`] is a syntax tree.
//! Evaluating it (turning `["export", -1]` into a stub, say) is the session's job. It owns:
//!
//! - the message and expression types: [`Message`], [`Expr`], [`PathKey`], [`Capture`];
//! - `json`: capwire's JSON reader, a borrowed tree read in one pass as JavaScript's
//!   `JSON.parse` reads it;
//! - `parse`: JSON text to [`Message`]/[`Expr`], under the size and depth
//!   [`Limits`](crate::Limits), by way of the tree;
//! - `direct`: the same straight from the text, for the forms calls are made of (the
//!   tree parser takes the rest);
//! - `encode`: [`Message`]/[`Expr`] to text, exactly as capnweb writes it.
//!
//! Below it are only the crate's error and limit types
//! ([`ProtocolError`](crate::ProtocolError), [`Limits`](crate::Limits)).

mod direct;
mod encode;
#[cfg(test)]
mod javascript_inputs;
pub(crate) mod json;
mod parse;

pub(crate) use direct::{ArgRanges, PlainCall, plain_call};

/// A message's text as it arrived: borrowed (a line of a batch body), owned, or shared
/// with the transport's buffer (a WebSocket frame's payload, not copied).
pub(crate) enum Frame<'a> {
    Borrowed(&'a str),
    Owned(String),
    Shared(tokio_tungstenite::tungstenite::Utf8Bytes),
}

impl Frame<'_> {
    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Frame::Borrowed(s) => s,
            Frame::Owned(s) => s,
            Frame::Shared(s) => s.as_str(),
        }
    }

    /// The text, kept: a borrowed one is copied, the others are moved.
    pub(crate) fn into_static(self) -> Frame<'static> {
        match self {
            Frame::Borrowed(s) => Frame::Owned(s.to_owned()),
            Frame::Owned(s) => Frame::Owned(s),
            Frame::Shared(s) => Frame::Shared(s),
        }
    }
}

impl std::ops::Deref for Frame<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Frame<'static> {
    fn from(text: String) -> Self {
        Frame::Owned(text)
    }
}

impl<'a> From<&'a str> for Frame<'a> {
    fn from(text: &'a str) -> Self {
        Frame::Borrowed(text)
    }
}

impl From<tokio_tungstenite::tungstenite::Utf8Bytes> for Frame<'static> {
    fn from(text: tokio_tungstenite::tungstenite::Utf8Bytes) -> Self {
        Frame::Shared(text)
    }
}
pub(crate) use encode::{Limited, PushCall, number_text, text_within};

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

pub(super) fn element_size(kind: &str) -> usize {
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
    Error(Box<ErrorExpr>),
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
    Remap(Box<RemapExpr>),
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
        init: Box<serde_json::Map<String, serde_json::Value>>,
    },
    /// `["response", body, init]`.
    Response {
        /// The body expression.
        body: Box<Expr>,
        /// `init`, kept as plain JSON.
        init: Box<serde_json::Map<String, serde_json::Value>>,
    },
    /// `["blob", type, readable]`.
    Blob {
        /// The MIME type.
        mime: String,
        /// The expression of the content stream.
        content: Box<Expr>,
    },
}

/// The parts of an `["error", ...]` expression, kept out of line: errors are rare, and
/// every expression is the size of the largest kind.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorExpr {
    /// The error class name, e.g. `TypeError`.
    pub name: String,
    /// The message.
    pub message: String,
    /// The stack, when the sender included one.
    pub stack: Option<String>,
    /// Extra properties.
    pub props: Option<Vec<(String, Expr)>>,
}

/// The parts of a `["remap", ...]` expression, kept out of line as [`ErrorExpr`] is.
#[derive(Debug, Clone, PartialEq)]
pub struct RemapExpr {
    /// The sender's import ID.
    pub id: i64,
    /// Property path.
    pub path: Vec<PathKey>,
    /// Captured stubs.
    pub captures: Vec<Capture>,
    /// Mapper instructions.
    pub instructions: Vec<Expr>,
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

#[cfg(test)]
mod tests {
    use super::encode::encode_base64;
    use super::parse::{decode_base64, parse_json, parse_stream_write};
    use super::*;
    use crate::error::ProtocolError;
    use crate::limits::Limits;

    fn round_trip(text: &str) {
        let limits = Limits::default();
        let msg = Message::parse(text, &limits).unwrap_or_else(|e| panic!("{text}: {e}"));
        let back = msg.to_text();
        let a: serde_json::Value = serde_json::from_str(text).unwrap();
        let b: serde_json::Value = serde_json::from_str(&back).unwrap();
        assert_eq!(a, b, "{text} re-encoded as {back}");
    }

    #[test]
    fn an_expression_is_small() {
        // A received array holds one `Expr` per element while it is evaluated: the rare,
        // large kinds are boxed so that the common ones do not pay for them.
        assert!(
            std::mem::size_of::<Expr>() <= 64,
            "{}",
            std::mem::size_of::<Expr>()
        );
        // No larger than an `Expr` (with the same alignment), a `Value` is evaluated into
        // the array's own buffer (`Vec`'s in-place `collect`): the two are not held side
        // by side.
        let value = std::mem::size_of::<crate::Value>();
        assert!(value <= std::mem::size_of::<Expr>(), "{value}");
        assert_eq!(
            std::mem::align_of::<crate::Value>(),
            std::mem::align_of::<Expr>()
        );
        let exprs: Vec<Expr> = (0..1000).map(|i| Expr::Number(f64::from(i))).collect();
        let buffer = exprs.as_ptr() as usize;
        let value =
            crate::session::eval::evaluate(Expr::Array(exprs), &mut crate::session::eval::Detached)
                .unwrap();
        assert_eq!(value.as_array().map(|a| a.as_ptr() as usize), Some(buffer));
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
    fn base64_agrees_with_a_loose_base64_crate_decoder_on_what_it_accepts_and_gives() {
        use base64::Engine;
        let reference = base64::engine::general_purpose::STANDARD_NO_PAD;
        // What capnweb's runtimes take: trailing bits ignored, white space too.
        let loose = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
        );
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
            let compact: String = text.chars().filter(|c| *c != ' ').collect();
            let theirs = loose.decode(compact.trim_end_matches('=')).ok();
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
