//! The stream rows of the conformance service (`readBytes`, `sumBytes`, `writeBytes`,
//! `echoStream`, `echoBlob`, `echoRequest`), driven by the Rust client over WebSocket
//! against capnweb's Node server and against the Rust one: byte streams both ways, 40 MiB
//! through a stream, errors across the link, streams of values (stubs included), Blob and
//! Request/Response.

mod support;

use capwire::http::{Method, StatusCode};
use capwire::{Blob, ReadableStream, Request, RpcError, Stub, TypedStub, WritableStream};
use capwire_examples::conformance::{ByteSum, TestTarget, pattern};
use futures::{StreamExt, TryStreamExt};

fn sum_of(data: &[u8]) -> ByteSum {
    ByteSum {
        bytes: data.len() as u64,
        checksum: data
            .iter()
            .fold(0u32, |sum, &b| sum.wrapping_add(u32::from(b))),
    }
}

/// Reads a stream through, checking it is the conformance pattern; returns its length.
async fn check_pattern(mut stream: ReadableStream) -> u64 {
    let mut at = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a chunk");
        let end = at + chunk.len() as u64;
        assert!(chunk == pattern(at, end), "bytes {at}..{end} differ");
        at = end;
    }
    at
}

async fn stream_rows(url: &str) {
    let api: Stub<TestTarget> = capwire::connect(url).await.expect("connect");

    // readBytes: exact lengths and contents, across chunks and past the initial window.
    for n in [0u64, 1, 1000, 300_000] {
        let stream = api.read_bytes(n).await.expect("readBytes");
        assert_eq!(check_pattern(stream).await, n, "readBytes({n})");
    }

    // 40 MiB through a stream, downloaded and uploaded, never held whole.
    let big = 40u64 << 20;
    let stream = api.read_bytes(big).await.expect("readBytes(40 MiB)");
    assert_eq!(check_pattern(stream).await, big, "readBytes(40 MiB)");
    let upload = ReadableStream::new(
        futures::stream::iter((0..big).step_by(1 << 20))
            .map(move |k| Ok::<_, RpcError>(pattern(k, big.min(k + (1 << 20))))),
    );
    let expected = ByteSum {
        bytes: big,
        // Each whole period of 251 bytes sums to 0 + 1 + … + 250.
        checksum: (0..big / 251)
            .fold(0u32, |s, _| s.wrapping_add(250 * 251 / 2))
            .wrapping_add(sum_of(&pattern(0, big % 251)).checksum),
    };
    assert_eq!(
        api.sum_bytes(upload).await.expect("sumBytes(40 MiB)"),
        expected
    );

    // sumBytes: chunks of many sizes (one over the window), and an empty stream.
    let sizes = [3u64, 1000, 300_000, 0, 65_536, 1];
    let mut chunks = Vec::new();
    let mut at = 0;
    for size in sizes {
        chunks.push(pattern(at, at + size));
        at += size;
    }
    let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let stream = ReadableStream::new(futures::stream::iter(chunks).map(Ok::<_, RpcError>));
    assert_eq!(api.sum_bytes(stream).await.expect("sumBytes"), sum_of(&all));
    let empty = api
        .sum_bytes(ReadableStream::empty())
        .await
        .expect("sumBytes(empty)");
    assert_eq!(empty, ByteSum::default());

    // A source that fails reaches the server as that error, and the call rejects with it.
    let failing = ReadableStream::new(futures::stream::iter([
        Ok(bytes::Bytes::from_static(b"one chunk")),
        Err(RpcError::range("source failed")),
    ]));
    let e = api.sum_bytes(failing).await.expect_err("a failed source");
    assert_eq!(e.name(), "RangeError", "{e}");
    assert!(e.message().contains("source failed"), "{e}");

    // writeBytes into a pipe whose reader is here, read while the server writes.
    let (writer, reader) = capwire::stream::pipe();
    let read = tokio::spawn(check_pattern(reader));
    assert_eq!(
        api.write_bytes(200_000, writer).await.expect("writeBytes"),
        200_000
    );
    assert_eq!(read.await.expect("reader task"), 200_000);

    // writeBytes into an AsyncWrite (the server's close shuts it down).
    let (write_half, mut read_half) = tokio::io::duplex(64 * 1024);
    let sink = WritableStream::from_async_write(write_half);
    let read = tokio::spawn(async move {
        let mut data = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut read_half, &mut data)
            .await
            .map(|_| data)
    });
    assert_eq!(
        api.write_bytes(100_000, sink).await.expect("writeBytes"),
        100_000
    );
    let data = read.await.expect("reader task").expect("read");
    assert!(data == pattern(0, 100_000), "writeBytes into an AsyncWrite");

    // echoStream: values of every kind, typed and not, come back in order; a stub chunk
    // still calls its original object (here, ours).
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Todo {
        title: String,
        done: bool,
    }
    let todos = [("a", true), ("b", false)].map(|(title, done)| Todo {
        title: title.into(),
        done,
    });
    let echoed: Vec<Todo> = TypedStub::raw(&api)
        .call("echoStream", (ReadableStream::from_values(todos),))
        .typed::<ReadableStream<Todo>>()
        .await
        .expect("echoStream(todos)")
        .try_collect()
        .await
        .expect("read the echoed todos");
    assert_eq!(
        echoed.iter().map(|t| &t.title[..]).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let counter: Stub<capwire_examples::conformance::Counter> =
        TypedStub::local(capwire_examples::conformance::Counter::new(40));
    let sent = vec![
        capwire::Value::from("text é🙂"),
        capwire::Value::Number(42.0),
        capwire::to_value(&serde_json::json!({ "nested": { "list": [1, "two", null] } })).unwrap(),
        counter.clone().into(),
    ];
    let back: Vec<capwire::Value> = api
        .echo_stream(ReadableStream::from_values(sent.clone()))
        .await
        .expect("echoStream(values)")
        .try_collect()
        .await
        .expect("read the echoed values");
    assert_eq!(back.len(), 4, "{back:?}");
    assert_eq!(back[..3], sent[..3]);
    let capwire::Value::Stub(stub) = &back[3] else {
        panic!("the stub chunk came back as {:?}", back[3]);
    };
    assert_eq!(
        stub.call("increment", (2,)).await.unwrap().as_i64(),
        Some(42)
    );
    assert_eq!(
        counter.value().await.unwrap(),
        42,
        "the original object was called"
    );

    // echoBlob: text, binary, empty.
    for blob in [
        Blob::new("hello blob", "text/plain"),
        Blob::new(pattern(0, 100_000), "application/octet-stream"),
        Blob::new(bytes::Bytes::new(), ""),
    ] {
        let echoed = api.echo_blob(blob.clone()).await.expect("echoBlob");
        assert_eq!(echoed, blob);
    }

    // echoRequest: a POST with headers and a body, and a GET without one.
    let mut post = Request::new(Method::POST, "https://example.com/path?q=1")
        .with_body(bytes::Bytes::from_static(b"ping-body"));
    post.headers
        .insert("content-type", "text/plain".parse().unwrap());
    let response = api.echo_request(post).await.expect("echoRequest(POST)");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers["x-method"], "POST");
    let body = response.body.expect("a body").read_all().await.unwrap();
    assert_eq!(&body[..], b"ping-body");

    let get = Request::new(Method::GET, "https://example.com/");
    let response = api.echo_request(get).await.expect("echoRequest(GET)");
    assert_eq!(response.headers["x-method"], "GET");
    let body = match response.body {
        Some(stream) => stream.read_all().await.unwrap(),
        None => bytes::Bytes::new(),
    };
    assert!(body.is_empty(), "a GET echoes no body");

    // Headers and URLs, through `echo`.
    let mut headers = capwire::Headers::default();
    headers.0.insert("x-a", "1".parse().unwrap());
    headers.0.append("x-b", "two".parse().unwrap());
    let echoed: capwire::Headers = TypedStub::raw(&api)
        .call("echo", (headers.clone(),))
        .typed()
        .await
        .expect("echo(headers)");
    assert_eq!(echoed, headers);
    let url = capwire::Url("https://example.com/a?b=1".to_owned());
    let echoed: capwire::Url = TypedStub::raw(&api)
        .call("echo", (url.clone(),))
        .typed()
        .await
        .unwrap();
    assert_eq!(echoed, url);

    // The session is still healthy after all of it.
    assert_eq!(api.square(3.0).await.unwrap(), 9.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_passes_the_stream_rows_against_the_rust_server() {
    let addr = support::start_conformance_server().await;
    stream_rows(&format!("ws://{addr}/")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_passes_the_stream_rows_against_capnweb() {
    let node = tokio::task::spawn_blocking(support::NodeServer::start)
        .await
        .expect("start node");
    stream_rows(&node.ws_url()).await;
}
