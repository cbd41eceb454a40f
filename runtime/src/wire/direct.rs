//! JSON text straight to [`Message`], without a JSON tree in between, for the forms that
//! calls and their results are made of: plain JSON, escaped arrays, `undefined`, the
//! non-finite numbers, `bigint`, `date`, `export`, `promise`, `import` and `pipeline`, in
//! `push`, `stream`, `pull`, `resolve`, `reject` and `release`.
//!
//! Anything else, and anything wrong, gives `None`: the message is then read again by the
//! tree parser ([`super::parse`]), which takes every form and names every error. This
//! reader accepts only what the tree parser accepts, and builds the same message (a test
//! compares the two on every form); it is here because building the tree costs as much as
//! reading the text, and held a second copy of every value while a message was read.

use super::json::{Json, Reader, last_wins};
use super::{Expr, MAX_SAFE_INTEGER, Message, PathKey};
use crate::limits::Limits;

/// Reads `text` as one message, or `None` (see the module's documentation).
pub(super) fn message(text: &str, limits: &Limits) -> Option<Message> {
    Direct::new(text, limits).whole(Direct::message)
}

/// Reads `text` as one expression, or `None`, as [`message`] does.
pub(super) fn expr(text: &str, limits: &Limits) -> Option<Expr> {
    Direct::new(text, limits).whole(|r| r.expr(0))
}

/// A call whose arguments hold no capability: `["push", ["pipeline", id, path, [args]]]`
/// (or `stream`), each argument plain data (JSON, escaped arrays, `undefined`, the
/// non-finite numbers, `bigint`, `date`), checked as [`message`] checks them. Its
/// arguments stay text, to be read straight into the method's parameter types.
pub(crate) struct PlainCall {
    /// It came as a `stream` message.
    pub(crate) stream: bool,
    /// The ID it calls (an export of the receiving side).
    pub(crate) id: i64,
    /// (A method name is one key: kept inline, as the argument ranges are.)
    pub(crate) path: smallvec::SmallVec<[PathKey; 1]>,
    /// Where each argument's text is.
    pub(crate) args: ArgRanges,
}

/// Where each argument of a [`PlainCall`] is in its text (inline for up to four).
pub(crate) type ArgRanges = smallvec::SmallVec<[std::ops::Range<usize>; 4]>;

/// Reads `text` as a [`PlainCall`], or `None` if it is anything else (a message to read
/// with [`message`]).
pub(crate) fn plain_call(text: &str, limits: &Limits) -> Option<PlainCall> {
    // Over the message limit: [`Message::parse`] refuses it, naming the limit.
    if text.len() > limits.max_message_size || limits.max_depth == 0 {
        return None;
    }
    Direct::new(text, limits).whole(Direct::plain_call)
}

struct Direct<'a, 'l> {
    reader: Reader<'a>,
    limits: &'l Limits,
}

impl<'a, 'l> Direct<'a, 'l> {
    fn new(text: &'a str, limits: &'l Limits) -> Self {
        Direct {
            reader: Reader {
                text,
                bytes: text.as_bytes(),
                at: 0,
            },
            limits,
        }
    }

    /// What `read` reads, if it is the whole text but whitespace.
    fn whole<T>(mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let value = read(&mut self)?;
        self.reader.skip_space();
        (self.reader.at == self.reader.bytes.len()).then_some(value)
    }

    /// The next byte after any whitespace, not taken.
    fn peek(&mut self) -> Option<u8> {
        self.reader.skip_space();
        self.reader.bytes.get(self.reader.at).copied()
    }

    /// Takes `byte`, after any whitespace, or fails.
    fn take(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.reader.at += 1)
    }

    fn string(&mut self) -> Option<String> {
        self.borrowed_string().map(std::borrow::Cow::into_owned)
    }

    /// A string, borrowed from the text when it has no escapes (a tag, compared and
    /// dropped, need not be copied).
    fn borrowed_string(&mut self) -> Option<std::borrow::Cow<'a, str>> {
        (self.peek()? == b'"').then_some(())?;
        self.reader.string().ok()
    }

    /// A number: its value, and its exact value if it is an integer that fits `i64`.
    fn number(&mut self) -> Option<(f64, Option<i64>)> {
        matches!(self.peek()?, b'-' | b'0'..=b'9').then_some(())?;
        match self.reader.number().ok()? {
            Json::Number(f, int) => Some((f, int)),
            _ => None,
        }
    }

    /// An ID, as the tree parser takes one: an integer, or a float with no fraction
    /// within JavaScript's safe integers.
    fn id(&mut self) -> Option<i64> {
        match self.number()? {
            (_, Some(i)) => Some(i),
            (f, None) => (f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER).then_some(f as i64),
        }
    }

    fn message(&mut self) -> Option<Message> {
        self.take(b'[')?;
        let tag = self.borrowed_string()?;
        self.take(b',')?;
        let message = match tag.as_ref() {
            "push" => Message::Push(self.expr(0)?),
            "stream" => Message::Stream(self.expr(0)?),
            "pull" => Message::Pull(self.id()?),
            "resolve" => {
                let id = self.id()?;
                self.take(b',')?;
                Message::Resolve(id, self.expr(0)?)
            }
            "reject" => {
                let id = self.id()?;
                self.take(b',')?;
                Message::Reject(id, self.expr(0)?)
            }
            "release" => {
                let id = self.id()?;
                self.take(b',')?;
                let count = match self.number()? {
                    (_, Some(i)) => u64::try_from(i).ok()?,
                    (f, None) => (f.fract() == 0.0 && f >= 0.0).then_some(f as u64)?,
                };
                Message::Release(id, count)
            }
            _ => return None,
        };
        self.take(b']')?;
        Some(message)
    }

    /// Whether `digits` are a `bigint`'s as this reader takes them (the tree parser takes
    /// the rest): an optional `-` and decimal digits, within `max_bigint_digits`.
    fn bigint_digits(&self, digits: &str) -> bool {
        let decimal = digits.strip_prefix('-').unwrap_or(digits);
        digits.len() <= self.limits.max_bigint_digits
            && !decimal.is_empty()
            && decimal.bytes().all(|b| b.is_ascii_digit())
    }

    fn plain_call(&mut self) -> Option<PlainCall> {
        self.take(b'[')?;
        let stream = match self.borrowed_string()?.as_ref() {
            "push" => false,
            "stream" => true,
            _ => return None,
        };
        self.take(b',')?;
        self.take(b'[')?;
        if self.borrowed_string()? != "pipeline" {
            return None;
        }
        self.take(b',')?;
        let id = self.id()?;
        self.take(b',')?;
        let path = self.path()?;
        self.take(b',')?;
        self.take(b'[')?;
        let mut args = ArgRanges::new();
        self.plain_list(|r| {
            r.reader.skip_space();
            let start = r.reader.at;
            // Arguments are at depth 1, as `expr` reads them inside a `push`.
            r.plain(1)?;
            args.push(start..r.reader.at);
            Some(())
        })?;
        self.take(b']')?;
        self.take(b']')?;
        Some(PlainCall {
            stream,
            id,
            path,
            args,
        })
    }

    /// The items of a list whose `[` is taken, each read by `item`, up to and with its `]`.
    fn plain_list(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.peek()? == b']' {
            self.reader.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.reader.at += 1,
                b']' => {
                    self.reader.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Steps over one expression of plain data, checking it as [`Self::expr`] would read
    /// it, without building it; `None` for anything `expr` would refuse, and for any form
    /// that is not plain data (a capability, an error, a stream, ...).
    fn plain(&mut self, depth: usize) -> Option<()> {
        if depth >= self.limits.max_depth {
            return None;
        }
        match self.peek()? {
            b'n' => self.reader.expect("null").ok(),
            b't' => self.reader.expect("true").ok(),
            b'f' => self.reader.expect("false").ok(),
            b'"' => self.borrowed_string().map(drop),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            b'{' => {
                self.reader.at += 1;
                if self.peek()? == b'}' {
                    self.reader.at += 1;
                    return Some(());
                }
                loop {
                    self.borrowed_string()?;
                    self.take(b':')?;
                    self.plain(depth + 1)?;
                    match self.peek()? {
                        b',' => self.reader.at += 1,
                        b'}' => {
                            self.reader.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.reader.at += 1;
                match self.peek()? {
                    b'[' => {
                        self.reader.at += 1;
                        self.plain_list(|r| r.plain(depth + 1))?;
                        self.take(b']')
                    }
                    b'"' => {
                        match self.borrowed_string()?.as_ref() {
                            "undefined" | "inf" | "-inf" | "nan" => {}
                            "date" => {
                                self.take(b',')?;
                                if self.peek()? == b'n' {
                                    self.reader.expect("null").ok()?;
                                } else {
                                    self.number()?;
                                }
                            }
                            "bigint" => {
                                self.take(b',')?;
                                let digits = self.borrowed_string()?;
                                self.bigint_digits(&digits).then_some(())?;
                            }
                            _ => return None,
                        }
                        self.take(b']')
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn expr(&mut self, depth: usize) -> Option<Expr> {
        if depth >= self.limits.max_depth {
            return None;
        }
        Some(match self.peek()? {
            b'n' => self.reader.expect("null").ok().map(|()| Expr::Null)?,
            b't' => self.reader.expect("true").ok().map(|()| Expr::Bool(true))?,
            b'f' => self
                .reader
                .expect("false")
                .ok()
                .map(|()| Expr::Bool(false))?,
            b'"' => Expr::String(self.string()?),
            b'-' | b'0'..=b'9' => Expr::Number(self.number()?.0),
            b'{' => Expr::Object(self.object(depth)?),
            b'[' => {
                self.reader.at += 1;
                match self.peek()? {
                    b'[' => {
                        self.reader.at += 1;
                        let items = self.elements(depth)?;
                        self.take(b']')?;
                        Expr::Array(items)
                    }
                    b'"' => self.special(depth)?,
                    _ => return None,
                }
            }
            _ => return None,
        })
    }

    /// The elements of an array whose `[` is taken, up to and with its `]`.
    fn elements(&mut self, depth: usize) -> Option<Vec<Expr>> {
        let mut items = Vec::new();
        if self.peek()? == b']' {
            self.reader.at += 1;
            return Some(items);
        }
        loop {
            items.push(self.expr(depth + 1)?);
            match self.peek()? {
                b',' => self.reader.at += 1,
                b']' => {
                    self.reader.at += 1;
                    return Some(items);
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<Vec<(String, Expr)>> {
        self.take(b'{')?;
        let mut fields = Vec::new();
        if self.peek()? == b'}' {
            self.reader.at += 1;
            return Some(fields);
        }
        loop {
            let key = self.string()?;
            self.take(b':')?;
            fields.push((key, self.expr(depth + 1)?));
            match self.peek()? {
                b',' => self.reader.at += 1,
                b'}' => {
                    self.reader.at += 1;
                    return Some(last_wins(fields));
                }
                _ => return None,
            }
        }
    }

    /// A tagged form, its `[` taken and its tag next, up to and with its `]`.
    fn special(&mut self, depth: usize) -> Option<Expr> {
        let tag = self.borrowed_string()?;
        let expr = match tag.as_ref() {
            "undefined" => Expr::Undefined,
            "inf" => Expr::Inf,
            "-inf" => Expr::NegInf,
            "nan" => Expr::NaN,
            "export" | "promise" => {
                self.take(b',')?;
                let id = self.id()?;
                if tag == "export" {
                    Expr::Export(id)
                } else {
                    Expr::Promise(id)
                }
            }
            "date" => {
                self.take(b',')?;
                if self.peek()? == b'n' {
                    self.reader.expect("null").ok()?;
                    Expr::Date(None)
                } else {
                    Expr::Date(Some(self.number()?.0))
                }
            }
            "bigint" => {
                self.take(b',')?;
                let digits = self.string()?;
                self.bigint_digits(&digits)
                    .then_some(Expr::BigInt(digits))?
            }
            "import" | "pipeline" => {
                self.take(b',')?;
                let id = self.id()?;
                let mut path = None;
                let mut args = None;
                if self.peek()? == b',' {
                    self.reader.at += 1;
                    path = Some(self.path()?);
                    if self.peek()? == b',' {
                        self.reader.at += 1;
                        self.take(b'[')?;
                        args = Some(self.elements(depth)?);
                    }
                }
                if tag == "import" {
                    Expr::Import { id, path, args }
                } else {
                    Expr::Pipeline { id, path, args }
                }
            }
            _ => return None,
        };
        self.take(b']')?;
        Some(expr)
    }

    /// A property path: an array of names and indexes.
    fn path<C: Default + Extend<PathKey>>(&mut self) -> Option<C> {
        self.take(b'[')?;
        let mut keys = C::default();
        if self.peek()? == b']' {
            self.reader.at += 1;
            return Some(keys);
        }
        loop {
            keys.extend(Some(match self.peek()? {
                b'"' => PathKey::Name(self.string()?),
                _ => match self.number()? {
                    (_, Some(i)) => PathKey::Index(u64::try_from(i).ok()?),
                    (f, None) => {
                        PathKey::Index((f.fract() == 0.0 && f >= 0.0).then_some(f as u64)?)
                    }
                },
            }));
            match self.peek()? {
                b',' => self.reader.at += 1,
                b']' => {
                    self.reader.at += 1;
                    return Some(keys);
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::{parse_json, parse_stream_write};
    use super::*;

    /// The tree parser's reading of `text`.
    fn by_tree(text: &str, limits: &Limits) -> Result<Message, crate::ProtocolError> {
        Message::from_tree(&parse_json(text, limits)?, limits)
    }

    /// What the direct reader makes of `text` is what the tree parser makes of it.
    fn agrees(text: &str, limits: &Limits) -> Option<Message> {
        let direct = message(text, limits);
        if let Some(direct) = &direct {
            match by_tree(text, limits) {
                Ok(tree) => assert_eq!(direct, &tree, "{text}"),
                Err(e) => panic!("{text}: direct reader took what the tree parser refuses: {e}"),
            }
        }
        direct
    }

    #[test]
    fn reads_the_forms_of_calls_as_the_tree_parser_does() {
        let limits = Limits::default();
        for text in [
            r#"["push",["pipeline",0,["add"],[1,2]]]"#,
            r#"["stream",["pipeline",0,["add"],[1.5,-2e3]]]"#,
            r#" [ "push" , [ "pipeline" , 0 , [ "a" , 1 , "b" ] ] ] "#,
            r#"["push",["pipeline",0]]"#,
            r#"["push",["import",3,["x"],[1]]]"#,
            r#"["push",["import",3.0,[2.0]]]"#,
            r#"["pull",1]"#,
            r#"["pull",7.0]"#,
            r#"["resolve",1,3]"#,
            r#"["resolve",1,[[1,"two",null,true,false,{"a":["undefined"]}]]]"#,
            r#"["resolve",1,[[]]]"#,
            r#"["resolve",1,{}]"#,
            r#"["resolve",1,{"a":1,"a":2,"b":[["x"]]}]"#,
            r#"["resolve",1,"\ud83d\ude00 \ud800 \u00e9\n"]"#,
            r#"["resolve",1,1e400]"#,
            r#"["resolve",-1,[[["inf"],["-inf"],["nan"],["bigint","-123"],["date",1.5],["date",null]]]]"#,
            r#"["resolve",2,[[["export",-1],["promise",-2]]]]"#,
            r#"["reject",1,"plain"]"#,
            r#"["release",-1,2]"#,
            r#"["release",3,2.0]"#,
        ] {
            assert!(
                agrees(text, &limits).is_some(),
                "{text} was not read directly"
            );
        }
    }

    /// Limits small enough to test their edges with short texts.
    fn small_limits() -> Limits {
        Limits {
            max_depth: 4,
            max_bigint_digits: 5,
            ..Limits::default()
        }
    }

    #[test]
    fn leaves_every_other_form_and_every_error_to_the_tree_parser() {
        let limits = small_limits();
        for text in [
            // Other forms: read by the tree parser.
            r#"["pipe"]"#,
            r#"["abort",["error","Error","bye"]]"#,
            r#"["reject",1,["error","RangeError","test error"]]"#,
            r#"["push",[[["bytes","AQID"]]]]"#,
            r#"["push",["remap",1,[],[],[]]]"#,
            r#"["push",[[["url","https://example.com/"]]]]"#,
            // Errors: named by the tree parser.
            r#"["push",["pipeline",0,["a"],[1],5]]"#,
            r#"["push",["pipeline",0,null]]"#,
            r#"["push",["pipeline","0"]]"#,
            r#"["push",["pipeline",0.5]]"#,
            r#"["push",["pipeline",0,[-1]]]"#,
            r#"["push",["pipeline",0,[1.5]]]"#,
            r#"["push",["undefined",1]]"#,
            r#"["push",[]]"#,
            r#"["push",[[1],[2]]]"#,
            r#"["push",[1]]"#,
            r#"["push",["bigint","123456"]]"#,
            r#"["push",["bigint","12a"]]"#,
            r#"["push",["bigint",""]]"#,
            r#"["push",["date","x"]]"#,
            r#"["push",[[[[[[[[[[1]]]]]]]]]]]"#,
            r#"["push",{"a":{"b":{"c":{"d":{}}}}}]"#,
            r#"["pull",-1.5]"#,
            r#"["pull"]"#,
            r#"["pull",1,2]"#,
            r#"["release",1,-1]"#,
            r#"["release",1]"#,
            r#"["resolve",1]"#,
            r#"["resolve",1,2] x"#,
            r#"["resolve",1,tru]"#,
            r#"["resolve",1,"\x"]"#,
            r#"["resolve",1,01]"#,
            r#"["resolve",1,{"a" 1}]"#,
            r#"["push",["pipeline",0,["a"],[1]]"#,
            r#"["nonsense",1]"#,
            "",
            "[",
        ] {
            assert_eq!(agrees(text, &limits), None, "{text} was read directly");
        }
    }

    /// What [`plain_call`] makes of `text` is the message [`message`] reads: the same
    /// callee, path and arguments (each argument's text read on its own).
    fn plain_agrees(text: &str, limits: &Limits) -> Option<PlainCall> {
        let call = plain_call(text, limits)?;
        let Some(read) = agrees(text, limits) else {
            panic!("{text}: taken as a plain call, refused as a message");
        };
        let (Message::Push(expr) | Message::Stream(expr)) = read else {
            panic!("{text}: a plain call that is not a push");
        };
        let Expr::Pipeline { id, path, args } = expr else {
            panic!("{text}: a plain call that is not a pipeline");
        };
        assert_eq!((id, path), (call.id, Some(call.path.to_vec())), "{text}");
        let texts: Vec<Expr> = call
            .args
            .iter()
            .map(|r| Expr::parse(&text[r.clone()], limits).unwrap())
            .collect();
        assert_eq!(Some(texts), args, "{text}");
        Some(call)
    }

    #[test]
    fn a_call_of_plain_data_is_found_with_its_arguments_text() {
        let limits = small_limits();
        for text in [
            r#"["push",["pipeline",0,["add"],[1,2]]]"#,
            r#"["stream",["pipeline",3,["a","b"],[]]]"#,
            r#" [ "push" , [ "pipeline" , 0 , [ "f" ] , [ 1 , "x\"y" , null , true ] ] ] "#,
            r#"["push",["pipeline",0,["count"],[[[1,2,3]]]]]"#,
            r#"["push",["pipeline",0,["f"],[{"a":[[1]],"a":2},["undefined"],["inf"],["-inf"],["nan"]]]]"#,
            r#"["push",["pipeline",0,["f"],[["bigint","-123"],["date",1.5],["date",null],[[]],{}]]]"#,
            r#"["push",["pipeline",0,["f"],["\ud800",1e400]]]"#,
        ] {
            assert!(plain_agrees(text, &limits).is_some(), "{text} is plain");
        }
        for text in [
            // Capabilities and other forms: evaluated with the session.
            r#"["push",["pipeline",0,["f"],[["export",-1]]]]"#,
            r#"["push",["pipeline",0,["f"],[[[1,["promise",-1]]]]]]"#,
            r#"["push",["pipeline",0,["f"],[{"cb":["import",1]}]]]"#,
            r#"["push",["pipeline",0,["f"],[["pipeline",1,["x"]]]]]"#,
            r#"["push",["pipeline",0,["f"],[["error","Error","x"]]]]"#,
            r#"["push",["pipeline",0,["f"],[["bytes","AQID"]]]]"#,
            r#"["push",["pipeline",0,["f"],[["writable",-1]]]]"#,
            // Not a call with arguments.
            r#"["push",["pipeline",0,["f"]]]"#,
            r#"["push",["import",0,["f"],[1]]]"#,
            r#"["push",[[1]]]"#,
            r#"["resolve",1,[[1]]]"#,
            // Refused as messages too.
            r#"["push",["pipeline",0,["f"],[["bigint","123456"]]]]"#,
            r#"["push",["pipeline",0,["f"],[[[[[[[1]]]]]]]]]"#,
            r#"["push",["pipeline",0,["f"],[{"a":{"b":{"c":{}}}}]]]"#,
            r#"["push",["pipeline",0,["f"],[01]]]"#,
            r#"["push",["pipeline",0,["f"],[1]]] x"#,
            r#"["push",["pipeline",0,["f"],[1]]"#,
            r#"["push",["pipeline",0,["f"],[1],2]]"#,
        ] {
            assert!(plain_agrees(text, &limits).is_none(), "{text} is not plain");
        }
        let small = Limits {
            max_message_size: 20,
            ..Limits::default()
        };
        let text = r#"["push",["pipeline",0,["add"],[1,2]]]"#;
        assert!(plain_call(text, &small).is_none(), "over max_message_size");
    }

    #[test]
    fn message_parse_takes_the_direct_path_and_still_names_errors() {
        let limits = Limits::default();
        let text = r#"["push",["pipeline",0,["add"],[1,2]]]"#;
        assert!(parse_stream_write(text).is_none());
        assert_eq!(
            Message::parse(text, &limits).unwrap(),
            by_tree(text, &limits).unwrap()
        );
        let deep = format!("[\"push\",{}1{}]", "[[".repeat(300), "]]".repeat(300));
        let refused = Message::parse(&deep, &limits);
        assert!(
            matches!(refused, Err(crate::ProtocolError::TooDeep { .. })),
            "{refused:?}"
        );
    }
}
