//! A rate limiter made of Durable Objects, served for capnweb clients:
//!
//! ```sh
//! cargo run --release --example rate-limiter
//! # in another shell, with tests/node's packages installed:
//! node tests/node/ratelimit.mjs ws://127.0.0.1:8790/ alice
//! ```

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rate-limiter/workers.toml");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = capwire_examples::rate_limiter::register(capwire::host::Host::builder());
    capwire::host::run(builder, CONFIG).await
}
