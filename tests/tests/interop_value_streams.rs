//! Streams of values against the real capnweb 0.12 client in Node (`tests/node/value-streams.mjs`),
//! both ways: Node sends `ReadableStream`s of objects, strings and stubs that Rust reads as
//! `ReadableStream<T>`; Rust sends `ReadableStream<T>` that Node reads; each side writes
//! into the other's `WritableStream`; stubs inside chunks are called after their write (and
//! the stream's close) resolved; errors mid-stream reach the other side as errors; and a
//! slow consumer bounds what is in flight to the window, measured in encoded bytes, each way.
//! Alone in its test binary, so the process-wide count of live counters is its own.

mod support;

use capwire::{ReadableStream, RpcError, RpcStub, Stub, TypedStub, Value, WritableStream};
use capwire_examples::conformance::Counter;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Todo {
    title: String,
    done: bool,
}

/// A chunk from Node: a name and a stub of one of Node's objects.
#[derive(Serialize, Deserialize)]
struct NodeEntry {
    name: String,
    counter: RpcStub,
}

/// A chunk to Node: a name and a stub of one of our counters.
#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    counter: Stub<Counter>,
}

/// A value chunk of about 64 KiB of JSON.
#[derive(Serialize, Deserialize)]
struct Padded {
    i: u64,
    pad: String,
}

const PAD: usize = 64 * 1024;

#[derive(Default)]
struct Shared {
    /// Todos read from Node, as read.
    received: Mutex<Vec<Todo>>,
    /// Entries Node wrote into `collector()`'s stream.
    collected: Mutex<Vec<NodeEntry>>,
    /// Chunks `paddedForever` made, and their encoded length in all.
    produced: AtomicUsize,
    produced_bytes: AtomicUsize,
    /// The reader of `slowSink()`'s stream, read only by `drain()`.
    slow: Mutex<Option<ReadableStream<Value>>>,
}

struct Api(Arc<Shared>);

#[capwire::rpc_target]
impl Api {
    /// Reads todos as they come: how many are done.
    pub async fn count_done(&self, mut todos: ReadableStream<Todo>) -> Result<u32, RpcError> {
        let mut done = 0;
        while let Some(todo) = todos.next().await {
            let todo = todo?;
            done += u32::from(todo.done);
            self.0.received.lock().unwrap().push(todo);
        }
        Ok(done)
    }

    /// Reads strings: them, joined by "+".
    pub async fn join(&self, words: ReadableStream<String>) -> Result<String, RpcError> {
        let words: Vec<String> = words.try_collect().await?;
        Ok(words.join("+"))
    }

    /// Calls `increment(1)` on each entry's counter as it arrives.
    pub async fn call_each(
        &self,
        mut entries: ReadableStream<NodeEntry>,
    ) -> Result<Vec<Value>, RpcError> {
        let mut results = Vec::new();
        while let Some(entry) = entries.next().await {
            results.push(entry?.counter.call("increment", (1,)).await?);
        }
        Ok(results)
    }

    /// `n` todos, `done` every other one.
    pub fn todos(&self, n: u32) -> ReadableStream<Todo> {
        ReadableStream::from_values((0..n).map(|i| Todo {
            title: format!("todo {i}"),
            done: i % 2 == 0,
        }))
    }

    /// `n` entries, each with a new counter starting at `10 * i`.
    pub fn entries(&self, n: i64) -> ReadableStream<Entry> {
        ReadableStream::from_values((0..n).map(|i| Entry {
            name: format!("e{i}"),
            counter: TypedStub::local(Counter::new(10 * i)),
        }))
    }

    /// Writes `n` todos into `w` and closes it.
    pub async fn fill_todos(&self, n: u32, mut w: WritableStream<Todo>) -> Result<u32, RpcError> {
        for i in 0..n {
            w.write(Todo {
                title: format!("written {i}"),
                done: i % 3 == 0,
            })
            .await?;
        }
        w.close().await?;
        Ok(n)
    }

    /// Writes two entries whose counters live here into `w`, closes it, then returns: every
    /// write has resolved before Node calls a counter.
    pub async fn fill_entries(&self, mut w: WritableStream<Entry>) -> Result<(), RpcError> {
        for (name, start) in [("a", 100), ("b", 200)] {
            w.write(Entry {
                name: name.into(),
                counter: TypedStub::local(Counter::new(start)),
            })
            .await?;
        }
        w.close().await
    }

    /// A stream Node writes entries into; they are kept for `call_collected`.
    pub fn collector(&self) -> WritableStream<NodeEntry> {
        let shared = self.0.clone();
        WritableStream::from_sink(futures::sink::unfold((), move |(), entry: NodeEntry| {
            shared.collected.lock().unwrap().push(entry);
            async { Ok::<_, RpcError>(()) }
        }))
    }

    /// Calls `increment(5)` on every collected entry's counter (long after their writes
    /// resolved): the names and results.
    pub async fn call_collected(&self) -> Result<Vec<(String, Value)>, RpcError> {
        let entries: Vec<NodeEntry> = std::mem::take(&mut *self.0.collected.lock().unwrap());
        let mut results = Vec::new();
        for entry in entries {
            results.push((entry.name, entry.counter.call("increment", (5,)).await?));
        }
        Ok(results)
    }

    /// One todo, then a `RangeError`.
    pub fn failing(&self) -> ReadableStream<Todo> {
        ReadableStream::from_stream(futures::stream::iter([
            Ok(Todo {
                title: "first".into(),
                done: true,
            }),
            Err(RpcError::range("the list broke")),
        ]))
    }

    /// Chunks of about 64 KiB without end, counted (and their encoded bytes summed) as
    /// they are made.
    pub fn padded_forever(&self) -> ReadableStream<Padded> {
        let shared = self.0.clone();
        ReadableStream::from_stream(futures::stream::repeat_with(move || {
            let i = shared.produced.fetch_add(1, Ordering::SeqCst) as u64;
            let chunk = Padded {
                i,
                pad: "x".repeat(PAD),
            };
            let size = serde_json::to_string(&chunk).map_or(0, |s| s.len());
            shared.produced_bytes.fetch_add(size, Ordering::SeqCst);
            Ok::<_, RpcError>(chunk)
        }))
    }

    /// `[chunks, bytes]` `padded_forever` has made.
    pub fn produced(&self) -> (usize, usize) {
        (
            self.0.produced.load(Ordering::SeqCst),
            self.0.produced_bytes.load(Ordering::SeqCst),
        )
    }

    /// A stream nobody reads until `drain()`.
    pub fn slow_sink(&self) -> WritableStream<Value> {
        let (writer, reader) = capwire::stream::pipe_of::<Value>();
        *self.0.slow.lock().unwrap() = Some(reader);
        writer
    }

    /// Reads `slow_sink()`'s stream to its end: how many chunks.
    pub async fn drain(&self) -> Result<u32, RpcError> {
        let reader = self.0.slow.lock().unwrap().take();
        let Some(reader) = reader else {
            return Err(RpcError::type_error("no slow sink"));
        };
        let chunks: Vec<Value> = reader.try_collect().await?;
        Ok(chunks.len() as u32)
    }

    /// Counters alive in this process.
    pub fn live_counters(&self) -> u64 {
        Counter::live()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_streams_interoperate_with_capnweb_both_ways() {
    support::ensure_node_modules();
    let shared = Arc::new(Shared::default());
    let server = capwire::Server::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("address");
    let main = shared.clone();
    tokio::spawn(server.serve(move || Api(main.clone())));
    let url = format!("ws://{addr}/");
    tokio::task::spawn_blocking(move || {
        support::assert_node_checks_pass(&["value-streams.mjs", &url])
    })
    .await
    .expect("node");
    // What Rust read, typed, from Node's objects (the failing upload's first one included).
    let received = shared.received.lock().unwrap().clone();
    let titles: Vec<&str> = received.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["a", "b", "c", "before the error"]);
    assert_eq!(
        received[..3].iter().map(|t| t.done).collect::<Vec<_>>(),
        [true, false, true]
    );
}
