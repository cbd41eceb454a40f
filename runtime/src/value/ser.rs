//! Serde types to [`Value`]: [`to_value`].
//!
//! Capabilities and the other non-JSON forms (dates, bigints, errors, ...) pass through
//! serde by a side channel: their `Serialize` impl parks the [`Value`] in a thread-local
//! slot and emits a newtype struct with a reserved name, which this serializer recognises
//! and replaces by the parked value. Any other serializer sees the wire form instead.

use crate::error::RpcError;
use crate::value::{BigInt, Bytes, Object, Value};
use serde::ser::{self, Serialize};
use std::cell::{Cell, RefCell};

/// The reserved newtype name that marks a parked [`Value`].
pub(crate) const MAGIC: &str = "$capwire::Value";

thread_local! {
    static PARKED: RefCell<Option<Value>> = const { RefCell::new(None) };
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Converts any serializable value into a [`Value`].
///
/// Integers a JavaScript number cannot hold exactly become `bigint`s; `()` becomes
/// `undefined`; `None` becomes `null`; byte buffers serialized as bytes (e.g. with
/// `serde_bytes`, or [`Bytes`]) become `Uint8Array`s. Stubs and promises inside the value
/// are kept as capabilities.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct User { id: u32, name: String }
/// let v = capwire::to_value(&User { id: 3, name: "user3".into() }).unwrap();
/// assert_eq!(v.get("name").and_then(|n| n.as_str()), Some("user3"));
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, RpcError> {
    DEPTH.with(|d| d.set(d.get() + 1));
    let result = value.serialize(ValueSerializer);
    DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|e| RpcError::type_error(e.0))
}

/// Serializes a special value: through the side channel when the serializer is capwire's,
/// as its wire form otherwise.
pub(crate) fn serialize_special<S: ser::Serializer>(
    value: &Value,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if DEPTH.with(Cell::get) > 0 {
        PARKED.with(|p| *p.borrow_mut() = Some(value.clone()));
        serializer.serialize_newtype_struct(MAGIC, &())
    } else {
        match crate::session::codec::encode_detached(value) {
            Ok(json) => json.serialize(serializer),
            Err(e) => Err(ser::Error::custom(e)),
        }
    }
}

/// The error of [`ValueSerializer`].
#[derive(Debug)]
pub struct SerError(String);

impl std::fmt::Display for SerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        SerError(msg.to_string())
    }
}

struct ValueSerializer;

fn key_of(v: Value) -> Result<String, SerError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(crate::wire::number_text(n)),
        Value::BigInt(b) => Ok(b.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(SerError(format!(
            "object keys must be strings, not {}",
            other.type_name()
        ))),
    }
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = SerError;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = VariantSer<SeqSer>;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = VariantSer<MapSer>;

    fn serialize_bool(self, v: bool) -> Result<Value, SerError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, SerError> {
        Ok(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<Value, SerError> {
        Ok(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<Value, SerError> {
        Ok(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<Value, SerError> {
        Ok(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<Value, SerError> {
        Ok(v.into())
    }
    fn serialize_u8(self, v: u8) -> Result<Value, SerError> {
        Ok(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<Value, SerError> {
        Ok(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<Value, SerError> {
        Ok(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<Value, SerError> {
        Ok(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<Value, SerError> {
        Ok(v.into())
    }
    fn serialize_f32(self, v: f32) -> Result<Value, SerError> {
        Ok(Value::Number(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, SerError> {
        Ok(Value::Number(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, SerError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, SerError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, SerError> {
        Ok(Value::Bytes(Bytes::from(v)))
    }
    fn serialize_none(self) -> Result<Value, SerError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, SerError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, SerError> {
        Ok(Value::Undefined)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, SerError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _idx: u32,
        variant: &'static str,
    ) -> Result<Value, SerError> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value, SerError> {
        if name == MAGIC {
            return PARKED
                .with(|p| p.borrow_mut().take())
                .ok_or_else(|| SerError("capwire value marker without a value".into()));
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _idx: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, SerError> {
        let mut o = Object::new();
        o.insert(variant.to_owned(), value.serialize(ValueSerializer)?);
        Ok(Value::Object(Box::new(o)))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer, SerError> {
        Ok(SeqSer(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer, SerError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqSer, SerError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _idx: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSer<SeqSer>, SerError> {
        Ok(VariantSer(variant, SeqSer(Vec::with_capacity(len))))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapSer, SerError> {
        Ok(MapSer(Object::with_capacity(len.unwrap_or(0)), None))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapSer, SerError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _idx: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSer<MapSer>, SerError> {
        Ok(VariantSer(
            variant,
            MapSer(Object::with_capacity(len), None),
        ))
    }
}

struct SeqSer(Vec<Value>);

impl ser::SerializeSeq for SeqSer {
    type Ok = Value;
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.0.push(value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for SeqSer {
    type Ok = Value;
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, SerError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqSer {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, SerError> {
        ser::SerializeSeq::end(self)
    }
}

struct MapSer(Object, Option<String>);

impl ser::SerializeMap for MapSer {
    type Ok = Value;
    type Error = SerError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
        self.1 = Some(key_of(key.serialize(ValueSerializer)?)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        let key = self
            .1
            .take()
            .ok_or_else(|| SerError("map value without a key".into()))?;
        self.0.insert(key, value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(Value::Object(Box::new(self.0)))
    }
}

impl ser::SerializeStruct for MapSer {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.0
            .insert(key.to_owned(), value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SerError> {
        Ok(Value::Object(Box::new(self.0)))
    }
}

struct VariantSer<S>(&'static str, S);

impl ser::SerializeTupleVariant for VariantSer<SeqSer> {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        ser::SerializeSeq::serialize_element(&mut self.1, value)
    }
    fn end(self) -> Result<Value, SerError> {
        let mut o = Object::new();
        o.insert(self.0.to_owned(), Value::Array(self.1.0));
        Ok(Value::Object(Box::new(o)))
    }
}

impl ser::SerializeStructVariant for VariantSer<MapSer> {
    type Ok = Value;
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        ser::SerializeStruct::serialize_field(&mut self.1, key, value)
    }
    fn end(self) -> Result<Value, SerError> {
        let mut o = Object::new();
        o.insert(self.0.to_owned(), Value::Object(Box::new(self.1.0)));
        Ok(Value::Object(Box::new(o)))
    }
}

impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => serializer.serialize_none(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) if n.is_finite() => serializer.serialize_f64(*n),
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(a) if DEPTH.with(Cell::get) > 0 => {
                let mut seq = serializer.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Object(o) if DEPTH.with(Cell::get) > 0 => {
                let mut map = serializer.serialize_map(Some(o.len()))?;
                for (k, v) in o.iter() {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            other => serialize_special(other, serializer),
        }
    }
}

macro_rules! serialize_via_value {
    ($($t:ty => $variant:ident),*) => {$(
        impl Serialize for $t {
            fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serialize_special(&Value::$variant(self.clone()), serializer)
            }
        }
    )*};
}
serialize_via_value!(
    BigInt => BigInt,
    crate::value::Date => Date,
    Bytes => Bytes,
    crate::value::web::Blob => Blob
);
