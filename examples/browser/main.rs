//! The browser example: `cargo run -p capwire-examples --example browser -- [--port PORT]`
//!
//! Serves a notes board at `http://127.0.0.1:PORT/`: the page (`index.html`, `app.js`),
//! capnweb's browser build from `examples/browser/node_modules` (run `npm ci` there
//! first), and the board's RPC at `/rpc` (WebSocket and HTTP batch).

use capwire_examples::browser;
use std::io::Write;

const USAGE: &str = "usage: --port PORT (default 8080; 0 picks a free one)";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut port: u16 = 8080;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => match args.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = p,
                None => {
                    return Err(std::io::Error::other(format!(
                        "--port needs a number; {USAGE}"
                    )));
                }
            },
            other => {
                return Err(std::io::Error::other(format!(
                    "unknown argument {other}; {USAGE}"
                )));
            }
        }
    }
    let dir = browser::default_dir();
    let assets = match browser::Assets::load(&dir) {
        Ok(assets) => assets,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(1);
        }
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let app = browser::app(assets, Default::default());
    println!("the notes board is at http://{addr}/");
    std::io::stdout().flush()?;
    axum::serve(listener, app).await
}
