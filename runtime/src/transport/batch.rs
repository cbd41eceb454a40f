//! HTTP batch: one `POST` carries a whole session, newline-delimited messages each way.

use crate::error::RpcError;
use crate::limits::Limits;
use crate::limits::budget::Budget;
use crate::session::SessionInner;
use crate::stub::RpcStub;
use std::sync::Arc;

/// Runs one batch session on the server side: feeds `body`'s messages to a fresh session
/// serving `main`, waits until every pulled result is settled, and returns the response
/// body. `Err` carries the body when the batch ended with an `abort`.
pub async fn serve_batch(body: &str, main: RpcStub, limits: Limits) -> Result<String, String> {
    let span = crate::session::session_span("batch", Some("server"), None);
    serve_batch_in(body, main, limits, None, span).await
}

/// [`serve_batch`], counting what the session holds against a server's budget too,
/// logging in `span`.
pub(crate) async fn serve_batch_in(
    body: &str,
    main: RpcStub,
    limits: Limits,
    server: Option<Arc<Budget>>,
    span: tracing::Span,
) -> Result<String, String> {
    let (inner, mut out_rx, _events) = SessionInner::new(Some(main), limits, server, span);
    // Dropped before the end (its client went away, and the server with it dropped this
    // future): the session ends at once, cancelling its calls and freeing what it holds.
    let _cancel = ShutdownOnDrop(inner.clone());
    let failed = match handle_body(&inner, body) {
        Ok(()) => false,
        Err(e) => {
            inner.shutdown(e, true);
            true
        }
    };
    // Nothing more can come from the client in this request: what it was still to answer
    // fails now, rather than holding the response open forever.
    inner.peer_done(RpcError::error(
        "the HTTP batch ended before the client could answer this call",
    ));
    inner.drained().await;
    let body = queued_body(&inner, &mut out_rx);
    inner.shutdown(RpcError::disconnected("the HTTP batch is complete"), false);
    if failed { Err(body) } else { Ok(body) }
}

/// Shuts a batch session down when dropped (a no-op if it already ended).
struct ShutdownOnDrop(Arc<SessionInner>);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        self.0.shutdown(
            RpcError::disconnected("the HTTP batch's client went away"),
            false,
        );
    }
}

/// Handles each message of a batch body (an empty body is zero messages); stops at the
/// first protocol error.
fn handle_body(inner: &Arc<SessionInner>, body: &str) -> Result<(), RpcError> {
    if body.is_empty() {
        return Ok(());
    }
    inner.span.in_scope(|| {
        body.split('\n')
            .try_for_each(|line| inner.handle_text(line.into()))
            .map_err(RpcError::from)
    })
}

/// Every message queued for sending, as a batch body.
fn queued_body(
    inner: &SessionInner,
    out_rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> String {
    let mut lines = Vec::new();
    while let Ok(text) = out_rx.try_recv() {
        inner.unqueued(text.len());
        lines.push(text);
    }
    lines.join("\n")
}

/// The client side of an HTTP batch session.
///
/// Calls made on [`main`](BatchClient::main) are queued; [`send`](BatchClient::send) sends
/// them in one `POST` and settles every promise that was pulled (awaiting pulls by itself,
/// but an await cannot finish before `send`, so mark the results you want with
/// [`RpcPromise::pull`](crate::RpcPromise::pull) first). Pipelining works across the batch.
///
/// ```no_run
/// # async fn demo() -> Result<(), capwire::RpcError> {
/// let batch = capwire::BatchClient::new("http://127.0.0.1:8787/");
/// let api = batch.main();
/// let counter = api.call("makeCounter", (2,));
/// let five = counter.call("increment", (3,));
/// five.pull();
/// batch.send().await?;
/// assert_eq!(five.await?.as_f64(), Some(5.0));
/// # Ok(()) }
/// ```
pub struct BatchClient {
    url: String,
    inner: Arc<SessionInner>,
    out_rx: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl BatchClient {
    /// A batch for the server at `url`.
    pub fn new(url: impl Into<String>) -> BatchClient {
        let url = url.into();
        let span = crate::session::session_span("batch", Some("client"), Some(&url));
        let (inner, out_rx, _events) = SessionInner::new(None, Limits::default(), None, span);
        BatchClient { url, inner, out_rx }
    }

    /// A stub to the server's main object.
    pub fn main(&self) -> RpcStub {
        self.inner.main_stub()
    }

    /// Sends the batch and processes the response. Promises that were not settled by the
    /// response fail with an error saying the batch ended.
    pub async fn send(mut self) -> Result<(), RpcError> {
        // Streams among the arguments go whole into the request: the server cannot
        // acknowledge their chunks before it answers.
        self.inner.streams_one_way();
        self.inner.streams_sent().await;
        let request = queued_body(&self.inner, &mut self.out_rx);
        let result = match self.post(request).await {
            Ok(response) => handle_body(&self.inner, &response),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.inner
                    .shutdown(RpcError::disconnected("Batch RPC request ended."), false);
                Ok(())
            }
            Err(e) => {
                self.inner.shutdown(e.clone(), false);
                Err(e)
            }
        }
    }

    async fn post(&self, body: String) -> Result<String, RpcError> {
        use http_body_util::BodyExt;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let request = http::Request::post(&self.url)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| RpcError::error(format!("bad batch URL {}: {e}", self.url)))?;
        let response = client
            .request(request)
            .await
            .map_err(|e| RpcError::error(format!("RPC request failed: {e}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| RpcError::error(format!("RPC request failed: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(RpcError::error(format!(
                "RPC request failed: {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        String::from_utf8(body.to_vec()).map_err(|_| RpcError::error("RPC response is not UTF-8"))
    }
}
