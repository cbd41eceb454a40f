//! What a stream carries, whatever its chunk type: bytes (the fast path, never turned into
//! a [`Value`]) or any value; and the conversions between a typed chunk and it.

use crate::error::RpcError;
use crate::value::Value;
use bytes::Bytes;
use std::any::Any;

/// A type a [`ReadableStream`](super::ReadableStream) or
/// [`WritableStream`](super::WritableStream) can carry: any serde type that can be sent
/// over RPC, stubs and targets inside it included. Implemented for every such type;
/// [`Bytes`] (`bytes::Bytes`, the default) and [`Value`] are carried as they are, without
/// serde; every other type goes through a [`Value`], also between the two ends of a local
/// pipe.
pub trait StreamValue: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}

impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> StreamValue for T {}

/// One chunk of a stream, as it travels.
pub(crate) enum Chunk {
    /// Bytes: what byte streams carry, and a plain `Uint8Array` chunk of any stream.
    Bytes(Bytes),
    /// Any other value (a string, an object, a stub, a typed array with its type name...).
    Value(Value),
}

impl Chunk {
    /// A chunk of `value`: plain bytes go as bytes.
    pub(crate) fn of_value(value: Value) -> Chunk {
        match value {
            Value::Bytes(b) if b.kind.is_none() => Chunk::Bytes(b.data),
            other => Chunk::Value(other),
        }
    }

    /// The chunk as a value.
    pub(crate) fn into_value(self) -> Value {
        match self {
            Chunk::Bytes(b) => Value::Bytes(b.into()),
            Chunk::Value(v) => v,
        }
    }

    /// What holding the chunk costs, for the budget of a peer's writes: its bytes, or the
    /// rough size of its value (counted up to `cap`).
    pub(crate) fn held_size(&self, cap: usize) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::Value(v) => crate::limits::budget::value_size(v, cap),
        }
    }
}

/// `chunk` as it travels: bytes and values as they are, any other type through serde.
pub(crate) fn into_chunk<T: StreamValue>(chunk: T) -> Result<Chunk, RpcError> {
    let mut slot = Some(chunk);
    let any: &mut dyn Any = &mut slot;
    if let Some(bytes) = any.downcast_mut::<Option<Bytes>>().and_then(Option::take) {
        return Ok(Chunk::Bytes(bytes));
    }
    if let Some(value) = any.downcast_mut::<Option<Value>>().and_then(Option::take) {
        return Ok(Chunk::of_value(value));
    }
    match slot {
        Some(chunk) => crate::value::ser::to_value(&chunk).map(Chunk::of_value),
        None => Err(RpcError::error("a stream chunk was lost in conversion")),
    }
}

/// A received chunk as a `T`; an error (a `TypeError`) if it is not one. A byte stream
/// takes bytes and strings (as UTF-8), as capwire's byte streams always have.
pub(crate) fn from_chunk<T: StreamValue>(chunk: Chunk) -> Result<T, RpcError> {
    let mut out: Option<T> = None;
    let any: &mut dyn Any = &mut out;
    if let Some(slot) = any.downcast_mut::<Option<Bytes>>() {
        *slot = Some(match chunk {
            Chunk::Bytes(b) => b,
            Chunk::Value(Value::Bytes(b)) => b.data,
            Chunk::Value(Value::String(s)) => Bytes::from(s),
            Chunk::Value(other) => {
                return Err(RpcError::type_error(format!(
                    "a byte stream chunk must be bytes or a string, not {}",
                    other.type_name()
                )));
            }
        });
    } else if let Some(slot) = any.downcast_mut::<Option<Value>>() {
        *slot = Some(chunk.into_value());
    } else {
        return crate::value::de::from_value(chunk.into_value()).map_err(|e| {
            RpcError::type_error(format!(
                "a stream chunk is not a {}: {}",
                std::any::type_name::<T>(),
                e.message()
            ))
        });
    }
    out.ok_or_else(|| RpcError::error("a stream chunk was lost in conversion"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Todo {
        title: String,
        done: bool,
    }

    #[test]
    fn bytes_and_values_pass_as_they_are_and_other_types_through_serde() {
        assert!(matches!(
            into_chunk(Bytes::from_static(b"ab")),
            Ok(Chunk::Bytes(b)) if &b[..] == b"ab"
        ));
        assert!(
            matches!(into_chunk(Value::from("x")), Ok(Chunk::Value(Value::String(s))) if s == "x")
        );
        let todo = Todo {
            title: "a".into(),
            done: true,
        };
        let chunk = into_chunk(todo).expect("a todo is a value");
        assert!(matches!(&chunk, Chunk::Value(Value::Object(_))));
        let back: Todo = from_chunk(chunk).expect("and back");
        assert_eq!(
            back,
            Todo {
                title: "a".into(),
                done: true
            }
        );
    }

    #[test]
    fn a_byte_stream_reads_bytes_and_strings_and_refuses_the_rest() {
        let b: Bytes = from_chunk(Chunk::Value(Value::from("hé"))).expect("text");
        assert_eq!(&b[..], "hé".as_bytes());
        let e = from_chunk::<Bytes>(Chunk::Value(Value::Number(1.0))).expect_err("a number");
        assert!(e.message().contains("must be bytes or a string"), "{e:?}");
    }

    #[test]
    fn a_chunk_of_the_wrong_type_is_a_type_error() {
        let e = from_chunk::<Todo>(Chunk::Value(Value::from("x"))).expect_err("not a todo");
        assert_eq!(e.name(), "TypeError");
        assert!(e.message().contains("Todo"), "{e:?}");
    }
}
