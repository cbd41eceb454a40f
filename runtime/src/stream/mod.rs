//! Streams over RPC: [`ReadableStream`] and [`WritableStream`], of bytes by default or of
//! any serde type.
//!
//! A stream travels by moving it: put a `ReadableStream` in a call's arguments or a result
//! and the receiver reads what the sender's source produces; put a `WritableStream` there
//! and the receiver writes into the sender's sink. On the wire these are Cap'n Web's
//! `pipe`, `stream`, `readable` and `writable`, so the peer may be capnweb in JavaScript,
//! where they are a `ReadableStream` and a `WritableStream`.
//!
//! **Chunk types.** `ReadableStream` alone is `ReadableStream<bytes::Bytes>` (the `bytes`
//! crate's type, not [`capwire::Bytes`](crate::Bytes)): a stream of byte chunks, which
//! travel as bytes without any conversion. (A `Vec<u8>` chunk is a serde sequence, and
//! travels as an array of numbers: use `bytes::Bytes`, or `serde_bytes`, for binary.)
//! `ReadableStream<T>` and `WritableStream<T>` carry chunks of any [`StreamValue`] (any type that is
//! `Serialize + DeserializeOwned + Send + 'static`): strings, numbers, structs, stubs
//! ([`Stub<X>`](crate::Stub), [`RpcStub`](crate::RpcStub)), [`Value`]s. Each chunk is
//! sent as capnweb sends a chunk of its object streams, one `write` call whose argument is
//! the chunk's value; a stub inside a chunk is exported with it, and stays alive as long as
//! the receiver holds the chunk (dropping it releases the stub). A chunk that does not read
//! as the receiver's `T` is an error at the reader, a `TypeError` naming the type.
//!
//! **Flow control.** The sending side keeps at most a window of unacknowledged bytes in
//! flight, counted as the encoded size of the `stream` messages (whatever the chunks
//! hold), and the receiving side acknowledges a chunk only when its reader has taken it,
//! so a slow reader slows the writer down instead of filling memory. The window adapts to
//! the link, as capnweb's does. What a peer wrote and no reader has taken counts against
//! the session's `max_stream_buffer` (bytes for bytes, the held size of a value).
//!
//! **Ownership and errors.** A stream sent over RPC is moved: the sender's copy can no
//! longer be read or written. Dropping a `WritableStream` without [`close`] aborts the
//! stream on the other side with an error; an error on either side reaches the other as
//! an error, never as a silent short read.
//!
//! ```
//! use capwire::{ReadableStream, RpcError};
//! use futures::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), RpcError> {
//! let chunks = futures::stream::iter([Ok::<_, RpcError>(vec![1u8, 2]), Ok(vec![3])]);
//! let stream = ReadableStream::new(chunks);
//! assert_eq!(&stream.read_all().await?[..], &[1, 2, 3]);
//!
//! let (mut writer, mut reader) = capwire::stream::pipe();
//! tokio::spawn(async move {
//!     writer.write("hello").await?;
//!     writer.close().await
//! });
//! assert_eq!(reader.next().await.transpose()?.as_deref(), Some(&b"hello"[..]));
//! assert!(reader.next().await.is_none());
//! # Ok(()) }
//! ```
//!
//! A stream of values:
//!
//! ```
//! use capwire::{ReadableStream, RpcError};
//! use futures::TryStreamExt;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Todo {
//!     title: String,
//!     done: bool,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), RpcError> {
//! let todos = ReadableStream::from_values([
//!     Todo { title: "write".into(), done: true },
//!     Todo { title: "test".into(), done: false },
//! ]);
//! let read: Vec<Todo> = todos.try_collect().await?;
//! assert_eq!(read[1].title, "test");
//!
//! let (mut writer, reader) = capwire::stream::pipe_of::<String>();
//! tokio::spawn(async move {
//!     writer.write("one").await?;
//!     writer.write("two").await?;
//!     writer.close().await
//! });
//! assert_eq!(reader.try_collect::<Vec<_>>().await?, ["one", "two"]);
//! # Ok(()) }
//! ```
//!
//! [`close`]: WritableStream::close

mod chunk;
mod flow;
mod remote;

pub(crate) use chunk::Chunk;
pub use chunk::StreamValue;
use chunk::{from_chunk, into_chunk};

pub(crate) use remote::{RemoteWriter, pump};

use crate::error::RpcError;
use crate::stub::object::{CallFuture, RpcObject};
use crate::value::Value;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};

/// The largest chunk sent in one `stream` message; bigger writes are split, so that no
/// single message comes near the peer's message size limit.
pub(crate) const MAX_CHUNK: usize = 1 << 20;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The error a reader sees when the writing side went away without closing the stream.
pub(crate) fn disposed_without_close() -> RpcError {
    RpcError::error("WritableStream RPC stub was disposed without calling close()")
}

/// The error a writer sees when the reading side stopped reading.
fn reader_cancelled() -> RpcError {
    RpcError::error("the ReadableStream was cancelled by its reader")
}

fn moved(what: &str) -> RpcError {
    RpcError::type_error(format!(
        "this {what} was already sent over RPC or used up: a stream can be used once"
    ))
}

// ---------------------------------------------------------------------------------------
// ReadableStream

enum Source {
    Open(BoxStream<'static, Result<Chunk, RpcError>>),
    /// Sent over RPC (or otherwise taken): reading it fails once, then ends.
    Moved,
    Done,
}

/// A stream of chunks that can be read here or sent over RPC: byte chunks by default
/// (`ReadableStream` is `ReadableStream<bytes::Bytes>`), or values of any [`StreamValue`] `T`.
///
/// It is a [`Stream`] of `Result<T, RpcError>`. For bytes,
/// [`ReadableStream::into_async_read`] gives a tokio `AsyncRead`, and
/// [`ReadableStream::from_async_read`] makes one from any `AsyncRead`. Sent over RPC (as an
/// argument or a result) it is moved: the receiver reads the chunks, with flow control.
/// Clones refer to the same stream, which only one of them can read.
///
/// A stream of values (here a stub in each chunk, which the reader can call):
///
/// ```
/// use capwire::{ReadableStream, RpcError, Stub, TypedStub, rpc_target};
/// use futures::StreamExt;
///
/// pub struct Greeter {
///     name: String,
/// }
///
/// #[rpc_target]
/// impl Greeter {
///     pub fn greet(&self) -> String {
///         format!("hello from {}", self.name)
///     }
/// }
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Entry {
///     name: String,
///     greeter: Stub<Greeter>,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), RpcError> {
/// let entries = ReadableStream::from_values(["a", "b"].map(|name| Entry {
///     name: name.into(),
///     greeter: TypedStub::local(Greeter { name: name.into() }),
/// }));
/// let mut entries = std::pin::pin!(entries);
/// while let Some(entry) = entries.next().await {
///     let entry = entry?;
///     assert_eq!(entry.greeter.greet().await?, format!("hello from {}", entry.name));
/// }
/// # Ok(()) }
/// ```
pub struct ReadableStream<T = Bytes> {
    source: Arc<Mutex<Source>>,
    /// Bytes the stream holds in memory already (a body that came inline), counted where
    /// the value holding it is measured for a memory budget.
    buffered: usize,
    chunk: PhantomData<fn() -> T>,
}

impl<T> Clone for ReadableStream<T> {
    /// A handle on the same stream (which only one handle can read).
    fn clone(&self) -> Self {
        ReadableStream {
            source: self.source.clone(),
            ..*self
        }
    }
}

impl ReadableStream {
    /// A stream of the byte chunks `stream` yields. Its errors reach the reader (a remote
    /// one included) as errors. (For chunks of another type, see
    /// [`ReadableStream::from_stream`].)
    pub fn new<S, B, E>(stream: S) -> ReadableStream
    where
        S: Stream<Item = Result<B, E>> + Send + 'static,
        B: Into<Bytes>,
        E: Into<RpcError>,
    {
        ReadableStream::from_chunks(
            stream
                .map(|r| r.map(|b| Chunk::Bytes(b.into())).map_err(Into::into))
                .boxed(),
        )
    }

    /// A stream of one chunk (none if `data` is empty).
    pub fn from_bytes(data: impl Into<Bytes>) -> ReadableStream {
        let data = data.into();
        let buffered = data.len();
        let chunks = if data.is_empty() { None } else { Some(data) };
        ReadableStream {
            buffered,
            ..ReadableStream::new(futures::stream::iter(chunks.map(Ok::<_, RpcError>)))
        }
    }

    /// A stream that ends at once.
    pub fn empty() -> ReadableStream {
        ReadableStream::from_bytes(Bytes::new())
    }

    /// A stream of what `reader` reads, in chunks of up to 64 KiB.
    pub fn from_async_read(reader: impl tokio::io::AsyncRead + Send + 'static) -> Self {
        ReadableStream::new(tokio_util::io::ReaderStream::with_capacity(
            reader,
            64 * 1024,
        ))
    }

    /// The stream as a tokio `AsyncRead`; a stream error is an `io::Error` of kind `Other`
    /// whose source is the [`RpcError`].
    pub fn into_async_read(self) -> impl tokio::io::AsyncRead + Send + Unpin + 'static {
        tokio_util::io::StreamReader::new(self.map(|r| r.map_err(std::io::Error::other)))
    }

    /// Reads the whole stream into one buffer (a stream of one chunk is that chunk, not
    /// copied).
    pub async fn read_all(mut self) -> Result<Bytes, RpcError> {
        let mut chunks = Vec::new();
        while let Some(chunk) = self.next().await {
            chunks.push(chunk?);
        }
        Ok(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.swap_remove(0),
            _ => chunks.concat().into(),
        })
    }
}

impl<T: StreamValue> ReadableStream<T> {
    /// A stream of the chunks `stream` yields, of any [`StreamValue`] type. Its errors
    /// reach the reader (a remote one included) as errors; so does a chunk that cannot be
    /// sent (one that does not serialize).
    ///
    /// ```
    /// use capwire::{ReadableStream, RpcError};
    /// use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), RpcError> {
    /// let squares = futures::stream::iter((1..=3).map(|i| Ok::<u32, RpcError>(i * i)));
    /// let stream = ReadableStream::from_stream(squares);
    /// assert_eq!(stream.try_collect::<Vec<u32>>().await?, [1, 4, 9]);
    /// # Ok(()) }
    /// ```
    pub fn from_stream<S, E>(stream: S) -> ReadableStream<T>
    where
        S: Stream<Item = Result<T, E>> + Send + 'static,
        E: Into<RpcError>,
    {
        ReadableStream::from_chunks(
            stream
                .map(|r| r.map_err(Into::into).and_then(into_chunk))
                .boxed(),
        )
    }

    /// A stream of the values `values` yields, then its end.
    ///
    /// ```
    /// use capwire::{ReadableStream, RpcError};
    /// use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), RpcError> {
    /// let words = ReadableStream::from_values(["to", "be"].map(String::from));
    /// assert_eq!(words.try_collect::<Vec<_>>().await?, ["to", "be"]);
    /// # Ok(()) }
    /// ```
    pub fn from_values<I>(values: I) -> ReadableStream<T>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        ReadableStream::from_stream(futures::stream::iter(
            values.into_iter().map(Ok::<_, RpcError>),
        ))
    }

    /// The same stream, its chunks read as `U` (each an error if it is not one). A stream
    /// received inside a [`Value`] is a `ReadableStream` of bytes until read as another
    /// type with this.
    ///
    /// ```
    /// use capwire::{ReadableStream, Value};
    /// use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), capwire::RpcError> {
    /// let numbers = ReadableStream::from_values([1.5, 2.5]);
    /// let values: Vec<Value> = numbers.typed::<Value>().try_collect().await?;
    /// assert_eq!(values, [Value::Number(1.5), Value::Number(2.5)]);
    /// # Ok(()) }
    /// ```
    pub fn typed<U: StreamValue>(self) -> ReadableStream<U> {
        self.retyped()
    }
}

impl<T> ReadableStream<T> {
    pub(crate) fn from_chunks(stream: BoxStream<'static, Result<Chunk, RpcError>>) -> Self {
        ReadableStream {
            source: Arc::new(Mutex::new(Source::Open(stream))),
            buffered: 0,
            chunk: PhantomData,
        }
    }

    /// Bytes the stream holds in memory already (see [`ReadableStream::from_bytes`]).
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Takes the source out, to be sent over RPC.
    pub(crate) fn take(&self) -> Result<BoxStream<'static, Result<Chunk, RpcError>>, RpcError> {
        let mut source = lock(&self.source);
        match std::mem::replace(&mut *source, Source::Moved) {
            Source::Open(s) => Ok(s),
            other => {
                *source = other;
                Err(moved("ReadableStream"))
            }
        }
    }

    pub(crate) fn same<U>(&self, other: &ReadableStream<U>) -> bool {
        Arc::ptr_eq(&self.source, &other.source)
    }

    /// The same stream, untyped: how a [`Value`] holds it.
    pub(crate) fn erased(self) -> ReadableStream {
        self.retyped()
    }

    /// The same stream, read as chunks of `U`.
    fn retyped<U>(self) -> ReadableStream<U> {
        ReadableStream {
            source: self.source,
            buffered: self.buffered,
            chunk: PhantomData,
        }
    }
}

impl<T: StreamValue> Stream for ReadableStream<T> {
    type Item = Result<T, RpcError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut source = lock(&self.source);
        match &mut *source {
            Source::Open(s) => {
                let item = match std::task::ready!(s.poll_next_unpin(cx)) {
                    Some(Ok(chunk)) => Some(from_chunk::<T>(chunk)),
                    Some(Err(e)) => Some(Err(e)),
                    None => None,
                };
                // The end, an error, or a chunk that is not a `T`: the stream is over, and
                // dropping its source tells the writer.
                if let None | Some(Err(_)) = &item {
                    *source = Source::Done;
                }
                Poll::Ready(item)
            }
            Source::Moved => {
                *source = Source::Done;
                Poll::Ready(Some(Err(moved("ReadableStream"))))
            }
            Source::Done => Poll::Ready(None),
        }
    }
}

impl<T> fmt::Debug for ReadableStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadableStream")
    }
}

impl From<Bytes> for ReadableStream {
    fn from(data: Bytes) -> Self {
        ReadableStream::from_bytes(data)
    }
}

impl From<crate::Body> for ReadableStream {
    /// An HTTP body as a stream of its data frames.
    fn from(body: crate::Body) -> Self {
        ReadableStream::new(body.into_data_stream())
    }
}

impl From<ReadableStream> for crate::Body {
    fn from(stream: ReadableStream) -> Self {
        crate::Body::from_stream(stream)
    }
}

impl<T> serde::Serialize for ReadableStream<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::value::ser::serialize_special(&Value::Readable(self.clone().erased()), serializer)
    }
}

impl<'de, T> serde::Deserialize<'de> for ReadableStream<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let erased = match crate::value::de::deserialize_value(deserializer)? {
            Value::Readable(r) => r,
            Value::Bytes(b) => ReadableStream::from_bytes(b.data),
            // Text where a stream is expected: one chunk (of bytes, for a byte stream).
            Value::String(s) if s.is_empty() => ReadableStream::empty(),
            Value::String(s) => ReadableStream::from_chunks(
                futures::stream::iter([Ok(Chunk::Value(Value::String(s)))]).boxed(),
            ),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a ReadableStream, found {}",
                    other.type_name()
                )));
            }
        };
        Ok(erased.retyped())
    }
}

// ---------------------------------------------------------------------------------------
// Pipes: a writable end whose writes a readable end reads

/// What a writable end asks of whoever consumes it; a write and a close carry their
/// acknowledgement (an abort waits for nobody). A write from a peer also carries its
/// charge against the session's stream buffer, given back when the chunk is taken (or
/// dropped unread).
pub(crate) enum Command {
    Write(Chunk, Ack, Option<Charge>),
    Close(Ack),
    Abort(RpcError),
}

type Ack = oneshot::Sender<Result<(), RpcError>>;

pub(crate) use crate::limits::budget::{Budget, Charge};

/// The writable end of a pipe, and what a peer's calls on a writable reach: it forwards
/// `write`, `close` and `abort` in order to the consumer, and acknowledges each when the
/// consumer has taken it. Dropped without `close` or `abort`, it aborts the stream.
pub(crate) struct PipeWriter {
    tx: mpsc::UnboundedSender<Command>,
    finished: AtomicBool,
    /// What a peer's writes are counted against; `None` for writes from this process.
    budget: Option<Arc<Budget>>,
}

impl PipeWriter {
    fn new(tx: mpsc::UnboundedSender<Command>, budget: Option<Arc<Budget>>) -> Arc<PipeWriter> {
        Arc::new(PipeWriter {
            tx,
            finished: AtomicBool::new(false),
            budget,
        })
    }

    fn send(
        &self,
        command: impl FnOnce(Ack) -> Command,
    ) -> BoxFuture<'static, Result<(), RpcError>> {
        let (ack, acked) = oneshot::channel();
        if self.tx.send(command(ack)).is_err() {
            return futures::future::ready(Err(reader_cancelled())).boxed();
        }
        async move { acked.await.unwrap_or_else(|_| Err(reader_cancelled())) }.boxed()
    }

    fn write(&self, chunk: Chunk) -> BoxFuture<'static, Result<(), RpcError>> {
        if self.finished.load(Ordering::Acquire) {
            return futures::future::ready(Err(RpcError::type_error(
                "Cannot write to a WritableStream that was closed or aborted.",
            )))
            .boxed();
        }
        let charge = match &self.budget {
            Some(budget) => match budget.charge(chunk.held_size(budget.limit())) {
                Some(charge) => Some(charge),
                None => {
                    let full = budget.exceeded_budget();
                    let (name, limit) =
                        full.map_or((budget.name(), budget.limit()), |e| (e.name, e.limit));
                    return futures::future::ready(Err(RpcError::range(format!(
                        "more than {limit} bytes written into streams and not read (limit {name})"
                    ))))
                    .boxed();
                }
            },
            None => None,
        };
        self.send(|ack| Command::Write(chunk, ack, charge))
    }

    fn close(&self) -> BoxFuture<'static, Result<(), RpcError>> {
        self.finished.store(true, Ordering::Release);
        self.send(Command::Close)
    }

    /// Aborts the stream with `reason` unless it was closed or aborted already (a later
    /// abort changes nothing, as in JavaScript). Done at once: an abort does not wait for
    /// a reader (who may never come), it only follows the chunks already queued.
    pub(crate) fn abort_unfinished(&self, reason: RpcError) {
        if !self.finished.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(Command::Abort(reason));
        }
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.abort_unfinished(disposed_without_close());
    }
}

/// The reason of an `abort(reason)` call, as an error.
fn reason_of(value: Option<&Value>) -> RpcError {
    match value {
        Some(Value::Error(e)) => e.clone(),
        Some(Value::String(s)) => RpcError::error(s.clone()),
        None | Some(Value::Undefined) => RpcError::error("the stream was aborted"),
        Some(other) => RpcError::error(format!("{other:?}")),
    }
}

impl RpcObject for PipeWriter {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
        let done = match method {
            // Any value: whether it is a chunk of the reader's type is for the reader to
            // tell (a byte stream takes bytes and strings).
            "write" => match args.into_iter().next() {
                Some(chunk) => self.write(Chunk::of_value(chunk)),
                None => {
                    return Box::pin(std::future::ready(Err(RpcError::type_error(
                        "write() needs a chunk",
                    ))));
                }
            },
            "close" => self.close(),
            "abort" => {
                self.abort_unfinished(reason_of(args.first()));
                futures::future::ready(Ok(())).boxed()
            }
            other => {
                return Box::pin(std::future::ready(Err(RpcError::not_a_function(other))));
            }
        };
        Box::pin(done.map(|r| r.map(|()| Value::Undefined)))
    }
}

/// The readable end of a pipe. Taking a chunk acknowledges its write; dropping the reader
/// fails every write still waiting and every later one.
struct PipeReader {
    rx: mpsc::UnboundedReceiver<Command>,
    done: bool,
}

impl Stream for PipeReader {
    type Item = Result<Chunk, RpcError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match self.rx.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Command::Write(chunk, ack, _charge))) => {
                let _ = ack.send(Ok(()));
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(Some(Command::Close(ack))) => {
                let _ = ack.send(Ok(()));
                None
            }
            Poll::Ready(Some(Command::Abort(reason))) => Some(Err(reason)),
            Poll::Ready(None) => Some(Err(disposed_without_close())),
        };
        self.done = true;
        Poll::Ready(item)
    }
}

/// A pipe: a writable end and its readable end. Writes are counted against `budget`
/// when they come from a peer.
pub(crate) fn pipe_ends(budget: Option<Arc<Budget>>) -> (Arc<PipeWriter>, ReadableStream) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        PipeWriter::new(tx, budget),
        ReadableStream::from_chunks(PipeReader { rx, done: false }.boxed()),
    )
}

/// A pipe in this process: what is written to the [`WritableStream`] is read from the
/// [`ReadableStream`]. Each write completes when the reader has taken its chunk, so the
/// pipe holds no more than one chunk. Either end can be sent over RPC.
///
/// ```
/// use futures::StreamExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), capwire::RpcError> {
/// let (mut w, r) = capwire::stream::pipe();
/// tokio::spawn(async move {
///     w.write(vec![1u8, 2, 3]).await?;
///     w.close().await
/// });
/// assert_eq!(&r.read_all().await?[..], &[1, 2, 3]);
/// # Ok(()) }
/// ```
pub fn pipe() -> (WritableStream, ReadableStream) {
    pipe_of::<Bytes>()
}

/// A pipe of chunks of any [`StreamValue`] type: [`pipe`] for values.
///
/// ```
/// use futures::StreamExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), capwire::RpcError> {
/// let (mut w, mut r) = capwire::stream::pipe_of::<(u32, String)>();
/// tokio::spawn(async move {
///     w.write((1, "one".to_owned())).await?;
///     w.close().await
/// });
/// assert_eq!(r.next().await.transpose()?, Some((1, "one".to_owned())));
/// assert!(r.next().await.is_none());
/// # Ok(()) }
/// ```
pub fn pipe_of<T: StreamValue>() -> (WritableStream<T>, ReadableStream<T>) {
    let (writer, reader) = pipe_ends(None);
    (
        WritableStream::from_writer(Writer::Pipe(writer)),
        reader.typed(),
    )
}

// ---------------------------------------------------------------------------------------
// WritableStream

type LocalSink = Pin<Box<dyn Sink<Chunk, Error = RpcError> + Send>>;

/// Where a writable stream's writes go.
pub(crate) enum Writer {
    /// A sink in this process.
    Local(LocalSink),
    /// The writable end of a pipe (its reader may be here or, once sent, at a peer).
    Pipe(Arc<PipeWriter>),
    /// A writable that lives at a peer: writes are `stream` calls under flow control.
    Remote(RemoteWriter),
}

impl Writer {
    async fn write(&mut self, chunk: Chunk) -> Result<(), RpcError> {
        match self {
            Writer::Local(sink) => sink.send(chunk).await,
            Writer::Pipe(pipe) => pipe.write(chunk).await,
            Writer::Remote(remote) => remote.write(chunk).await,
        }
    }

    async fn close(self) -> Result<(), RpcError> {
        match self {
            Writer::Local(mut sink) => sink.close().await,
            Writer::Pipe(pipe) => pipe.close().await,
            Writer::Remote(remote) => remote.close().await,
        }
    }

    fn abort(self, reason: RpcError) {
        match self {
            // A plain sink has no abort: it is dropped unclosed.
            Writer::Local(sink) => drop(sink),
            Writer::Pipe(pipe) => pipe.abort_unfinished(reason),
            Writer::Remote(remote) => remote.abort(reason),
        }
    }

    /// The object a peer calls to write here: a pipe's writable end, fed by a task that
    /// applies each call to this writer in order (its writes counted against `budget`).
    fn into_target(self, budget: Arc<Budget>) -> Result<Arc<PipeWriter>, RpcError> {
        if let Writer::Pipe(pipe) = self {
            return Ok(pipe);
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| RpcError::error("sending a WritableStream needs a tokio runtime"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        runtime.spawn(drive(rx, self));
        Ok(PipeWriter::new(tx, Some(budget)))
    }
}

/// Applies the commands of a peer's writable to a local writer, in order. After a failed
/// write every later command fails with the same error.
async fn drive(mut rx: mpsc::UnboundedReceiver<Command>, mut writer: Writer) {
    while let Some(command) = rx.recv().await {
        match command {
            Command::Write(chunk, ack, _charge) => {
                if let Err(e) = writer.write(chunk).await {
                    let _ = ack.send(Err(e.clone()));
                    rx.close();
                    while let Some(command) = rx.recv().await {
                        if let Command::Write(_, ack, _) | Command::Close(ack) = command {
                            let _ = ack.send(Err(e.clone()));
                        }
                    }
                    return;
                }
                let _ = ack.send(Ok(()));
            }
            Command::Close(ack) => {
                let _ = ack.send(writer.close().await);
                return;
            }
            Command::Abort(reason) => return writer.abort(reason),
        }
    }
}

enum Slot {
    Ready(Writer),
    /// An operation has the writer (another clone of the stream is using it).
    Busy,
    Closed,
    /// Sent over RPC.
    Sent,
    /// A write failed, the stream was aborted, or an operation was cancelled: every later
    /// operation fails with this.
    Failed(RpcError),
}

impl Slot {
    /// Why the writer cannot be had.
    fn unavailable(&self) -> RpcError {
        match self {
            Slot::Ready(_) | Slot::Busy => {
                RpcError::type_error("this WritableStream is in use by another handle")
            }
            Slot::Closed => RpcError::type_error("this WritableStream was closed"),
            Slot::Sent => moved("WritableStream"),
            Slot::Failed(e) => e.clone(),
        }
    }
}

/// The writer of a [`WritableStream`] while an operation has it. If the operation is
/// dropped before it ends (a timeout, a `select!`), the writer is lost with it, and the
/// stream is left failed rather than in use forever.
struct InUse {
    slot: Arc<Mutex<Slot>>,
    writer: Option<Writer>,
}

impl InUse {
    /// Ends the operation, leaving the stream in `next` (the writer is dropped unless
    /// `next` holds it).
    fn finish(mut self, next: impl FnOnce(Writer) -> Slot) {
        if let Some(writer) = self.writer.take() {
            let slot = next(writer);
            *lock(&self.slot) = slot;
        }
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            *lock(&self.slot) = Slot::Failed(RpcError::error(
                "an operation on this WritableStream was cancelled before it ended",
            ));
        }
    }
}

/// A sink for chunks that can be written here or sent over RPC: byte chunks by default
/// (`WritableStream` is `WritableStream<bytes::Bytes>`), or values of any [`StreamValue`] `T`.
///
/// Write with [`write`](Self::write), then [`close`](Self::close) (which reports whether
/// every chunk was accepted) or [`abort`](Self::abort). It is also a
/// [`futures::Sink`] of `T`; for bytes, [`into_async_write`](Self::into_async_write) gives
/// a tokio `AsyncWrite`. Sent over RPC it is moved, and the receiver writes into it.
/// Dropping a stream received from a peer without closing it aborts it there.
///
/// ```
/// use capwire::{RpcError, WritableStream};
/// use futures::SinkExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), RpcError> {
/// let (tx, mut rx) = futures::channel::mpsc::unbounded::<serde_json::Value>();
/// let mut sink = WritableStream::from_sink(tx.sink_map_err(|e| RpcError::error(e.to_string())));
/// sink.write(serde_json::json!({ "n": 1 })).await?;
/// sink.close().await?;
/// assert_eq!(rx.try_next().ok().flatten(), Some(serde_json::json!({ "n": 1 })));
/// # Ok(()) }
/// ```
pub struct WritableStream<T = Bytes> {
    slot: Arc<Mutex<Slot>>,
    /// The operation a `Sink` user started, until it completes (in a `Mutex` only to be
    /// `Sync`: it is reached through `&mut self`).
    op: Mutex<Option<BoxFuture<'static, Result<(), RpcError>>>>,
    chunk: PhantomData<fn(T)>,
}

impl<T> Clone for WritableStream<T> {
    /// A handle on the same stream (which only one handle can use at a time).
    fn clone(&self) -> Self {
        self.retyped()
    }
}

impl WritableStream {
    /// A stream that writes byte chunks into `sink`. (For chunks of another type, see
    /// [`WritableStream::from_sink`].)
    pub fn new<S, E>(sink: S) -> WritableStream
    where
        S: Sink<Bytes, Error = E> + Send + 'static,
        E: Into<RpcError> + 'static,
    {
        WritableStream::from_sink(sink)
    }

    /// A stream that writes into `writer` (closing it shuts `writer` down).
    pub fn from_async_write(writer: impl tokio::io::AsyncWrite + Send + 'static) -> Self {
        WritableStream::new(tokio_util::codec::FramedWrite::new(
            writer,
            tokio_util::codec::BytesCodec::new(),
        ))
    }

    /// The stream as a tokio `AsyncWrite`; shutting it down closes the stream.
    pub fn into_async_write(self) -> impl tokio::io::AsyncWrite + Send + Unpin + 'static {
        tokio_util::io::SinkWriter::new(tokio_util::io::CopyToBytes::new(
            self.sink_map_err(std::io::Error::other),
        ))
    }
}

impl<T: StreamValue> WritableStream<T> {
    /// A stream that writes chunks of any [`StreamValue`] type into `sink`. A chunk a peer
    /// writes that is not a `T` fails its write (and the stream) with a `TypeError`.
    pub fn from_sink<S, E>(sink: S) -> WritableStream<T>
    where
        S: Sink<T, Error = E> + Send + 'static,
        E: Into<RpcError> + 'static,
    {
        let sink = sink
            .sink_map_err(Into::into)
            .with(|chunk: Chunk| std::future::ready(from_chunk::<T>(chunk)));
        WritableStream::from_writer(Writer::Local(Box::pin(sink)))
    }

    /// Writes a chunk. It completes once flow control lets another write go (for a stream
    /// at a peer), not when the peer has read it: an error may show only on a later write
    /// or on [`close`](Self::close).
    pub async fn write(&mut self, chunk: impl Into<T>) -> Result<(), RpcError> {
        let chunk = into_chunk(chunk.into())?;
        self.write_op(chunk).await
    }

    /// The same stream, written with chunks of `U`.
    pub fn typed<U: StreamValue>(self) -> WritableStream<U> {
        self.retyped()
    }
}

impl<T> WritableStream<T> {
    pub(crate) fn from_writer(writer: Writer) -> Self {
        WritableStream {
            slot: Arc::new(Mutex::new(Slot::Ready(writer))),
            op: Mutex::default(),
            chunk: PhantomData,
        }
    }

    /// The same stream, untyped: how a [`Value`] holds it.
    pub(crate) fn erased(&self) -> WritableStream {
        self.retyped()
    }

    /// A handle on the same stream, written with chunks of `U`.
    fn retyped<U>(&self) -> WritableStream<U> {
        WritableStream {
            slot: self.slot.clone(),
            op: Mutex::default(),
            chunk: PhantomData,
        }
    }

    fn take_writer(&self) -> Result<InUse, RpcError> {
        let mut slot = lock(&self.slot);
        match std::mem::replace(&mut *slot, Slot::Busy) {
            Slot::Ready(writer) => Ok(InUse {
                slot: self.slot.clone(),
                writer: Some(writer),
            }),
            other => {
                let error = other.unavailable();
                *slot = other;
                Err(error)
            }
        }
    }

    /// Takes the writer out, to be sent over RPC: the object the peer will call, its
    /// writes counted against the session's `budget`.
    pub(crate) fn take_target(&self, budget: Arc<Budget>) -> Result<Arc<PipeWriter>, RpcError> {
        let mut in_use = self.take_writer()?;
        let writer = in_use.writer.take().expect("taken with a writer");
        *lock(&self.slot) = Slot::Sent;
        writer.into_target(budget)
    }

    fn write_op(&self, chunk: Chunk) -> BoxFuture<'static, Result<(), RpcError>> {
        let taken = self.take_writer();
        async move {
            let mut in_use = taken?;
            let writer = in_use.writer.as_mut().expect("taken with a writer");
            let result = writer.write(chunk).await;
            match &result {
                Ok(()) => in_use.finish(Slot::Ready),
                // A failed stream stays failed: later writes and close report it.
                Err(e) => in_use.finish(|_| Slot::Failed(e.clone())),
            }
            result
        }
        .boxed()
    }

    fn close_op(&self) -> BoxFuture<'static, Result<(), RpcError>> {
        let taken = self.take_writer();
        async move {
            let mut in_use = taken?;
            let writer = in_use.writer.take().expect("taken with a writer");
            *lock(&in_use.slot) = Slot::Closed;
            let result = writer.close().await;
            if let Err(e) = &result {
                *lock(&in_use.slot) = Slot::Failed(e.clone());
            }
            result
        }
        .boxed()
    }

    /// Closes the stream: the reader sees its end. Returns an error if any chunk was
    /// refused.
    pub async fn close(&mut self) -> Result<(), RpcError> {
        self.close_op().await
    }

    /// Aborts the stream: the reader sees `reason` as an error, and later operations
    /// here fail with it. Does nothing to a stream already closed, failed or sent.
    pub async fn abort(&mut self, reason: RpcError) {
        if let Ok(mut in_use) = self.take_writer() {
            let writer = in_use.writer.take().expect("taken with a writer");
            *lock(&in_use.slot) = Slot::Failed(reason.clone());
            writer.abort(reason);
        }
    }

    fn op_slot(&mut self) -> &mut Option<BoxFuture<'static, Result<(), RpcError>>> {
        self.op
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn poll_op(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        let slot = self.op_slot();
        match slot {
            Some(op) => {
                let result = std::task::ready!(op.as_mut().poll(cx));
                *slot = None;
                Poll::Ready(result)
            }
            None => Poll::Ready(Ok(())),
        }
    }

    pub(crate) fn same<U>(&self, other: &WritableStream<U>) -> bool {
        Arc::ptr_eq(&self.slot, &other.slot)
    }
}

impl<T: StreamValue> Sink<T> for WritableStream<T> {
    type Error = RpcError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        self.get_mut().poll_op(cx)
    }

    fn start_send(self: Pin<&mut Self>, chunk: T) -> Result<(), RpcError> {
        let this = self.get_mut();
        let op = this.write_op(into_chunk(chunk)?);
        *this.op_slot() = Some(op);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        self.get_mut().poll_op(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_op(cx))?;
        if matches!(*lock(&this.slot), Slot::Closed) {
            return Poll::Ready(Ok(()));
        }
        let op = this.close_op();
        *this.op_slot() = Some(op);
        this.poll_op(cx)
    }
}

impl<T> fmt::Debug for WritableStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WritableStream")
    }
}

impl<T> serde::Serialize for WritableStream<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::value::ser::serialize_special(&Value::Writable(self.erased()), serializer)
    }
}

impl<'de, T> serde::Deserialize<'de> for WritableStream<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match crate::value::de::deserialize_value(deserializer)? {
            Value::Writable(w) => Ok(w.retyped()),
            other => Err(serde::de::Error::custom(format!(
                "expected a WritableStream, found {}",
                other.type_name()
            ))),
        }
    }
}
