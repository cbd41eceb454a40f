//! What capwire logs through `tracing`: a span for each session (its transport, its side,
//! the peer's address on a server), a span for each call a peer makes (method and ID) in
//! it, and events for a rejected call (debug), a panicking method (error) and an abort with
//! its reason (info).
//!
//! A small [`Layer`] records every span and event. Each test installs it for its own thread
//! only (`set_default`) on a current-thread runtime, where the servers and clients it
//! starts run too: it sees its own sessions, never another test's.

mod support;

use capwire::{RpcError, RpcStub, Session, Stub, rpc_target};
use futures::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::Message;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span's or an event's fields, as text (strings without quotes).
type Fields = BTreeMap<String, String>;

/// A span: its name and fields, and those of its ancestors (nearest first).
#[derive(Clone, Debug)]
struct SpanSeen {
    name: &'static str,
    fields: Fields,
    ancestors: Vec<(&'static str, Fields)>,
}

impl SpanSeen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// An event: its level and fields (`message` among them), and the spans it was in (nearest
/// first).
#[derive(Clone, Debug)]
struct EventSeen {
    level: Level,
    fields: Fields,
    scope: Vec<(&'static str, Fields)>,
}

impl EventSeen {
    fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }

    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// The nearest span named `name` the event was in.
    fn in_span(&self, name: &str) -> Option<&Fields> {
        self.scope.iter().find(|(n, _)| *n == name).map(|(_, f)| f)
    }
}

/// Records every span and event it sees.
#[derive(Clone, Default)]
struct Captured {
    spans: Arc<Mutex<Vec<SpanSeen>>>,
    events: Arc<Mutex<Vec<EventSeen>>>,
}

impl Captured {
    /// Installs a subscriber made of this layer for the current thread.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    fn spans(&self, name: &str) -> Vec<SpanSeen> {
        let spans = self.spans.lock().unwrap();
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }

    fn events(&self) -> Vec<EventSeen> {
        self.events.lock().unwrap().clone()
    }

    /// The first event whose message is `message` and that `matches`; fails the test, with
    /// everything seen, if there is none.
    fn event(&self, message: &str, matches: impl Fn(&EventSeen) -> bool) -> EventSeen {
        let events = self.events();
        events
            .iter()
            .find(|e| e.message() == message && matches(e))
            .cloned()
            .unwrap_or_else(|| panic!("no event {message:?} as expected among {events:#?}"))
    }
}

struct FieldText<'a>(&'a mut Fields);

impl Visit for FieldText<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Captured {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut FieldText(&mut fields));
        let span = ctx.span(id).expect("a new span is registered");
        let ancestors = span
            .scope()
            .skip(1)
            .map(|s| {
                let fields = s.extensions().get::<Fields>().cloned().unwrap_or_default();
                (s.name(), fields)
            })
            .collect();
        span.extensions_mut().insert(fields.clone());
        self.spans.lock().unwrap().push(SpanSeen {
            name: attrs.metadata().name(),
            fields,
            ancestors,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(&mut FieldText(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut FieldText(&mut fields));
        let scope = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .map(|s| {
                        let fields = s.extensions().get::<Fields>().cloned().unwrap_or_default();
                        (s.name(), fields)
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.events.lock().unwrap().push(EventSeen {
            level: *event.metadata().level(),
            fields,
            scope,
        });
    }
}

/// A service whose calls succeed, reject and panic.
pub struct Api;

#[rpc_target]
impl Api {
    /// `a + b`.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// Always rejects.
    pub fn refuse(&self) -> Result<i64, RpcError> {
        Err(RpcError::range("not today (marker 51c2)"))
    }

    /// Always panics.
    pub fn explode(&self) -> i64 {
        panic!("kaboom (marker 9e0d)")
    }
}

/// A WebSocket server of [`Api`] on a free port of this runtime.
async fn server() -> SocketAddr {
    let server = capwire::Server::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("bound");
    tokio::spawn(server.serve(|| Api));
    addr
}

#[tokio::test]
async fn websocket_sessions_and_their_calls_are_spans() {
    let seen = Captured::default();
    let _guard = seen.install();
    let addr = server().await;
    let url = format!("ws://{addr}/");
    let api: Stub<Api> = capwire::connect(&url).await.expect("connect");
    assert_eq!(api.add(2, 3).await.unwrap(), 5);

    // Both ends are sessions, each with its transport and side; the server knows the
    // client's address, the client the URL it connected to.
    let sessions = seen.spans("capwire.session");
    let server_session = sessions
        .iter()
        .find(|s| s.field("side") == Some("server"))
        .unwrap_or_else(|| panic!("no server session span among {sessions:#?}"));
    assert_eq!(server_session.field("transport"), Some("websocket"));
    let peer: SocketAddr = server_session
        .field("peer")
        .expect("the server session names its peer")
        .parse()
        .expect("the peer is an address");
    assert!(peer.ip().is_loopback() && peer != addr, "{peer}");
    let client_session = sessions
        .iter()
        .find(|s| s.field("side") == Some("client"))
        .unwrap_or_else(|| panic!("no client session span among {sessions:#?}"));
    assert_eq!(client_session.field("transport"), Some("websocket"));
    assert_eq!(client_session.field("peer"), Some(url.as_str()));

    // The call is a span in the server's session: its method, the ID of its result (the
    // first the client made) and the main object it addresses.
    let calls = seen.spans("capwire.call");
    let add = calls
        .iter()
        .find(|c| c.field("method") == Some("add"))
        .unwrap_or_else(|| panic!("no call span for add among {calls:#?}"));
    assert_eq!(add.field("id"), Some("1"), "{add:#?}");
    assert_eq!(add.field("target"), Some("0"), "{add:#?}");
    assert!(
        matches!(add.field("kind"), Some("call" | "stream")),
        "{add:#?}"
    );
    let (parent, parent_fields) = add
        .ancestors
        .first()
        .unwrap_or_else(|| panic!("the call span has no parent: {add:#?}"));
    assert_eq!(*parent, "capwire.session");
    assert_eq!(
        parent_fields.get("side").map(String::as_str),
        Some("server")
    );

    // A rejected call is a debug event in its call's span, with the error.
    let err = api.refuse().await.unwrap_err();
    assert_eq!(err.name(), "RangeError");
    let rejected = seen.event("capwire: call rejected", |e| {
        e.field("error.message").contains("marker 51c2")
    });
    assert_eq!(rejected.level, Level::DEBUG);
    assert_eq!(rejected.field("error.name"), "RangeError");
    let call = rejected
        .in_span("capwire.call")
        .expect("in the call's span");
    assert_eq!(call.get("method").map(String::as_str), Some("refuse"));

    // A panicking method rejects its call, and the panic is an error event in its span.
    let err = api.explode().await.unwrap_err();
    assert!(err.message().contains("marker 9e0d"), "{err}");
    let panicked = seen.event("capwire: application code panicked", |e| {
        e.field("panic").contains("marker 9e0d")
    });
    assert_eq!(panicked.level, Level::ERROR);
    let call = panicked
        .in_span("capwire.call")
        .expect("in the call's span");
    assert_eq!(call.get("method").map(String::as_str), Some("explode"));
    let session = panicked
        .in_span("capwire.session")
        .expect("in the session's span");
    assert_eq!(session.get("side").map(String::as_str), Some("server"));
}

#[tokio::test]
async fn an_abort_is_an_event_with_its_reason() {
    let seen = Captured::default();
    let _guard = seen.install();
    let addr = server().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");
    ws.send(Message::text("this is not json")).await.unwrap();
    // The server answers with an abort, then closes.
    let mut abort = None;
    while let Some(Ok(frame)) = ws.next().await {
        match frame {
            Message::Text(t) if t.starts_with("[\"abort\"") => abort = Some(t.to_string()),
            Message::Close(_) => break,
            _ => {}
        }
    }
    let abort = abort.expect("the server sent an abort");
    assert!(abort.contains("not valid JSON"), "{abort}");

    let aborted = seen.event("capwire: session aborted", |e| {
        e.field("reason").contains("not valid JSON")
    });
    assert_eq!(aborted.level, Level::INFO);
    let session = aborted
        .in_span("capwire.session")
        .expect("in the session's span");
    assert_eq!(session.get("side").map(String::as_str), Some("server"));
    assert_eq!(
        session.get("transport").map(String::as_str),
        Some("websocket")
    );
}

#[tokio::test]
async fn a_memory_session_names_its_transport() {
    let seen = Captured::default();
    let _guard = seen.install();
    let (a, b) = capwire::transport::memory::channel(std::time::Duration::ZERO);
    let _server = Session::start(b, Some(RpcStub::new(Api)), Default::default());
    let client = Session::start(a, None, Default::default());
    let api: Stub<Api> = capwire::FromStub::from_stub(client.main());
    assert_eq!(api.add(1, 1).await.unwrap(), 2);

    let sessions = seen.spans("capwire.session");
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    assert!(
        sessions
            .iter()
            .all(|s| s.field("transport") == Some("memory") && s.field("peer").is_none()),
        "{sessions:#?}"
    );
    let calls = seen.spans("capwire.call");
    assert!(
        calls.iter().any(|c| c.field("method") == Some("add")
            && c.ancestors.first().map(|a| a.0) == Some("capwire.session")),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn a_host_session_is_in_the_span_of_its_worker_and_entrypoint() {
    let seen = Captured::default();
    let _guard = seen.install();
    let serving = support::ping_host(
        "[[worker]]\nname = \"pinger\"\nmain = \"Ping\"\nlisten = \"127.0.0.1:0\"",
    )
    .await;
    let addr = serving.addr("pinger").unwrap();
    let ping: Stub<support::Ping> = capwire::connect(&format!("ws://{addr}/"))
        .await
        .expect("connect");
    assert_eq!(ping.ping().await.unwrap(), "pong");

    let sessions = seen.spans("capwire.session");
    let session = sessions
        .iter()
        .find(|s| s.field("side") == Some("server"))
        .unwrap_or_else(|| panic!("no server session span among {sessions:#?}"));
    let (name, worker) = session
        .ancestors
        .first()
        .unwrap_or_else(|| panic!("the session span has no parent: {session:#?}"));
    assert_eq!(*name, "capwire.worker", "{session:#?}");
    assert_eq!(worker.get("worker").map(String::as_str), Some("pinger"));
    assert_eq!(worker.get("entrypoint").map(String::as_str), Some("Ping"));
    serving.stop().await.unwrap();
}
