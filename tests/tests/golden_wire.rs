//! Golden wire checks: for a broad set of values, capwire's encoding equals what capnweb's
//! `serialize()` produces, generated live by Node in this run; and capnweb accepts and
//! re-serializes capwire's encoding unchanged.

mod support;

use capwire::{BigInt, Bytes, Date, RpcError, Value, to_value};
use serde::Serialize;
use std::collections::BTreeMap;

fn bytes(data: &[u8], kind: Option<&str>) -> Value {
    Value::Bytes(Bytes {
        data: bytes_crate(data),
        kind: kind.map(str::to_owned),
    })
}

fn bytes_crate(data: &[u8]) -> ::bytes::Bytes {
    ::bytes::Bytes::copy_from_slice(data)
}

/// A struct with an optional field and a nested vector, through serde.
#[derive(Serialize)]
struct Object {
    a: i32,
    b: &'static str,
    c: Vec<bool>,
}

#[derive(Serialize)]
struct Inner {
    deep: (i32, BTreeMap<&'static str, Option<i32>>),
}

#[derive(Serialize)]
struct Outer {
    inner: Inner,
}

#[derive(Serialize)]
struct Nested {
    outer: Outer,
}

fn cases() -> Vec<(&'static str, Value)> {
    let two_64 = BigInt::parse("18446744073709551616").unwrap();
    let ser = |v: &dyn erased::Ser| v.to();
    vec![
        ("null", ser(&Option::<i32>::None)),
        ("true", ser(&true)),
        ("false", ser(&false)),
        ("int", ser(&42u8)),
        ("neg_int", ser(&-7i64)),
        ("float", ser(&3.5f32)),
        ("zero", ser(&0u64)),
        ("max_safe", ser(&9_007_199_254_740_991i64)),
        ("min_safe", ser(&-9_007_199_254_740_991i64)),
        ("string", ser(&"hello")),
        (
            "string_unicode",
            ser(&"héllo 🌍 \u{0} \u{1f} \"q\" \\ \n \t"),
        ),
        ("empty_string", ser(&String::new())),
        (
            "array",
            Value::Array(vec![1.into(), "two".into(), Value::Null]),
        ),
        ("nested_array", ser(&vec![(1, (2, vec![3]))])),
        ("empty_array", ser(&Vec::<i32>::new())),
        (
            "object",
            ser(&Object {
                a: 1,
                b: "x",
                c: vec![true],
            }),
        ),
        (
            "nested_object",
            ser(&Nested {
                outer: Outer {
                    inner: Inner {
                        deep: (1, BTreeMap::from([("x", None)])),
                    },
                },
            }),
        ),
        ("empty_object", ser(&BTreeMap::<String, i32>::new())),
        ("undefined", ser(&())),
        (
            "array_with_undefined",
            Value::Array(vec![1.into(), Value::Undefined]),
        ),
        (
            "object_with_undefined",
            Value::object([("a", Value::Undefined), ("b", 2.into())]),
        ),
        ("inf", ser(&f64::INFINITY)),
        ("neg_inf", ser(&f64::NEG_INFINITY)),
        ("nan", ser(&f64::NAN)),
        ("bigint", ser(&12_345_678_901_234_567_890u64)),
        ("neg_bigint", Value::BigInt(BigInt::from(-5i64))),
        ("bigint_zero", Value::BigInt(BigInt::parse("0").unwrap())),
        ("bigint_2_64", ser(&(1u128 << 64))),
        ("date", ser(&Date::from_millis(1_749_342_170_815.0))),
        ("date_zero", Value::Date(Date::from_millis(0.0))),
        ("date_nan", Value::Date(Date::from_millis(f64::NAN))),
        ("bytes", ser(&Bytes::from(vec![1u8, 2, 3, 255]))),
        ("bytes_empty", bytes(&[], None)),
        ("bytes_1", bytes(&[7], None)),
        ("bytes_2", bytes(&[7, 8], None)),
        (
            "bytes_u16",
            bytes(&[1, 0, 2, 0, 255, 255], Some("Uint16Array")),
        ),
        ("bytes_arraybuffer", bytes(&[9, 10], Some("ArrayBuffer"))),
        ("bytes_i8", bytes(&[255, 1], Some("Int8Array"))),
        (
            "bytes_f64",
            bytes(&1.5f64.to_le_bytes(), Some("Float64Array")),
        ),
        ("error", Value::Error(RpcError::error("plain"))),
        ("range_error", Value::Error(RpcError::range("bad range"))),
        ("type_error", Value::Error(RpcError::type_error("bad type"))),
        (
            "error_props",
            Value::Error(
                RpcError::error("with props")
                    .with_prop("code", 42)
                    .with_prop("detail", "x"),
            ),
        ),
        (
            "error_cause",
            Value::Error(RpcError::error("outer").with_prop("cause", "inner")),
        ),
        ("url", Value::Url("https://example.com/path?q=1".into())),
        (
            "headers",
            Value::Headers(vec![
                ("content-type".into(), "text/plain".into()),
                ("x-custom".into(), "hello".into()),
            ]),
        ),
        (
            "mixed",
            Value::object([
                (
                    "list",
                    Value::Array(vec![
                        1.into(),
                        Value::Undefined,
                        Value::Date(Date::from_millis(0.0)),
                    ]),
                ),
                ("big", Value::BigInt(two_64)),
                ("bytes", bytes(&[1], None)),
                ("nested", ser(&vec![vec![vec!["deep"]]])),
            ]),
        ),
    ]
}

/// Object-safe serialization for the case table.
mod erased {
    pub trait Ser {
        fn to(&self) -> capwire::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to(&self) -> capwire::Value {
            super::to_value(self).expect("serializable")
        }
    }
}

fn node_golden() -> BTreeMap<String, String> {
    let (ok, stdout, stderr) = support::run_node(&["golden.mjs"], None);
    assert!(ok, "golden.mjs failed: {stderr}");
    serde_json::from_str(stdout.trim()).expect("golden.mjs prints one JSON object")
}

#[test]
fn capwire_encoding_equals_capnweb_serialize() {
    let golden = node_golden();
    let cases = cases();
    assert_eq!(
        cases
            .iter()
            .map(|(n, _)| n.to_string())
            .collect::<std::collections::BTreeSet<_>>(),
        golden.keys().cloned().collect(),
        "the Rust case table and golden.mjs name different cases"
    );
    let mut mismatches = Vec::new();
    for (name, value) in &cases {
        let ours = capwire::serialize(value).expect("serialize");
        if ours != golden[*name] {
            mismatches.push(format!(
                "{name}:\n  capwire: {ours}\n  capnweb: {}",
                golden[*name]
            ));
        }
        // And decoding capnweb's text gives the value back.
        let decoded = capwire::deserialize(&golden[*name]).expect("deserialize capnweb's text");
        assert_eq!(&decoded, value, "{name}: decoding capnweb's encoding");
    }
    assert!(
        mismatches.is_empty(),
        "encodings differ:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn capnweb_accepts_capwire_encoding_unchanged() {
    let ours: BTreeMap<String, String> = cases()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), capwire::serialize(&v).expect("serialize")))
        .collect();
    let input = serde_json::to_string(&ours).unwrap();
    let (ok, stdout, stderr) = support::run_node(&["golden.mjs", "--deserialize"], Some(&input));
    assert!(ok, "golden.mjs --deserialize failed: {stderr}");
    let verdicts: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(stdout.trim()).expect("one JSON object");
    for (name, text) in &ours {
        let v = &verdicts[name];
        assert_eq!(
            v["ok"], true,
            "{name}: capnweb refused {text}: {}",
            v["error"]
        );
        assert_eq!(
            v["reserialized"].as_str(),
            Some(text.as_str()),
            "{name}: capnweb re-serialized differently"
        );
    }
}

/// Value texts capnweb's writer never produces but its reader takes or refuses: capwire
/// takes and refuses the same (each verdict checked live against capnweb's
/// `deserialize`), and what it takes is the same value (capnweb's and capwire's
/// re-serializations agree). The deliberate differences are listed, each with its reason.
#[test]
fn capwire_takes_and_refuses_the_loose_values_capnweb_takes_and_refuses() {
    let texts = [
        // Numbers as JSON.parse reads them.
        "1e400",
        "-1e400",
        "1e-400",
        "-0",
        "1E+2",
        "[[1.0,2.50,1e0]]",
        // Strings: escapes, lone surrogates (U+FFFD in capwire: not compared below).
        r#""\/\u00e9\b""#,
        r#""\ud800 \udc00""#,
        // Extra elements where capnweb does not check the length.
        r#"["inf",1]"#,
        r#"["-inf",null]"#,
        r#"["nan",[]]"#,
        r#"["date",5,6]"#,
        r#"["date",null,1]"#,
        r#"["bigint","12","x"]"#,
        r#"["bytes","AQID","Uint8Array",0]"#,
        r#"["error","TypeError","m",null,{"a":1},9]"#,
        // ... and where it does.
        r#"["undefined",1]"#,
        r#"["url","https://x/","y"]"#,
        r#"["headers",[],1]"#,
        // bigint text as BigInt() reads it.
        r#"["bigint"," 12 "]"#,
        r#"["bigint","+5"]"#,
        r#"["bigint",""]"#,
        r#"["bigint","\ufeff5"]"#,
        r#"["bigint","1_000"]"#,
        r#"["bigint","\u00855"]"#,
        r#"["bigint","1.5"]"#,
        r#"["bigint","-"]"#,
        // base64 as every capnweb runtime reads it.
        r#"["bytes","AQ ID\n"]"#,
        r#"["bytes","AR=="]"#,
        r#"["bytes","AQL"]"#,
        // Arrays neither escaped nor tagged, unknown tags.
        "[]",
        "[1,2]",
        r#"["no-such-tag"]"#,
        r#"[["inf"],1]"#,
        // Duplicate keys: the last wins.
        r#"{"a":1,"a":2}"#,
        // Text JSON.parse refuses.
        "[1] x",
        "[1,]",
        "01",
        "NaN",
    ];
    // capnweb (in Node) takes these and capwire refuses them, on purpose.
    let refused_on_purpose = [
        // `BigInt()`'s radix forms: no capnweb peer writes them, and reading them into
        // decimal digits costs time quadratic in their length.
        r#"["bigint","0x1f"]"#,
        // Node's `Buffer` skips what is not base64, stops at padding and takes the URL
        // alphabet; browsers' `atob` and `Uint8Array.fromBase64` refuse all three, so no
        // capnweb peer relies on it.
        r#"["bytes","A*QID"]"#,
        r#"["bytes","AQ==ID"]"#,
        r#"["bytes","AQ-_"]"#,
    ];
    let all: BTreeMap<String, String> = texts
        .iter()
        .chain(&refused_on_purpose)
        .enumerate()
        .map(|(i, t)| (format!("{i:02}"), t.to_string()))
        .collect();
    let input = serde_json::to_string(&all).unwrap();
    let (ok, stdout, stderr) = support::run_node(&["golden.mjs", "--deserialize"], Some(&input));
    assert!(ok, "golden.mjs --deserialize failed: {stderr}");
    let verdicts: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(stdout.trim()).expect("one JSON object");
    let mut differences = Vec::new();
    for (key, text) in &all {
        let theirs = &verdicts[key];
        let capnweb_takes = !theirs["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("deserialize failed"));
        let ours = capwire::deserialize(text);
        let on_purpose = refused_on_purpose.contains(&text.as_str());
        if on_purpose {
            assert!(capnweb_takes, "{text}: capnweb refuses it now: {theirs}");
            assert!(ours.is_err(), "{text}: capwire takes it: {ours:?}");
            continue;
        }
        if capnweb_takes != ours.is_ok() {
            differences.push(format!("{text}: capnweb {theirs}, capwire {ours:?}"));
            continue;
        }
        if let Ok(value) = ours {
            let again = capwire::serialize(&value).expect("serialize");
            if Some(again.as_str()) != theirs["reserialized"].as_str() && !text.contains("\\u") {
                differences.push(format!(
                    "{text}: capnweb reads it as {}, capwire as {again}",
                    theirs["reserialized"]
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
