//! A call awaited by its only holder, with nothing pipelined on it, goes as
//! `["stream", call]`: the peer answers it without a `pull` and releases it by itself, so
//! it costs two messages instead of four. A peer written by hand sees exactly what a
//! capwire WebSocket client sends.

use capwire::RpcStub;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// A hand-written peer: answers each message in `script` (by the message it expects) and
/// returns everything the client sent until it closed the connection.
async fn peer(
    script: Vec<(&'static str, Option<&'static str>)>,
) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut seen = Vec::new();
        let mut script = script.into_iter();
        while let Some(Ok(message)) = ws.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            seen.push(text.to_string());
            if let Some((expected, answer)) = script.next() {
                assert_eq!(text.as_str(), expected, "the client sent {seen:?}");
                if let Some(answer) = answer {
                    ws.send(Message::text(answer)).await.unwrap();
                }
            }
        }
        seen
    });
    (url, task)
}

async fn connect(url: &str) -> RpcStub {
    capwire::connect(url).await.unwrap()
}

#[tokio::test]
async fn an_awaited_call_goes_as_a_stream_with_no_pull_and_no_release() {
    let (url, seen) = peer(vec![
        (
            r#"["stream",["pipeline",0,["add"],[1,2]]]"#,
            Some(r#"["resolve",1,3]"#),
        ),
        (
            r#"["stream",["pipeline",0,["add"],[3,4]]]"#,
            Some(r#"["resolve",2,7]"#),
        ),
    ])
    .await;
    let api = connect(&url).await;
    assert_eq!(api.call("add", (1, 2)).await.unwrap(), 3.into());
    assert_eq!(api.call("add", (3, 4)).await.unwrap(), 7.into());
    drop(api);
    let seen = seen.await.unwrap();
    assert_eq!(seen.len(), 2, "nothing but the two calls: {seen:?}");
}

#[tokio::test]
async fn a_promise_pipelined_on_is_pushed_pulled_and_released() {
    let (url, seen) = peer(vec![
        (r#"["push",["pipeline",0,["makeCounter"],[1]]]"#, None),
        (
            r#"["stream",["pipeline",1,["increment"],[2]]]"#,
            Some(r#"["resolve",2,3]"#),
        ),
        (r#"["release",1,1]"#, None),
    ])
    .await;
    let api = connect(&url).await;
    let counter = api.call("makeCounter", (1,));
    assert_eq!(counter.call("increment", (2,)).await.unwrap(), 3.into());
    drop(counter);
    drop(api);
    let seen = seen.await.unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
}

#[tokio::test]
async fn a_stream_call_once_polled_is_never_referenced_again() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    // The peer answers `getUser` only once the marker call has arrived: had the property
    // read below gone to the peer, it would have arrived before the marker.
    let seen = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut seen: Vec<String> = Vec::new();
        while let Some(Ok(message)) = ws.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            seen.push(text.to_string());
            if text.contains("marker") {
                ws.send(Message::text(r#"["resolve",1,{"id":7,"name":"user7"}]"#))
                    .await
                    .unwrap();
            }
        }
        seen
    });
    let api = connect(&url).await;
    let mut user = api.call("getUser", (7,));
    assert!(futures::poll!(&mut user).is_pending());
    // Read on the promise after it went as a stream: answered here, from its result.
    let name = user.get("name");
    // The marker goes as a push or a stream (whichever its sending decides first).
    let marker = api.call("marker", ());
    marker.pull();
    // (A failure here would otherwise wait forever: the peer never answers a pipelined read.)
    let name = tokio::time::timeout(std::time::Duration::from_secs(10), name)
        .await
        .expect("the property read was sent to the peer, which never answers it");
    assert_eq!(name.unwrap(), "user7".into());
    drop((user, marker, api));
    let seen = seen.await.unwrap();
    assert_eq!(seen[0], r#"["stream",["pipeline",0,["getUser"],[7]]]"#);
    assert!(seen[1].contains("marker"), "{seen:?}");
    let refers_to_1 = |m: &&String| {
        m.starts_with(r#"["pull",1]"#)
            || m.starts_with(r#"["release",1,"#)
            || m.contains(r#"["pipeline",1,"#)
            || m.contains(r#"["pipeline",1]"#)
    };
    assert_eq!(
        seen.iter().filter(refers_to_1).count(),
        0,
        "the stream call's ID was referenced: {seen:?}"
    );
}
