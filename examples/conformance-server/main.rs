//! The conformance server: `cargo run --release --example conformance-server -- --listen 127.0.0.1:0 [--data-dir DIR] [--allowed-origin ORIGIN]...`
//!
//! Prints `listening on http://HOST:PORT` once it accepts connections, then serves the
//! conformance service of `shared/CONFORMANCE.md` over WebSocket and HTTP batch at `/`.
//! With `--typescript`, prints the service's TypeScript declarations and exits.

use std::io::Write;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    use capwire_examples::conformance;
    // Logs to stderr, filtered by RUST_LOG (errors only when unset; RUST_LOG=capwire=debug
    // shows sessions opening and ending and rejected calls, =trace every call).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = conformance::Args::parse(std::env::args().skip(1)).map_err(std::io::Error::other)?;
    if args.typescript {
        print!("{}", capwire_examples::typescript::conformance());
        return std::io::stdout().flush();
    }
    if let Some(dir) = args.data_dir {
        conformance::set_data_dir(dir);
    }
    let listen = args.listen.as_deref().unwrap_or("127.0.0.1:8787");
    let (server, addr) = conformance::bind(listen).await?;
    let server = server.cors(conformance::cors_policy(args.allowed_origins));
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    conformance::run(server).await
}
