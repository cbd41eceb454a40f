//! Structure-aware fuzzing of whole sessions (issue 11): proptest generates sequences of
//! Cap'n Web messages from the protocol's grammar (valid, nearly valid and hostile: IDs that
//! exist and that do not, nested expressions, maps, pipes, stream writes, releases,
//! resolutions of promises the peer never made) and feeds each to a real session over a
//! transport it controls. Whatever the sequence:
//!
//! - nothing panics and nothing hangs: the session answers, or ends with an `abort` that
//!   names an error, and once the peer is gone it ends;
//! - the session leaves nothing behind: no import, no export, and its memory account back
//!   at zero bytes (every charge given back).
//!
//! `cargo fuzz` needs a nightly toolchain, which this project's machines do not have; a
//! proptest over message sequences (with shrinking to a minimal failing sequence) is the
//! stable-toolchain equivalent. `CAPWIRE_FUZZ_CASES` sets the number of sequences (default
//! 1,500 in CI; run with 100,000 or more to fuzz for real).

use capwire::transport::TransportError;
use capwire::{Limits, RpcError, RpcStub, Session, Stub, Value, rpc_target};
use capwire_examples::conformance::Counter;
use futures::{Sink, Stream};
use proptest::prelude::*;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// A target whose calls settle at once or after a turn, and keep nothing.
struct Quick;

#[rpc_target]
impl Quick {
    pub fn echo(&self, v: Value) -> Value {
        v
    }

    pub fn make_counter(&self, i: i64) -> Counter {
        Counter::new(i)
    }

    pub async fn increment(&self, c: Stub<Counter>, by: Option<i64>) -> Result<i64, RpcError> {
        c.increment(by).await
    }

    pub async fn later(&self, v: Value) -> Value {
        tokio::task::yield_now().await;
        v
    }

    pub fn list(&self, n: u32) -> Vec<u32> {
        (0..n.min(1000)).collect()
    }
}

/// The transport: messages the test sends in, and a log of what the session sends out.
struct Wire {
    incoming: futures::channel::mpsc::UnboundedReceiver<String>,
    sent: Arc<Mutex<Vec<String>>>,
}

impl Stream for Wire {
    type Item = Result<String, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.incoming)
            .poll_next(cx)
            .map(|m| m.map(Ok))
    }
}

impl Sink<String> for Wire {
    type Error = TransportError;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, item: String) -> Result<(), Self::Error> {
        self.sent.lock().unwrap().push(item);
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

/// One step of a generated conversation.
#[derive(Debug, Clone)]
enum Step {
    /// A message, as text.
    Send(String),
    /// Let the session run a while before the next message.
    Settle,
}

/// An ID: mostly the main object or a recent push (so that conversations get far), else
/// any small ID or an extreme one.
fn id() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 0i64..=3,
        2 => 4i64..=8,
        1 => -3i64..=12,
        1 => Just(i64::MAX),
        1 => Just(-9007199254740991),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("echo"),
        Just("makeCounter"),
        Just("increment"),
        Just("later"),
        Just("list"),
        Just("value"),
        Just("write"),
        Just("close"),
        Just("abort"),
        Just("constructor"),
        Just("nope"),
    ]
    .prop_map(|m| format!("\"{m}\""))
}

/// Expressions, nested up to `depth` levels.
fn expr(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        (-1e6f64..1e6).prop_map(|n| format!("{n}")),
        "[a-z]{0,8}".prop_map(|s| format!("\"{s}\"")),
        Just(r#"["undefined"]"#.to_owned()),
        Just(r#"["inf"]"#.to_owned()),
        Just(r#"["nan"]"#.to_owned()),
        Just(r#"["bigint","-12345678901234567890"]"#.to_owned()),
        Just(r#"["date",1749342170815]"#.to_owned()),
        Just(r#"["bytes","AQID"]"#.to_owned()),
        Just(r#"["bytes","AQID/w","Uint16Array"]"#.to_owned()),
        Just(r#"["error","RangeError","x"]"#.to_owned()),
        Just(r#"["url","https://example.com/"]"#.to_owned()),
        Just(r#"["headers",[["a","b"]]]"#.to_owned()),
        id().prop_map(|i| format!(r#"["export",{i}]"#)),
        id().prop_map(|i| format!(r#"["promise",{i}]"#)),
        id().prop_map(|i| format!(r#"["import",{i}]"#)),
        id().prop_map(|i| format!(r#"["pipeline",{i}]"#)),
        id().prop_map(|i| format!(r#"["readable",{i}]"#)),
        id().prop_map(|i| format!(r#"["writable",{i}]"#)),
        id().prop_map(|i| format!(r#"["blob","text/plain",["readable",{i}]]"#)),
    ];
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[[{}]]", v.join(","))),
            prop::collection::vec(("[a-z]{1,3}", inner.clone()), 0..3).prop_map(|kv| {
                let fields: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
            (id(), method(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(i, m, args)| format!(r#"["pipeline",{i},[{m}],[{}]]"#, args.join(","))),
            (id(), prop::collection::vec(inner.clone(), 1..4)).prop_map(|(i, ins)| format!(
                r#"["remap",{i},[],[["import",0]],[{}]]"#,
                ins.join(",")
            )),
            inner.prop_map(|e| format!(r#"["response",{e},{{"status":200}}]"#)),
        ]
    })
    .boxed()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => (id(), method(), prop::collection::vec(expr(3), 0..3))
            .prop_map(|(i, m, args)| format!(
                r#"["push",["pipeline",{i},[{m}],[{}]]]"#,
                args.join(",")
            )),
        2 => expr(3).prop_map(|e| format!(r#"["push",{e}]"#)),
        10 => id().prop_map(|i| format!(r#"["pull",{i}]"#)),
        2 => (id(), 0u64..3).prop_map(|(i, n)| format!(r#"["release",{i},{n}]"#)),
        1 => (id(), expr(2)).prop_map(|(i, e)| format!(r#"["resolve",{i},{e}]"#)),
        1 => (id(), expr(1)).prop_map(|(i, e)| format!(r#"["reject",{i},{e}]"#)),
        2 => Just(r#"["pipe"]"#.to_owned()),
        2 => id().prop_map(|i| format!(r#"["stream",["pipeline",{i},["write"],[["bytes","AAEC"]]]]"#)),
        1 => id().prop_map(|i| format!(r#"["stream",["pipeline",{i},["close"],[]]]"#)),
        1 => Just(r#"["abort",["error","Error","bye"]]"#.to_owned()),
        1 => "[\\[\\]\",0-9a-z]{0,12}",
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![6 => text().prop_map(Step::Send), 1 => Just(Step::Settle)]
}

/// Runs one conversation on a fresh session and checks what it left behind.
async fn converse(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let (to_session, incoming) = futures::channel::mpsc::unbounded();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let limits = Limits {
        max_session_memory: 4 << 20,
        max_stream_buffer: 1 << 20,
        max_map_work: 10_000,
        ..Limits::default()
    };
    let session = Session::start(
        Wire {
            incoming,
            sent: sent.clone(),
        },
        Some(RpcStub::new(Quick)),
        limits,
    );
    // Every conversation starts with three calls, so that IDs 1 to 3 exist.
    for text in [
        r#"["push",["pipeline",0,["makeCounter"],[1]]]"#,
        r#"["push",["pipeline",0,["list"],[3]]]"#,
        r#"["push",["pipeline",0,["later"],[{"a":[[1,2]]}]]]"#,
    ] {
        let _ = to_session.unbounded_send(text.to_owned());
    }
    for step in steps {
        match step {
            Step::Send(text) => {
                let _ = to_session.unbounded_send(text);
            }
            Step::Settle => {
                for _ in 0..8 {
                    tokio::task::yield_now().await;
                }
            }
        }
    }
    // The peer goes away: the session must end, and leave nothing behind.
    drop(to_session);
    let why = tokio::time::timeout(Duration::from_secs(10), session.closed()).await;
    prop_assert!(
        why.is_ok(),
        "the session did not end once its peer was gone"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = session.stats();
        if stats.imports == 0 && stats.exports == 0 && stats.memory == 0 {
            break;
        }
        prop_assert!(
            tokio::time::Instant::now() < deadline,
            "the ended session still holds {stats:?}"
        );
        tokio::task::yield_now().await;
    }
    let sent = sent.lock().unwrap();
    if let Some(abort) = sent.iter().find(|t| t.starts_with(r#"["abort""#))
        && ABORTED.fetch_add(1, Ordering::Relaxed) < 15
        && std::env::var("CAPWIRE_FUZZ_DEBUG").is_ok()
    {
        eprintln!("{abort}");
    }
    if sent.iter().any(|t| t.starts_with(r#"["resolve""#)) {
        ANSWERED.fetch_add(1, Ordering::Relaxed);
    }
    for text in sent.iter() {
        prop_assert!(
            serde_json::from_str::<serde_json::Value>(text).is_ok(),
            "the session sent text that is not JSON: {text}"
        );
        if text.starts_with(r#"["abort""#) {
            prop_assert!(text.starts_with(r#"["abort",["error","#), "{text}");
        }
    }
    Ok(())
}

/// Conversations that ended in an abort, and that got at least one answer.
static ABORTED: AtomicUsize = AtomicUsize::new(0);
static ANSWERED: AtomicUsize = AtomicUsize::new(0);

fn cases() -> u32 {
    std::env::var("CAPWIRE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500)
}

#[test]
fn any_message_sequence_ends_cleanly_and_leaves_nothing_behind() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in prop::collection::vec(step(), 1..40))| {
        runtime.block_on(converse(steps))?;
    });
    let (aborted, answered) = (
        ABORTED.load(Ordering::Relaxed),
        ANSWERED.load(Ordering::Relaxed),
    );
    eprintln!(
        "{} conversations: {aborted} aborted, {answered} answered",
        cases()
    );
    // The generator must reach both: sessions that work, and sessions that end.
    let n = cases() as usize;
    assert!(
        aborted > n / 20 && answered > n / 20,
        "{aborted} aborted, {answered} answered of {n}"
    );
}
