//! Value encoding: [`Value`] to a Cap'n Web expression, as capnweb's `Devaluator` does,
//! and the session-free `serialize`/`deserialize` pair.

use crate::error::RpcError;
use crate::limits::Limits;
use crate::stream::{ReadableStream, WritableStream};
use crate::stub::Hook;
use crate::value::Value;
use crate::wire::Expr;

/// Detached encoding: a value outside any session (no capabilities allowed).
pub(crate) fn encode_detached(value: &Value) -> Result<serde_json::Value, RpcError> {
    Ok(
        encode(value, Limits::default().max_depth, &mut |capability| {
            Err(RpcError::type_error(match capability {
                Capability::Stub(_) | Capability::Promise(_) => {
                    "Can't serialize RPC stubs in this context."
                }
                Capability::Readable(_) | Capability::Writable(_) => {
                    "Can't serialize streams in this context."
                }
            }))
        })?
        .to_json(),
    )
}

/// What a value holds that only a session can send: each becomes an entry of its tables.
pub(crate) enum Capability<'a> {
    /// A stub, exported as `["export", id]`.
    Stub(&'a Hook),
    /// A promise, exported as `["promise", id]`.
    Promise(&'a Hook),
    /// A readable stream, sent through a pipe as `["readable", id]`.
    Readable(&'a ReadableStream),
    /// A writable stream, exported as `["writable", id]`.
    Writable(&'a WritableStream),
}

/// What [`encode`] asks to turn each capability into an expression.
pub(crate) type Exporter<'a> = dyn FnMut(Capability<'_>) -> Result<Expr, RpcError> + 'a;

/// Serializes a value as capnweb's `serialize()` does: JSON text of its expression. Stubs
/// and promises cannot be serialized outside a session.
///
/// ```
/// let v = capwire::Value::Array(vec![1.into(), capwire::Value::Undefined]);
/// assert_eq!(capwire::serialize(&v).unwrap(), r#"[[1,["undefined"]]]"#);
/// ```
pub fn serialize(value: &Value) -> Result<String, RpcError> {
    Ok(encode_detached(value)?.to_string())
}

/// Deserializes text produced by capnweb's `serialize()` (or [`serialize`]).
///
/// ```
/// let v = capwire::deserialize(r#"["bigint","18446744073709551616"]"#).unwrap();
/// assert_eq!(v, capwire::Value::BigInt(capwire::BigInt::parse("18446744073709551616").unwrap()));
/// ```
pub fn deserialize(text: &str) -> Result<Value, RpcError> {
    let expr = Expr::parse(text, &Limits::default())?;
    Ok(crate::session::eval::evaluate(
        expr,
        &mut crate::session::eval::Detached,
    )?)
}

/// Encodes `value` as an expression; `export` is asked to export each capability. A value
/// nested deeper than `max_depth` is refused (its encoding, and the peer's parser, would
/// recurse that deep).
pub(crate) fn encode(
    value: &Value,
    max_depth: usize,
    export: &mut Exporter<'_>,
) -> Result<Expr, RpcError> {
    Encoder { max_depth, export }.encode(value, 0)
}

/// The error for a value nested deeper than `limit`.
pub(crate) fn too_deep(limit: usize) -> RpcError {
    RpcError::range(format!(
        "the value nests deeper than {limit} levels (limit max_depth)"
    ))
}

struct Encoder<'a, 'b> {
    max_depth: usize,
    export: &'a mut Exporter<'b>,
}

impl Encoder<'_, '_> {
    fn encode(&mut self, value: &Value, depth: usize) -> Result<Expr, RpcError> {
        if depth >= self.max_depth {
            return Err(too_deep(self.max_depth));
        }
        let export = &mut *self.export;
        Ok(match value {
            Value::Undefined => Expr::Undefined,
            Value::Null => Expr::Null,
            Value::Bool(b) => Expr::Bool(*b),
            Value::Number(n) => Expr::Number(*n),
            Value::BigInt(b) => Expr::BigInt(b.to_string()),
            Value::String(s) => Expr::String(s.clone()),
            Value::Array(a) => Expr::Array(
                a.iter()
                    .map(|v| self.encode(v, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(o) => Expr::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), self.encode(v, depth + 1)?)))
                    .collect::<Result<_, RpcError>>()?,
            ),
            Value::Date(d) => Expr::Date(Some(d.millis()).filter(|m| !m.is_nan())),
            Value::Bytes(b) => Expr::Bytes {
                data: b.data.to_vec(),
                kind: b.kind.clone(),
            },
            Value::Error(e) => self.error(e, depth),
            Value::Url(u) => Expr::Url(u.clone()),
            Value::Headers(h) => Expr::Headers(h.clone()),
            Value::Stub(s) => export(Capability::Stub(&s.hook))?,
            Value::Promise(p) => export(Capability::Promise(&p.hook))?,
            Value::Readable(r) => export(Capability::Readable(r))?,
            Value::Writable(w) => export(Capability::Writable(w))?,
            // A blob's content always goes as a stream: capnweb accepts no other form.
            Value::Blob(b) => Expr::Blob {
                mime: b.mime_type().to_owned(),
                content: Box::new(export(Capability::Readable(&ReadableStream::from_bytes(
                    b.data().clone(),
                )))?),
            },
            Value::Request(r) => r.to_expr(|body| export(Capability::Readable(body)))?,
            Value::Response(r) => r.to_expr(|body| export(Capability::Readable(body)))?,
        })
    }

    /// Encodes an error; properties that cannot be encoded are dropped, as capnweb does.
    fn error(&mut self, e: &RpcError, depth: usize) -> Expr {
        let props = e.props().map(|p| {
            p.iter()
                .filter_map(|(k, v)| self.encode(v, depth + 1).ok().map(|x| (k.clone(), x)))
                .collect::<Vec<_>>()
        });
        Expr::Error(Box::new(crate::wire::ErrorExpr {
            name: e.name().to_owned(),
            message: e.message().to_owned(),
            stack: e.stack().map(str::to_owned),
            props: props.filter(|p| !p.is_empty()),
        }))
    }
}

/// An error as an expression, for `reject` and `abort` (which carry no capabilities).
pub(crate) fn error_expr(e: &RpcError) -> Expr {
    Encoder {
        max_depth: Limits::default().max_depth,
        export: &mut |_| {
            Err(RpcError::type_error(
                "errors in a reject or abort carry no stubs",
            ))
        },
    }
    .error(e, 0)
}

/// Why [`write_value`] stopped.
pub(crate) enum WriteError {
    /// The value cannot be sent (too deep, or a capability that cannot be exported).
    Value(RpcError),
    /// The writer refused more bytes (the message limit).
    Full,
}

/// Writes the text of `value`'s expression to `out` straight from the value, exporting
/// capabilities through `export` as [`encode`] does: the same text as encoding and then
/// serializing the expression, without the expression tree (which for a big result is
/// bigger than the value itself).
pub(crate) fn write_value(
    out: &mut impl std::io::Write,
    value: &Value,
    max_depth: usize,
    export: &mut Exporter<'_>,
) -> Result<(), WriteError> {
    let ctx = std::cell::RefCell::new(Ctx {
        max_depth,
        export,
        error: None,
    });
    let written = serde_json::to_writer(
        out,
        &Direct {
            value,
            depth: 0,
            ctx: &ctx,
        },
    );
    match (written, ctx.into_inner().error) {
        (_, Some(e)) => Err(WriteError::Value(e)),
        (Ok(()), None) => Ok(()),
        (Err(_), None) => Err(WriteError::Full),
    }
}

struct Ctx<'a, 'b> {
    max_depth: usize,
    export: &'a mut Exporter<'b>,
    /// The first error met, which stopped the writing.
    error: Option<RpcError>,
}

/// A value written as its expression, at `depth`.
struct Direct<'c, 'a, 'b> {
    value: &'c Value,
    depth: usize,
    ctx: &'c std::cell::RefCell<Ctx<'a, 'b>>,
}

impl<'c, 'a, 'b> Direct<'c, 'a, 'b> {
    fn child(&self, value: &'c Value) -> Direct<'c, 'a, 'b> {
        Direct {
            value,
            depth: self.depth + 1,
            ctx: self.ctx,
        }
    }

    fn fail<E: serde::ser::Error>(&self, e: RpcError) -> E {
        let mut ctx = self.ctx.borrow_mut();
        let message = e.to_string();
        ctx.error.get_or_insert(e);
        E::custom(message)
    }
}

/// The elements of an array, as the inner list of `[[...]]`.
struct Elements<'d, 'c, 'a, 'b>(&'d Direct<'c, 'a, 'b>, &'c [Value]);

impl serde::Serialize for Elements<'_, '_, '_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.1.len()))?;
        for v in self.1 {
            seq.serialize_element(&self.0.child(v))?;
        }
        seq.end()
    }
}

impl serde::Serialize for Direct<'_, '_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let max_depth = self.ctx.borrow().max_depth;
        if self.depth >= max_depth {
            return Err(self.fail(too_deep(max_depth)));
        }
        match self.value {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::String(t) => s.serialize_str(t),
            Value::Number(n) => Expr::Number(*n).serialize(s),
            Value::Undefined => Expr::Undefined.serialize(s),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(1))?;
                seq.serialize_element(&Elements(self, items))?;
                seq.end()
            }
            Value::Object(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                for (k, v) in o.iter() {
                    map.serialize_entry(k, &self.child(v))?;
                }
                map.end()
            }
            // The rest are rare, or small, or capabilities: encoded as an expression.
            other => {
                let encoded = {
                    let mut ctx = self.ctx.borrow_mut();
                    let export = &mut *ctx.export;
                    Encoder {
                        max_depth: max_depth - self.depth,
                        export,
                    }
                    .encode(other, 0)
                };
                match encoded {
                    Ok(expr) => expr.serialize(s),
                    Err(e) => Err(self.fail(e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(value: &Value) -> (String, String) {
        let mut refuse = |_: Capability<'_>| -> Result<Expr, RpcError> {
            Err(RpcError::type_error("no capabilities here"))
        };
        let tree = encode(value, 256, &mut refuse).map(|e| serde_json::to_string(&e).unwrap());
        let mut out = Vec::new();
        let direct = write_value(&mut out, value, 256, &mut refuse);
        (
            tree.unwrap_or_else(|e| format!("error {e}")),
            match direct {
                Ok(()) => String::from_utf8(out).unwrap(),
                Err(WriteError::Value(e)) => format!("error {e}"),
                Err(WriteError::Full) => "full".into(),
            },
        )
    }

    #[test]
    fn writing_a_value_directly_gives_the_text_of_its_expression() {
        let text = r#"[[1,-0.5,"two",null,true,{"a":["undefined"],"b":[[["inf"],["nan"]]]},["bigint","-12345678901234567890"],["date",1749342170815],["bytes","AQID"],["bytes","AQID/w","Uint16Array"],["error","RangeError","x",null,{"code":42}],["url","https://x/"],["headers",[["a","b"]]]]]"#;
        let value = deserialize(text).unwrap();
        let (tree, direct) = both(&value);
        assert_eq!(tree, text);
        assert_eq!(direct, tree);
        let mut deep = Value::from(1);
        for _ in 0..300 {
            deep = Value::Array(vec![deep]);
        }
        let (tree, direct) = both(&deep);
        assert!(tree.contains("limit max_depth"), "{tree}");
        assert_eq!(direct, tree);
    }

    #[test]
    fn writing_a_value_stops_at_the_writer_limit() {
        let value = Value::from((0..100_000).collect::<Vec<i32>>());
        let mut out = crate::wire::Limited::new(1000);
        let mut refuse = |_: Capability<'_>| -> Result<Expr, RpcError> { unreachable!() };
        assert!(matches!(
            write_value(&mut out, &value, 256, &mut refuse),
            Err(WriteError::Full)
        ));
    }
}
