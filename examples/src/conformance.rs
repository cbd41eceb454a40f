//! The conformance service of `shared/CONFORMANCE.md`, written with capwire's dynamic API.
//!
//! `TestTarget` is the main object of every session; `Counter` and `Vault` are handed out
//! by reference. Rows that need later features (functions, streams, blobs,
//! request/response, `map`) are not served yet.

use capwire::{CallFuture, RpcError, RpcObject, RpcStub, Value, arg};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn done(result: Result<Value, RpcError>) -> CallFuture {
    Box::pin(std::future::ready(result))
}

/// The main object of every conformance session.
#[derive(Default)]
pub struct TestTarget;

impl RpcObject for TestTarget {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
        let m = method;
        match method {
            "square" => done(arg::<f64>(&args, 0, m, "i").map(|i| (i * i).into())),
            "add" => done((|| {
                Ok((arg::<f64>(&args, 0, m, "a")? + arg::<f64>(&args, 1, m, "b")?).into())
            })()),
            "callSquare" => done((|| {
                let target: RpcStub = arg(&args, 0, m, "self")?;
                let i: f64 = arg(&args, 1, m, "i")?;
                Ok(Value::object([(
                    "result",
                    target.call("square", (i,)).into(),
                )]))
            })()),
            "throwError" => done(Err(RpcError::range("test error"))),
            "makeCounter" => {
                done(arg::<i64>(&args, 0, m, "i").map(|i| RpcStub::new(Counter::new(i)).into()))
            }
            "getCounter" => done(Ok(RpcStub::new(Counter::new(0)).into())),
            "incrementCounter" | "useCounter" => {
                let parsed = (|| {
                    let counter: RpcStub = arg(&args, 0, m, "c")?;
                    let amount: Option<i64> = arg(&args, 1, m, "i")?;
                    Ok::<_, RpcError>(counter.call("increment", (amount.unwrap_or(1),)))
                })();
                Box::pin(async move { parsed?.await })
            }
            "generateFibonacci" => done(arg::<u32>(&args, 0, m, "n").map(|n| {
                let mut seq: Vec<u64> = Vec::with_capacity(n as usize);
                for k in 0..n as usize {
                    seq.push(if k < 2 {
                        k as u64
                    } else {
                        seq[k - 1] + seq[k - 2]
                    });
                }
                seq.into()
            })),
            "returnNull" => done(Ok(Value::Null)),
            "returnUndefined" => done(Ok(Value::Undefined)),
            "returnNumber" => done(arg::<f64>(&args, 0, m, "i").map(Value::from)),
            "echo" => done(Ok(args.into_iter().next().unwrap_or_default())),
            "delay" => {
                let ms = arg::<f64>(&args, 0, m, "ms");
                let value = args.get(1).cloned().unwrap_or_default();
                Box::pin(async move {
                    let ms = ms?;
                    tokio::time::sleep(Duration::from_secs_f64(ms.max(0.0) / 1000.0)).await;
                    Ok(value)
                })
            }
            "listIds" => {
                done(arg::<u32>(&args, 0, m, "n").map(|n| (1..=n).collect::<Vec<_>>().into()))
            }
            "getUser" => done(arg::<i64>(&args, 0, m, "id").map(|id| {
                Value::object([("id", id.into()), ("name", format!("user{id}").into())])
            })),
            "makeVault" => done(
                arg::<String>(&args, 0, m, "secret").map(|s| RpcStub::new(Vault::new(s)).into()),
            ),
            other => done(Err(RpcError::not_a_function(other))),
        }
    }
}

/// A counter handed out by reference.
pub struct Counter {
    value: Mutex<i64>,
}

impl Counter {
    /// A counter starting at `start`.
    pub fn new(start: i64) -> Counter {
        Counter {
            value: Mutex::new(start),
        }
    }

    fn add(&self, amount: i64) -> i64 {
        let mut v = self
            .value
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *v += amount;
        *v
    }
}

impl RpcObject for Counter {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
        done(match method {
            "increment" => arg::<Option<i64>>(&args, 0, method, "amount")
                .map(|a| self.add(a.unwrap_or(1)).into()),
            other => Err(RpcError::not_a_function(other)),
        })
    }

    fn get(self: Arc<Self>, name: &str) -> CallFuture {
        done(Ok(match name {
            "value" => self.add(0).into(),
            _ => Value::Undefined,
        }))
    }
}

/// Holds a secret nobody can read; counts how often it was opened.
pub struct Vault {
    secret: String,
    opens: AtomicU64,
}

impl Vault {
    /// A vault holding `secret`.
    pub fn new(secret: String) -> Vault {
        Vault {
            secret,
            opens: AtomicU64::new(0),
        }
    }
}

impl RpcObject for Vault {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
        done(match method {
            "open" => arg::<String>(&args, 0, method, "guess").map(|g| {
                self.opens.fetch_add(1, Ordering::Relaxed);
                (g == self.secret).into()
            }),
            other => Err(RpcError::not_a_function(other)),
        })
    }

    fn get(self: Arc<Self>, name: &str) -> CallFuture {
        done(Ok(match name {
            "opens" => self.opens.load(Ordering::Relaxed).into(),
            _ => Value::Undefined,
        }))
    }
}

/// Binds a conformance server to `addr` and returns it with its address, not yet serving.
pub async fn bind(addr: &str) -> std::io::Result<(capwire::Server, std::net::SocketAddr)> {
    let server = capwire::Server::bind(addr).await?;
    let local = server.local_addr()?;
    Ok((server, local))
}

/// Serves the conformance service on a bound server until the process ends.
pub async fn run(server: capwire::Server) -> std::io::Result<()> {
    server.serve(|| TestTarget).await
}
