//! [`Message`] and [`Expr`] to JSON text, written straight from the types (no JSON tree
//! first), as capnweb's `Devaluator` and `JSON.stringify` write them.

use super::{Capture, Expr, MAX_SAFE_INTEGER, Message, PathKey};

impl Message {
    /// Encodes the message as capnweb does, as a JSON tree.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Encodes the message as one line of JSON text, unless the text would be longer than
    /// `limit` bytes: then `None`, having written no more than the limit (a message over
    /// the limit is never built whole).
    pub fn to_text_within(&self, limit: usize) -> Option<String> {
        text_within(self, limit)
    }

    /// Encodes the message as one line of JSON text.
    pub fn to_text(&self) -> String {
        // Straight to text, without building a JSON tree first. Serializing these types to
        // a string cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `message` as one line of JSON text, unless that would be longer than `limit` bytes.
pub(crate) fn text_within(message: &impl serde::Serialize, limit: usize) -> Option<String> {
    let mut out = Limited::new(limit);
    serde_json::to_writer(&mut out, message).ok()?;
    out.into_string()
}

/// Messages are encoded in a buffer reused by every message this thread encodes, of this
/// capacity: a message up to this size is copied out of it at its exact length (one
/// allocation, no growing); a longer one keeps the buffer it grew into, and the thread
/// starts a new one.
const SCRATCH: usize = 4096;

thread_local! {
    static SCRATCH_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A buffer that refuses to grow past `limit` bytes.
pub(crate) struct Limited {
    buf: Vec<u8>,
    limit: usize,
}

impl Limited {
    pub(crate) fn new(limit: usize) -> Limited {
        // (Empty when another message is being encoded on this thread: then a new one.)
        let mut buf = SCRATCH_BUFFER.take();
        buf.clear();
        buf.reserve(SCRATCH.min(limit));
        Limited { buf, limit }
    }

    /// The text written (only ever JSON, so UTF-8).
    pub(crate) fn into_string(mut self) -> Option<String> {
        let text = if self.buf.capacity() <= SCRATCH {
            // Copied out at its length; the buffer goes back to the thread (on drop).
            self.buf.as_slice().to_vec()
        } else {
            std::mem::take(&mut self.buf)
        };
        String::from_utf8(text).ok()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        if self.buf.capacity() > 0 && self.buf.capacity() <= SCRATCH {
            SCRATCH_BUFFER.set(std::mem::take(&mut self.buf));
        }
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
            Expr::Error(e) => match (&e.stack, &e.props) {
                (stack, Some(props)) => {
                    json_array!(s; "error", e.name, e.message, stack, Fields(props))
                }
                (Some(stack), None) => json_array!(s; "error", e.name, e.message, stack),
                (None, None) => json_array!(s; "error", e.name, e.message),
            },
            Expr::Import { id, path, args } => {
                reference(s, "import", *id, path.as_deref(), args.as_deref())
            }
            Expr::Pipeline { id, path, args } => {
                reference(s, "pipeline", *id, path.as_deref(), args.as_deref())
            }
            Expr::Export(id) => json_array!(s; "export", id),
            Expr::Promise(id) => json_array!(s; "promise", id),
            Expr::Remap(r) => json_array!(s; "remap", r.id, r.path, r.captures, r.instructions),
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

/// The message `["push", ["pipeline", id, path, args]]` (a call), written from borrowed
/// parts, so that sending a call does not copy its path into an [`Expr`] first.
pub(crate) struct PushCall<'a> {
    pub(crate) id: i64,
    pub(crate) path: &'a [PathKey],
    pub(crate) args: Option<&'a [Expr]>,
}

impl serde::Serialize for PushCall<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        struct Pipeline<'a>(&'a PushCall<'a>);
        impl serde::Serialize for Pipeline<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let call = self.0;
                reference(s, "pipeline", call.id, Some(call.path), call.args)
            }
        }
        json_array!(s; "push", Pipeline(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_written_from_borrowed_parts_is_the_push_of_its_pipeline() {
        let path = [PathKey::from("counter"), PathKey::Index(2)];
        let args = [Expr::Number(1.5), Expr::String("x".into()), Expr::Undefined];
        for args in [None, Some(&args[..]), Some(&[][..])] {
            let borrowed = text_within(
                &PushCall {
                    id: -3,
                    path: &path,
                    args,
                },
                usize::MAX,
            );
            let owned = Message::Push(Expr::Pipeline {
                id: -3,
                path: Some(path.to_vec()),
                args: args.map(<[Expr]>::to_vec),
            })
            .to_text();
            assert_eq!(borrowed.as_deref(), Some(owned.as_str()));
        }
        let call = PushCall {
            id: 0,
            path: &path,
            args: None,
        };
        assert_eq!(text_within(&call, 10), None, "over the limit");
    }

    #[test]
    fn messages_are_encoded_in_one_reused_buffer_and_copied_out_at_their_length() {
        let scratch_at = || {
            let scratch = SCRATCH_BUFFER.take();
            let at = (scratch.as_ptr() as usize, scratch.capacity());
            SCRATCH_BUFFER.set(scratch);
            at
        };
        assert_eq!(
            text_within(&Message::Pull(1), 1 << 20).as_deref(),
            Some(r#"["pull",1]"#)
        );
        let (at, capacity) = scratch_at();
        assert!(capacity >= SCRATCH);
        for i in 0..100 {
            let text = text_within(&Message::Release(i, 1), 1 << 20).unwrap();
            assert_eq!(text, format!(r#"["release",{i},1]"#));
            assert_eq!(text.capacity(), text.len(), "copied out at its length");
            assert_eq!(
                scratch_at(),
                (at, capacity),
                "message {i} was encoded elsewhere"
            );
        }
        // A failed encoding gives the buffer back too.
        assert_eq!(text_within(&Message::Pull(12345), 5), None);
        assert_eq!(scratch_at(), (at, capacity));
        // A longer message keeps what it grew into, whole.
        let long = Message::Abort(Expr::String("x".repeat(2 * SCRATCH)));
        assert_eq!(text_within(&long, 1 << 20), Some(long.to_text()));
    }
}
