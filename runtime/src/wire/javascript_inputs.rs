//! What a JavaScript peer may send that capnweb's reader (its `Evaluator` and message
//! loop) takes although its own writer never writes it: capwire takes the same, and
//! refuses what capnweb refuses. Each case is read by the whole reader (`Message::parse`:
//! the direct reader, then the tree parser) and compared with the form capnweb writes.

use super::{Expr, Message};
use crate::limits::Limits;

fn parse(text: &str) -> Message {
    Message::parse(text, &Limits::default()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn refused(text: &str) {
    assert!(
        Message::parse(text, &Limits::default()).is_err(),
        "{text} was taken"
    );
}

/// `["push", expr]` read from `expr`'s text.
fn value(expr: &str) -> Expr {
    match parse(&format!(r#"["push",{expr}]"#)) {
        Message::Push(e) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn messages_ignore_elements_past_those_they_need() {
    for (loose, plain) in [
        (
            r#"["push",["pipeline",0,["square"],[3]],"extra"]"#,
            r#"["push",["pipeline",0,["square"],[3]]]"#,
        ),
        (
            r#"["stream",["pipeline",0,["f"]],1,2]"#,
            r#"["stream",["pipeline",0,["f"]]]"#,
        ),
        (r#"["pull",1,{"x":1}]"#, r#"["pull",1]"#),
        (r#"["resolve",1,5,null]"#, r#"["resolve",1,5]"#),
        (
            r#"["reject",1,["error","Error","m"],0]"#,
            r#"["reject",1,["error","Error","m"]]"#,
        ),
        (r#"["release",1,2,3]"#, r#"["release",1,2]"#),
        (
            r#"["abort",["error","Error","bye"],"x"]"#,
            r#"["abort",["error","Error","bye"]]"#,
        ),
        (r#"["pipe",1]"#, r#"["pipe"]"#),
    ] {
        assert_eq!(parse(loose), parse(plain), "{loose}");
    }
    // Too few elements stays an error, as in capnweb.
    for text in [
        r#"["push"]"#,
        r#"["resolve",1]"#,
        r#"["release",1]"#,
        r#"["abort"]"#,
    ] {
        refused(text);
    }
}

#[test]
fn forms_ignore_elements_past_those_they_read_where_capnweb_does() {
    for (loose, plain) in [
        (r#"["inf",1]"#, r#"["inf"]"#),
        (r#"["-inf",null,2]"#, r#"["-inf"]"#),
        (r#"["nan",[]]"#, r#"["nan"]"#),
        (r#"["date",5,6]"#, r#"["date",5]"#),
        (r#"["date",null,6]"#, r#"["date",null]"#),
        (r#"["bigint","12","x"]"#, r#"["bigint","12"]"#),
        (
            r#"["bytes","AQID","Uint8Array",0]"#,
            r#"["bytes","AQID","Uint8Array"]"#,
        ),
        (
            r#"["error","TypeError","m",null,{"a":1},9]"#,
            r#"["error","TypeError","m",null,{"a":1}]"#,
        ),
        (r#"["export",-1,2]"#, r#"["export",-1]"#),
        (r#"["promise",-1,2]"#, r#"["promise",-1]"#),
        (r#"["readable",1,2]"#, r#"["readable",1]"#),
        (r#"["writable",-1,2]"#, r#"["writable",-1]"#),
    ] {
        assert_eq!(value(loose), value(plain), "{loose}");
    }
}

#[test]
fn forms_whose_length_capnweb_checks_refuse_extra_elements() {
    for expr in [
        r#"["undefined",1]"#,
        r#"["url","https://x/","y"]"#,
        r#"["headers",[],1]"#,
        r#"["request","https://x/",{},1]"#,
        r#"["response",null,{},1]"#,
        r#"["blob","text/plain",["readable",1],1]"#,
        r#"["import",0,[],[],1]"#,
        r#"["pipeline",0,[],[],1]"#,
        r#"["remap",0,[],[],[],1]"#,
        // An array that is neither escaped nor tagged.
        r#"[]"#,
        r#"[1,2]"#,
        r#"["no-such-tag"]"#,
    ] {
        refused(&format!(r#"["push",{expr}]"#));
    }
}

#[test]
fn bigints_are_read_as_javascripts_bigint_reads_a_string() {
    for (text, digits) in [
        (" 12 ", "12"),
        ("\t\n-5\r", "-5"),
        ("+5", "5"),
        ("", "0"),
        ("  ", "0"),
        ("\u{feff}5\u{a0}", "5"),
        ("007", "007"),
        ("-0", "-0"),
    ] {
        let text = serde_json::to_string(text).unwrap();
        assert_eq!(
            value(&format!(r#"["bigint",{text}]"#)),
            Expr::BigInt(digits.to_owned()),
            "{text}"
        );
    }
    // `BigInt()` refuses these too, but the radix forms, which it takes and no capnweb
    // peer writes (see `bigint_digits`).
    for text in [
        "-", "+", "1_000", "1 2", "--1", "+-1", "1.5", "1e3", "\u{85}5", "0x1f", "0o7", "0b1",
    ] {
        let text = serde_json::to_string(text).unwrap();
        refused(&format!(r#"["push",["bigint",{text}]]"#));
    }
}

#[test]
fn base64_is_read_as_every_capnweb_runtime_reads_it() {
    let bytes = |data: &[u8]| Expr::Bytes {
        data: data.to_vec(),
        kind: None,
    };
    for (text, data) in [
        ("AQID", &[1u8, 2, 3][..]),
        ("AQ ID\n", &[1, 2, 3]),
        ("AQ==", &[1]),
        // The unused low bits of the last character are ignored.
        ("AR==", &[1]),
        ("AQJ", &[1, 2]),
        ("AQL", &[1, 2]),
        ("AQID====", &[1, 2, 3]),
    ] {
        let text = serde_json::to_string(text).unwrap();
        assert_eq!(
            value(&format!(r#"["bytes",{text}]"#)),
            bytes(data),
            "{text}"
        );
    }
    // Node's `Buffer` takes these (skipping what it cannot read, or the URL alphabet);
    // browsers' `atob` and `Uint8Array.fromBase64` refuse them, and so does capwire.
    for text in ["AQ-_", "A*QID", "AQ==ID", "A"] {
        refused(&format!(r#"["push",["bytes","{text}"]]"#));
    }
}

#[test]
fn property_names_of_javascript_objects_are_plain_keys() {
    // capnweb drops keys that name `Object.prototype`'s members (`__proto__`,
    // `constructor`, `toString`...) and `toJSON`, so that they cannot reach a prototype;
    // a Rust map has no prototype, and keeps them as the data they are.
    let expr = value(r#"{"__proto__":{"a":1},"constructor":2,"toJSON":3,"x":4}"#);
    let Expr::Object(fields) = expr else {
        panic!("{expr:?}")
    };
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["__proto__", "constructor", "toJSON", "x"]);
}

#[test]
fn text_around_and_inside_the_message_is_read_as_json_parse_reads_it() {
    // White space around the message and between tokens; escapes of every kind.
    assert_eq!(
        parse(" \t\r\n[ \"push\" , [ \"pipeline\" , 0 , [ \"f\" ] ] ]\n"),
        parse(r#"["push",["pipeline",0,["f"]]]"#)
    );
    assert_eq!(
        value(r#""\/\b\f\n\r\t\"\\\u00E9\u00e9""#),
        Expr::String("/\u{8}\u{c}\n\r\t\"\\éé".to_owned())
    );
    // Characters JSON allows raw: DEL, U+2028, U+2029.
    assert_eq!(
        value("\"\u{7f}\u{2028}\u{2029}\""),
        Expr::String("\u{7f}\u{2028}\u{2029}".to_owned())
    );
    // What JSON.parse refuses: trailing text, a byte-order mark, raw control characters,
    // single quotes, comments, trailing commas, leading zeros, `+1`, `NaN`.
    for text in [
        r#"["pull",1] x"#,
        "\u{feff}[\"pull\",1]",
        "[\"push\",\"a\u{1}b\"]",
        "['pull',1]",
        "[\"pull\",1 /* c */]",
        "[\"pull\",1,]",
        "[\"pull\",01]",
        "[\"pull\",+1]",
        "[\"push\",NaN]",
    ] {
        refused(text);
    }
}

#[test]
fn the_direct_reader_and_the_tree_parser_agree_on_loose_forms() {
    // The direct reader takes only the plain forms; the loose ones reach the tree parser,
    // which must give what the direct reader gives for the plain form.
    let limits = Limits::default();
    for (loose, plain) in [
        (
            r#"["push",["bigint"," 12"]]"#,
            r#"["push",["bigint","12"]]"#,
        ),
        (r#"["push",[[["inf",0]]]]"#, r#"["push",[[["inf"]]]]"#),
        (r#"["push",["export",-1,0]]"#, r#"["push",["export",-1]]"#),
    ] {
        let via_tree = Message::parse(loose, &limits).unwrap();
        assert_eq!(via_tree, Message::parse(plain, &limits).unwrap(), "{loose}");
    }
}
