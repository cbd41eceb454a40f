//! A rate limiter made of Durable Objects: one token bucket per user, refilled by an alarm.
//!
//! It shows the two rules a Durable Object gives for free: calls to one object run one at a
//! time (so concurrent requests never take more tokens than the bucket holds: the input
//! gate), and alarms run even if the object was evicted in between. A JavaScript client
//! calls it through capnweb (`tests/node/ratelimit.mjs`).

use capwire::durable::{DurableObject, State};
use capwire::host::{Ctx, Entrypoint, Env};
use capwire::{RpcError, Stub, entrypoint, rpc_target};
use std::time::{Duration, SystemTime};

/// Tokens in a full bucket.
pub const CAPACITY: u32 = 5;

/// How long after a bucket stops being full it is filled again.
pub const REFILL_AFTER: Duration = Duration::from_secs(2);

/// One user's token bucket.
pub struct RateLimiter {
    state: State,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter { state }
    }
}

#[rpc_target]
impl RateLimiter {
    /// Takes a token: `true` if there was one. The first token taken from a full bucket
    /// sets the alarm that fills it again.
    pub fn try_acquire(&self) -> Result<bool, RpcError> {
        let storage = self.state.storage();
        let tokens = storage.get::<u32>("tokens")?.unwrap_or(CAPACITY);
        if tokens == 0 {
            return Ok(false);
        }
        storage.put("tokens", &(tokens - 1))?;
        if storage.get_alarm()?.is_none() {
            storage.set_alarm(SystemTime::now() + REFILL_AFTER)?;
        }
        Ok(true)
    }

    /// Tokens left.
    #[rpc(getter)]
    pub fn tokens(&self) -> Result<u32, RpcError> {
        Ok(self
            .state
            .storage()
            .get::<u32>("tokens")?
            .unwrap_or(CAPACITY))
    }

    /// The alarm: the bucket is full again.
    pub fn alarm(&self) -> Result<(), RpcError> {
        self.state.storage().put("tokens", &CAPACITY)
    }
}

/// The gateway every client talks to: requests are let through while the user has tokens.
pub struct Gateway {
    env: Env,
}

impl Entrypoint for Gateway {
    fn new(env: Env, _ctx: Ctx) -> Self {
        Gateway { env }
    }
}

#[entrypoint]
impl Gateway {
    /// `"ok"` if `user` may make a request now, else a `RangeError`.
    pub async fn request(&self, user: String) -> Result<String, RpcError> {
        if self.limiter(user)?.try_acquire().await? {
            Ok("ok".into())
        } else {
            Err(RpcError::range("rate limited: try again later"))
        }
    }

    /// The bucket of `user`, by reference: a capability the client was handed.
    pub fn limiter(&self, user: String) -> Result<Stub<RateLimiter>, RpcError> {
        Ok(self
            .env
            .durable_object::<RateLimiter>("RATE_LIMITER")?
            .get_by_name(&user))
    }
}

/// Registers the example's types.
pub fn register(builder: capwire::host::HostBuilder) -> capwire::host::HostBuilder {
    builder
        .entrypoint::<Gateway>("Gateway")
        .durable_object::<RateLimiter>("RateLimiter")
}
