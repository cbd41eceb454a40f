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
    // Logs to stderr, filtered by RUST_LOG (errors only when unset; RUST_LOG=capwire=debug
    // shows sessions opening and ending and rejected calls, =trace every call).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let builder = capwire_examples::rate_limiter::register(capwire::host::Host::builder());
    capwire::host::run(builder, CONFIG).await
}
