//! WebSocket: one RPC message per text frame.

use super::{Session, TransportError};
use crate::error::RpcError;
use crate::limits::Limits;
use crate::stub::RpcStub;
use futures::{Sink, Stream};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A WebSocket message type capwire can carry RPC messages in.
pub(crate) trait Frame: Sized {
    /// `Some(Ok(text))` for a message, `Some(Err)` for a frame that is not text, `None` for
    /// frames to skip (ping, pong) or a close.
    fn into_text(self) -> Option<Result<String, TransportError>>;
    fn is_close(&self) -> bool;
    fn from_text(text: String) -> Self;
}

impl Frame for tokio_tungstenite::tungstenite::Message {
    fn into_text(self) -> Option<Result<String, TransportError>> {
        use tokio_tungstenite::tungstenite::Message;
        match self {
            Message::Text(t) => Some(Ok(t.as_str().to_owned())),
            Message::Binary(b) => Some(String::from_utf8(b.to_vec()).map_err(|_| {
                TransportError::bad_input(
                    "a binary frame that is not UTF-8 text is not an RPC message",
                )
            })),
            _ => None,
        }
    }
    fn is_close(&self) -> bool {
        matches!(self, tokio_tungstenite::tungstenite::Message::Close(_))
    }
    fn from_text(text: String) -> Self {
        tokio_tungstenite::tungstenite::Message::text(text)
    }
}

impl Frame for axum::extract::ws::Message {
    fn into_text(self) -> Option<Result<String, TransportError>> {
        use axum::extract::ws::Message;
        match self {
            Message::Text(t) => Some(Ok(t.as_str().to_owned())),
            Message::Binary(b) => Some(String::from_utf8(b.to_vec()).map_err(|_| {
                TransportError::bad_input(
                    "a binary frame that is not UTF-8 text is not an RPC message",
                )
            })),
            _ => None,
        }
    }
    fn is_close(&self) -> bool {
        matches!(self, axum::extract::ws::Message::Close(_))
    }
    fn from_text(text: String) -> Self {
        axum::extract::ws::Message::text(text)
    }
}

/// Adapts a WebSocket (a stream and sink of frames) into a message transport.
pub(crate) struct WsTransport<S, M>(pub(crate) S, pub(crate) std::marker::PhantomData<fn(M)>);

impl<S, M> WsTransport<S, M> {
    pub(crate) fn new(socket: S) -> Self {
        WsTransport(socket, std::marker::PhantomData)
    }
}

impl<S, M, E> Stream for WsTransport<S, M>
where
    S: Stream<Item = Result<M, E>> + Unpin,
    M: Frame,
    E: std::fmt::Display,
{
    type Item = Result<String, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let inner = &mut self.get_mut().0;
        loop {
            match Pin::new(&mut *inner).poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if frame.is_close() {
                        return Poll::Ready(None);
                    }
                    if let Some(item) = frame.into_text() {
                        return Poll::Ready(Some(item));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(TransportError::new(e.to_string()))));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S, M> Sink<String> for WsTransport<S, M>
where
    S: Sink<M> + Unpin,
    S::Error: std::fmt::Display,
    M: Frame,
{
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.get_mut().0)
            .poll_ready(cx)
            .map_err(|e| TransportError::new(e.to_string()))
    }
    fn start_send(self: Pin<&mut Self>, item: String) -> Result<(), TransportError> {
        Pin::new(&mut self.get_mut().0)
            .start_send(M::from_text(item))
            .map_err(|e| TransportError::new(e.to_string()))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.get_mut().0)
            .poll_flush(cx)
            .map_err(|e| TransportError::new(e.to_string()))
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.get_mut().0)
            .poll_close(cx)
            .map_err(|e| TransportError::new(e.to_string()))
    }
}

/// Read in 16 KiB chunks: tungstenite zeroes its whole read buffer before each read, so its
/// 128 KiB default costs more than it saves for RPC-sized messages.
pub(crate) const READ_BUFFER: usize = 16 * 1024;

/// Frames may be larger than the message limit so that an oversized message reaches the
/// session, which answers it with an `abort` naming the limit.
pub(crate) fn frame_limit(limits: &Limits) -> usize {
    limits.max_message_size.saturating_mul(2).max(1 << 20)
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
    let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    config.max_message_size = Some(frame_limit(&limits));
    config.max_frame_size = Some(frame_limit(&limits));
    config.read_buffer_size = READ_BUFFER;
    let (ws, _response) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| RpcError::error(format!("WebSocket connection to {url} failed: {e}")))?;
    Ok(Session::start(WsTransport::new(ws), main, limits))
}
