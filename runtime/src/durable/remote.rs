//! Durable Objects across hosts: a host serves the namespaces its workers own to other
//! hosts that present the shared host secret, and reaches those of a worker that runs
//! elsewhere the same way.
//!
//! The owner serves each class it defines at `/__capwire/durable/<Class>` (WebSocket, with
//! `Authorization: Bearer <host_secret>`): the session's main object has one method,
//! `get(id)`, which checks the ID against the namespace and returns a stub to the object.
//! A client without the secret gets nothing there (`401`), so objects are reached only
//! through stubs something handed out, or by a host trusted with the secret.

use super::{DurableObjectId, Handle, NamespaceInner};
use crate::error::RpcError;
use crate::stub::object::{CallFuture, RpcObject};
use crate::stub::{RpcPromise, RpcStub};
use crate::value::Value;
use std::sync::Arc;

/// The path prefix of served namespaces.
pub(crate) const PATH: &str = "__capwire/durable/";

/// A namespace of another host, reached over one WebSocket session (opened on first use,
/// and again after it breaks).
pub(crate) struct Remote {
    url: String,
    secret: String,
    main: tokio::sync::Mutex<Option<RpcStub>>,
}

impl Remote {
    pub(crate) fn new(url: String, secret: String) -> Arc<Remote> {
        Arc::new(Remote {
            url,
            secret,
            main: tokio::sync::Mutex::new(None),
        })
    }

    /// The owner's namespace service, connecting if need be.
    async fn main(self: &Arc<Self>) -> Result<RpcStub, RpcError> {
        let mut main = self.main.lock().await;
        if let Some(stub) = &*main {
            return Ok(stub.clone());
        }
        let session = crate::transport::websocket::connect_bearer(
            &self.url,
            &self.secret,
            crate::Limits::default(),
        )
        .await?;
        let stub = session.main();
        // A broken session is forgotten: the next call connects again.
        let this = Arc::downgrade(self);
        stub.on_broken(move |_| {
            if let Some(this) = this.upgrade()
                && let Ok(mut main) = this.main.try_lock()
            {
                *main = None;
            }
        });
        *main = Some(stub.clone());
        Ok(stub)
    }

    /// A stub to object `id` of the owner.
    pub(crate) fn get(self: &Arc<Self>, id: DurableObjectId) -> RpcStub {
        let this = self.clone();
        RpcPromise::<Value>::from_future(async move {
            let main = this.main().await?;
            main.call("get", (id.to_string(),)).await
        })
        .as_stub()
    }
}

/// The main object of a session another host opened to reach a namespace of this one.
pub(crate) struct NamespaceService(pub(crate) NamespaceInner);

impl RpcObject for NamespaceService {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
        let result = match method {
            "get" => crate::arg::<String>(&args, 0, method, "id").and_then(|text| {
                let id = DurableObjectId::parse(&self.0.name, &text)?;
                Ok(Value::Stub(RpcStub::from_arc(Arc::new(Handle {
                    namespace: self.0.clone(),
                    id,
                }))))
            }),
            other => Err(RpcError::not_a_function(other)),
        };
        Box::pin(std::future::ready(result))
    }
}

/// Whether `presented` (an `Authorization` header) carries `secret`, compared in time that
/// does not depend on where they differ.
pub(crate) fn authorized(presented: Option<&http::HeaderValue>, secret: &str) -> bool {
    let Some(presented) = presented.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(token) = presented.strip_prefix("Bearer ") else {
        return false;
    };
    let (a, b) = (token.as_bytes(), secret.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
