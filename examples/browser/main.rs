//! The browser example:
//! `cargo run -p capwire-examples --example browser -- [--port PORT] [--allowed-origin ORIGIN]...`
//!
//! Serves a notes board at `http://127.0.0.1:PORT/`: the page (`index.html`, `app.js`),
//! capnweb's browser build from `examples/browser/node_modules` (run `npm ci` there
//! first), and the board's RPC at `/rpc` (WebSocket and HTTP batch). Pages of the
//! server's own origin may call it, and so may pages of each `--allowed-origin`
//! (`http://localhost:5173`, say); any other origin's page is refused with `403`.

use capwire_examples::browser;
use std::io::Write;

const USAGE: &str = "usage: browser [--port PORT] [--allowed-origin ORIGIN]...
  --port PORT              the port on 127.0.0.1 (default 8080; 0 picks a free one)
  --allowed-origin ORIGIN  another origin whose pages may call, e.g. http://localhost:5173";

/// The port and the allowed origins the command line asks for.
fn parse_args() -> Result<(u16, Vec<String>), String> {
    let mut port: u16 = 8080;
    let mut origins: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => match args.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = p,
                None => return Err("--port needs a number".to_owned()),
            },
            "--allowed-origin" => match args.next() {
                Some(origin) if origin.contains("://") => origins.push(origin),
                _ => {
                    return Err(
                        "--allowed-origin needs an origin such as http://localhost:5173".to_owned(),
                    );
                }
            },
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((port, origins))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Logs to stderr, filtered by RUST_LOG (errors only when unset; RUST_LOG=capwire=debug
    // shows sessions opening and ending and rejected calls, =trace every call).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let (port, origins) = parse_args().unwrap_or_else(|message| {
        eprintln!("{message}\n{USAGE}");
        std::process::exit(2);
    });
    let assets = browser::Assets::load(&browser::default_dir()).unwrap_or_else(|message| {
        eprintln!("{message}");
        std::process::exit(1);
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("the notes board is at http://{addr}/");
    for origin in &origins {
        println!("pages of {origin} may call it too");
    }
    std::io::stdout().flush()?;
    let cors = capwire::CorsPolicy::allow_origins(origins).allow_same_origin(true);
    axum::serve(listener, browser::app(assets, Default::default(), cors)).await
}
