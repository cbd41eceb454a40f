//! The quickstart: a small multi-worker setup from `workers.toml`, printing what each of
//! the seed scenarios returns.
//!
//! ```sh
//! cargo run --release --example quickstart
//! ```

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/quickstart/workers.toml");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs to stderr, filtered by RUST_LOG (errors only when unset; RUST_LOG=capwire=debug
    // shows sessions opening and ending and rejected calls, =trace every call).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    println!("capwire quickstart: the workers of {CONFIG}");
    for (what, result) in capwire_examples::workers::quickstart(CONFIG.as_ref(), None).await? {
        println!("  {what}: {result}");
    }
    Ok(())
}
