//! Limits on what a peer may make a session hold ([`Limits`]), and on what all peers
//! together may make a server hold ([`ServerLimits`]); `budget` keeps the running count
//! of bytes held against them.

pub(crate) mod budget;

use std::time::Duration;

/// Limits on what a peer may send. The message limits' defaults are capnweb's
/// (`DEFAULT_LIMITS`); the stream limits are capwire's (capnweb has none).
///
/// ```
/// let limits = capwire::Limits { max_message_size: 1 << 20, ..Default::default() };
/// assert_eq!(limits.max_depth, 256);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in bytes of JSON text (default 32 MiB).
    pub max_message_size: usize,
    /// Deepest expression nesting accepted (default 256).
    pub max_depth: usize,
    /// Most digits accepted in a `bigint` (default 16384).
    pub max_bigint_digits: usize,
    /// Most bytes a peer may have written into this session's streams that no reader has
    /// taken yet (default 128 MiB). A peer that keeps to flow control stays below it (its
    /// window: 2 to 64 MiB per stream for capwire; capnweb's adapts up to 1 GiB, which
    /// only a link of huge bandwidth × delay reaches); one that does not is cut off with an
    /// `abort` naming the limit. Keep it well above the peers' windows.
    pub max_stream_buffer: usize,
    /// Largest `Blob` received, which arrives whole (default 128 MiB). A bigger one fails
    /// the call that carries it.
    pub max_blob_size: usize,
    /// Most memory a session may hold on its peer's behalf (default 256 MiB): calls and
    /// results not yet answered or pulled, table entries, stream buffers, messages queued
    /// for a peer that reads slowly. Counted approximately (a message's encoded size stands
    /// for what it holds). A session that passes it is aborted, naming the limit.
    pub max_session_memory: usize,
    /// Most work one `map()` may do (default 1,000,000): each instruction run and each value
    /// it produces or copies counts one. A mapper that passes it rejects its call, naming
    /// the limit; the session goes on.
    pub max_map_work: usize,
    /// Longest the peer may leave our messages untaken (its socket without room for them)
    /// before the session ends as stalled, and its memory is freed (default 30 s). Also how
    /// long a stream whose source failed waits for the peer to acknowledge the writes
    /// before the error, so that the error does not overtake them.
    pub send_timeout: Duration,
    /// Longest a call from the peer may run here (default: no limit). A call still
    /// running after it is stopped: its future is dropped (so the method is cancelled at
    /// its next `.await`) and the call rejects with a `TimeoutError` naming the limit
    /// ([`RpcError::is_timeout`](crate::RpcError::is_timeout)); the session goes on.
    /// It bounds what a caller can make the server hold with calls that never finish.
    ///
    /// ```
    /// use std::time::Duration;
    /// let limits = capwire::Limits {
    ///     max_call_duration: Some(Duration::from_secs(30)),
    ///     ..Default::default()
    /// };
    /// assert_eq!(capwire::Limits::default().max_call_duration, None);
    /// # let _ = limits;
    /// ```
    pub max_call_duration: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 32 * 1024 * 1024,
            max_depth: 256,
            max_bigint_digits: 16384,
            max_stream_buffer: 128 * 1024 * 1024,
            max_blob_size: 128 * 1024 * 1024,
            max_session_memory: 256 * 1024 * 1024,
            max_map_work: 1_000_000,
            send_timeout: Duration::from_secs(30),
            max_call_duration: None,
        }
    }
}

/// Limits on what all the peers of one server together may make it hold, and how long it
/// waits for them. A [`Server`](crate::Server), an [`rpc_route`](crate::rpc_route) (see
/// [`rpc_route_with`](crate::rpc_route_with)) and each listening worker of the
/// [host](crate::host) apply their own (the host's are set with
/// [`HostBuilder::server_limits`](crate::host::HostBuilder::server_limits)). The limits on
/// connections (`max_connections`, `header_read_timeout`) belong to the accept loop: a
/// `Server` and the host apply them, an `rpc_route` mounted in an app that `axum::serve`
/// serves does not.
///
/// ```
/// use std::time::Duration;
/// let limits = capwire::ServerLimits {
///     max_connections: 10_000,
///     idle_timeout: Some(Duration::from_secs(300)),
///     ..Default::default()
/// };
/// assert_eq!(limits.max_memory, 1 << 30);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Most memory all sessions together may hold on their peers' behalf (default 1 GiB,
    /// a fixed figure rather than a share of the machine's memory, so that a server
    /// behaves the same wherever it runs; raise it on a big machine). Counted against it:
    /// what each session holds (within its own `max_session_memory`), the bytes of each
    /// WebSocket message still arriving (from its first byte to its last, as read from
    /// the connection), each HTTP batch body while it is read and served, and each HTTP
    /// batch answer until it has been written out. The session
    /// whose charge finds it full is aborted, naming `max_memory` (a WebSocket message
    /// still arriving: its connection gets an `abort` naming `max_memory` and is closed;
    /// an HTTP batch body or answer: `503` with an `abort` naming it); the others go on.
    pub max_memory: usize,
    /// Most connections open at once (default: three quarters of the process's
    /// file-descriptor limit, so that the process keeps descriptors for its own files and
    /// outgoing connections). A connection counts from its accept until its socket closes,
    /// WebSocket sessions included. At the limit, a new connection is still served if
    /// room can be made: the oldest open connection that has not yet sent a complete
    /// request (idle and slow ones, which is what a flood of idle sockets is made of) is
    /// closed for it. If every open connection has sent a request, the new one is closed
    /// at once. When accepting fails for want of descriptors, the oldest connection
    /// without a request is closed too.
    pub max_connections: usize,
    /// Longest wait for a request's headers, from the connection's start or the end of
    /// the previous request on it (default 10 s): a client sending its headers a byte at a
    /// time (slowloris), a connection that sends nothing, and a kept-alive connection idle
    /// between requests are all closed once it runs out.
    pub header_read_timeout: Duration,
    /// Longest wait for an HTTP batch's whole body, from the end of its headers (default
    /// 30 s). One that runs out is answered `408` and its connection closed. Also the
    /// longest an HTTP response may wait for its client to take any of it: a client that
    /// stops reading is closed (a WebSocket connection's writes are watched by
    /// `keepalive_interval` instead).
    pub body_read_timeout: Duration,
    /// Longest wait, once a WebSocket upgrade request has arrived, for the upgrade to
    /// complete: the `101` response written and the connection handed over (default
    /// 10 s). One that runs out is closed without a session.
    pub handshake_timeout: Duration,
    /// Longest a WebSocket frame may take to arrive once its first byte has, or a
    /// fragmented message once its first fragment has (default 30 s): a message trickled a
    /// byte at a time, or begun and never finished, is cut off with an `abort` naming
    /// `frame_read_timeout`, and its connection closed. Ping and pong frames count as
    /// frames; between frames no clock runs but `keepalive_interval`'s and
    /// `idle_timeout`'s.
    pub frame_read_timeout: Duration,
    /// A WebSocket session that holds nothing (its peer holds no capability from it
    /// beyond the main object, has no call in flight, and passed it none: no import and a
    /// single export) and has received no message (pings and pongs do not count) for this
    /// long is closed (a close frame, no `abort`). Checked every quarter of it, so such a
    /// session goes between 1 and 1¼ times this after it last held something or received
    /// a message. `None` (the default) keeps such sessions open.
    pub idle_timeout: Option<Duration>,
    /// How often a WebSocket peer is pinged (default 30 s). A peer from which nothing at
    /// all has been read for two intervals (no pong, no frame: Node's `ws` and browsers
    /// answer pings by themselves), the last of them at least since a ping left for it, is
    /// closed as dead; so is one that has taken none of what is sent to it (a write
    /// waiting on it) for two intervals.
    pub keepalive_interval: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_memory: 1 << 30,
            max_connections: default_max_connections(),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            frame_read_timeout: Duration::from_secs(30),
            idle_timeout: None,
            keepalive_interval: Duration::from_secs(30),
        }
    }
}

/// Three quarters of the soft file-descriptor limit (`/proc/self/limits` on Linux; 1024
/// assumed elsewhere), at least 16.
fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse::<usize>().ok())
        })
        .unwrap_or(1024);
    (soft / 4 * 3).max(16)
}
