//! Bad input from a peer ends that peer's session with an `abort` naming the problem; the
//! server keeps serving everyone else. Sent over a raw WebSocket and as raw HTTP batches.

mod support;

use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::Message;

/// Sends `frames` on a fresh raw WebSocket session and returns the abort message text the
/// server sent, after checking the server then closed the connection.
async fn abort_for(addr: SocketAddr, frames: Vec<String>) -> String {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");
    for f in frames {
        ws.send(Message::text(f)).await.expect("send");
    }
    let mut abort = None;
    while let Some(frame) = ws.next().await {
        match frame {
            Ok(Message::Text(t)) if t.starts_with("[\"abort\"") => abort = Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    abort.expect("the server closed without sending an abort")
}

/// A new session on the same server still works.
async fn server_still_serves(addr: SocketAddr) {
    let api: capwire::RpcStub = capwire::connect(&format!("ws://{addr}/"))
        .await
        .expect("connect after abort");
    assert_eq!(
        api.call("square", (7,)).await.expect("square").as_f64(),
        Some(49.0)
    );
}

async fn check(frames: Vec<String>, expected: &str) {
    let addr = support::start_conformance_server().await;
    // A bystander session, open across the bad one, keeps working.
    let bystander: capwire::RpcStub = capwire::connect(&format!("ws://{addr}/"))
        .await
        .expect("connect");
    let counter = bystander.call("makeCounter", (1,));
    assert_eq!(
        counter.call("increment", ()).await.unwrap().as_f64(),
        Some(2.0)
    );

    let abort = abort_for(addr, frames).await;
    assert!(
        abort.contains(expected),
        "abort {abort:?} does not name {expected:?}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&abort).expect("the abort is JSON");
    assert_eq!(
        parsed[1][0], "error",
        "the abort carries an error expression: {abort}"
    );

    assert_eq!(
        counter.call("increment", ()).await.unwrap().as_f64(),
        Some(3.0)
    );
    server_still_serves(addr).await;
}

#[tokio::test]
async fn text_that_is_not_json_aborts() {
    check(vec!["this is not json".into()], "not valid JSON").await;
}

#[tokio::test]
async fn unknown_message_type_aborts() {
    check(
        vec![r#"["frobnicate",1]"#.into()],
        "unknown message type: frobnicate",
    )
    .await;
}

#[tokio::test]
async fn malformed_message_aborts() {
    check(vec![r#"["push"]"#.into()], "bad RPC message").await;
    check(
        vec![r#"["push",["nosuchtag",1]]"#.into()],
        "unknown special value",
    )
    .await;
}

#[tokio::test]
async fn unknown_import_id_aborts() {
    check(
        vec![r#"["push",["pipeline",99,["square"],[2]]]"#.into()],
        "no such entry on exports table: 99",
    )
    .await;
    check(
        vec![r#"["pull",42]"#.into()],
        "no such entry on exports table: 42",
    )
    .await;
}

#[tokio::test]
async fn over_release_aborts() {
    check(
        vec![
            r#"["push",["pipeline",0,["makeCounter"],[1]]]"#.into(),
            r#"["release",1,2]"#.into(),
        ],
        "refcount would go negative",
    )
    .await;
    check(
        vec![r#"["release",5,1]"#.into()],
        "no such entry on exports table: 5",
    )
    .await;
}

#[tokio::test]
async fn message_over_the_size_limit_aborts() {
    let big = format!(
        r#"["push",["pipeline",0,["echo"],["{}"]]]"#,
        "x".repeat(33 * 1024 * 1024)
    );
    check(vec![big], "max_message_size").await;
}

/// The form capnweb itself sends for a 25 MiB chunk (it never splits one): a `stream`
/// write of 33 MiB of text, refused whole while the bystander and new sessions go on.
#[tokio::test]
async fn a_stream_chunk_over_the_size_limit_aborts() {
    let chunk = "A".repeat(33 * 1024 * 1024);
    let frames = vec![
        r#"["pipe"]"#.to_owned(),
        r#"["push",["pipeline",0,["sumBytes"],[["readable",1]]]]"#.to_owned(),
        format!(r#"["stream",["pipeline",1,["write"],[["bytes","{chunk}"]]]]"#),
    ];
    check(frames, "max_message_size").await;
}

#[tokio::test]
async fn nesting_deeper_than_the_limit_aborts() {
    let deep = format!(r#"["push",{}1{}]"#, "[[".repeat(300), "]]".repeat(300));
    check(vec![deep], "max_depth").await;
    // Plain JSON nesting far past the limit is refused before parsing, without recursion.
    let very_deep = format!(
        r#"["push",{}1{}]"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    check(vec![very_deep], "max_depth").await;
}

#[tokio::test]
async fn bigint_longer_than_the_limit_aborts() {
    let big = format!(
        r#"["push",["pipeline",0,["echo"],[["bigint","{}"]]]]"#,
        "9".repeat(20_000)
    );
    check(vec![big], "max_bigint_digits").await;
}

#[tokio::test]
async fn bad_bytes_abort() {
    check(
        vec![r#"["push",["bytes","AQ","Uint16Array"]]"#.into()],
        "Invalid byte length",
    )
    .await;
}

#[tokio::test]
async fn peer_abort_ends_the_session_quietly() {
    let addr = support::start_conformance_server().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");
    ws.send(Message::text(
        r#"["abort",["error","Error","client gave up"]]"#,
    ))
    .await
    .unwrap();
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Text(t) = frame {
            panic!("the server answered an abort with {t}");
        }
    }
    server_still_serves(addr).await;
}

async fn post(addr: SocketAddr, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test]
async fn malformed_http_batch_bodies_end_with_an_abort() {
    let addr = support::start_conformance_server().await;
    for (body, expected) in [
        ("garbage", "not valid JSON"),
        (
            "[\"push\",[\"pipeline\",0,[\"square\"],[3]]]\n[\"pull\",1]\n[\"frobnicate\"]",
            "unknown message type",
        ),
        ("[\"pull\",7]", "no such entry on exports table: 7"),
        ("[\"release\",0,3]", "refcount would go negative"),
    ] {
        let (status, response) = post(addr, body).await;
        assert_eq!(status, 400, "{body:?} answered {status}: {response}");
        let last = response.lines().last().unwrap_or("");
        assert!(
            last.starts_with("[\"abort\"") && last.contains(expected),
            "{body:?} answered {response:?}"
        );
    }
    // A good batch still works, and an empty one is zero messages.
    let (status, response) = post(
        addr,
        "[\"push\",[\"pipeline\",0,[\"square\"],[3]]]\n[\"pull\",1]",
    )
    .await;
    assert_eq!((status, response.as_str()), (200, "[\"resolve\",1,9]"));
    assert_eq!(post(addr, "").await, (200, String::new()));
}

/// Misused streams end the session with an `abort` naming the problem, as capnweb does
/// (a pipe's readable end claimed twice, a readable that is not a pipe, a write to an ID
/// that does not exist), and the server goes on serving new sessions.
#[tokio::test]
async fn misused_streams_abort_the_session_naming_the_problem() {
    let addr = support::start_conformance_server().await;
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                r#"["pipe"]"#,
                r#"["push",["pipeline",0,["echo"],[["readable",1]]]]"#,
                r#"["push",["pipeline",0,["echo"],[["readable",1]]]]"#,
            ],
            "already used",
        ),
        (
            &[r#"["push",["pipeline",0,["echo"],[["readable",0]]]]"#],
            "not a pipe",
        ),
        (
            &[r#"["push",["pipeline",0,["echo"],[["readable",7]]]]"#],
            "7",
        ),
        (
            &[r#"["stream",["pipeline",9,["write"],[["bytes","AA"]]]]"#],
            "9",
        ),
    ];
    for (frames, expected) in cases {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
            .await
            .expect("connect");
        for f in frames {
            ws.send(Message::text(*f)).await.expect("send");
        }
        let abort = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with("[\"abort\"") => break t.to_string(),
                Some(Ok(_)) => {}
                other => panic!("{frames:?}: no abort, but {other:?}"),
            }
        };
        assert!(abort.contains(expected), "{frames:?} aborted with {abort}");
    }
    let answers = answers_for(
        addr,
        &[r#"["push",["pipeline",0,["square"],[6]]]"#, r#"["pull",1]"#],
        1,
    )
    .await;
    assert_eq!(answers[&1], serde_json::json!(["resolve", 1, 36]));
}

/// Raw frames on a fresh WebSocket session, and the answers (`resolve`/`reject`) by ID.
async fn answers_for(
    addr: SocketAddr,
    frames: &[&str],
    count: usize,
) -> std::collections::BTreeMap<i64, serde_json::Value> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");
    for f in frames {
        ws.send(Message::text(*f)).await.expect("send");
    }
    let mut answers = std::collections::BTreeMap::new();
    while answers.len() < count {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                assert_ne!(v[0], "abort", "the session was aborted: {t}");
                if v[0] == "resolve" || v[0] == "reject" {
                    answers.insert(v[1].as_i64().unwrap(), v);
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    answers
}

/// What the protocol forbids inside a mapper rejects that map's result, and the session
/// goes on; a mapper is not run at all on `null`.
#[tokio::test]
async fn forbidden_mapper_forms_reject_only_the_map() {
    let addr = support::start_conformance_server().await;
    let frames = [
        r#"["push",["pipeline",0,["listIds"],[2]]]"#,
        r#"["push",["remap",1,[],[],[["export",-1]]]]"#,
        r#"["push",["remap",1,[],[],[["promise",-1]]]]"#,
        r#"["push",["remap",1,[],[],[]]]"#,
        r#"["push",["remap",1,[],[],[["pipeline",5]]]]"#,
        r#"["push",["remap",1,[],[],[["readable",1]]]]"#,
        r#"["push",["remap",1,[],[["import",0]],[["pipeline",-1,["square"],[["pipeline",0]]]]]]"#,
        r#"["push",["pipeline",0,["returnNull"],[]]]"#,
        r#"["push",["remap",8,[],[],[["pipeline",77]]]]"#,
        r#"["pull",2]"#,
        r#"["pull",3]"#,
        r#"["pull",4]"#,
        r#"["pull",5]"#,
        r#"["pull",6]"#,
        r#"["pull",7]"#,
        r#"["pull",9]"#,
    ];
    let answers = answers_for(addr, &frames, 7).await;
    for (id, message) in [
        (2, "A mapper function cannot refer to exports."),
        (3, "A mapper function cannot refer to exports."),
        (4, "Invalid empty mapper function."),
        (5, "no such entry on exports table: 5"),
        (6, "A mapper function cannot use pipe readables."),
    ] {
        assert_eq!(
            answers[&id],
            serde_json::json!(["reject", id, ["error", "Error", message]]),
        );
    }
    assert_eq!(answers[&7], serde_json::json!(["resolve", 7, [[1, 4]]]));
    assert_eq!(answers[&9], serde_json::json!(["resolve", 9, null]));
}

#[tokio::test]
async fn a_map_over_an_unknown_id_aborts() {
    check(
        vec![r#"["push",["remap",99,[],[],[["pipeline",0]]]]"#.into()],
        "no such entry on exports table: 99",
    )
    .await;
}

/// A batch whose call needs an answer from the client (here: a call on a stub the client
/// passed in) cannot get one inside the same request: the call fails, and the response
/// comes back instead of hanging.
#[tokio::test]
async fn a_batch_call_that_needs_the_client_fails_instead_of_hanging() {
    let addr = support::start_conformance_server().await;
    let body =
        "[\"push\",[\"pipeline\",0,[\"incrementCounter\"],[[\"export\",-1],2]]]\n[\"pull\",1]";
    let (status, response) = post(addr, body).await;
    assert_eq!(status, 200, "{response}");
    let lines: Vec<&str> = response.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[\"push\",[\"pipeline\",-1,[\"increment\"]")),
        "{response}"
    );
    let last = lines.last().copied().unwrap_or("");
    assert!(
        last.starts_with("[\"reject\",1,") && last.contains("HTTP batch ended"),
        "{response}"
    );
}

#[tokio::test]
async fn a_binary_frame_aborts() {
    let addr = support::start_conformance_server().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");
    ws.send(Message::binary(vec![0xff_u8, 0xfe, 0x00]))
        .await
        .unwrap();
    let mut abort = None;
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Text(t) = frame {
            abort = Some(t.to_string());
        }
    }
    let abort = abort.expect("an abort before the close");
    assert!(
        abort.starts_with("[\"abort\"") && abort.contains("binary WebSocket frame"),
        "{abort}"
    );
    server_still_serves(addr).await;
}

#[tokio::test]
async fn an_http_batch_message_over_the_size_limit_aborts() {
    let addr = support::start_conformance_server().await;
    let big = format!(
        r#"["push",["pipeline",0,["echo"],["{}"]]]"#,
        "x".repeat(33 * 1024 * 1024)
    );
    let (status, response) = post(addr, &big).await;
    assert_eq!(status, 400);
    assert!(
        response.starts_with("[\"abort\"") && response.contains("max_message_size"),
        "{}",
        &response[..200.min(response.len())]
    );
}
