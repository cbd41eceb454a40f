//! [`Value`] to serde types: [`from_value`].

use crate::error::RpcError;
use crate::value::ser::MAGIC;
use crate::value::{BigInt, Bytes, Date, Object, Value};
use serde::de::{self, Deserialize, DeserializeOwned, IntoDeserializer, Visitor};
use std::cell::RefCell;

thread_local! {
    static HANDED: RefCell<Option<Value>> = const { RefCell::new(None) };
}

/// Converts a [`Value`] into any deserializable type.
///
/// `null` and `undefined` both read as `None` (and as `()`); a missing trailing field reads
/// as absent. Stubs and promises deserialize into [`RpcStub`](crate::RpcStub) /
/// [`RpcPromise`](crate::RpcPromise) fields, or stay inside a [`Value`].
///
/// ```
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct User { id: u32, name: String }
/// let v = capwire::Value::object([("id", 3.into()), ("name", "user3".into())]);
/// let u: User = capwire::from_value(v).unwrap();
/// assert_eq!(u, User { id: 3, name: "user3".into() });
/// ```
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, RpcError> {
    T::deserialize(ValueDeserializer(value)).map_err(|e| RpcError::type_error(e.0))
}

/// The error of [`ValueDeserializer`].
#[derive(Debug)]
pub struct DeError(String);

impl std::fmt::Display for DeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl From<String> for DeError {
    fn from(message: String) -> Self {
        DeError(message)
    }
}

impl de::Error for DeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

/// A serde deserializer that reads from an owned [`Value`].
pub(crate) struct ValueDeserializer(pub(crate) Value);

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => de::Unexpected::Float(*n),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Null | Value::Undefined => de::Unexpected::Unit,
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
        other => de::Unexpected::Other(other.type_name()),
    }
}

impl<'de> de::Deserializer<'de> for ValueDeserializer {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Undefined | Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if n.fract() == 0.0 && n.abs() <= crate::wire::MAX_SAFE_INTEGER {
                    visitor.visit_i64(n as i64)
                } else {
                    visitor.visit_f64(n)
                }
            }
            Value::BigInt(b) => {
                if let Some(i) = b.to_i128() {
                    if let Ok(i) = i64::try_from(i) {
                        visitor.visit_i64(i)
                    } else if let Ok(u) = u64::try_from(i) {
                        visitor.visit_u64(u)
                    } else {
                        visitor.visit_i128(i)
                    }
                } else if let Some(u) = b.to_u128() {
                    visitor.visit_u128(u)
                } else {
                    visitor.visit_string(b.to_string())
                }
            }
            Value::String(s) | Value::Url(s) => visitor.visit_string(s),
            Value::Array(a) => visitor.visit_seq(SeqAccess(a.into_iter())),
            Value::Object(o) => visitor.visit_map(MapAccess((*o).into_iter(), None)),
            Value::Date(d) => visitor.visit_f64(d.millis()),
            Value::Bytes(b) => visitor.visit_byte_buf(b.data.to_vec()),
            Value::Headers(h) => visitor.visit_seq(SeqAccess(
                h.into_iter()
                    .map(|(k, v)| Value::Array(vec![k.into(), v.into()]))
                    .collect::<Vec<_>>()
                    .into_iter(),
            )),
            other @ (Value::Error(_)
            | Value::Stub(_)
            | Value::Promise(_)
            | Value::Readable(_)
            | Value::Writable(_)
            | Value::Blob(_)
            | Value::Request(_)
            | Value::Response(_)) => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Undefined | Value::Null => visitor.visit_none(),
            other => visitor.visit_some(ValueDeserializer(other)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Undefined | Value::Null => visitor.visit_unit(),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Bytes(b) => visitor.visit_seq(SeqAccess(
                b.data
                    .iter()
                    .map(|&x| Value::from(x))
                    .collect::<Vec<_>>()
                    .into_iter(),
            )),
            other => ValueDeserializer(other).deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == MAGIC {
            HANDED.with(|h| *h.borrow_mut() = Some(self.0));
            return visitor.visit_newtype_struct(().into_deserializer());
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Object(o) if o.len() == 1 => {
                let (k, v) = (*o).into_iter().next().expect("length checked");
                visitor.visit_enum(EnumAccess(k, v))
            }
            other => Err(de::Error::invalid_type(unexpected(&other), &"an enum")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit_struct tuple tuple_struct map struct identifier ignored_any
    }
}

struct SeqAccess(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for SeqAccess {
    type Error = DeError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.0
            .next()
            .map(|v| seed.deserialize(ValueDeserializer(v)))
            .transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapAccess(indexmap::map::IntoIter<String, Value>, Option<Value>);

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = DeError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.0.next() {
            Some((k, v)) => {
                self.1 = Some(v);
                seed.deserialize(ValueDeserializer(Value::String(k)))
                    .map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        seed.deserialize(ValueDeserializer(self.1.take().unwrap_or_default()))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct EnumAccess(String, Value);

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = DeError;
    type Variant = ValueDeserializer;
    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, ValueDeserializer), DeError> {
        let variant = seed.deserialize(ValueDeserializer(Value::String(self.0)))?;
        Ok((variant, ValueDeserializer(self.1)))
    }
}

impl<'de> de::VariantAccess<'de> for ValueDeserializer {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}

/// Deserializes a [`Value`] through the side channel when the deserializer is capwire's,
/// or from plain data (JSON, say) otherwise.
pub(crate) fn deserialize_value<'de, D: de::Deserializer<'de>>(
    deserializer: D,
) -> Result<Value, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any value")
        }
        fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            match HANDED.with(|h| h.borrow_mut().take()) {
                Some(v) => Ok(v),
                None => d.deserialize_any(self),
            }
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Value::Number(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
            Ok(Value::Bytes(Bytes::from(v)))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            deserialize_value(d)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<Value>()? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Object::new();
            while let Some((k, v)) = map.next_entry::<String, Value>()? {
                out.insert(k, v);
            }
            Ok(Value::Object(Box::new(out)))
        }
    }
    deserializer.deserialize_newtype_struct(MAGIC, V)
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_value(deserializer)
    }
}

macro_rules! deserialize_via_value {
    ($($t:ty => $variant:ident, $what:literal);*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                match deserialize_value(deserializer)? {
                    Value::$variant(x) => Ok(x),
                    other => Err(de::Error::custom(format!(
                        concat!("expected ", $what, ", found {}"),
                        other.type_name()
                    ))),
                }
            }
        }
    )*};
}
deserialize_via_value!(
    Date => Date, "a date";
    RpcError => Error, "an error";
    crate::value::web::Blob => Blob, "a Blob"
);

impl<'de> Deserialize<'de> for BigInt {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserialize_value(deserializer)? {
            Value::BigInt(b) => Ok(b),
            Value::Number(n) if n.fract() == 0.0 && n.is_finite() => Ok(BigInt::from(n as i128)),
            Value::String(s) => BigInt::parse(&s).map_err(de::Error::custom),
            other => Err(de::Error::custom(format!(
                "expected a bigint, found {}",
                other.type_name()
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserialize_value(deserializer)? {
            Value::Bytes(b) => Ok(b),
            Value::Array(a) => a
                .into_iter()
                .map(|v| v.as_i64().and_then(|i| u8::try_from(i).ok()))
                .collect::<Option<Vec<u8>>>()
                .map(Bytes::from)
                .ok_or_else(|| de::Error::custom("expected bytes")),
            other => Err(de::Error::custom(format!(
                "expected bytes, found {}",
                other.type_name()
            ))),
        }
    }
}
