//! Would a binary encoding between two capwire peers pay for itself (issue 14, item 4)?
//! The per-message codec cost of the messages a call exchanges, and of two larger values,
//! in capwire's JSON today and in CBOR and MessagePack, measured in the same run, with the
//! encoded sizes, and the share of a call's CPU the codec takes.
//!
//! ```text
//! cargo bench -p capwire-bench --bench encoding
//! ```
//!
//! Codecs, each decoding into capwire's own `wire::Message` (what the session consumes)
//! and encoding from it:
//!
//! - **JSON, capwire today**: `Message::parse(text, &limits)` and
//!   `Message::to_text_within(limit)`, exactly what the session calls.
//! - **JSON, serde direct**: the same text read by `serde_json` straight into `Message`
//!   through the hand-written `Deserialize` below (no intermediate tree, no limits checked),
//!   and written by the `Serialize` below into a reused buffer: what JSON could cost with
//!   a direct reader, the control for "is it the format or the model?".
//! - **CBOR (`ciborium` 0.2)** and **MessagePack (`rmp-serde` 1)**: the same expression
//!   model (the same tagged arrays, `["resolve", id, expr]`), through the same `Serialize`
//!   and `Deserialize`, in binary. Chosen to be the best case for binary: decoding builds
//!   the `Message` directly with no tree in between and checks no limits (the JSON path
//!   checks size and depth), encoding writes arrays of known length (CBOR's definite
//!   form, no buffering in rmp-serde) into a reused buffer, and tags are matched without
//!   allocating.
//!
//! Each figure is the median of 5 timed runs of a loop over one message. The call's share
//! uses the CPU per call of the side-by-side bench at 64 in flight (client and server
//! together; 7,300 ns in BENCHMARKS.md, or `CAPWIRE_CALL_CPU_NS`).

use capwire::Limits;
use capwire::wire::{Expr, Message, PathKey};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::hint::black_box;
use std::time::Instant;

// ---------------------------------------------------------------------------------------
// Serialize: the capnweb expression model with known lengths. (capwire's own `Serialize`
// writes arrays of unknown length, which CBOR writes in its indefinite form and rmp-serde
// buffers to count; this one is the fair, faster choice for binary.)

struct M<'a>(&'a Message);
struct E<'a>(&'a Expr);
struct Elements<'a>(&'a [Expr]);
struct Path<'a>(&'a [PathKey]);
struct Key<'a>(&'a PathKey);

/// A number as capwire writes it: an integer when it is one.
fn number<S: Serializer>(s: S, n: f64) -> Result<S::Ok, S::Error> {
    if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 {
        s.serialize_i64(n as i64)
    } else {
        s.serialize_f64(n)
    }
}

impl Serialize for M<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (tag, id, expr, count) = match self.0 {
            Message::Push(e) => ("push", None, Some(e), None),
            Message::Stream(e) => ("stream", None, Some(e), None),
            Message::Abort(e) => ("abort", None, Some(e), None),
            Message::Pull(id) => ("pull", Some(*id), None, None),
            Message::Resolve(id, e) => ("resolve", Some(*id), Some(e), None),
            Message::Reject(id, e) => ("reject", Some(*id), Some(e), None),
            Message::Release(id, n) => ("release", Some(*id), None, Some(*n)),
            Message::Pipe => ("pipe", None, None, None),
        };
        let len = 1 + id.is_some() as usize + expr.is_some() as usize + count.is_some() as usize;
        let mut seq = s.serialize_seq(Some(len))?;
        seq.serialize_element(tag)?;
        if let Some(id) = id {
            seq.serialize_element(&id)?;
        }
        if let Some(e) = expr {
            seq.serialize_element(&E(e))?;
        }
        if let Some(n) = count {
            seq.serialize_element(&n)?;
        }
        seq.end()
    }
}

impl Serialize for E<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Expr::Null => s.serialize_unit(),
            Expr::Bool(b) => s.serialize_bool(*b),
            Expr::Number(n) if n.is_finite() => number(s, *n),
            Expr::String(x) => s.serialize_str(x),
            Expr::Array(items) => {
                let mut seq = s.serialize_seq(Some(1))?;
                seq.serialize_element(&Elements(items))?;
                seq.end()
            }
            Expr::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, &E(v))?;
                }
                map.end()
            }
            Expr::Undefined => {
                let mut seq = s.serialize_seq(Some(1))?;
                seq.serialize_element("undefined")?;
                seq.end()
            }
            Expr::Import { id, path, args } | Expr::Pipeline { id, path, args } => {
                let tag = if matches!(self.0, Expr::Import { .. }) {
                    "import"
                } else {
                    "pipeline"
                };
                let len = 2 + (path.is_some() || args.is_some()) as usize + args.is_some() as usize;
                let mut seq = s.serialize_seq(Some(len))?;
                seq.serialize_element(tag)?;
                seq.serialize_element(id)?;
                if path.is_some() || args.is_some() {
                    seq.serialize_element(&Path(path.as_deref().unwrap_or(&[])))?;
                }
                if let Some(args) = args {
                    seq.serialize_element(&Elements(args))?;
                }
                seq.end()
            }
            Expr::Export(id) | Expr::Promise(id) => {
                let tag = if matches!(self.0, Expr::Export(_)) {
                    "export"
                } else {
                    "promise"
                };
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element(tag)?;
                seq.serialize_element(id)?;
                seq.end()
            }
            other => Err(ser::Error::custom(format!(
                "not a form this bench encodes: {other:?}"
            ))),
        }
    }
}

impl Serialize for Elements<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            seq.serialize_element(&E(e))?;
        }
        seq.end()
    }
}

impl Serialize for Path<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for k in self.0 {
            seq.serialize_element(&Key(k))?;
        }
        seq.end()
    }
}

impl Serialize for Key<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            PathKey::Name(n) => s.serialize_str(n),
            PathKey::Index(i) => s.serialize_u64(*i),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Deserialize: straight into capwire's `Message` and `Expr`, the forms these messages use
// (values, arrays, objects, pipeline/import, export/promise, undefined).

struct WireMessage(Message);
struct WireExpr(Expr);
struct Id(i64);
struct WireKey(PathKey);
struct WireElements(Vec<Expr>);
struct WirePath(Vec<PathKey>);

/// The first element of an array expression: a tag, or the inner array of `[[...]]`.
enum Head {
    Tag(Tag),
    Array(Vec<Expr>),
}

#[derive(Clone, Copy, PartialEq)]
enum Tag {
    Push,
    Stream,
    Pull,
    Resolve,
    Reject,
    Release,
    Abort,
    Pipe,
    Pipeline,
    Import,
    Export,
    Promise,
    Undefined,
}

fn tag(s: &str) -> Option<Tag> {
    Some(match s {
        "push" => Tag::Push,
        "stream" => Tag::Stream,
        "pull" => Tag::Pull,
        "resolve" => Tag::Resolve,
        "reject" => Tag::Reject,
        "release" => Tag::Release,
        "abort" => Tag::Abort,
        "pipe" => Tag::Pipe,
        "pipeline" => Tag::Pipeline,
        "import" => Tag::Import,
        "export" => Tag::Export,
        "promise" => Tag::Promise,
        "undefined" => Tag::Undefined,
        _ => return None,
    })
}

fn next<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("array too short"))
}

fn end<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<(), A::Error> {
    match seq.next_element::<de::IgnoredAny>()? {
        None => Ok(()),
        Some(_) => Err(de::Error::custom("array too long")),
    }
}

impl<'de> Deserialize<'de> for WireMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireMessage;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireMessage, A::Error> {
                let Head::Tag(t) = next(&mut seq)? else {
                    return Err(de::Error::custom("not a message"));
                };
                let msg = match t {
                    Tag::Push => Message::Push(next::<_, WireExpr>(&mut seq)?.0),
                    Tag::Stream => Message::Stream(next::<_, WireExpr>(&mut seq)?.0),
                    Tag::Abort => Message::Abort(next::<_, WireExpr>(&mut seq)?.0),
                    Tag::Pull => Message::Pull(next::<_, Id>(&mut seq)?.0),
                    Tag::Resolve => {
                        let id = next::<_, Id>(&mut seq)?.0;
                        Message::Resolve(id, next::<_, WireExpr>(&mut seq)?.0)
                    }
                    Tag::Reject => {
                        let id = next::<_, Id>(&mut seq)?.0;
                        Message::Reject(id, next::<_, WireExpr>(&mut seq)?.0)
                    }
                    Tag::Release => {
                        let id = next::<_, Id>(&mut seq)?.0;
                        Message::Release(id, next(&mut seq)?)
                    }
                    Tag::Pipe => Message::Pipe,
                    _ => return Err(de::Error::custom("not a message")),
                };
                end(&mut seq)?;
                Ok(WireMessage(msg))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Head;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tag or an array")
            }
            fn visit_str<Er: de::Error>(self, s: &str) -> Result<Head, Er> {
                tag(s)
                    .map(Head::Tag)
                    .ok_or_else(|| Er::custom("unknown tag"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Head, A::Error> {
                Ok(Head::Array(WireElements::visit(seq)?))
            }
        }
        d.deserialize_any(V)
    }
}

impl WireElements {
    fn visit<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Vec<Expr>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(WireExpr(e)) = seq.next_element()? {
            items.push(e);
        }
        Ok(items)
    }
}

impl<'de> Deserialize<'de> for WireElements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireElements;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of expressions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<WireElements, A::Error> {
                Ok(WireElements(WireElements::visit(seq)?))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> Deserialize<'de> for WireExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireExpr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an expression")
            }
            fn visit_unit<Er: de::Error>(self) -> Result<WireExpr, Er> {
                Ok(WireExpr(Expr::Null))
            }
            fn visit_none<Er: de::Error>(self) -> Result<WireExpr, Er> {
                Ok(WireExpr(Expr::Null))
            }
            fn visit_bool<Er: de::Error>(self, b: bool) -> Result<WireExpr, Er> {
                Ok(WireExpr(Expr::Bool(b)))
            }
            fn visit_i64<Er: de::Error>(self, n: i64) -> Result<WireExpr, Er> {
                Ok(WireExpr(Expr::Number(n as f64)))
            }
            fn visit_u64<Er: de::Error>(self, n: u64) -> Result<WireExpr, Er> {
                Ok(WireExpr(Expr::Number(n as f64)))
            }
            fn visit_f64<Er: de::Error>(self, n: f64) -> Result<WireExpr, Er> {
                Ok(WireExpr(Expr::Number(n)))
            }
            fn visit_str<Er: de::Error>(self, s: &str) -> Result<WireExpr, Er> {
                Ok(WireExpr(Expr::String(s.to_owned())))
            }
            fn visit_string<Er: de::Error>(self, s: String) -> Result<WireExpr, Er> {
                Ok(WireExpr(Expr::String(s)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireExpr, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
                while let Some((k, WireExpr(v))) = map.next_entry::<String, WireExpr>()? {
                    fields.push((k, v));
                }
                Ok(WireExpr(Expr::Object(fields)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireExpr, A::Error> {
                let expr = match next(&mut seq)? {
                    Head::Array(items) => Expr::Array(items),
                    Head::Tag(Tag::Undefined) => Expr::Undefined,
                    Head::Tag(t @ (Tag::Pipeline | Tag::Import)) => {
                        let id = next::<_, Id>(&mut seq)?.0;
                        let path = seq.next_element::<WirePath>()?.map(|p| p.0);
                        let args = seq.next_element::<WireElements>()?.map(|a| a.0);
                        if t == Tag::Import {
                            Expr::Import { id, path, args }
                        } else {
                            Expr::Pipeline { id, path, args }
                        }
                    }
                    Head::Tag(Tag::Export) => Expr::Export(next::<_, Id>(&mut seq)?.0),
                    Head::Tag(Tag::Promise) => Expr::Promise(next::<_, Id>(&mut seq)?.0),
                    Head::Tag(_) => return Err(de::Error::custom("not an expression")),
                };
                end(&mut seq)?;
                Ok(WireExpr(expr))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for WirePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WirePath;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a property path")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WirePath, A::Error> {
                let mut keys = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(WireKey(k)) = seq.next_element()? {
                    keys.push(k);
                }
                Ok(WirePath(keys))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> Deserialize<'de> for WireKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a property name or index")
            }
            fn visit_str<Er: de::Error>(self, s: &str) -> Result<WireKey, Er> {
                Ok(WireKey(PathKey::Name(s.to_owned())))
            }
            fn visit_u64<Er: de::Error>(self, n: u64) -> Result<WireKey, Er> {
                Ok(WireKey(PathKey::Index(n)))
            }
            fn visit_i64<Er: de::Error>(self, n: i64) -> Result<WireKey, Er> {
                u64::try_from(n)
                    .map(|n| WireKey(PathKey::Index(n)))
                    .map_err(|_| Er::custom("negative index"))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an ID")
            }
            fn visit_i64<Er: de::Error>(self, n: i64) -> Result<Id, Er> {
                Ok(Id(n))
            }
            fn visit_u64<Er: de::Error>(self, n: u64) -> Result<Id, Er> {
                i64::try_from(n)
                    .map(Id)
                    .map_err(|_| Er::custom("ID out of range"))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------
// The codecs and the measurement.

#[derive(Clone, Copy)]
enum Codec {
    JsonToday,
    JsonDirect,
    Cbor,
    MsgPack,
}

impl Codec {
    const ALL: [Codec; 4] = [
        Codec::JsonToday,
        Codec::JsonDirect,
        Codec::Cbor,
        Codec::MsgPack,
    ];

    fn name(self) -> &'static str {
        match self {
            Codec::JsonToday => "JSON, capwire today",
            Codec::JsonDirect => "JSON, serde direct",
            Codec::Cbor => "CBOR (ciborium)",
            Codec::MsgPack => "MessagePack (rmp-serde)",
        }
    }

    /// Encodes into `buf` (cleared first, so its capacity is reused), except for capwire
    /// today, which makes a new `String` per message as the session does.
    fn encode(self, msg: &Message, limits: &Limits, buf: &mut Vec<u8>) -> usize {
        buf.clear();
        match self {
            Codec::JsonToday => {
                let text = msg.to_text_within(limits.max_message_size).unwrap();
                let n = text.len();
                black_box(text);
                return n;
            }
            Codec::JsonDirect => serde_json::to_writer(&mut *buf, &M(msg)).unwrap(),
            Codec::Cbor => ciborium::into_writer(&M(msg), &mut *buf).unwrap(),
            Codec::MsgPack => rmp_serde::encode::write(&mut *buf, &M(msg)).unwrap(),
        }
        buf.len()
    }

    fn decode(self, bytes: &[u8], limits: &Limits) -> Message {
        match self {
            Codec::JsonToday => {
                Message::parse(std::str::from_utf8(bytes).unwrap(), limits).unwrap()
            }
            Codec::JsonDirect => serde_json::from_slice::<WireMessage>(bytes).unwrap().0,
            Codec::Cbor => ciborium::from_reader::<WireMessage, _>(bytes).unwrap().0,
            Codec::MsgPack => rmp_serde::from_slice::<WireMessage>(bytes).unwrap().0,
        }
    }
}

/// Median ns per iteration of `f` over 5 timed runs of `rounds` iterations.
fn time(rounds: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..rounds / 10 + 1 {
        f();
    }
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..rounds {
                f();
            }
            t0.elapsed().as_nanos() as f64 / rounds as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

struct Row {
    decode: f64,
    encode: f64,
    bytes: usize,
}

fn main() {
    let limits = Limits::default();
    let call_cpu_ns: f64 = std::env::var("CAPWIRE_CALL_CPU_NS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7300.0);
    let thousand: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let cases = [
        (
            "call: stream of add(1, 2)",
            r#"["stream",["pipeline",0,["add"],[1,2]]]"#.to_owned(),
            1_000_000,
        ),
        (
            "answer: resolve of 3",
            r#"["resolve",12345,3]"#.to_owned(),
            1_000_000,
        ),
        (
            "resolve of an object, 10 fields",
            r#"["resolve",12345,{"id":7,"name":"user7","email":"user7@example.com","age":31,"score":98.5,"city":"Lisbon","country":"PT","active":true,"created":1733011200000,"role":"admin"}]"#.to_owned(),
            300_000,
        ),
        (
            "resolve of 1,000 integers",
            format!(r#"["resolve",12345,[[{}]]]"#, thousand.join(",")),
            10_000,
        ),
    ];

    let mut table = Vec::new();
    for (name, text, rounds) in &cases {
        let msg = Message::parse(text, &limits).unwrap();
        println!("{name}:");
        let mut rows = Vec::new();
        for codec in Codec::ALL {
            let mut buf = Vec::with_capacity(16 * 1024);
            let bytes = codec.encode(&msg, &limits, &mut buf);
            let encoded = match codec {
                Codec::JsonToday => text.as_bytes().to_vec(),
                _ => buf.clone(),
            };
            // Every codec gives back the message it was given.
            assert_eq!(codec.decode(&encoded, &limits), msg, "{}", codec.name());
            let decode = time(*rounds, || {
                black_box(codec.decode(black_box(&encoded), &limits));
            });
            let encode = time(*rounds, || {
                black_box(codec.encode(black_box(&msg), &limits, &mut buf));
            });
            println!(
                "  {:<24} decode {:>9}  encode {:>9}  {bytes} bytes",
                codec.name(),
                show(decode),
                show(encode)
            );
            rows.push(Row {
                decode,
                encode,
                bytes,
            });
        }
        // The floor any decoder pays: allocating the same `Message` (its strings and
        // vectors), here by cloning it.
        let floor = time(*rounds, || {
            black_box(black_box(&msg).clone());
        });
        println!("  allocation floor (Message::clone) {}", show(floor));
        table.push((name, rows, floor));
    }

    println!();
    print!("| message | bytes JSON / CBOR / MsgPack |");
    for codec in Codec::ALL {
        print!(" {}: decode / encode |", codec.name());
    }
    println!(" Message::clone |");
    println!("|---|---|---|---|---|---|---|");
    for (name, rows, floor) in &table {
        print!(
            "| {name} | {} / {} / {} |",
            rows[0].bytes, rows[2].bytes, rows[3].bytes
        );
        for r in rows {
            print!(" {} / {} |", show(r.decode), show(r.encode));
        }
        println!(" {} |", show(*floor));
    }

    // One `add(a, b)` call: the client encodes the stream and decodes the resolve, the
    // server decodes the stream and encodes the resolve.
    println!();
    println!(
        "Per call (encode + decode of the call and of its answer), against {call_cpu_ns:.0} ns of CPU per call:"
    );
    let per_call = |i: usize| {
        table[0].1[i].decode + table[0].1[i].encode + table[1].1[i].decode + table[1].1[i].encode
    };
    let today = per_call(0);
    for (i, codec) in Codec::ALL.iter().enumerate() {
        let ns = per_call(i);
        println!(
            "  {:<24} {ns:>6.0} ns per call = {:>4.1} % of the call; saves {:>4.0} ns = {:>4.1} % against JSON today",
            codec.name(),
            100.0 * ns / call_cpu_ns,
            today - ns,
            100.0 * (today - ns) / call_cpu_ns
        );
    }
    println!(
        "  upper bound, a codec that costs nothing: saves {today:.0} ns = {:.1} % of the call",
        100.0 * today / call_cpu_ns
    );
    let direct = per_call(1);
    let floor = table[0].2 + table[1].2;
    for (i, codec) in Codec::ALL.iter().enumerate().skip(2) {
        let ns = per_call(i);
        println!(
            "  {:<24} against JSON, serde direct: saves {:>4.0} ns = {:>4.1} % of the call",
            codec.name(),
            direct - ns,
            100.0 * (direct - ns) / call_cpu_ns
        );
    }
    println!(
        "  upper bound of binary over JSON, serde direct (a binary codec that costs only the \
         allocation floor, {floor:.0} ns): saves {:.0} ns = {:.1} % of the call",
        direct - floor,
        100.0 * (direct - floor) / call_cpu_ns
    );
}

fn show(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
