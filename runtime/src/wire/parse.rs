//! JSON text to [`Message`] and [`Expr`]: the text is read into a borrowed [`Json`] tree
//! (after a cheap scan refuses nesting deeper than the limits allow), which is then
//! checked form by form as capnweb's `Evaluator` checks it.

use super::json::Json;
use super::{
    BYTE_CONTAINER_TYPES, Capture, ErrorExpr, Expr, MAX_SAFE_INTEGER, Message, PathKey, RemapExpr,
    element_size,
};
use crate::error::ProtocolError;
use crate::limits::Limits;
use std::borrow::Cow;

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
pub(super) fn parse_json<'a>(text: &'a str, limits: &Limits) -> Result<Json<'a>, ProtocolError> {
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
        if text.len() <= limits.max_message_size {
            if let Some(write) = parse_stream_write(text) {
                return Ok(write);
            }
            if let Some(message) = super::direct::message(text, limits) {
                return Ok(message);
            }
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

    pub(super) fn from_tree(json: &Json<'_>, limits: &Limits) -> Result<Message, ProtocolError> {
        let arr = json.as_array().ok_or_else(|| bad(json))?;
        let kind = arr
            .first()
            .and_then(Json::as_str)
            .ok_or_else(|| bad(json))?;
        let p = Parser { limits };
        let int = |i: usize| arr.get(i).and_then(as_id).ok_or_else(|| bad(json));
        // Elements past those a message needs are ignored, as capnweb ignores them.
        let n = arr.len();
        let msg = match kind {
            "push" if n >= 2 => Message::Push(p.expr(&arr[1], 0)?),
            "stream" if n >= 2 => Message::Stream(p.expr(&arr[1], 0)?),
            "pull" if n >= 2 => Message::Pull(int(1)?),
            "resolve" if n >= 3 => Message::Resolve(int(1)?, p.expr(&arr[2], 0)?),
            "reject" if n >= 3 => Message::Reject(int(1)?, p.expr(&arr[2], 0)?),
            "release" if n >= 3 => {
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
            "abort" if n >= 2 => Message::Abort(p.expr(&arr[1], 0)?),
            "pipe" => Message::Pipe,
            "push" | "stream" | "pull" | "resolve" | "reject" | "release" | "abort" => {
                return Err(bad(json));
            }
            other => return Err(ProtocolError::UnknownMessage(truncate(other))),
        };
        Ok(msg)
    }
}

impl Expr {
    /// Parses one expression from JSON text, enforcing `limits`.
    pub fn parse(text: &str, limits: &Limits) -> Result<Expr, ProtocolError> {
        if text.len() <= limits.max_message_size
            && let Some(expr) = super::direct::expr(text, limits)
        {
            return Ok(expr);
        }
        Parser { limits }.expr(&parse_json(text, limits)?, 0)
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
        // As in capnweb, elements past those a form reads are ignored, but for the forms
        // whose length capnweb checks (`undefined`, `url`, `headers`, `request`,
        // `response`, `blob`, `remap`, and `import`/`pipeline` up to four).
        let expr = match (tag, arr.len()) {
            ("undefined", 1) => Expr::Undefined,
            ("inf", _) => Expr::Inf,
            ("-inf", _) => Expr::NegInf,
            ("nan", _) => Expr::NaN,
            ("bigint", 2..) => {
                let text = str_at(1).ok_or_else(unknown)?;
                if text.len() > self.limits.max_bigint_digits {
                    return Err(ProtocolError::BigIntTooLong {
                        limit: self.limits.max_bigint_digits,
                    });
                }
                Expr::BigInt(bigint_digits(text).ok_or_else(unknown)?.into_owned())
            }
            ("date", 2..) => match &arr[1] {
                Json::Null => Expr::Date(None),
                Json::Number(n, _) => Expr::Date(Some(*n)),
                _ => return Err(unknown()),
            },
            ("bytes", 2..) => {
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
            ("error", 3..) => {
                let (Some(name), Some(message)) = (str_at(1), str_at(2)) else {
                    return Err(unknown());
                };
                let stack = str_at(3).map(str::to_owned);
                let props = match arr.get(4) {
                    None => None,
                    Some(Json::Object(map)) => Some(self.object(map, depth)?),
                    Some(_) => return Err(unknown()),
                };
                Expr::Error(Box::new(ErrorExpr {
                    name: name.to_owned(),
                    message: message.to_owned(),
                    stack,
                    props,
                }))
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
            ("export", 2..) => Expr::Export(id_at(1).ok_or_else(unknown)?),
            ("promise", 2..) => Expr::Promise(id_at(1).ok_or_else(unknown)?),
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
                Expr::Remap(Box::new(RemapExpr {
                    id,
                    path,
                    captures,
                    instructions,
                }))
            }
            ("readable", 2..) => Expr::Readable(id_at(1).ok_or_else(unknown)?),
            ("writable", 2..) => Expr::Writable(id_at(1).ok_or_else(unknown)?),
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
                let init = Box::new(init_map(fields));
                Expr::Request { url, body, init }
            }
            ("response", 3) => {
                let body = Box::new(self.expr(&arr[1], depth + 1)?);
                let fields = arr[2].as_object().ok_or_else(unknown)?;
                check_header_pairs(fields)?;
                let init = Box::new(
                    fields
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_serde()))
                        .collect(),
                );
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
pub(super) fn parse_stream_write(text: &str) -> Option<Message> {
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

/// The digits of a `bigint`'s text, read as JavaScript's `BigInt()` reads a string:
/// whitespace around it ignored, an optional `+` or `-`, and no digits at all for 0.
/// `None` for anything else, the `0x`, `0o` and `0b` forms included: `BigInt()` takes
/// those too, but no capnweb peer writes them, and turning them into decimal digits costs
/// time quadratic in their length. Borrowed when the text is already plain decimal.
fn bigint_digits(text: &str) -> Option<Cow<'_, str>> {
    let plain = |digits: &str| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if plain(text.strip_prefix('-').unwrap_or(text)) {
        return Some(Cow::Borrowed(text));
    }
    // JavaScript's white space and line terminators: Unicode's White_Space but U+0085,
    // and U+FEFF.
    let trimmed =
        text.trim_matches(|c: char| (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}');
    if trimmed.is_empty() {
        return Some(Cow::Borrowed("0"));
    }
    let (sign, digits) = match trimmed.as_bytes()[0] {
        b'-' => ("-", &trimmed[1..]),
        b'+' => ("", &trimmed[1..]),
        _ => ("", trimmed),
    };
    plain(digits).then(|| Cow::Owned(format!("{sign}{digits}")))
}

/// Decodes base64 as capnweb's peers accept it: standard alphabet, padding optional.
/// (SIMD-accelerated: stream chunks make base64 the largest cost of a transfer.) Text
/// the fast decoder refuses is tried again as every capnweb runtime (Node's `Buffer`,
/// browsers' `atob` and `Uint8Array.fromBase64`) reads it: ASCII white space ignored, and
/// the unused low bits of the last character ignored.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    base64_simd::STANDARD_NO_PAD
        .decode_to_vec(s.trim_end_matches('='))
        .ok()
        .or_else(|| decode_base64_loosely(s))
}

fn decode_base64_loosely(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut compact: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r'))
        .collect();
    while compact.last() == Some(&b'=') {
        compact.pop();
    }
    // The last character of a group of two or three carries 4 or 2 bits that no byte
    // uses: cleared, so that the strict decoder takes them.
    let unused = match compact.len() % 4 {
        2 => 0b1111,
        3 => 0b11,
        _ => 0,
    };
    if let Some(last) = compact.last_mut()
        && unused != 0
    {
        let value = ALPHABET.iter().position(|a| a == last)?;
        *last = ALPHABET[value & !unused];
    }
    base64_simd::STANDARD_NO_PAD.decode_to_vec(&compact).ok()
}
