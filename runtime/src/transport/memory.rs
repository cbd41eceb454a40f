//! An in-memory transport: two connected ends in one process, with optional latency.

use super::TransportError;
use futures::{Sink, Stream};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

/// One end of an in-memory connection. Messages sent on one end arrive at the other,
/// in order, `latency` after they were sent.
pub struct MemoryTransport {
    tx: Option<mpsc::UnboundedSender<(Instant, String)>>,
    rx: mpsc::UnboundedReceiver<(Instant, String)>,
    latency: Duration,
    held: Option<(Pin<Box<Sleep>>, String)>,
}

/// Two connected ends. With a non-zero `latency`, each message is delivered that long
/// after it was sent (a one-way delay), which makes round trips visible in tests and
/// benchmarks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use futures::{SinkExt, StreamExt};
/// let (mut a, mut b) = capwire::transport::memory::channel(std::time::Duration::ZERO);
/// a.send("[\"pull\",1]".to_string()).await.unwrap();
/// assert_eq!(b.next().await.unwrap().unwrap(), "[\"pull\",1]");
/// # }
/// ```
pub fn channel(latency: Duration) -> (MemoryTransport, MemoryTransport) {
    let (a_tx, a_rx) = mpsc::unbounded_channel();
    let (b_tx, b_rx) = mpsc::unbounded_channel();
    let end = |tx, rx| MemoryTransport {
        tx: Some(tx),
        rx,
        latency,
        held: None,
    };
    (end(a_tx, b_rx), end(b_tx, a_rx))
}

impl Stream for MemoryTransport {
    type Item = Result<String, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some((sleep, _)) = &mut this.held {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let (_, text) = this.held.take().expect("checked above");
                return Poll::Ready(Some(Ok(text)));
            }
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some((due, text))) => {
                    if due <= Instant::now() {
                        return Poll::Ready(Some(Ok(text)));
                    }
                    this.held = Some((Box::pin(tokio::time::sleep_until(due)), text));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Sink<String> for MemoryTransport {
    type Error = TransportError;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: String) -> Result<(), TransportError> {
        let this = self.get_mut();
        let due = Instant::now() + this.latency;
        this.tx
            .as_ref()
            .and_then(|tx| tx.send((due, item)).ok())
            .ok_or_else(|| TransportError::new("the other end is closed"))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.get_mut().tx = None;
        Poll::Ready(Ok(()))
    }
}
