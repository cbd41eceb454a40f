//! WebSocket: one RPC message per text frame.

use super::{Close, Session, TransportError};
use crate::error::RpcError;
use crate::limits::Limits;
use crate::stub::RpcStub;
use crate::wire::Frame;
use futures::{Sink, Stream};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

/// Adapts a WebSocket (a stream and sink of tungstenite messages) into a message
/// transport.
pub(crate) struct WsTransport<S> {
    pub(crate) socket: S,
    /// The message limit, named when an oversized message is refused.
    max_message_size: usize,
    /// The close frame to send when the transport is closed (see [`WsTransport::close_with`]).
    closing: Option<CloseFrame>,
    /// Where small outgoing frames are built: one buffer, reused for every frame (see
    /// [`WsTransport::frame`]).
    frames: bytes::BytesMut,
}

/// Messages up to this size are framed from the reused buffer; larger ones (stream chunks)
/// are handed over as they are, without a copy.
const FRAMED_IN_PLACE: usize = 4096;

impl<S> WsTransport<S> {
    pub(crate) fn new(socket: S, limits: &Limits) -> Self {
        WsTransport {
            socket,
            max_message_size: limits.max_message_size,
            closing: None,
            frames: bytes::BytesMut::new(),
        }
    }

    /// Closing will send a close frame with `close`'s code and reason.
    pub(crate) fn close_with(&mut self, close: Close) {
        self.closing = Some(CloseFrame {
            code: close.code.into(),
            reason: close.reason.into(),
        });
    }
}

/// A frame as an item for the session: `Some(Ok(text))` for a message (a text frame's
/// payload as it is, not copied), `Some(Err)` for a binary frame, `None` for frames to skip
/// (ping, pong).
fn into_text(message: Message) -> Option<Result<Frame<'static>, TransportError>> {
    match message {
        Message::Text(t) => Some(Ok(Frame::Shared(t))),
        // Cap'n Web sends every message as a text frame, and capnweb's WebSocket transport
        // refuses anything else.
        Message::Binary(_) => Some(Err(TransportError::bad_input(
            "a binary WebSocket frame is not an RPC message (Cap'n Web sends each message as a \
             text frame)",
        )
        .closing_with(Close::UNSUPPORTED_DATA))),
        _ => None,
    }
}

/// What a close frame from the peer ends the session with: `None` for a plain close (no
/// code, or 1000 or 1001, a page going away, without a reason), else an error carrying
/// its code and reason (capnweb closes with 3000 and the `abort`'s reason).
fn peer_closed(frame: Option<CloseFrame>) -> Option<TransportError> {
    let frame = frame?;
    let code = u16::from(frame.code);
    if matches!(code, 1000 | 1001) && frame.reason.is_empty() {
        return None;
    }
    Some(TransportError::new(format!(
        "the peer closed the WebSocket with code {code}: {}",
        frame.reason.as_str()
    )))
}

impl<S> Stream for WsTransport<S>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    type Item = Result<Frame<'static>, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match Pin::new(&mut this.socket).poll_next(cx) {
                Poll::Ready(Some(Ok(Message::Close(frame)))) => {
                    return Poll::Ready(peer_closed(frame).map(Err));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(item) = into_text(frame) {
                        return Poll::Ready(Some(item));
                    }
                }
                // The frame (or the message it continues) is over the limit: refused from
                // its header, before it is read, and answered with an `abort` naming it.
                Poll::Ready(Some(Err(WsError::Capacity(_)))) => {
                    return Poll::Ready(Some(Err(TransportError::bad_input(
                        crate::error::ProtocolError::MessageTooLarge {
                            limit: this.max_message_size,
                        }
                        .to_string(),
                    )
                    .closing_with(Close::TOO_BIG))));
                }
                Poll::Ready(Some(Err(e @ WsError::Protocol(_)))) => {
                    let error = TransportError::new(e.to_string());
                    return Poll::Ready(Some(Err(error.closing_with(Close::PROTOCOL_ERROR))));
                }
                Poll::Ready(Some(Err(e @ WsError::Utf8(_)))) => {
                    let error =
                        TransportError::new(format!("a text frame that is not valid UTF-8 ({e})"));
                    return Poll::Ready(Some(Err(error.closing_with(Close::INVALID_PAYLOAD))));
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(TransportError::new(e.to_string()))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S> WsTransport<S> {
    /// The payload of the frame carrying `text`. A small message is copied into the reused
    /// buffer, which tungstenite takes the frame from at once (it writes it into its own
    /// output buffer in `start_send`), so the space is free again by the next frame: no
    /// allocation per message, where handing over the `String` itself costs one (its
    /// capacity is larger than its length, so `Bytes` must allocate a shared header).
    fn frame(&mut self, text: String) -> Result<Utf8Bytes, TransportError> {
        if text.len() > FRAMED_IN_PLACE {
            return Ok(Utf8Bytes::from(text));
        }
        if self.frames.capacity() < text.len() {
            // Takes the buffer's space back once the frames split off it are gone (else
            // starts a new buffer).
            self.frames.reserve(FRAMED_IN_PLACE);
        }
        self.frames.extend_from_slice(text.as_bytes());
        Utf8Bytes::try_from(self.frames.split().freeze())
            .map_err(|e| TransportError::new(format!("an outgoing message is not UTF-8: {e}")))
    }
}

impl<S> Sink<String> for WsTransport<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.get_mut().socket)
            .poll_ready(cx)
            .map_err(|e| TransportError::new(e.to_string()))
    }
    fn start_send(self: Pin<&mut Self>, item: String) -> Result<(), TransportError> {
        let this = self.get_mut();
        let text = this.frame(item)?;
        Pin::new(&mut this.socket)
            .start_send(Message::Text(text))
            .map_err(|e| TransportError::new(e.to_string()))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.get_mut().socket)
            .poll_flush(cx)
            .map_err(|e| TransportError::new(e.to_string()))
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        let this = self.get_mut();
        let mut socket = Pin::new(&mut this.socket);
        if this.closing.is_some() {
            let ready = std::task::ready!(socket.as_mut().poll_ready(cx));
            let frame = this.closing.take();
            ready
                .and_then(|()| socket.as_mut().start_send(Message::Close(frame)))
                .map_err(|e| TransportError::new(e.to_string()))?;
        }
        socket
            .poll_close(cx)
            .map_err(|e| TransportError::new(e.to_string()))
    }
}

/// Read in 16 KiB chunks: tungstenite zeroes its whole read buffer before each read, so its
/// 128 KiB default costs more than it saves for RPC-sized messages.
pub(crate) const READ_BUFFER: usize = 16 * 1024;

/// The WebSocket configuration for `limits`: frames and messages up to the message limit
/// (a bigger one is refused from its header, before its payload is read).
pub(crate) fn ws_config(
    limits: &Limits,
) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    config.max_message_size = Some(limits.max_message_size);
    config.max_frame_size = Some(limits.max_message_size);
    config.read_buffer_size = READ_BUFFER;
    config
}

/// A client's session over a WebSocket to `url`: an awaited call that nothing pipelines on
/// goes as a `stream` (two messages instead of four; see `SessionInner::send_as_stream`).
fn client_session<S>(
    transport: WsTransport<S>,
    url: &str,
    main: Option<RpcStub>,
    limits: Limits,
) -> Session
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError>,
    S: Send + Unpin + 'static,
{
    let span = crate::session::session_span("websocket", Some("client"), Some(&url));
    let close_with = WsTransport::close_with;
    let session = Session::start_in(transport, close_with, main, limits, None, span);
    session
        .inner
        .defers_calls
        .store(true, std::sync::atomic::Ordering::Relaxed);
    session
}

/// Connects to a capwire or capnweb WebSocket server and returns a stub to its main
/// object: an untyped [`RpcStub`] or a typed [`Stub<T>`](crate::Stub), as annotated. The session ends when every clone of that stub (and everything obtained
/// through it) is dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), capwire::RpcError> {
/// let api: capwire::RpcStub = capwire::connect("ws://127.0.0.1:8787/").await?;
/// let n = api.call("square", (5,)).await?;
/// # Ok(()) }
/// ```
pub async fn connect<S: crate::FromStub>(url: &str) -> Result<S, RpcError> {
    Ok(S::from_stub(
        connect_with(url, None, Limits::default()).await?.main(),
    ))
}

/// Connects to a WebSocket server, serving `main` (if any) to the server as this side's
/// main object, with the given limits on what the server may send.
pub async fn connect_with(
    url: &str,
    main: Option<RpcStub>,
    limits: Limits,
) -> Result<Session, RpcError> {
    let config = ws_config(&limits);
    let (ws, _response) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| RpcError::error(format!("WebSocket connection to {url} failed: {e}")))?;
    Ok(client_session(
        WsTransport::new(ws, &limits),
        url,
        main,
        limits,
    ))
}

/// [`connect_with`], sending `headers` with the upgrade request (a cookie, an
/// `Authorization`), which the server's session factory can read (see
/// [`SessionContext`](crate::SessionContext)). The handshake's own headers (`Host`,
/// `Connection`, `Upgrade`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version`) cannot be
/// replaced.
///
/// ```no_run
/// # async fn demo() -> Result<(), capwire::RpcError> {
/// let mut headers = capwire::http::HeaderMap::new();
/// headers.insert("cookie", "session=0123abcd".parse().unwrap());
/// let session = capwire::connect_with_headers("ws://127.0.0.1:8787/rpc", headers, None, Default::default()).await?;
/// let me = session.main().call("whoami", ()).await?;
/// # Ok(()) }
/// ```
pub async fn connect_with_headers(
    url: &str,
    headers: http::HeaderMap,
    main: Option<RpcStub>,
    limits: Limits,
) -> Result<Session, RpcError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url
        .into_client_request()
        .map_err(|e| RpcError::error(format!("bad WebSocket URL {url}: {e}")))?;
    // The handshake's own headers stay the handshake's.
    let handshake = [
        http::header::HOST,
        http::header::CONNECTION,
        http::header::UPGRADE,
        http::header::SEC_WEBSOCKET_KEY,
        http::header::SEC_WEBSOCKET_VERSION,
    ];
    for (name, value) in headers.iter() {
        if !handshake.contains(name) {
            request.headers_mut().append(name, value.clone());
        }
    }
    let config = ws_config(&limits);
    let (ws, _response) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| RpcError::error(format!("WebSocket connection to {url} failed: {e}")))?;
    Ok(client_session(
        WsTransport::new(ws, &limits),
        url,
        main,
        limits,
    ))
}

/// [`connect_with`] for a server that wants `Authorization: Bearer <token>` (a host's
/// Durable Objects, reached by another host).
pub(crate) async fn connect_bearer(
    url: &str,
    token: &str,
    limits: Limits,
) -> Result<Session, RpcError> {
    let value = http::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| RpcError::error("the host secret is not a valid header value"))?;
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value);
    connect_with_headers(url, headers, None, limits).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_are_built_in_one_reused_buffer() {
        let mut transport = WsTransport::new((), &Limits::default());
        let ptr = |t: &Utf8Bytes| t.as_str().as_ptr() as usize;
        // Two frames alive at once sit side by side in one buffer, not each in an
        // allocation of its own.
        let (a, b) = (r#"["pull",1]"#, r#"["release",1,1]"#);
        let (first, second) = (transport.frame(a.into()), transport.frame(b.into()));
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!((first.as_str(), second.as_str()), (a, b));
        assert_eq!(ptr(&second), ptr(&first) + a.len());
        let start = ptr(&first);
        drop((first, second));
        // Enough frames to fill the buffer many times over, each gone before the next:
        // every time, the buffer's space is taken back rather than a new buffer made.
        for i in 0..5000 {
            let text = format!(r#"["release",{i},1]"#);
            let frame = transport.frame(text.clone()).unwrap();
            assert_eq!(frame.as_str(), text);
            assert!(
                (start..start + FRAMED_IN_PLACE).contains(&ptr(&frame)),
                "frame {i}"
            );
        }
        let big = "x".repeat(FRAMED_IN_PLACE + 1);
        assert_eq!(transport.frame(big.clone()).unwrap().as_str(), big);
    }
}
