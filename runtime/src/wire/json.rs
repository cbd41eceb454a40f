//! The JSON reader for incoming messages: text to a small tree that borrows its strings
//! from the text, read as JavaScript's `JSON.parse` reads it.
//!
//! Where it differs from a strict JSON parser, it follows `JSON.parse`, since every
//! message a capnweb peer sends was written by `JSON.stringify`:
//!
//! - a `\u` escape of half a surrogate pair (a lone surrogate, which `JSON.stringify`
//!   writes for a string cut in the middle of an emoji) becomes U+FFFD in the Rust string,
//!   which cannot hold a lone surrogate;
//! - a number beyond `f64` (`1e400`) is `Infinity` (or `-Infinity`), and one too small is
//!   0, as `JSON.parse` gives;
//! - of an object's repeated keys the last value wins, in the first key's place.
//!
//! Nesting is bounded by the caller (the message parser refuses text nested deeper than
//! its limit before reading it), so the recursion here is too. Reading is linear in the
//! text: a number with a million digits is scanned once.

use std::borrow::Cow;
use std::fmt;

/// A JSON value. Strings without escapes borrow from the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// The number, and its exact value when the literal is an integer that fits `i64`.
    Number(f64, Option<i64>),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Reads `text`, which must hold one JSON value and nothing else but whitespace.
    pub(crate) fn parse(text: &'a str) -> Result<Json<'a>, String> {
        let mut reader = Reader {
            text,
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = reader.value()?;
        reader.skip_space();
        if reader.at != reader.bytes.len() {
            return Err(reader.error("unexpected text after the JSON value"));
        }
        Ok(value)
    }

    pub(crate) fn as_array(&self) -> Option<&Vec<Json<'a>>> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_object(&self) -> Option<&[(Cow<'a, str>, Json<'a>)]> {
        match self {
            Json::Object(fields) => Some(fields),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as an `i64`, when its literal is an integer that fits.
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(_, int) => *int,
            _ => None,
        }
    }

    /// The number as a `u64`, when its literal is a non-negative integer that fits `i64`.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        self.as_i64().and_then(|i| u64::try_from(i).ok())
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(f, _) => Some(*f),
            _ => None,
        }
    }

    /// The same value as a `serde_json` tree (a non-finite number becomes `null`, as
    /// `JSON.stringify` writes it).
    pub(crate) fn to_serde(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(_, Some(i)) => Value::from(*i),
            Json::Number(f, None) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_serde).collect()),
            Json::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_serde()))
                    .collect(),
            ),
        }
    }

    /// A `serde_json` tree as this one (for messages that arrive already parsed).
    pub(crate) fn from_serde(value: &'a serde_json::Value) -> Json<'a> {
        use serde_json::Value;
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.as_f64().unwrap_or(f64::NAN), n.as_i64()),
            Value::String(s) => Json::String(Cow::Borrowed(s)),
            Value::Array(items) => Json::Array(items.iter().map(Json::from_serde).collect()),
            Value::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::from_serde(v)))
                    .collect(),
            ),
        }
    }
}

/// Compact JSON text, for error messages.
impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let string = |f: &mut fmt::Formatter<'_>, s: &str| {
            f.write_str(&serde_json::to_string(s).unwrap_or_default())
        };
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(_, Some(i)) => write!(f, "{i}"),
            Json::Number(n, None) if n.is_finite() => f.write_str(&crate::wire::number_text(*n)),
            Json::Number(n, None) => write!(f, "{n}"),
            Json::String(s) => string(f, s),
            Json::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Object(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    string(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A cursor over JSON text; [`super::direct`] reads with it too.
pub(crate) struct Reader<'a> {
    pub(crate) text: &'a str,
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    /// Steps over one JSON value (after any whitespace) without building it: for text
    /// already checked, so it checks only what it must to find the value's end.
    pub(crate) fn skip_value(&mut self) -> Result<(), String> {
        self.skip_space();
        match self.bytes.get(self.at) {
            Some(b'"') => self.string().map(drop),
            Some(b'[' | b'{') => {
                // Brackets nest; strings may hold brackets, so they are stepped over whole.
                let mut open = 0usize;
                loop {
                    match self.bytes.get(self.at) {
                        None => return Err(self.error("unexpected end of the text")),
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b'[' | b'{') => open += 1,
                        Some(b']' | b'}') => {
                            open -= 1;
                            if open == 0 {
                                self.at += 1;
                                return Ok(());
                            }
                        }
                        Some(_) => {}
                    }
                    self.at += 1;
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            Some(b'n') => self.expect("null"),
            Some(b't') => self.expect("true"),
            Some(b'f') => self.expect("false"),
            _ => Err(self.error("unexpected character")),
        }
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    pub(crate) fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    pub(crate) fn expect(&mut self, literal: &str) -> Result<(), String> {
        if self.bytes[self.at..].starts_with(literal.as_bytes()) {
            self.at += literal.len();
            Ok(())
        } else {
            Err(self.error("unexpected character"))
        }
    }

    fn value(&mut self) -> Result<Json<'a>, String> {
        self.skip_space();
        match self.bytes.get(self.at) {
            None => Err(self.error("unexpected end of the text")),
            Some(b'n') => self.expect("null").map(|()| Json::Null),
            Some(b't') => self.expect("true").map(|()| Json::Bool(true)),
            Some(b'f') => self.expect("false").map(|()| Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => self.array(),
            Some(b'{') => self.object(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn array(&mut self) -> Result<Json<'a>, String> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    fn object(&mut self) -> Result<Json<'a>, String> {
        self.at += 1;
        let mut fields = Vec::new();
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b'"') {
                return Err(self.error("expected a key"));
            }
            let key = self.string()?;
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b':') {
                return Err(self.error("expected `:`"));
            }
            self.at += 1;
            fields.push((key, self.value()?));
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Json::Object(last_wins(fields)));
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    pub(crate) fn number(&mut self) -> Result<Json<'a>, String> {
        let start = self.at;
        let digits = |r: &mut Reader<'a>| {
            let from = r.at;
            while let Some(b'0'..=b'9') = r.bytes.get(r.at) {
                r.at += 1;
            }
            r.at - from
        };
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let int_start = self.at;
        let int_digits = digits(self);
        if int_digits == 0 || (int_digits > 1 && self.bytes[int_start] == b'0') {
            return Err(self.error("invalid number"));
        }
        let mut integer = true;
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            integer = false;
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let mut exponent_digits = 0;
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            exponent_digits = digits(self);
            if exponent_digits == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let literal = &self.text[start..self.at];
        let int: Option<i64> = integer.then(|| literal.parse().ok()).flatten();
        // An integer's `f64` is the `i64`'s, rounded the same way; read the text once
        // (but `-0` is the float `-0`).
        let value = match int {
            Some(i) if i != 0 => i as f64,
            // Rust reads an out-of-range literal as an infinity (or 0), as JavaScript
            // does, in time linear in its length; but it stops counting an exponent at
            // 65536, so one of five digits or more is worked out here first.
            _ if exponent_digits > 4 => big_exponent(literal),
            _ => literal.parse().map_err(|_| self.error("invalid number"))?,
        };
        Ok(Json::Number(value, int))
    }

    /// A string, its opening quote at `self.at`.
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>, String> {
        self.at += 1;
        let start = self.at;
        // The common case: no escapes, borrowed.
        loop {
            match self.bytes.get(self.at) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    let s = &self.text[start..self.at];
                    self.at += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(0..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => self.at += 1,
            }
        }
        let mut out = String::with_capacity(self.at - start + 16);
        out.push_str(&self.text[start..self.at]);
        loop {
            match self.bytes.get(self.at) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escape = *self
                        .bytes
                        .get(self.at)
                        .ok_or_else(|| self.error("unterminated string"))?;
                    self.at += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            out.push(self.code_point(unit)?);
                        }
                        _ => return Err(self.error("invalid escape in a string")),
                    }
                }
                Some(0..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => {
                    // Copy up to the next quote, backslash or control character at once.
                    let from = self.at;
                    while let Some(&b) = self.bytes.get(self.at) {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.at += 1;
                    }
                    out.push_str(&self.text[from..self.at]);
                }
            }
        }
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u16, String> {
        let hex = self
            .text
            .get(self.at..self.at + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        self.at += 4;
        u16::from_str_radix(hex, 16).map_err(|_| self.error("invalid \\u escape"))
    }

    /// The character a `\u` escape of `unit` starts: a surrogate pair when a low
    /// surrogate escape follows a high one; U+FFFD for a surrogate on its own.
    fn code_point(&mut self, unit: u16) -> Result<char, String> {
        match unit {
            0xD800..=0xDBFF => {
                if self.bytes[self.at..].starts_with(b"\\u") {
                    let save = self.at;
                    self.at += 2;
                    let low = self.hex4()?;
                    if (0xDC00..=0xDFFF).contains(&low) {
                        let c = 0x10000
                            + ((u32::from(unit) - 0xD800) << 10)
                            + (u32::from(low) - 0xDC00);
                        return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
                    }
                    // Not a pair: this one is lone; the next escape is read on its own.
                    self.at = save;
                }
                Ok('\u{FFFD}')
            }
            0xDC00..=0xDFFF => Ok('\u{FFFD}'),
            _ => Ok(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}')),
        }
    }
}

/// An object's fields with repeated keys merged as `JSON.parse` does: the last value, in
/// the first key's place. Linear in the number of fields (a small object is scanned, a
/// large one indexed).
pub(super) fn last_wins<K: Eq + std::hash::Hash + Clone, V>(fields: Vec<(K, V)>) -> Vec<(K, V)> {
    let n = fields.len();
    if n < 2 {
        return fields;
    }
    let mut out: Vec<(K, V)> = Vec::with_capacity(n);
    if n <= 8 {
        for (k, v) in fields {
            match out.iter_mut().find(|(seen, _)| *seen == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        return out;
    }
    let mut index: std::collections::HashMap<K, usize> =
        std::collections::HashMap::with_capacity(n);
    for (k, v) in fields {
        match index.get(&k) {
            Some(&i) => out[i].1 = v,
            None => {
                index.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// The value of a valid number literal whose exponent has five digits or more, as
/// `JSON.parse` reads it: the power of ten of its first significant digit decides an
/// infinity or a zero, and otherwise the literal is rewritten with that digit before the
/// point and a small exponent, which Rust reads exactly. Linear in the literal's length.
fn big_exponent(literal: &str) -> f64 {
    let (negative, unsigned) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let signed = |v: f64| if negative { -v } else { v };
    let (mantissa, exponent) = unsigned.split_once(['e', 'E']).unwrap_or((unsigned, "0"));
    // Saturates far beyond any message's length, so the sum below cannot overflow.
    let exponent = {
        let (sign, digits) = match exponent.as_bytes().first() {
            Some(b'-') => (-1, &exponent[1..]),
            Some(b'+') => (1, &exponent[1..]),
            _ => (1, exponent),
        };
        let magnitude = digits
            .bytes()
            .fold(0i64, |n, d| (n * 10 + i64::from(d - b'0')).min(1 << 48));
        sign * magnitude
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = || int.bytes().chain(frac.bytes());
    let Some(leading_zeros) = digits().position(|d| d != b'0') else {
        return signed(0.0);
    };
    // The power of ten of the first significant digit.
    let power = exponent + int.len() as i64 - leading_zeros as i64 - 1;
    if power > 310 {
        return signed(f64::INFINITY);
    }
    if power < -330 {
        return signed(0.0);
    }
    let mut rewritten = String::with_capacity(literal.len() + 8);
    let mut significant = digits().skip(leading_zeros).map(char::from);
    rewritten.extend(significant.next());
    rewritten.push('.');
    rewritten.extend(significant);
    rewritten.push('0');
    rewritten.push_str(&format!("e{power}"));
    signed(rewritten.parse().unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Json<'_> {
        Json::parse(text).unwrap()
    }

    #[test]
    fn reads_what_json_parse_reads() {
        assert_eq!(
            parse(r#" [1, -2.5e1, "a\"b", true, null, {"k": []}] "#),
            Json::Array(vec![
                Json::Number(1.0, Some(1)),
                Json::Number(-25.0, None),
                Json::String("a\"b".into()),
                Json::Bool(true),
                Json::Null,
                Json::Object(vec![("k".into(), Json::Array(vec![]))]),
            ])
        );
        assert_eq!(parse(r#""\u00e9\ud83d\ude00""#), Json::String("é😀".into()));
        assert!(matches!(
            parse(r#""plain""#),
            Json::String(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn a_lone_surrogate_becomes_the_replacement_character() {
        assert_eq!(parse(r#""\ud800""#), Json::String("\u{FFFD}".into()));
        assert_eq!(parse(r#""a\udc00b""#), Json::String("a\u{FFFD}b".into()));
        // A high surrogate followed by something that is not a low one: both kept apart.
        assert_eq!(parse(r#""\ud800\u0041""#), Json::String("\u{FFFD}A".into()));
        assert_eq!(
            parse(r#""\ud83d\ud83d\ude00""#),
            Json::String("\u{FFFD}😀".into())
        );
    }

    #[test]
    fn numbers_beyond_f64_are_infinities_or_zero() {
        assert_eq!(parse("1e400").as_f64(), Some(f64::INFINITY));
        assert_eq!(parse("-1e400").as_f64(), Some(f64::NEG_INFINITY));
        assert_eq!(parse("1e-400").as_f64(), Some(0.0));
        let long = format!("1{}", "0".repeat(1_000_000));
        assert_eq!(Json::parse(&long).unwrap().as_f64(), Some(f64::INFINITY));
        assert_eq!(parse("9007199254740993").as_i64(), Some(9007199254740993));
        assert_eq!(parse("9007199254740993").as_f64(), Some(9007199254740992.0));
        assert!(parse("-0").as_f64().unwrap().is_sign_negative());
    }

    /// A number literal has no digit limit of its own (`JSON.parse` has none either): the
    /// message limit bounds its length, and reading it is linear in that length, however
    /// its digits and exponent are spread.
    #[test]
    fn numbers_with_huge_exponents_or_a_million_digits_are_read_at_once() {
        let million = "9".repeat(1_000_000);
        let cases = [
            (format!("1e{million}"), f64::INFINITY),
            (format!("-1e{million}"), f64::NEG_INFINITY),
            (format!("1e-{million}"), 0.0),
            (format!("0e{million}"), 0.0),
            (format!("0.{million}"), 1.0),
            (format!("0.{}1e1000000", "0".repeat(999_999)), 1.0),
            (format!("{million}e-1000000"), 1.0),
            (format!("-{million}e-999999"), -10.0),
            (format!("0.{}1e70001", "0".repeat(70_000)), 1.0),
            ("1e99999999999999999999".to_owned(), f64::INFINITY),
            ("1.5e00000000000000000002".to_owned(), 150.0),
            ("2.5E+10000".to_owned(), f64::INFINITY),
            ("0.0000000000025e10000".to_owned(), f64::INFINITY),
        ];
        for (literal, want) in cases {
            let started = std::time::Instant::now();
            let got = Json::parse(&literal).map(|j| j.as_f64());
            assert_eq!(
                got,
                Ok(Some(want)),
                "{}…",
                &literal[..20.min(literal.len())]
            );
            // Generous, for a debug build on a busy machine: a superlinear reader takes
            // minutes here.
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
        assert!(parse("-0e100000").as_f64().unwrap().is_sign_negative());
        // Every digit counts in the rounding, as in a literal with a small exponent.
        let ones = format!("{}e-10000", "1".repeat(10_017));
        assert_eq!(
            Json::parse(&ones).unwrap().as_f64(),
            Some(1.111_111_111_111_111_1e16)
        );
    }

    #[test]
    fn the_last_of_repeated_keys_wins_in_the_first_place() {
        assert_eq!(
            parse(r#"{"a":1,"b":2,"a":3}"#),
            Json::Object(vec![
                ("a".into(), Json::Number(3.0, Some(3))),
                ("b".into(), Json::Number(2.0, Some(2))),
            ])
        );
    }

    #[test]
    fn refuses_what_json_parse_refuses() {
        for bad in [
            "",
            "[",
            "[1,]",
            "{\"a\"}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "\"\\x\"",
            "\"\\u12\"",
            "\"a\nb\"",
            "[1] x",
            "tru",
            "NaN",
            "{'a':1}",
            "\"unterminated",
        ] {
            assert!(Json::parse(bad).is_err(), "{bad:?} was read");
        }
    }

    #[test]
    fn display_writes_compact_json() {
        let text = r#"{"a":[1,2.5,"x\n",null,true],"b":{}}"#;
        assert_eq!(parse(text).to_string(), text);
    }
}
