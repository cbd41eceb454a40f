//! Typed errors: a method's own error type travels as itself (its name, its `Display` as
//! the message, its fields as properties), comes back to a Rust caller as that type, and
//! is seen by a capnweb caller in JavaScript with its fields; an `RpcError` says what kind
//! of failure it is, and prints readably.

mod support;

use capwire::transport::memory::{MemoryTransport, channel};
use capwire::{ErrorKind, RpcError, RpcPromise, Session, Stub, TypedStub, rpc_target};
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An enum error, internally tagged so that JavaScript reads the variant as `e.kind`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum KvError {
    NotFound { key: String },
    ReadOnly,
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::NotFound { key } => write!(f, "no value at {key}"),
            KvError::ReadOnly => f.write_str("the store is read-only"),
        }
    }
}

impl std::error::Error for KvError {}

/// A struct error with fields.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Full {
    pub capacity: u32,
    pub asked: u32,
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "asked for {} of {}", self.asked, self.capacity)
    }
}

impl std::error::Error for Full {}

/// A newtype error: not a struct on the wire, so it travels as the property `value`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Code(pub u16);

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {}", self.0)
    }
}

impl std::error::Error for Code {}

pub struct Store;

#[rpc_target]
impl Store {
    pub fn find(&self, key: String) -> Result<String, KvError> {
        match key.as_str() {
            "a" => Ok("1".to_owned()),
            "locked" => Err(KvError::ReadOnly),
            _ => Err(KvError::NotFound { key }),
        }
    }

    pub async fn reserve(&self, n: u32) -> Result<u32, Full> {
        if n > 10 {
            return Err(Full {
                capacity: 10,
                asked: n,
            });
        }
        Ok(10 - n)
    }

    pub fn status(&self) -> Result<(), Code> {
        Err(Code(418))
    }

    /// Not the method's error type: the caller gets it as an `RpcError`.
    pub fn panics(&self) -> Result<u32, KvError> {
        panic!("boom")
    }

    pub fn plain(&self) -> Result<u32, RpcError> {
        Err(RpcError::range("out of range"))
    }
}

fn store_over_a_session() -> (Stub<Store>, Session, Session) {
    let (a, b) = channel(Duration::ZERO);
    let server = Session::start(
        b,
        Some(TypedStub::into_raw(TypedStub::local(Store))),
        Default::default(),
    );
    let client = Session::start(a, None, Default::default());
    (TypedStub::from_raw(client.main()), client, server)
}

#[tokio::test]
async fn a_methods_error_type_comes_back_as_itself() {
    let (store, _client, _server) = store_over_a_session();
    assert_eq!(store.find("a").await.unwrap(), Ok("1".to_owned()));
    assert_eq!(
        store.find("b").await.unwrap(),
        Err(KvError::NotFound { key: "b".into() })
    );
    assert_eq!(store.find("locked").await.unwrap(), Err(KvError::ReadOnly));
    assert_eq!(
        store.reserve(12).await.unwrap(),
        Err(Full {
            capacity: 10,
            asked: 12
        })
    );
    assert_eq!(store.reserve(3).await.unwrap(), Ok(7));
    assert_eq!(store.status().await.unwrap(), Err(Code(418)));
    // A failure of the call itself is the outer error, not a `KvError`.
    let panicked = store.panics().await.unwrap_err();
    assert_eq!(
        panicked.kind(),
        ErrorKind::Remote {
            name: "Error".into()
        }
    );
    // `RpcError` itself stays the one error of the call.
    let plain: Result<u32, RpcError> = store.plain().await;
    assert_eq!(plain.unwrap_err().name(), "RangeError");
}

#[tokio::test]
async fn a_methods_error_travels_with_its_name_message_and_fields() {
    let (store, _client, _server) = store_over_a_session();
    let raw = TypedStub::raw(&store);
    let e = raw.call("find", ("b",)).await.unwrap_err();
    assert_eq!((e.name(), e.message()), ("KvError", "no value at b"));
    assert_eq!(
        e.kind(),
        ErrorKind::Remote {
            name: "KvError".into()
        }
    );
    let props = e.props().expect("the fields travel as properties");
    assert_eq!(props.get("kind"), Some(&"NotFound".into()));
    assert_eq!(props.get("key"), Some(&"b".into()));
    assert_eq!(props.get("type"), Some(&"KvError".into()));
    let e = raw.call("reserve", (12,)).await.unwrap_err();
    assert_eq!((e.name(), e.message()), ("Full", "asked for 12 of 10"));
    let props = e.props().unwrap();
    assert_eq!(props.get("capacity"), Some(&10.into()));
    assert_eq!(props.get("asked"), Some(&12.into()));
    let e = raw.call("status", ()).await.unwrap_err();
    assert_eq!(e.props().unwrap().get("value"), Some(&418.into()));
}

#[tokio::test]
async fn an_error_of_another_name_is_not_taken_for_the_methods_error() {
    // A peer (JavaScript, say) rejecting `find` with a `RangeError` that has a `key`
    // property: not a `KvError`, so the caller gets the `RpcError`.
    struct Impostor;
    impl capwire::RpcObject for Impostor {
        fn call(
            self: std::sync::Arc<Self>,
            _method: &str,
            _args: Vec<capwire::Value>,
        ) -> capwire::CallFuture {
            Box::pin(async {
                Err(RpcError::range("no")
                    .with_prop("kind", "NotFound")
                    .with_prop("key", "b"))
            })
        }
        fn get(self: std::sync::Arc<Self>, _name: &str) -> capwire::CallFuture {
            Box::pin(async { Ok(capwire::Value::Undefined) })
        }
    }
    let store: Stub<Store> = TypedStub::from_raw(capwire::RpcStub::new(Impostor));
    let e = store.find("b").await.unwrap_err();
    assert_eq!(e.name(), "RangeError");
}

/// A client session whose peer is the raw transport end returned: the test plays the
/// peer by hand.
fn client_of_a_raw_peer() -> (Session, MemoryTransport) {
    let (a, b) = channel(Duration::ZERO);
    (Session::start(a, None, Default::default()), b)
}

#[tokio::test]
async fn kind_tells_disconnect_abort_protocol_timeout_and_remote_apart() {
    // Disconnected: the peer goes away with the call pending.
    let (client, peer) = client_of_a_raw_peer();
    let call = client.main().call("anything", ());
    call.pull();
    drop(peer);
    assert_eq!(call.await.unwrap_err().kind(), ErrorKind::Disconnected);

    // Disconnected too: this side closes the session with the call pending.
    let (client, _peer) = client_of_a_raw_peer();
    let call = client.main().call("anything", ());
    call.pull();
    client.close();
    assert_eq!(call.await.unwrap_err().kind(), ErrorKind::Disconnected);

    // Aborted: the peer says why it ends the session.
    let (client, mut peer) = client_of_a_raw_peer();
    let call = client.main().call("anything", ());
    call.pull();
    peer.send(r#"["abort",["error","Error","maintenance"]]"#.to_owned())
        .await
        .unwrap();
    let e = call.await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Aborted);
    assert!(e.message().contains("maintenance"), "{e}");

    // Protocol: the peer sends what is not a message.
    let (client, mut peer) = client_of_a_raw_peer();
    let call = client.main().call("anything", ());
    call.pull();
    peer.send("not json".to_owned()).await.unwrap();
    assert_eq!(call.await.unwrap_err().kind(), ErrorKind::Protocol);

    // Timeout: the peer never answers.
    let (client, _peer) = client_of_a_raw_peer();
    let call = RpcPromise::with_timeout(
        client.main().call("anything", ()),
        Duration::from_millis(20),
    );
    assert_eq!(call.await.unwrap_err().kind(), ErrorKind::Timeout);

    // Remote: the peer rejects the call, with the error's name.
    let (client, mut peer) = client_of_a_raw_peer();
    let call = client.main().call("anything", ());
    call.pull();
    // The push is import 1: wait for it (and the pull) before answering.
    let _push = peer.next().await;
    let _pull = peer.next().await;
    peer.send(r#"["reject",1,["error","RangeError","no"]]"#.to_owned())
        .await
        .unwrap();
    assert_eq!(
        call.await.unwrap_err().kind(),
        ErrorKind::Remote {
            name: "RangeError".into()
        }
    );
}

#[test]
fn debug_shows_the_name_message_kind_and_properties() {
    let e = RpcError::range("out of range").with_prop("limit", 10);
    assert_eq!(
        format!("{e:?}"),
        r#"RpcError { name: "RangeError", message: "out of range", props: {"limit": 10} }"#
    );
    assert_eq!(
        format!("{:?}", RpcError::error("bye")),
        r#"RpcError { name: "Error", message: "bye" }"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_sees_a_rust_errors_name_message_and_fields() {
    let server = capwire::Server::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    tokio::spawn(server.serve(|| Store));
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || support::run_node(&["app-errors.mjs", &url], None))
            .await
            .unwrap();
    assert!(ok, "node failed:\n{stdout}\n{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({
                "isError": true, "name": "Error", "message": "no value at missing",
                "kind": "NotFound", "key": "missing", "type": "KvError"
            }),
            serde_json::json!({
                "isError": true, "name": "Error", "message": "asked for 99 of 10",
                "capacity": 10, "asked": 99, "type": "Full"
            }),
        ]
    );
}

/// An error whose field is named like an `Error`'s own property.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Unknown {
    pub name: String,
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {}", self.name)
    }
}

impl std::error::Error for Unknown {}

pub struct Registry;

#[rpc_target]
impl Registry {
    pub fn lookup(&self, name: String) -> Result<u32, Unknown> {
        Err(Unknown { name })
    }
}

#[tokio::test]
async fn a_field_named_like_an_errors_own_property_still_round_trips() {
    let (a, b) = channel(Duration::ZERO);
    let _server = Session::start(
        b,
        Some(TypedStub::into_raw(TypedStub::local(Registry))),
        Default::default(),
    );
    let client = Session::start(a, None, Default::default());
    let registry: Stub<Registry> = TypedStub::from_raw(client.main());
    assert_eq!(
        registry.lookup("x").await.unwrap(),
        Err(Unknown { name: "x".into() })
    );
}
