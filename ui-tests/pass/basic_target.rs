// A target with every kind of method: sync, async, getter, renamed, `Result`-returning,
// returning a target by reference, taking a stub, and `Self`. Its client is usable through
// `Stub<T>` and through a promise of one.
use capwire::TypedStub;
use capwire::{RpcError, Stub, StubPromise, Value, rpc_target};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

#[derive(Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
}

pub struct Counter {
    value: Mutex<i64>,
}

#[rpc_target]
impl Counter {
    /// Adds `by` (default 1).
    pub fn increment(&self, by: Option<i64>) -> i64 {
        let mut v = self.value.lock().unwrap();
        *v += by.unwrap_or(1);
        *v
    }

    /// A property read.
    #[rpc(getter)]
    pub fn value(&self) -> i64 {
        *self.value.lock().unwrap()
    }

    /// An async getter.
    #[rpc(getter, name = "doubled")]
    pub async fn twice(&self) -> i64 {
        self.value() * 2
    }

    /// A fresh counter, by reference.
    pub fn fork(&self) -> Self {
        Counter {
            value: Mutex::new(self.value()),
        }
    }

    /// Not `pub`: not reachable over RPC, and free to take `&mut self`.
    fn reset(&mut self) {
        *self.value.get_mut().unwrap() = 0;
    }
}

pub struct Service;

#[rpc_target]
impl Service {
    pub fn square(&self, i: f64) -> f64 {
        i * i
    }

    pub async fn slow_square(&self, i: f64) -> f64 {
        i * i
    }

    #[rpc(name = "fetchUser")]
    pub fn user(&self, id: i64) -> User {
        User {
            id,
            name: format!("user{id}"),
        }
    }

    pub fn fail(&self) -> Result<(), RpcError> {
        Err(RpcError::range("no"))
    }

    pub async fn try_parse(&self, text: String) -> Result<i64, RpcError> {
        text.parse().map_err(|_| RpcError::type_error("not a number"))
    }

    pub fn echo(&self, v: Value) -> Value {
        v
    }

    pub fn nothing(&self) {}

    pub fn make_counter(&self, start: i64) -> Counter {
        Counter {
            value: Mutex::new(start),
        }
    }

    pub async fn use_counter(&self, c: Stub<Counter>) -> Result<i64, RpcError> {
        c.increment(Some(1)).await
    }

    pub fn pair(&self, _: u8, _unused: u8, kind: String) -> String {
        kind
    }

    /// An associated function without `self` is not part of the RPC surface.
    pub fn new() -> Self {
        Service
    }

    pub(crate) fn internal(&self) -> u32 {
        7
    }
}

async fn client_side(service: Stub<Service>) -> Result<(), RpcError> {
    let nine: f64 = service.square(3.0).await?;
    let also: f64 = service.slow_square(3.0).await?;
    let user: User = service.user(1).await?;
    let () = service.fail().await?;
    let n: i64 = service.try_parse("12".to_owned()).await?;
    let v: Value = service.echo(Value::from(1.0)).await?;
    let () = service.nothing().await?;
    let _: String = service.pair(1, 2, "t".to_owned()).await?;
    // A returned target arrives as a stub; calls on its promise are pipelined.
    let counter: StubPromise<Counter> = service.make_counter(5);
    let value: i64 = counter.value().await?;
    let doubled: i64 = counter.twice().await?;
    let forked: Stub<Counter> = counter.fork().await?;
    let bumped: i64 = forked.increment(None).await?;
    let used: i64 = service.use_counter(forked.clone()).await?;
    let _ = (nine, also, user.id, user.name, n, v, value, doubled, bumped, used);
    Ok(())
}

fn main() {
    let mut c = Counter {
        value: Mutex::new(0),
    };
    c.reset();
    let _local: Stub<Counter> = TypedStub::local(c);
    let _ = Service::new().internal();
    let _ = client_side;
}
