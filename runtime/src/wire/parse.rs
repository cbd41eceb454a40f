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
                let decimal = digits.strip_prefix('-').unwrap_or(digits);
                if decimal.is_empty() || !decimal.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(unknown());
                }
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
                Expr::Remap(Box::new(RemapExpr {
                    id,
                    path,
                    captures,
                    instructions,
                }))
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

/// Decodes base64 as capnweb's peers accept it: standard alphabet, padding optional.
/// (SIMD-accelerated: stream chunks make base64 the largest cost of a transfer.)
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    base64_simd::STANDARD_NO_PAD
        .decode_to_vec(s.trim_end_matches('='))
        .ok()
}
