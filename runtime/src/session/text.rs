//! Message text straight to serde types: the typed path for a call's arguments. (In the
//! session's layer: a form other than plain JSON is read by the evaluator, with no session.)
//!
//! A call whose arguments hold no capabilities (checked when the message is read, see
//! `wire::direct::plain_call`) need not become a [`Value`] first: its arguments are read
//! from the frame's text into the method's own parameter types, so a million numbers cost
//! the frame and the `Vec` the method takes, not a node per number as well.
//!
//! The result is the one [`from_value`](crate::from_value) gives for the same text read
//! into a [`Value`] (a test compares the two): numbers, strings, booleans, `null` and
//! escaped arrays are read here; any other form (an object, `["undefined"]`, a `bigint`,
//! a `date`, ...) is read into a [`Value`] on its own and handed to the `Value`
//! deserializer, so that their meanings have one definition.

use crate::limits::Limits;
use crate::value::Value;
use crate::value::de::{DeError, ValueDeserializer};
use crate::wire::Expr;
use crate::wire::json::Reader;
use serde::de::{self, IntoDeserializer, Visitor};
use std::borrow::Cow;

/// Deserializes `T` from `text`, one checked expression that holds no capability.
pub(crate) fn from_text<T: de::DeserializeOwned>(
    text: &str,
    limits: &Limits,
) -> Result<T, DeError> {
    let mut de = TextDeserializer {
        reader: Reader::new(text),
        limits,
    };
    T::deserialize(&mut de)
}

/// Reads `text` (one checked expression that holds no capability) into a [`Value`].
pub(crate) fn value_of(text: &str, limits: &Limits) -> Result<Value, DeError> {
    let expr = Expr::parse(text, limits).map_err(|e| DeError::from(e.to_string()))?;
    crate::session::eval::evaluate(expr, &mut crate::session::eval::Detached)
        .map_err(|e| DeError::from(e.to_string()))
}

struct TextDeserializer<'a, 'l> {
    reader: Reader<'a>,
    limits: &'l Limits,
}

/// What the next value is, as far as this deserializer reads it itself.
#[derive(PartialEq)]
enum Next {
    Null,
    Bool,
    String,
    Number,
    /// `[[...]]`: an array.
    Array,
    /// Anything else (an object, a tagged form): read as a [`Value`].
    Other,
}

impl<'a> TextDeserializer<'a, '_> {
    fn peek(&mut self) -> Option<u8> {
        self.reader.skip_space();
        self.reader.bytes.get(self.reader.at).copied()
    }

    fn next(&mut self) -> Next {
        match self.peek() {
            Some(b'n') => Next::Null,
            Some(b't' | b'f') => Next::Bool,
            Some(b'"') => Next::String,
            Some(b'-' | b'0'..=b'9') => Next::Number,
            Some(b'[') => {
                let mut ahead = self.reader.at + 1;
                while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.reader.bytes.get(ahead) {
                    ahead += 1;
                }
                if self.reader.bytes.get(ahead) == Some(&b'[') {
                    Next::Array
                } else {
                    Next::Other
                }
            }
            _ => Next::Other,
        }
    }

    /// The next value, read into a [`Value`].
    fn value(&mut self) -> Result<Value, DeError> {
        self.reader.skip_space();
        let start = self.reader.at;
        self.reader.skip_value().map_err(DeError::from)?;
        value_of(&self.reader.text[start..self.reader.at], self.limits)
    }

    fn take(&mut self, byte: u8) -> Result<(), DeError> {
        if self.peek() == Some(byte) {
            self.reader.at += 1;
            Ok(())
        } else {
            Err(DeError::from(format!(
                "expected `{}` at byte {}",
                byte as char, self.reader.at
            )))
        }
    }

    fn number(&mut self) -> Result<f64, DeError> {
        match self.reader.number().map_err(DeError::from)? {
            crate::wire::json::Json::Number(f, _) => Ok(f),
            _ => Err(DeError::from("expected a number".to_owned())),
        }
    }

    fn string(&mut self) -> Result<Cow<'a, str>, DeError> {
        self.reader.string().map_err(DeError::from)
    }

    fn bool(&mut self) -> Result<bool, DeError> {
        if self.peek() == Some(b't') {
            self.reader.expect("true").map_err(DeError::from)?;
            Ok(true)
        } else {
            self.reader.expect("false").map_err(DeError::from)?;
            Ok(false)
        }
    }

    /// Reads an array's elements with `visitor`, its `[[` next; steps over any element the
    /// visitor leaves (a tuple shorter than the array), as the `Value` deserializer does.
    fn array<'de, V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, DeError>
    where
        'a: 'de,
    {
        self.take(b'[')?;
        self.take(b'[')?;
        let mut seq = Seq {
            de: self,
            first: true,
            done: false,
        };
        let value = visitor.visit_seq(&mut seq)?;
        if !seq.done {
            while de::SeqAccess::next_element::<de::IgnoredAny>(&mut seq)?.is_some() {}
        }
        self.take(b']')?;
        Ok(value)
    }
}

/// A number as the `Value` deserializer presents one: an integer when it is one that
/// JavaScript holds exactly, a float otherwise.
fn visit_number<'de, V: Visitor<'de>>(n: f64, visitor: V) -> Result<V::Value, DeError> {
    if n.fract() == 0.0 && n.abs() <= crate::wire::MAX_SAFE_INTEGER {
        visitor.visit_i64(n as i64)
    } else {
        visitor.visit_f64(n)
    }
}

impl<'de, 'a: 'de> de::Deserializer<'de> for &mut TextDeserializer<'a, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.next() {
            Next::Null => {
                self.reader.expect("null").map_err(DeError::from)?;
                visitor.visit_unit()
            }
            Next::Bool => visitor.visit_bool(self.bool()?),
            Next::String => match self.string()? {
                Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
                Cow::Owned(s) => visitor.visit_string(s),
            },
            Next::Number => visit_number(self.number()?, visitor),
            Next::Array => self.array(visitor),
            Next::Other => ValueDeserializer(self.value()?).deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.next() {
            Next::Null => {
                self.reader.expect("null").map_err(DeError::from)?;
                visitor.visit_none()
            }
            Next::Other => ValueDeserializer(self.value()?).deserialize_option(visitor),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        ValueDeserializer(self.value()?).deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.next() {
            Next::Other => ValueDeserializer(self.value()?).deserialize_seq(visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == crate::value::ser::MAGIC {
            // A `Value` (or a type read through one) is wanted: read one.
            return ValueDeserializer(self.value()?).deserialize_newtype_struct(name, visitor);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.next() {
            Next::String => match self.string()? {
                Cow::Borrowed(s) => visitor.visit_enum(s.into_deserializer()),
                Cow::Owned(s) => visitor.visit_enum(s.into_deserializer()),
            },
            _ => ValueDeserializer(self.value()?).deserialize_enum(name, variants, visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.reader.skip_value().map_err(DeError::from)?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit_struct tuple tuple_struct map struct identifier
    }
}

struct Seq<'d, 'a, 'l> {
    de: &'d mut TextDeserializer<'a, 'l>,
    first: bool,
    done: bool,
}

impl<'de, 'a: 'de> de::SeqAccess<'de> for Seq<'_, 'a, '_> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        if self.done {
            return Ok(None);
        }
        match self.de.peek() {
            Some(b']') => {
                self.de.reader.at += 1;
                self.done = true;
                return Ok(None);
            }
            Some(b',') if !self.first => self.de.reader.at += 1,
            _ if self.first => {}
            _ => {
                return Err(DeError::from(format!(
                    "expected `,` or `]` at byte {}",
                    self.de.reader.at
                )));
            }
        }
        self.first = false;
        seed.deserialize(&mut *self.de).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;
    use std::fmt::Debug;

    /// Reading `text` as `T` straight from the text gives what reading it into a `Value`
    /// and then into `T` gives: the same value, or an error with the same message.
    fn same<T: de::DeserializeOwned + Debug>(text: &str) {
        let limits = Limits::default();
        let direct = from_text::<T>(text, &limits).map_err(|e| e.to_string());
        let via_value = value_of(text, &limits)
            .map_err(|e| e.to_string())
            .and_then(|v| crate::from_value::<T>(v).map_err(|e| e.message().to_owned()));
        // Compared as printed: NaN is not equal to itself.
        assert_eq!(
            format!("{direct:?}"),
            format!("{via_value:?}"),
            "{text} as {}",
            std::any::type_name::<T>()
        );
    }

    #[derive(Deserialize, PartialEq, Debug)]
    struct Point {
        x: i32,
        y: Option<f64>,
    }

    #[derive(Deserialize, PartialEq, Debug)]
    enum Shape {
        Dot,
        Circle(f64),
        Rect { w: u32, h: u32 },
    }

    #[derive(Deserialize, PartialEq, Debug)]
    struct Wrapper(Vec<u8>);

    #[test]
    fn every_plain_form_reads_as_through_a_value() {
        for text in [
            "0",
            "-1",
            "42",
            "1.5",
            "1e3",
            "1e400",
            "-0",
            "9007199254740993",
            "300",
        ] {
            same::<i64>(text);
            same::<u8>(text);
            same::<i8>(text);
            same::<u64>(text);
            same::<f64>(text);
            same::<f32>(text);
            same::<Option<i32>>(text);
            same::<String>(text);
        }
        for text in [
            r#""""#,
            r#""plain""#,
            r#""esc\"aped\n""#,
            r#""\ud800 lone""#,
            r#""é""#,
            r#""x""#,
        ] {
            same::<String>(text);
            same::<char>(text);
            same::<Option<String>>(text);
            same::<i64>(text);
            same::<Shape>(text);
        }
        for text in ["true", "false", "null", r#"["undefined"]"#] {
            same::<bool>(text);
            same::<Option<bool>>(text);
            same::<()>(text);
            same::<Option<()>>(text);
            same::<String>(text);
        }
        for text in [
            "[[]]",
            "[[1,2,3]]",
            "[[ 1 , 2 ]]",
            r#"[["a","b"]]"#,
            "[[null,1]]",
            r#"[[["undefined"],1]]"#,
            "[[[[1,2]],[[3]]]]",
            "[[1,2,3,4]]",
            r#"[[1,"x"]]"#,
            "[[1.5]]",
        ] {
            same::<Vec<i64>>(text);
            same::<Vec<Option<i64>>>(text);
            same::<Vec<Vec<i64>>>(text);
            same::<(i64, i64)>(text);
            same::<(i64, String)>(text);
            same::<Vec<String>>(text);
            same::<Wrapper>(text);
            same::<Option<Vec<u8>>>(text);
            same::<crate::Bytes>(text);
        }
        for text in [
            r#"{"x":1,"y":2.5}"#,
            r#"{"x":1}"#,
            r#"{"x":1,"x":2}"#,
            r#"{"y":1}"#,
            r#"{"Circle":2}"#,
            r#"{"Rect":{"w":1,"h":2}}"#,
            r#"[[{"x":1},{"x":2,"y":null}]]"#,
            r#"{"__proto__":1,"x":3}"#,
        ] {
            same::<Point>(text);
            same::<Shape>(text);
            same::<Vec<Point>>(text);
            same::<BTreeMap<String, i64>>(text);
            same::<Option<Point>>(text);
        }
        for text in [
            r#"["bigint","123"]"#,
            r#"["bigint","-18446744073709551617"]"#,
            r#"["date",1700000000000]"#,
            r#"["date",null]"#,
            r#"["inf"]"#,
            r#"["-inf"]"#,
            r#"["nan"]"#,
        ] {
            same::<i64>(text);
            same::<u64>(text);
            same::<i128>(text);
            same::<f64>(text);
            same::<Option<i64>>(text);
            same::<crate::BigInt>(text);
            same::<crate::Date>(text);
        }
    }

    #[test]
    fn a_value_parameter_gets_the_value() {
        let limits = Limits::default();
        for text in [
            "[[1,[[2]],{\"a\":[\"undefined\"]}]]",
            r#"["bigint","5"]"#,
            r#""s""#,
            "3",
        ] {
            let direct: Value = from_text(text, &limits).unwrap();
            assert_eq!(direct, value_of(text, &limits).unwrap(), "{text}");
        }
        let nested: Vec<Value> = from_text(r#"[[1,{"k":"v"}]]"#, &limits).unwrap();
        assert_eq!(nested[1], Value::object([("k", "v".into())]));
    }
}
