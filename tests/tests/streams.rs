//! Byte streams, Rust to Rust: the wire forms capnweb uses (checked against its own
//! traces), ownership, errors both ways, flow control, splitting, and the web types.

mod support;

use capwire::TypedStub;
use capwire::http::{Method, StatusCode};
use capwire::{
    Blob, ReadableStream, Request, Response, RpcError, RpcStub, Stub, WritableStream, rpc_target,
};
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{Log, eventually, pair};

/// Methods that make and take streams.
struct Streams {
    /// How many chunks `numbers_forever` has produced.
    produced: Arc<AtomicUsize>,
}

fn chunks(parts: &[&'static [u8]]) -> ReadableStream {
    let parts: Vec<_> = parts.iter().map(|p| bytes::Bytes::from_static(p)).collect();
    ReadableStream::new(futures::stream::iter(parts).map(Ok::<_, RpcError>))
}

#[rpc_target]
impl Streams {
    /// `[1,2,3]`, `[4,5]`, `[6]`.
    pub fn numbers(&self) -> ReadableStream {
        chunks(&[&[1, 2, 3], &[4, 5], &[6]])
    }

    /// The sum of the bytes.
    pub async fn sum(&self, mut stream: ReadableStream) -> Result<u64, RpcError> {
        let mut sum = 0;
        while let Some(chunk) = stream.next().await {
            sum += chunk?.iter().map(|&b| u64::from(b)).sum::<u64>();
        }
        Ok(sum)
    }

    /// Writes "hi" and "!!", closes, returns "done".
    pub async fn fill(&self, mut w: WritableStream) -> Result<String, RpcError> {
        w.write("hi").await?;
        w.write("!!").await?;
        w.close().await?;
        Ok("done".into())
    }

    /// Writes `[7]` and returns without closing: the writable is dropped.
    pub async fn write_once(&self, mut w: WritableStream) -> Result<String, RpcError> {
        w.write(vec![7u8]).await?;
        Ok("returned".into())
    }

    /// One chunk, then a `RangeError`.
    pub fn failing(&self) -> ReadableStream {
        ReadableStream::new(futures::stream::iter([
            Ok(bytes::Bytes::from_static(b"ok")),
            Err(RpcError::range("disk read failed")),
        ]))
    }

    /// 64 KiB chunks without end, counted as they are made.
    pub fn numbers_forever(&self) -> ReadableStream {
        let produced = self.produced.clone();
        ReadableStream::new(futures::stream::repeat_with(move || {
            produced.fetch_add(1, Ordering::SeqCst);
            Ok::<_, RpcError>(bytes::Bytes::from(vec![1u8; 64 * 1024]))
        }))
    }

    /// One chunk of `n` bytes.
    pub fn one_chunk(&self, n: u32) -> ReadableStream {
        ReadableStream::from_bytes(vec![9u8; n as usize])
    }

    /// Writes `n` chunks of 64 KiB, then closes.
    pub async fn write_chunks(&self, n: u32, mut w: WritableStream) -> Result<u32, RpcError> {
        for _ in 0..n {
            w.write(vec![5u8; 64 * 1024]).await?;
        }
        w.close().await?;
        Ok(n)
    }

    pub fn echo_request(&self, request: Request) -> Response {
        let request: capwire::http::Request<capwire::Body> = request.into();
        let mut response = capwire::http::Response::new(request.into_body());
        *response.status_mut() = StatusCode::CREATED;
        response.into()
    }

    pub fn echo_blob(&self, blob: Blob) -> Blob {
        blob
    }
}

fn streams() -> (Streams, Arc<AtomicUsize>) {
    let produced = Arc::new(AtomicUsize::new(0));
    (
        Streams {
            produced: produced.clone(),
        },
        produced,
    )
}

fn served() -> (Stub<Streams>, Log, Log, Arc<AtomicUsize>) {
    let (target, produced) = streams();
    let (client, _server, client_log, server_log) = pair(RpcStub::new(target));
    (
        TypedStub::from_raw(client.main()),
        client_log,
        server_log,
        produced,
    )
}

fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn a_returned_stream_goes_as_capnweb_sends_one() {
    let (api, client_log, server_log, _) = served();
    let stream = api.numbers().await.unwrap();
    assert_eq!(&stream.read_all().await.unwrap()[..], &[1, 2, 3, 4, 5, 6]);
    eventually("the server released its pipe", || {
        lines(&server_log).last().map(String::as_str) == Some(r#"["release",1,1]"#)
    })
    .await;
    // capnweb's own trace of this exchange (docs/design/streams.md, 5a), byte for byte.
    assert_eq!(
        lines(&server_log),
        [
            r#"["pipe"]"#,
            r#"["resolve",1,["readable",1]]"#,
            r#"["stream",["pipeline",1,["write"],[["bytes","AQID"]]]]"#,
            r#"["stream",["pipeline",1,["write"],[["bytes","BAU"]]]]"#,
            r#"["stream",["pipeline",1,["write"],[["bytes","Bg"]]]]"#,
            r#"["stream",["pipeline",1,["close"],[]]]"#,
            r#"["release",1,1]"#,
        ]
    );
    eventually("the client acknowledged every write", || {
        lines(&client_log).len() == 7
    })
    .await;
    let mut client = lines(&client_log);
    client.sort();
    assert_eq!(
        client,
        [
            r#"["pull",1]"#,
            r#"["push",["pipeline",0,["numbers"],[]]]"#,
            r#"["release",1,1]"#,
            r#"["resolve",2,["undefined"]]"#,
            r#"["resolve",3,["undefined"]]"#,
            r#"["resolve",4,["undefined"]]"#,
            r#"["resolve",5,["undefined"]]"#,
        ]
    );
}

#[tokio::test]
async fn an_uploaded_stream_goes_as_capnweb_sends_one() {
    let (api, client_log, server_log, _) = served();
    let upload = chunks(&[&[1, 2, 3], &[10, 20], &[100]]);
    assert_eq!(api.sum(upload).await.unwrap(), 136);
    eventually("the client released its pipe", || {
        lines(&client_log).contains(&r#"["release",1,1]"#.to_owned())
    })
    .await;
    // capnweb's trace (5b) less the pull, whose place depends on when the result is awaited.
    let client: Vec<String> = lines(&client_log)
        .into_iter()
        .filter(|l| !l.starts_with(r#"["pull""#) && !l.starts_with(r#"["release",2"#))
        .collect();
    assert_eq!(
        client,
        [
            r#"["pipe"]"#,
            r#"["push",["pipeline",0,["sum"],[["readable",1]]]]"#,
            r#"["stream",["pipeline",1,["write"],[["bytes","AQID"]]]]"#,
            r#"["stream",["pipeline",1,["write"],[["bytes","ChQ"]]]]"#,
            r#"["stream",["pipeline",1,["write"],[["bytes","ZA"]]]]"#,
            r#"["stream",["pipeline",1,["close"],[]]]"#,
            r#"["release",1,1]"#,
        ]
    );
    let mut server = lines(&server_log);
    server.sort();
    assert_eq!(
        server,
        [
            r#"["resolve",2,136]"#,
            r#"["resolve",3,["undefined"]]"#,
            r#"["resolve",4,["undefined"]]"#,
            r#"["resolve",5,["undefined"]]"#,
            r#"["resolve",6,["undefined"]]"#,
        ]
    );
}

#[tokio::test]
async fn a_writable_argument_is_written_with_stream_calls() {
    let (api, _client_log, server_log, _) = served();
    let (writer, reader) = capwire::stream::pipe();
    let read = tokio::spawn(reader.read_all());
    assert_eq!(api.fill(writer).await.unwrap(), "done");
    assert_eq!(&read.await.unwrap().unwrap()[..], b"hi!!");
    // capnweb's trace (5c).
    assert_eq!(
        lines(&server_log),
        [
            r#"["stream",["pipeline",-1,["write"],[["bytes","aGk"]]]]"#,
            r#"["stream",["pipeline",-1,["write"],[["bytes","ISE"]]]]"#,
            r#"["stream",["pipeline",-1,["close"],[]]]"#,
            r#"["release",-1,1]"#,
            r#"["resolve",1,"done"]"#,
        ]
    );
}

#[tokio::test]
async fn a_stream_sent_is_moved_and_cannot_be_used_after() {
    let (api, ..) = served();
    let upload = chunks(&[&[1], &[2]]);
    let kept = upload.clone();
    assert_eq!(api.sum(upload).await.unwrap(), 3);
    let mut kept = kept;
    let e = kept.next().await.expect("an item").expect_err("moved");
    assert!(e.message().contains("can be used once"), "{e}");
    assert!(kept.next().await.is_none());

    let (writer, reader) = capwire::stream::pipe();
    let mut kept = writer.clone();
    let read = tokio::spawn(reader.read_all());
    assert_eq!(api.fill(writer).await.unwrap(), "done");
    let e = kept.write("late").await.expect_err("moved");
    assert!(e.message().contains("can be used once"), "{e}");
    assert_eq!(&read.await.unwrap().unwrap()[..], b"hi!!");
}

#[tokio::test]
async fn dropping_a_writable_unclosed_aborts_the_reader() {
    let (api, ..) = served();
    let (writer, mut reader) = capwire::stream::pipe();
    let call = api.write_once(writer);
    assert_eq!(&reader.next().await.unwrap().unwrap()[..], &[7]);
    assert_eq!(call.await.unwrap(), "returned");
    let e = reader.next().await.expect("an item").expect_err("aborted");
    assert_eq!(
        e.message(),
        "WritableStream RPC stub was disposed without calling close()"
    );
    assert!(reader.next().await.is_none());
}

#[tokio::test]
async fn a_source_error_reaches_the_reader_with_its_type_and_message() {
    let (api, ..) = served();
    let mut stream = api.failing().await.unwrap();
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"ok");
    let e = stream.next().await.unwrap().expect_err("the source failed");
    assert_eq!((e.name(), e.message()), ("RangeError", "disk read failed"));
    assert!(stream.next().await.is_none());

    // The same error, uploaded: the server's reader sees it, and its call rejects.
    let failing = ReadableStream::new(futures::stream::iter([
        Ok(bytes::Bytes::from_static(b"x")),
        Err(RpcError::range("upload failed")),
    ]));
    let e = api.sum(failing).await.expect_err("the upload failed");
    assert_eq!((e.name(), e.message()), ("RangeError", "upload failed"));
}

#[tokio::test]
async fn a_reader_that_stops_fails_the_writer_and_cancels_the_source() {
    let (api, _, _, produced) = served();
    // The server writes into our pipe; we read one chunk and drop the reader.
    let (writer, mut reader) = capwire::stream::pipe();
    let call = api.write_chunks(1000, writer);
    assert_eq!(reader.next().await.unwrap().unwrap().len(), 64 * 1024);
    drop(reader);
    let e = call.await.expect_err("the writer fails");
    assert!(e.message().contains("cancelled"), "{e}");

    // We read an endless stream a little and drop it: the server stops producing.
    let mut stream = api.numbers_forever().await.unwrap();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let _ = api.sum(ReadableStream::empty()).await; // a round trip
    // The counter is held here, by the target, and by the source while it lives.
    eventually("the server's source is dropped", || {
        Arc::strong_count(&produced) == 2
    })
    .await;
}

#[tokio::test]
async fn flow_control_keeps_at_most_a_window_in_flight_to_a_reader_that_waits() {
    let (api, _client_log, server_log, produced) = served();
    let writes = || {
        lines(&server_log)
            .iter()
            .filter(|l| l.contains(r#"["write"]"#))
            .count()
    };
    let mut stream = api.numbers_forever().await.unwrap();
    // 64 KiB chunks are about 87,000 characters each: 48 fill the initial 4 MiB window.
    eventually("the window is full", || writes() >= 48).await;
    // Round trips give the server every chance to send more, were it not blocked.
    for _ in 0..20 {
        let _ = api.sum(ReadableStream::empty()).await;
    }
    assert_eq!(writes(), 48, "writes in flight before any was read");
    assert!(produced.load(Ordering::SeqCst) <= 49);
    // Reading lets it go on; when the reader stops again, so does the sender, a window
    // (which may have grown meanwhile) ahead.
    for _ in 0..200 {
        stream.next().await.unwrap().unwrap();
    }
    let round_trips = || async {
        for _ in 0..20 {
            let _ = api.sum(ReadableStream::empty()).await;
        }
    };
    round_trips().await;
    let stalled = writes();
    round_trips().await;
    assert_eq!(writes(), stalled, "the sender stopped with the reader");
    let in_flight = stalled - 200;
    assert!(in_flight < 200, "{in_flight} writes in flight");
}

#[tokio::test]
async fn a_chunk_larger_than_a_message_should_be_is_split() {
    let (api, _, server_log, _) = served();
    let stream = api.one_chunk(3 << 20).await.unwrap();
    let data = stream.read_all().await.unwrap();
    assert_eq!(data.len(), 3 << 20);
    assert!(data.iter().all(|&b| b == 9));
    let writes: Vec<usize> = lines(&server_log)
        .iter()
        .filter(|l| l.contains(r#"["write"]"#))
        .map(String::len)
        .collect();
    assert_eq!(writes.len(), 3, "three 1 MiB pieces");
    assert!(writes.iter().all(|&len| len < 1_500_000));
}

#[tokio::test]
async fn requests_and_responses_convert_to_http_and_stream_their_bodies() {
    let (api, ..) = served();
    let body = capwire::Body::from_stream(futures::stream::iter(
        (0..4).map(|i| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![i as u8; 1000]))),
    ));
    let request = capwire::http::Request::builder()
        .method(Method::PUT)
        .uri("https://example.com/upload")
        .header("x-test", "yes")
        .body(body)
        .unwrap();
    let response: capwire::http::Response<capwire::Body> =
        api.echo_request(request.into()).await.unwrap().into();
    assert_eq!(response.status(), StatusCode::CREATED);
    let data = ReadableStream::from(response.into_body())
        .read_all()
        .await
        .unwrap();
    let expected: Vec<u8> = (0..4u8).flat_map(|i| vec![i; 1000]).collect();
    assert_eq!(&data[..], &expected[..]);

    // A request from a server's point of view (a path and a Host header) gets an absolute
    // URL, as JavaScript's Request needs.
    let incoming = capwire::http::Request::builder()
        .uri("/a?b=1")
        .header("host", "example.com")
        .body(capwire::Body::empty())
        .unwrap();
    let request = Request::from(incoming);
    assert_eq!(request.url, "http://example.com/a?b=1");
    assert!(request.body.is_none());
}

#[tokio::test]
async fn a_blob_keeps_its_bytes_and_type_and_streams_move_in_process() {
    let (api, ..) = served();
    let blob = Blob::new(vec![0u8, 255, 7], "application/x-test");
    assert_eq!(api.echo_blob(blob.clone()).await.unwrap(), blob);

    // In the same process (a local stub, as a host's in-process binding calls) streams
    // are handed over without a session.
    let (target, _) = streams();
    let local: Stub<Streams> = TypedStub::local(target);
    let stream = local.numbers().await.unwrap();
    assert_eq!(&stream.read_all().await.unwrap()[..], &[1, 2, 3, 4, 5, 6]);
    assert_eq!(local.sum(chunks(&[&[1, 1]])).await.unwrap(), 2);
}

#[tokio::test]
async fn streams_adapt_to_async_read_and_async_write() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (api, ..) = served();
    let mut read = api.numbers().await.unwrap().into_async_read();
    let mut all = Vec::new();
    read.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, [1, 2, 3, 4, 5, 6]);

    let upload = ReadableStream::from_async_read(&[3u8, 4, 5][..]);
    assert_eq!(api.sum(upload).await.unwrap(), 12);

    let (writer, reader) = capwire::stream::pipe();
    let read = tokio::spawn(reader.read_all());
    let mut w = writer.into_async_write();
    w.write_all(b"through AsyncWrite").await.unwrap();
    w.shutdown().await.unwrap();
    assert_eq!(&read.await.unwrap().unwrap()[..], b"through AsyncWrite");
}

#[tokio::test]
async fn finished_failed_and_abandoned_streams_leave_the_tables_as_they_were() {
    let (target, _) = streams();
    let (client, server, _, _) = pair(RpcStub::new(target));
    let api: Stub<Streams> = TypedStub::from_raw(client.main());
    let baseline = (client.stats(), server.stats());
    for _ in 0..20 {
        let read = api.numbers().await.unwrap().read_all().await.unwrap();
        assert_eq!(read.len(), 6);
        assert_eq!(api.sum(chunks(&[&[1], &[2]])).await.unwrap(), 3);
        let (writer, reader) = capwire::stream::pipe();
        let read = tokio::spawn(reader.read_all());
        assert_eq!(api.fill(writer).await.unwrap(), "done");
        read.await.unwrap().unwrap();
        let (writer, reader) = capwire::stream::pipe();
        let read = tokio::spawn(reader.read_all());
        api.write_once(writer).await.unwrap();
        read.await.unwrap().expect_err("aborted");
        api.failing()
            .await
            .unwrap()
            .read_all()
            .await
            .expect_err("failed");
        let mut endless = api.numbers_forever().await.unwrap();
        endless.next().await.unwrap().unwrap();
        drop(endless);
    }
    eventually(
        "both sessions' tables are back to where they started",
        || (client.stats(), server.stats()) == baseline,
    )
    .await;
}

#[tokio::test]
async fn a_session_lost_mid_stream_fails_the_reader_not_a_short_read() {
    let (target, _) = streams();
    let (client, server, _, _) = pair(RpcStub::new(target));
    let api: Stub<Streams> = TypedStub::from_raw(client.main());
    let mut stream = api.numbers_forever().await.unwrap();
    stream.next().await.unwrap().unwrap();
    server.close();
    let ended = loop {
        match stream.next().await {
            Some(Ok(_)) => continue, // chunks already on their way
            other => break other,
        }
    };
    let e = ended.expect("an error, not the end").expect_err("an error");
    assert_eq!(
        e.message(),
        "WritableStream RPC stub was disposed without calling close()",
        "as capnweb's reader sees it"
    );
}

/// Raw frames from a peer that ignores flow control, to a session with small limits.
async fn raw_peer(limits: capwire::Limits) -> capwire::transport::memory::MemoryTransport {
    let (raw, end) = capwire::transport::memory::channel(std::time::Duration::ZERO);
    let (target, _) = streams();
    let server = capwire::Session::start(end, Some(RpcStub::new(target)), limits);
    std::mem::forget(server); // the session runs while its transport is open
    raw
}

async fn next_abort(raw: &mut capwire::transport::memory::MemoryTransport) -> String {
    loop {
        match raw.next().await {
            Some(Ok(text)) if text.starts_with(r#"["abort""#) => return text,
            Some(Ok(_)) => {}
            other => panic!("no abort, but {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_peer_that_writes_past_flow_control_is_cut_off_naming_the_limit() {
    use futures::SinkExt;
    let limits = capwire::Limits {
        max_stream_buffer: 8 << 20,
        ..Default::default()
    };
    let mut raw = raw_peer(limits).await;
    // A pipe nobody reads, and 20 × 512 KiB written into it without waiting for any ack.
    raw.send(r#"["pipe"]"#.to_owned()).await.unwrap();
    let chunk = capwire::Value::Bytes(capwire::Bytes::from(vec![1u8; 512 * 1024]));
    let write = format!(
        r#"["stream",["pipeline",1,["write"],[{}]]]"#,
        capwire::serialize(&chunk).unwrap()
    );
    for _ in 0..20 {
        raw.send(write.clone()).await.unwrap();
    }
    let abort = next_abort(&mut raw).await;
    assert!(abort.contains("max_stream_buffer"), "{abort}");

    // Less than the limit in all, read as it arrives, is fine whatever the sender's window
    // (which adapts, and may grow past the limit on a fast link).
    let (target, _) = streams();
    let (a, b) = capwire::transport::memory::channel(std::time::Duration::ZERO);
    let _server = capwire::Session::start(b, Some(RpcStub::new(target)), limits);
    let client = capwire::Session::start(a, None, Default::default());
    let api: Stub<Streams> = TypedStub::from_raw(client.main());
    let upload = ReadableStream::new(futures::stream::iter(
        (0..12).map(|_| Ok::<_, RpcError>(vec![1u8; 512 * 1024])),
    ));
    assert_eq!(api.sum(upload).await.unwrap(), 12 * 512 * 1024);
}

#[tokio::test]
async fn a_blob_over_the_limit_fails_its_call_and_the_session_goes_on() {
    let limits = capwire::Limits {
        max_blob_size: 1000,
        ..Default::default()
    };
    let (target, _) = streams();
    let (a, b) = capwire::transport::memory::channel(std::time::Duration::ZERO);
    let _server = capwire::Session::start(b, Some(RpcStub::new(target)), limits);
    let client = capwire::Session::start(a, None, Default::default());
    let api: Stub<Streams> = TypedStub::from_raw(client.main());
    let e = api
        .echo_blob(Blob::new(vec![0u8; 1001], "x/y"))
        .await
        .expect_err("over the limit");
    assert!(e.message().contains("max_blob_size"), "{e}");
    let small = Blob::new(vec![0u8; 1000], "x/y");
    assert_eq!(api.echo_blob(small.clone()).await.unwrap(), small);
}

#[tokio::test]
async fn a_cancelled_or_failed_write_leaves_the_stream_failed_with_its_error() {
    // A write that cannot complete (the reader never reads), cancelled by a timeout.
    let (mut writer, reader) = capwire::stream::pipe();
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(20), writer.write("x"));
    assert!(timed_out.await.is_err());
    let e = writer.write("y").await.expect_err("failed");
    assert!(e.message().contains("cancelled"), "{e}");
    assert_eq!(
        writer.close().await.expect_err("failed").message(),
        e.message()
    );
    drop(reader);

    // A write refused by the reader's side: close reports that error, as does the Sink.
    let (writer, reader) = capwire::stream::pipe();
    drop(reader);
    let mut sink = writer;
    let e = futures::SinkExt::send(&mut sink, bytes::Bytes::from_static(b"x"))
        .await
        .expect_err("no reader");
    let closed = futures::SinkExt::close(&mut sink)
        .await
        .expect_err("failed");
    assert_eq!(closed.message(), e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_go_whole_through_an_http_batch_both_ways() {
    let addr = support::start_conformance_server().await;
    let url = format!("http://{addr}/");
    let batch = capwire::BatchClient::new(&url);
    let api: Stub<capwire_examples::conformance::TestTarget> = TypedStub::from_raw(batch.main());
    let data: Vec<u8> = (0..300_000u32).map(|k| (k % 251) as u8).collect();
    let sum = api.sum_bytes(ReadableStream::from_bytes(data.clone()));
    let blob = api.echo_blob(Blob::new(data.clone(), "application/x-test"));
    let stream = api.read_bytes(100_000);
    sum.pull();
    blob.pull();
    stream.pull();
    batch.send().await.expect("batch");
    assert_eq!(sum.await.unwrap().bytes, 300_000);
    assert_eq!(blob.await.unwrap().data()[..], data[..]);
    let got = stream.await.unwrap().read_all().await.unwrap();
    assert_eq!(got[..], data[..100_000]);
}

#[tokio::test]
async fn a_message_that_cannot_be_encoded_leaves_no_exports_behind() {
    let (target, _) = streams();
    let (client, _server, _, _) = pair(RpcStub::new(target));
    let api = client.main();
    let baseline = client.stats();
    let used = chunks(&[&[1]]);
    let kept = used.clone();
    assert_eq!(api.call("sum", (used,)).typed::<u64>().await.unwrap(), 1);
    eventually("the first call's pipe is released", || {
        client.stats() == baseline
    })
    .await;
    // A writable and a stub are exported before the moved stream fails the encoding.
    let (writer, _reader) = capwire::stream::pipe();
    let (other, _) = streams();
    let e = api
        .call("fill", (writer, RpcStub::new(other), kept))
        .await
        .expect_err("a moved stream cannot be sent");
    assert!(e.message().contains("can be used once"), "{e}");
    assert_eq!(
        client.stats(),
        baseline,
        "nothing of the unsent call is exported"
    );
}
