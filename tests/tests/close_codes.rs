//! The WebSocket close codes a capwire server ends a bad session with, read from a raw
//! client: 1002 for a frame that breaks the protocol, 1003 for a binary frame, 1007 for a
//! text frame that is not UTF-8, 1009 for a message over the limit, and 3000 with the
//! reason after an `abort` (as capnweb closes). And the other way: a peer's close code and
//! reason reach the Rust side's session error.

mod support;

use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// What the server sent on a raw session after `frames`: its text frames, and the close
/// frame it ended with (within 10 s: a server that keeps the session open fails the test).
async fn close_after(addr: SocketAddr, frames: Vec<Message>) -> (Vec<String>, CloseFrame) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");
    for f in frames {
        ws.send(f).await.expect("send");
    }
    let mut texts = Vec::new();
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next());
        match next.await.expect("the server still holds the session open") {
            Some(Ok(Message::Text(t))) => texts.push(t.to_string()),
            Some(Ok(Message::Close(Some(frame)))) => return (texts, frame),
            Some(Ok(Message::Close(None))) => panic!("closed without a code; sent {texts:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("no close frame, but {e}; sent {texts:?}"),
            None => panic!("no close frame; sent {texts:?}"),
        }
    }
}

/// The error message of an `abort` message's error expression.
fn abort_message(text: &str) -> String {
    let parsed: serde_json::Value = serde_json::from_str(text).expect("the abort is JSON");
    assert_eq!(parsed[0], "abort", "{text}");
    assert_eq!(parsed[1][0], "error", "{text}");
    parsed[1][2].as_str().expect("a message").to_owned()
}

#[tokio::test]
async fn an_abort_closes_with_3000_and_its_reason_cut_on_a_character_boundary() {
    let addr = support::start_conformance_server().await;
    // An unknown message type, named in the abort: 22 bytes of prefix, then 200 of "é".
    let name = "é".repeat(100);
    let (texts, close) = close_after(addr, vec![Message::text(format!(r#"["{name}"]"#))]).await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    let message = abort_message(&texts[0]);
    assert!(message.contains(&name), "{message}");
    assert_eq!(u16::from(close.code), 3000);
    // 123 bytes would split an "é": the reason stops one byte short.
    assert_eq!(close.reason.len(), 122, "{:?}", close.reason);
    assert!(message.starts_with(close.reason.as_str()), "{close:?}");
}

#[tokio::test]
async fn an_abort_with_a_short_reason_closes_with_all_of_it() {
    let addr = support::start_conformance_server().await;
    let (texts, close) = close_after(addr, vec![Message::text("not json")]).await;
    assert_eq!(u16::from(close.code), 3000);
    assert_eq!(close.reason.as_str(), abort_message(&texts[0]));
}

#[tokio::test]
async fn a_binary_frame_is_refused_with_an_abort_and_1003() {
    let addr = support::start_conformance_server().await;
    // Valid UTF-8 holding a valid call: refused all the same, for being binary.
    let call = r#"["push",["pipeline",0,["square"],[3]]]"#;
    let (texts, close) = close_after(addr, vec![Message::binary(call.as_bytes().to_vec())]).await;
    assert_eq!(texts.len(), 1, "only the abort, no answer: {texts:?}");
    assert!(abort_message(&texts[0]).contains("binary"), "{texts:?}");
    assert_eq!(u16::from(close.code), 1003, "{close:?}");
    assert!(close.reason.contains("binary"), "{close:?}");
    still_serves(addr).await;
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let addr = support::start_conformance_server().await;
    let frame = Frame::message(vec![b'"', 0xff, 0xfe, b'"'], OpCode::Data(Data::Text), true);
    let (texts, close) = close_after(addr, vec![Message::Frame(frame)]).await;
    assert!(texts.is_empty(), "{texts:?}");
    assert_eq!(u16::from(close.code), 1007, "{close:?}");
    assert!(close.reason.contains("UTF-8"), "{close:?}");
    still_serves(addr).await;
}

#[tokio::test]
async fn a_frame_that_breaks_the_protocol_closes_with_1002() {
    let addr = support::start_conformance_server().await;
    // A continuation with no message to continue.
    let frame = Frame::message(b"[]".to_vec(), OpCode::Data(Data::Continue), true);
    let (texts, close) = close_after(addr, vec![Message::Frame(frame)]).await;
    assert!(texts.is_empty(), "{texts:?}");
    assert_eq!(u16::from(close.code), 1002, "{close:?}");
    still_serves(addr).await;
}

#[tokio::test]
async fn a_message_over_the_limit_is_refused_with_an_abort_and_1009() {
    let limits = capwire::Limits {
        max_message_size: 4096,
        ..Default::default()
    };
    let server = capwire::Server::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .limits(limits);
    let addr = server.local_addr().expect("local address");
    tokio::spawn(server.serve(|| capwire_examples::conformance::TestTarget));
    let big = format!(
        r#"["push",["pipeline",0,["echo"],["{}"]]]"#,
        "x".repeat(5000)
    );
    let (texts, close) = close_after(addr, vec![Message::text(big)]).await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        abort_message(&texts[0]).contains("max_message_size"),
        "{texts:?}"
    );
    assert_eq!(u16::from(close.code), 1009, "{close:?}");
    assert!(close.reason.contains("max_message_size"), "{close:?}");
}

#[tokio::test]
async fn a_session_the_client_ends_closes_without_an_error_code() {
    let addr = support::start_conformance_server().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");
    ws.send(Message::text(r#"["push",["pipeline",0,["square"],[3]]]"#))
        .await
        .expect("send");
    ws.send(Message::text(r#"["pull",1]"#)).await.expect("send");
    let answer = ws.next().await.expect("an answer").expect("a frame");
    assert_eq!(answer.to_text().unwrap(), r#"["resolve",1,9]"#);
    ws.close(None).await.expect("close");
    // The server answers the close with the same empty close frame.
    match ws.next().await {
        Some(Ok(Message::Close(frame))) => assert_eq!(frame, None),
        other => panic!("expected an empty close frame, got {other:?}"),
    }
}

async fn still_serves(addr: SocketAddr) {
    let api: capwire::RpcStub = capwire::connect(&format!("ws://{addr}/"))
        .await
        .expect("connect");
    assert_eq!(
        api.call("square", (7,)).await.expect("square").as_f64(),
        Some(49.0)
    );
}

/// A raw WebSocket server that, once it reads its client's first message, closes with
/// `code` and `reason`.
async fn server_closing_with(code: u16, reason: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
        let _first = ws.next().await;
        ws.close(Some(CloseFrame {
            code: code.into(),
            reason: reason.into(),
        }))
        .await
        .expect("close");
        while ws.next().await.is_some() {}
    });
    addr
}

#[tokio::test]
async fn a_peer_closing_with_3000_ends_the_session_with_its_reason() {
    let addr = server_closing_with(3000, "the peer gave up: too many calls").await;
    let session = capwire::connect_with(&format!("ws://{addr}/"), None, Default::default())
        .await
        .expect("connect");
    let main = session.main();
    let (tx, rx) = tokio::sync::oneshot::channel();
    main.on_broken(move |e| drop(tx.send(e)));
    let error = main.call("square", (2,)).await.expect_err("the call fails");
    assert!(
        error
            .message()
            .contains("3000: the peer gave up: too many calls"),
        "{error}"
    );
    assert_eq!(rx.await.expect("on_broken ran"), error);
    assert_eq!(session.closed().await, error);
}
