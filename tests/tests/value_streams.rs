//! Streams of values (`ReadableStream<T>`, `WritableStream<T>`), Rust to Rust: the wire
//! form capnweb 0.12 uses for a chunk that is not bytes (one `write` call whose argument
//! is the chunk), typed reading, stubs inside chunks (alive while held, released when
//! dropped), errors mid-stream, flow control counted in encoded bytes, and a hostile peer
//! flooding value chunks into a reader that does not read.

mod support;

use capwire::{
    ReadableStream, RpcError, RpcStub, Stub, TypedStub, Value, WritableStream, rpc_target,
};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use support::{Log, eventually, pair};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Todo {
    title: String,
    done: bool,
}

fn todo(title: &str, done: bool) -> Todo {
    Todo {
        title: title.into(),
        done,
    }
}

pub struct Counter(AtomicI64);

#[rpc_target]
impl Counter {
    pub fn increment(&self, by: i64) -> i64 {
        self.0.fetch_add(by, Ordering::SeqCst) + by
    }
}

/// A chunk holding a stub.
#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    counter: Stub<Counter>,
}

/// A value chunk of about 64 KiB.
#[derive(Serialize, Deserialize)]
struct Padded {
    i: u64,
    pad: String,
}

struct Values {
    /// How many chunks `padded_forever` has produced.
    produced: Arc<AtomicUsize>,
    /// Streams handed to `hold`, never read.
    held: Mutex<Vec<ReadableStream<Value>>>,
}

#[rpc_target]
impl Values {
    pub fn todos(&self) -> ReadableStream<Todo> {
        ReadableStream::from_values([todo("write", true), todo("test", false)])
    }

    pub fn words(&self) -> ReadableStream<String> {
        ReadableStream::from_values(["one", "two"].map(String::from))
    }

    /// How many todos are done; the reader's error if the stream fails.
    pub async fn count_done(&self, todos: ReadableStream<Todo>) -> Result<u32, RpcError> {
        let todos: Vec<Todo> = todos.try_collect().await?;
        Ok(todos.iter().filter(|t| t.done).count() as u32)
    }

    /// Writes entries whose counters live here, closes the stream, then returns.
    pub async fn fill_entries(&self, mut out: WritableStream<Entry>) -> Result<(), RpcError> {
        for (name, start) in [("a", 10), ("b", 20)] {
            let counter = TypedStub::local(Counter(AtomicI64::new(start)));
            out.write(Entry {
                name: name.into(),
                counter,
            })
            .await?;
        }
        out.close().await
    }

    /// Calls each entry's counter as it arrives; the results.
    pub async fn call_entries(
        &self,
        mut entries: ReadableStream<Entry>,
    ) -> Result<Vec<i64>, RpcError> {
        let mut results = Vec::new();
        while let Some(entry) = entries.next().await {
            results.push(entry?.counter.increment(1).await?);
        }
        Ok(results)
    }

    /// One todo, then a `RangeError`.
    pub fn failing(&self) -> ReadableStream<Todo> {
        ReadableStream::from_stream(futures::stream::iter([
            Ok(todo("first", true)),
            Err(RpcError::range("the list broke")),
        ]))
    }

    /// Chunks of about 64 KiB, without end, counted as they are made.
    pub fn padded_forever(&self) -> ReadableStream<Padded> {
        let produced = self.produced.clone();
        ReadableStream::from_stream(futures::stream::repeat_with(move || {
            let i = produced.fetch_add(1, Ordering::SeqCst) as u64;
            Ok::<_, RpcError>(Padded {
                i,
                pad: "x".repeat(64 * 1024),
            })
        }))
    }

    /// Chunks of 16,384 zeros without end, counted as they are made: about 32 KiB of
    /// text each, but a megabyte to hold once read into values.
    pub fn numbers_forever(&self) -> ReadableStream<Vec<u32>> {
        let produced = self.produced.clone();
        ReadableStream::from_stream(futures::stream::repeat_with(move || {
            produced.fetch_add(1, Ordering::SeqCst);
            Ok::<_, RpcError>(vec![0u32; 16_384])
        }))
    }

    /// One small chunk, then one too big for any message.
    pub fn oversized(&self) -> ReadableStream<String> {
        ReadableStream::from_values(["small".to_owned(), "o".repeat(33 << 20)])
    }

    /// Keeps the stream without reading it.
    pub fn hold(&self, stream: ReadableStream<Value>) {
        self.held.lock().unwrap().push(stream);
    }

    /// Its stream, unchanged.
    pub fn echo_stream(&self, stream: ReadableStream<Value>) -> ReadableStream<Value> {
        stream
    }
}

fn values() -> (Values, Arc<AtomicUsize>) {
    let produced = Arc::new(AtomicUsize::new(0));
    (
        Values {
            produced: produced.clone(),
            held: Mutex::default(),
        },
        produced,
    )
}

struct Served {
    api: Stub<Values>,
    client: capwire::Session,
    server: capwire::Session,
    server_log: Log,
    produced: Arc<AtomicUsize>,
}

fn served() -> Served {
    let (target, produced) = values();
    let (client, server, _client_log, server_log) = pair(RpcStub::new(target));
    Served {
        api: TypedStub::from_raw(client.main()),
        client,
        server,
        server_log,
        produced,
    }
}

fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn a_stream_of_values_goes_as_capnweb_sends_one_and_reads_typed() {
    let s = served();
    let todos: Vec<Todo> = s.api.todos().await.unwrap().try_collect().await.unwrap();
    assert_eq!(todos, [todo("write", true), todo("test", false)]);
    eventually("the server released its pipe", || {
        lines(&s.server_log).last().map(String::as_str) == Some(r#"["release",1,1]"#)
    })
    .await;
    // As capnweb 0.12 writes an object chunk: a `write` call with the chunk as argument.
    assert_eq!(
        lines(&s.server_log),
        [
            r#"["pipe"]"#,
            r#"["resolve",1,["readable",1]]"#,
            r#"["stream",["pipeline",1,["write"],[{"title":"write","done":true}]]]"#,
            r#"["stream",["pipeline",1,["write"],[{"title":"test","done":false}]]]"#,
            r#"["stream",["pipeline",1,["close"],[]]]"#,
            r#"["release",1,1]"#,
        ]
    );
    let words: Vec<String> = s.api.words().await.unwrap().try_collect().await.unwrap();
    assert_eq!(words, ["one", "two"]);
    assert!(
        lines(&s.server_log)
            .iter()
            .any(|l| l.starts_with(r#"["stream",["pipeline","#)
                && l.ends_with(r#",["write"],["one"]]]"#)),
        "{:?}",
        lines(&s.server_log)
    );
}

#[tokio::test]
async fn an_uploaded_stream_of_values_is_read_typed_and_a_wrong_chunk_is_a_type_error() {
    let s = served();
    let upload = ReadableStream::from_values([todo("a", true), todo("b", false), todo("c", true)]);
    assert_eq!(s.api.count_done(upload).await.unwrap(), 2);
    // A string where a `Todo` is expected: the reader's error, and the call rejects with it.
    let wrong = ReadableStream::from_values(["not a todo".to_owned()]).typed::<Todo>();
    let e = s
        .api
        .count_done(wrong)
        .await
        .expect_err("a string is not a Todo");
    assert_eq!(e.name(), "TypeError", "{e}");
    assert!(e.message().contains("Todo"), "{e}");
    // A byte stream still refuses a chunk that is neither bytes nor text.
    let (mut w, r) = capwire::stream::pipe_of::<Value>();
    let writing = tokio::spawn(async move { w.write(Value::Number(1.0)).await });
    let e = r
        .typed::<bytes::Bytes>()
        .read_all()
        .await
        .expect_err("a number is not bytes");
    assert!(e.message().contains("must be bytes or a string"), "{e}");
    writing.await.unwrap().unwrap();
    // The session is healthy.
    assert_eq!(
        s.api
            .count_done(ReadableStream::from_values([]))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_stub_in_a_chunk_is_called_after_its_write_resolved_and_released_when_dropped() {
    let s = served();
    let (writer, reader) = capwire::stream::pipe_of::<Entry>();
    // The server writes two entries and closes; its call returns once the close (and so
    // every write) has resolved, and only then are the stubs called.
    let read = tokio::spawn(reader.try_collect::<Vec<Entry>>());
    s.api.fill_entries(writer).await.unwrap();
    let entries = read.await.unwrap().unwrap();
    let imports = s.client.stats().imports;
    let exports = s.server.stats().exports;
    let mut results = Vec::new();
    for entry in &entries {
        results.push((
            entry.name.clone(),
            entry.counter.increment(5).await.unwrap(),
        ));
    }
    assert_eq!(results, [("a".to_owned(), 15), ("b".to_owned(), 25)]);
    // Held by the chunks, then released when they are dropped.
    drop(entries);
    eventually("the chunks' stubs are released", || {
        s.client.stats().imports == imports - 2 && s.server.stats().exports == exports - 2
    })
    .await;

    // The other way: our stubs in an uploaded stream, called by the server.
    let ours: Vec<Entry> = [1, 2]
        .map(|start| Entry {
            name: format!("c{start}"),
            counter: TypedStub::local(Counter(AtomicI64::new(start))),
        })
        .into();
    let results = s
        .api
        .call_entries(ReadableStream::from_values(ours))
        .await
        .unwrap();
    assert_eq!(results, [2, 3]);
    // A stub echoed back in a stream still calls its original object.
    let counter: Stub<Counter> = TypedStub::local(Counter(AtomicI64::new(100)));
    let echoed: Vec<Value> = s
        .api
        .echo_stream(ReadableStream::from_values([
            Value::from("text"),
            Value::Number(7.0),
            counter.clone().into(),
        ]))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(echoed[..2], [Value::from("text"), Value::Number(7.0)]);
    let Value::Stub(stub) = &echoed[2] else {
        panic!("a stub chunk came back as {:?}", echoed[2]);
    };
    let n = stub.call("increment", (1,)).await.unwrap();
    assert_eq!(n.as_i64(), Some(101));
    assert_eq!(counter.increment(1).await.unwrap(), 102, "the same object");
}

#[tokio::test]
async fn an_error_mid_stream_reaches_the_reader_with_its_type_and_message() {
    let s = served();
    let mut stream = s.api.failing().await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), todo("first", true));
    let e = stream.next().await.unwrap().expect_err("the source failed");
    assert_eq!((e.name(), e.message()), ("RangeError", "the list broke"));
    assert!(stream.next().await.is_none());
    // Uploaded: the server's reader sees it, and its call rejects with it.
    let failing = ReadableStream::from_stream(futures::stream::iter([
        Ok(todo("x", true)),
        Err(RpcError::range("upload broke")),
    ]));
    let e = s
        .api
        .count_done(failing)
        .await
        .expect_err("the upload failed");
    assert_eq!((e.name(), e.message()), ("RangeError", "upload broke"));
}

#[tokio::test]
async fn flow_control_counts_value_chunks_by_their_encoded_size() {
    let s = served();
    let writes = || -> Vec<usize> {
        lines(&s.server_log)
            .iter()
            .filter(|l| l.contains(r#"["write"]"#))
            .map(String::len)
            .collect()
    };
    let mut stream = s.api.padded_forever().await.unwrap();
    // About 65,560 characters each: 64 of them fill the initial 4 MiB window.
    eventually("the window is full", || {
        writes().iter().sum::<usize>() >= 4 << 20
    })
    .await;
    // Round trips give the server every chance to send more, were it not blocked.
    for _ in 0..20 {
        let _ = s.api.count_done(ReadableStream::from_values([])).await;
    }
    let sizes = writes();
    let total: usize = sizes.iter().sum();
    let last = *sizes.last().unwrap();
    assert!(
        total - last < 4 << 20 && total >= 4 << 20,
        "{} writes of {total} bytes in flight: the window is 4 MiB of message text",
        sizes.len()
    );
    assert!(s.produced.load(Ordering::SeqCst) <= sizes.len() + 1);
    // Reading lets it go on; when the reader stops again, so does the sender.
    for i in 0..100 {
        assert_eq!(stream.next().await.unwrap().unwrap().i, i);
    }
    let round_trips = || async {
        for _ in 0..20 {
            let _ = s.api.count_done(ReadableStream::from_values([])).await;
        }
    };
    round_trips().await;
    let stalled = writes().len();
    round_trips().await;
    assert_eq!(
        writes().len(),
        stalled,
        "the sender stopped with the reader"
    );
    assert!(stalled - 100 < 1100, "{} writes in flight", stalled - 100);
}

#[tokio::test]
async fn a_chunk_the_sender_cannot_send_reaches_the_reader_as_its_error() {
    let s = served();
    let mut stream = s.api.oversized().await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), "small");
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(err.message().contains("max_message_size"), "{err}");
}

#[tokio::test]
async fn a_sender_within_its_window_stays_within_the_readers_budget() {
    // The reader charges what a chunk holds (a node per number), not its text (two
    // characters per number): the window counts the larger, so that an honest sender
    // does not run the reader past its `max_stream_buffer` and get the session aborted.
    let s = served();
    let mut stream = s.api.numbers_forever().await.unwrap();
    for _ in 0..20 {
        s.api
            .count_done(ReadableStream::from_values([]))
            .await
            .expect("the session lives");
    }
    let produced = s.produced.load(Ordering::SeqCst);
    assert!(
        produced <= 8,
        "{produced} chunks of a megabyte each to hold were sent to a reader that reads none"
    );
    for _ in 0..produced + 20 {
        assert_eq!(stream.next().await.unwrap().unwrap().len(), 16_384);
    }
}

/// Raw frames from a peer, to a session serving [`Values`] with `limits`.
async fn raw_peer(limits: capwire::Limits) -> capwire::transport::memory::MemoryTransport {
    let (raw, end) = capwire::transport::memory::channel(std::time::Duration::ZERO);
    let (target, _) = values();
    let server = capwire::Session::start(end, Some(RpcStub::new(target)), limits);
    std::mem::forget(server); // the session runs while its transport is open
    raw
}

/// The session's `abort`; fails the test if none comes within 30 seconds.
async fn next_abort(raw: &mut capwire::transport::memory::MemoryTransport) -> String {
    let abort = async {
        loop {
            match raw.next().await {
                Some(Ok(text)) if text.starts_with(r#"["abort""#) => return text,
                Some(Ok(_)) => {}
                other => panic!("no abort, but {other:?}"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), abort)
        .await
        .expect("the session was not aborted")
}

#[tokio::test]
async fn a_peer_flooding_value_chunks_into_a_reader_that_does_not_read_is_cut_off() {
    use futures::SinkExt;
    let limits = capwire::Limits {
        max_stream_buffer: 8 << 20,
        max_session_memory: 32 << 20,
        ..Default::default()
    };
    // Big objects, into a stream a method holds without reading, ignoring flow control.
    let mut raw = raw_peer(limits).await;
    raw.send(r#"["pipe"]"#.to_owned()).await.unwrap();
    raw.send(r#"["push",["pipeline",0,["hold"],[["readable",1]]]]"#.to_owned())
        .await
        .unwrap();
    let pad = "y".repeat(256 * 1024);
    let write = format!(r#"["stream",["pipeline",1,["write"],[{{"pad":"{pad}","n":[[1,2,3]]}}]]]"#);
    for _ in 0..64 {
        if raw.send(write.clone()).await.is_err() {
            break;
        }
    }
    let abort = next_abort(&mut raw).await;
    assert!(abort.contains("max_stream_buffer"), "{abort}");

    // Errors, whose message and stack are what they hold.
    let mut raw = raw_peer(limits).await;
    raw.send(r#"["pipe"]"#.to_owned()).await.unwrap();
    raw.send(r#"["push",["pipeline",0,["hold"],[["readable",1]]]]"#.to_owned())
        .await
        .unwrap();
    let write =
        format!(r#"["stream",["pipeline",1,["write"],[["error","Error","{pad}","{pad}"]]]]"#);
    for _ in 0..64 {
        if raw.send(write.clone()).await.is_err() {
            break;
        }
    }
    let abort = next_abort(&mut raw).await;
    assert!(abort.contains("max_stream_buffer"), "errors: {abort}");

    // Small chunks, each holding a stub of the peer's: what the chunks and their stubs
    // hold is bounded too.
    let mut raw = raw_peer(limits).await;
    raw.send(r#"["pipe"]"#.to_owned()).await.unwrap();
    raw.send(r#"["push",["pipeline",0,["hold"],[["readable",1]]]]"#.to_owned())
        .await
        .unwrap();
    let mut sent = 0;
    for i in 1..=1_000_000 {
        let write = format!(r#"["stream",["pipeline",1,["write"],[{{"s":["export",-{i}]}}]]]"#);
        if raw.send(write).await.is_err() {
            break;
        }
        sent = i;
    }
    let abort = next_abort(&mut raw).await;
    assert!(
        abort.contains("max_stream_buffer") || abort.contains("max_session_memory"),
        "after {sent} chunks: {abort}"
    );
}

#[tokio::test]
async fn an_error_waits_for_unacknowledged_writes_no_longer_than_send_timeout() {
    use futures::SinkExt;
    // A peer that takes the stream but never acknowledges its writes: the source's error
    // waits for them (so that it does not overtake them), but only for `send_timeout`.
    let limits = capwire::Limits {
        send_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let mut raw = raw_peer(limits).await;
    raw.send(r#"["push",["pipeline",0,["failing"],[]]]"#.to_owned())
        .await
        .unwrap();
    raw.send(r#"["pull",1]"#.to_owned()).await.unwrap();
    let abort = async {
        loop {
            match raw.next().await {
                Some(Ok(text)) if text.contains(r#"["abort"]"#) => return text,
                Some(Ok(_)) => {}
                other => panic!("no abort of the stream, but {other:?}"),
            }
        }
    };
    let abort = tokio::time::timeout(std::time::Duration::from_secs(10), abort)
        .await
        .expect("the stream's error was held back for good");
    assert!(abort.contains("the list broke"), "{abort}");
}
