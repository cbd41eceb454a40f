//! What a server's WebSocket connection may cost it: the bytes of a message still arriving
//! count against the server's memory budget and must arrive within `frame_read_timeout`;
//! a peer that answers no ping for two keepalive intervals is dead; a session holding
//! nothing may be closed when idle.
//!
//! [`WsIo`] sits between the upgraded connection and tungstenite and follows the frames
//! going by (their headers only: it holds no payload); [`GuardedWs`] is the session's
//! transport and keeps the clocks.

use super::TransportError;
use super::websocket::WsTransport;
use crate::limits::budget::Budget;
use crate::limits::{Limits, ServerLimits};
use crate::session::SessionInner;
use futures::{Sink, Stream};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Longest a closed connection is drained (read and discarded) before its socket is
/// dropped, so that the peer can finish a message it is sending and read the `abort` and
/// the close frame instead of a reset.
const LINGER: Duration = Duration::from_secs(2);

/// Shortest interval of any clock (a zero in [`ServerLimits`] would spin).
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// Follows the WebSocket frames read through it: where each ends, so that the bytes of a
/// message not yet complete are known without holding them.
#[derive(Default)]
struct FrameTracker {
    /// The header bytes read so far (2 to 14), while in a header.
    head: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// Whether the current frame is a control frame (ping, pong, close).
    control: bool,
    /// Whether the current frame is the last of its message.
    fin: bool,
    /// Whether a data message is open: a non-final data frame ended, its continuation is
    /// still to come.
    in_message: bool,
}

/// What [`FrameTracker::feed`] saw in a chunk.
struct Fed {
    /// Offset just past the last point in the chunk where no frame and no message was
    /// under way, if any.
    last_boundary: Option<usize>,
    /// Whether a data message ended in the chunk.
    message_done: bool,
}

impl FrameTracker {
    fn feed(&mut self, data: &[u8]) -> Fed {
        let mut fed = Fed {
            last_boundary: None,
            message_done: false,
        };
        let mut pos = 0;
        while pos < data.len() {
            if self.payload_left > 0 {
                let take = self
                    .payload_left
                    .min((data.len() - pos) as u64)
                    .try_into()
                    .unwrap_or(usize::MAX);
                pos += take;
                self.payload_left -= take as u64;
                if self.payload_left == 0 {
                    self.frame_done(pos, &mut fed);
                }
                continue;
            }
            self.head[self.have] = data[pos];
            self.have += 1;
            pos += 1;
            if self.have < 2 || self.have < self.head_len() {
                continue;
            }
            // A whole header: opcode and FIN from byte 0, the length from byte 1 on.
            self.control = self.head[0] & 0x08 != 0;
            self.fin = self.head[0] & 0x80 != 0;
            self.payload_left = match self.head[1] & 0x7f {
                126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                127 => {
                    let mut len = [0u8; 8];
                    len.copy_from_slice(&self.head[2..10]);
                    u64::from_be_bytes(len)
                }
                n => u64::from(n),
            };
            self.have = 0;
            if self.payload_left == 0 {
                self.frame_done(pos, &mut fed);
            }
        }
        fed
    }

    /// The length of the header being read, once its first two bytes are in.
    fn head_len(&self) -> usize {
        let ext = match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.head[1] & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    fn frame_done(&mut self, pos: usize, fed: &mut Fed) {
        if !self.control {
            self.in_message = !self.fin;
            fed.message_done |= self.fin;
        }
        if !self.in_message {
            fed.last_boundary = Some(pos);
        }
    }
}

/// The upgraded connection of a server's WebSocket session, as tungstenite reads and
/// writes it: counts the bytes of the message under way against the server's budget,
/// fails writes the peer has not taken for too long, and drains the connection briefly
/// when it is dropped.
pub(crate) struct WsIo<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> {
    io: Option<T>,
    frames: FrameTracker,
    /// Bytes of the frame or message under way (from its first byte), and when that
    /// first byte came.
    partial: usize,
    started: Option<Instant>,
    /// What of `partial` is counted against `budget`.
    charged: usize,
    budget: Arc<Budget>,
    last_read: Instant,
    last_message: Instant,
    /// Why reads fail from now on (the budget was full).
    failure: Option<String>,
    /// A write the peer has not made room for, and how long it may wait.
    stall: WriteStall,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> WsIo<T> {
    pub(crate) fn new(io: T, budget: Arc<Budget>, limits: &ServerLimits) -> Self {
        let now = Instant::now();
        WsIo {
            io: Some(io),
            frames: FrameTracker::default(),
            partial: 0,
            started: None,
            charged: 0,
            budget,
            last_read: now,
            last_message: now,
            failure: None,
            stall: WriteStall::new(
                limits.keepalive_interval.max(MIN_INTERVAL) * 2,
                "the peer took nothing of what was sent to it for two keepalive intervals",
            ),
        }
    }

    /// Counts `data`, just read.
    fn count(&mut self, data: &[u8]) -> std::io::Result<()> {
        let now = Instant::now();
        self.last_read = now;
        let fed = self.frames.feed(data);
        if fed.message_done {
            self.last_message = now;
        }
        self.partial = match fed.last_boundary {
            Some(end) => data.len() - end,
            None => self.partial.saturating_add(data.len()),
        };
        self.started = match (self.partial, fed.last_boundary) {
            (0, _) => None,
            (_, Some(_)) => Some(now),
            (_, None) => self.started.or(Some(now)),
        };
        if self.partial > self.charged {
            if self.budget.try_add(self.partial - self.charged).is_err() {
                let failure = format!(
                    "the server cannot hold more of this WebSocket message ({} bytes so far): \
                     its memory is full (limit {})",
                    self.partial,
                    self.budget.name()
                );
                self.failure = Some(failure.clone());
                return Err(std::io::Error::other(failure));
            }
        } else {
            self.budget.sub(self.charged - self.partial);
        }
        self.charged = self.partial;
        Ok(())
    }

    /// A write's outcome: one that has waited longer than the stall limit fails.
    fn unstall<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        self.stall.check(cx, poll)
    }

    fn io(&mut self) -> std::io::Result<&mut T> {
        self.io
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for WsIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(failure) = &this.failure {
            return Poll::Ready(Err(std::io::Error::other(failure.clone())));
        }
        let before = buf.filled().len();
        ready!(Pin::new(this.io()?).poll_read(cx, buf))?;
        let data = &buf.filled()[before..];
        if !data.is_empty() {
            this.count(data)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for WsIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(this.io()?).poll_write(cx, buf);
        this.unstall(cx, poll)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(this.io()?).poll_write_vectored(cx, bufs);
        this.unstall(cx, poll)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(T::is_write_vectored)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(this.io()?).poll_flush(cx);
        this.unstall(cx, poll)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(this.io()?).poll_shutdown(cx);
        this.unstall(cx, poll)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Drop for WsIo<T> {
    fn drop(&mut self) {
        self.budget.sub(self.charged);
        self.charged = 0;
        // Close the sending side, then read and discard what the peer still sends (the
        // rest of a refused message, say) until it closes too, for a short while.
        let (Some(mut io), Ok(runtime)) = (self.io.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            let _ = tokio::time::timeout(LINGER, async move {
                let _ = io.shutdown().await;
                let mut sink = [0u8; 4096];
                while let Ok(1..) = io.read(&mut sink).await {}
            })
            .await;
        });
    }
}

/// A server's WebSocket session transport: [`WsTransport`] over [`WsIo`], plus the clocks
/// of [`ServerLimits`] (`frame_read_timeout`, `keepalive_interval`, `idle_timeout`).
pub(crate) struct GuardedWs<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> {
    ws: WsTransport<WebSocketStream<WsIo<T>>>,
    frame_read_timeout: Duration,
    keepalive: Duration,
    idle_timeout: Option<Duration>,
    /// The session, once started: whether it holds anything decides idleness.
    session: Arc<OnceLock<Weak<SessionInner>>>,
    clock: Pin<Box<Sleep>>,
    next_ping: Instant,
    /// A ping is queued, not yet flushed.
    flushing: bool,
    /// When the first ping since the last read left (was flushed): the peer is dead once
    /// it has had a whole interval to answer it and nothing was read for two.
    ping_out: Option<Instant>,
    next_idle_check: Instant,
    /// When the session last held something.
    busy_at: Instant,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> GuardedWs<T> {
    pub(crate) fn new(
        socket: WebSocketStream<WsIo<T>>,
        limits: &Limits,
        server: &ServerLimits,
        session: Arc<OnceLock<Weak<SessionInner>>>,
    ) -> Self {
        let now = Instant::now();
        let keepalive = server.keepalive_interval.max(MIN_INTERVAL);
        let idle_timeout = server.idle_timeout.map(|t| t.max(MIN_INTERVAL));
        GuardedWs {
            ws: WsTransport::new(socket, limits),
            frame_read_timeout: server.frame_read_timeout,
            keepalive,
            idle_timeout,
            session,
            clock: Box::pin(tokio::time::sleep_until(now + keepalive)),
            next_ping: now + keepalive,
            flushing: false,
            ping_out: None,
            next_idle_check: now + idle_timeout.map_or(Duration::ZERO, |t| t / 4),
            busy_at: now,
        }
    }

    /// Closing will send a close frame with `close`'s code and reason.
    pub(crate) fn close_with(&mut self, close: super::Close) {
        self.ws.close_with(close);
    }

    fn io(&self) -> &WsIo<T> {
        self.ws.socket.get_ref()
    }

    /// Whether the session holds anything for its peer or from it: an import, an export
    /// beyond its main object, a call in flight (its result is an export).
    fn session_busy(&self) -> bool {
        self.session.get().and_then(Weak::upgrade).is_none_or(|s| {
            let stats = s.stats();
            stats.imports > 0 || stats.exports > 1
        })
    }

    /// Checks every clock at `now`: the error that ends the session, if one ran out. Sends
    /// a ping when one is due.
    fn check(&mut self, now: Instant, cx: &mut Context<'_>) -> Result<(), TransportError> {
        let io = self.io();
        if let Some(started) = io.started
            && now >= started + self.frame_read_timeout
        {
            return Err(TransportError::bad_input(format!(
                "a WebSocket message was not complete {:?} after its first byte arrived \
                 ({} bytes so far; limit frame_read_timeout)",
                self.frame_read_timeout, io.partial
            )));
        }
        if let Some(dead_at) = self.dead_at()
            && now >= dead_at
        {
            return Err(TransportError::new(
                "the peer sent nothing, not even a pong, for two keepalive intervals",
            ));
        }
        let (started, last_message, last_read) = (io.started, io.last_message, io.last_read);
        if now >= self.next_ping {
            self.next_ping = now + self.keepalive;
            let mut socket = Pin::new(&mut self.ws.socket);
            // A peer that has not taken what was sent before gets no ping now; the write
            // waiting for it fails if it takes nothing for two intervals.
            if let Poll::Ready(ready) = socket.as_mut().poll_ready(cx) {
                ready
                    .and_then(|()| socket.start_send(Message::Ping(Default::default())))
                    .map_err(|e| TransportError::new(e.to_string()))?;
                self.flushing = true;
            }
        }
        if self.flushing
            && let Poll::Ready(flushed) = Pin::new(&mut self.ws.socket).poll_flush(cx)
        {
            self.flushing = false;
            flushed.map_err(|e| TransportError::new(e.to_string()))?;
            if self.ping_out.is_none_or(|out| out <= last_read) {
                self.ping_out = Some(now);
            }
        }
        if let Some(idle) = self.idle_timeout
            && now >= self.next_idle_check
        {
            self.next_idle_check = now + idle / 4;
            if started.is_some() || self.session_busy() {
                self.busy_at = now;
            }
            if now >= self.busy_at.max(last_message) + idle {
                return Err(TransportError::new(format!(
                    "the session held nothing and received nothing for {idle:?} \
                     (limit idle_timeout)"
                )));
            }
        }
        Ok(())
    }

    /// When the peer counts as dead if nothing is read before: two intervals after the
    /// last read, and one after the first ping since then left. Counting from the ping
    /// too spares a peer we sent no ping to for a while (all that time spent writing to
    /// it, say).
    fn dead_at(&self) -> Option<Instant> {
        let last_read = self.io().last_read;
        self.ping_out
            .filter(|&out| out > last_read)
            .map(|out| (last_read + self.keepalive * 2).max(out + self.keepalive))
    }

    /// The next time a clock may run out.
    fn next_deadline(&self) -> Instant {
        let io = self.io();
        let mut next = self.next_ping;
        if let Some(dead_at) = self.dead_at() {
            next = next.min(dead_at);
        }
        if let Some(started) = io.started {
            next = next.min(started + self.frame_read_timeout);
        }
        if self.idle_timeout.is_some() {
            next = next.min(self.next_idle_check);
        }
        next
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for GuardedWs<T> {
    type Item = Result<crate::wire::Frame<'static>, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.ws).poll_next(cx) {
            Poll::Ready(Some(Err(e))) => {
                // A read the budget refused: say so in the `abort`.
                let failure = this.io().failure.clone();
                return Poll::Ready(Some(Err(failure.map_or(e, TransportError::bad_input))));
            }
            Poll::Ready(item) => return Poll::Ready(item),
            Poll::Pending => {}
        }
        loop {
            if let Err(e) = this.check(Instant::now(), cx) {
                return Poll::Ready(Some(Err(e)));
            }
            let next = this.next_deadline();
            if this.clock.deadline() != next {
                this.clock.as_mut().reset(next);
            }
            if this.clock.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Sink<String> for GuardedWs<T> {
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.get_mut().ws).poll_ready(cx)
    }
    fn start_send(self: Pin<&mut Self>, item: String) -> Result<(), TransportError> {
        Pin::new(&mut self.get_mut().ws).start_send(item)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.get_mut().ws).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.get_mut().ws).poll_close(cx)
    }
}

/// A write that waits longer than its limit for the peer to take it fails: the timer of a
/// peer that stopped reading.
pub(crate) struct WriteStall {
    timer: Option<Pin<Box<Sleep>>>,
    limit: Duration,
    why: &'static str,
}

impl WriteStall {
    pub(crate) fn new(limit: Duration, why: &'static str) -> WriteStall {
        WriteStall {
            timer: None,
            limit,
            why,
        }
    }

    /// The outcome of a write: ready ones reset the timer; a pending one fails once it
    /// has waited for the limit.
    pub(crate) fn check<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if poll.is_ready() {
            self.timer = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                self.why,
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Forgets a wait (for a write that no longer counts).
    pub(crate) fn reset(&mut self) {
        self.timer = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame: FIN/opcode byte, then a payload of `len` bytes.
    fn frame(first: u8, len: usize) -> Vec<u8> {
        let mut f = vec![first];
        match len {
            0..=125 => f.push(0x80 | len as u8),
            126..=65535 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    #[test]
    fn the_tracker_finds_message_ends_across_chunks_and_fragments() {
        let mut t = FrameTracker::default();
        let whole = frame(0x81, 70_000);
        // A header split across chunks, then the payload.
        let fed = t.feed(&whole[..3]);
        assert!(fed.last_boundary.is_none() && !fed.message_done);
        let fed = t.feed(&whole[3..]);
        assert_eq!(fed.last_boundary, Some(whole.len() - 3));
        assert!(fed.message_done);
        // A fragmented message with a ping between its frames: no boundary until the end.
        let mut bytes = frame(0x01, 10);
        bytes.extend(frame(0x89, 0));
        let open = bytes.len();
        bytes.extend(frame(0x80, 5));
        let fed = t.feed(&bytes[..open]);
        assert!(fed.last_boundary.is_none() && !fed.message_done);
        let fed = t.feed(&bytes[open..]);
        assert_eq!(fed.last_boundary, Some(bytes.len() - open));
        // A ping alone is a boundary, not a message.
        let ping = frame(0x89, 3);
        let fed = t.feed(&ping);
        assert_eq!(fed.last_boundary, Some(ping.len()));
        assert!(!fed.message_done);
    }
}
