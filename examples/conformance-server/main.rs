//! The conformance server: `cargo run --release --example conformance-server -- --listen 127.0.0.1:0 [--data-dir DIR] [--allowed-origin ORIGIN]...`
//!
//! Prints `listening on http://HOST:PORT` once it accepts connections, then serves the
//! conformance service of `shared/CONFORMANCE.md` over WebSocket and HTTP batch at `/`.
//! With `--typescript`, prints the service's TypeScript declarations and exits.

use std::io::Write;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut listen = "127.0.0.1:8787".to_owned();
    let mut origins = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data-dir" => match args.next() {
                Some(dir) => capwire_examples::conformance::set_data_dir(dir),
                None => {
                    return Err(std::io::Error::other(
                        "--data-dir needs a directory, e.g. ./conformance-data",
                    ));
                }
            },
            "--allowed-origin" => match args.next() {
                Some(origin) => origins.push(origin),
                None => {
                    return Err(std::io::Error::other(
                        "--allowed-origin needs an origin, e.g. http://localhost:5173",
                    ));
                }
            },
            "--typescript" => {
                print!("{}", capwire_examples::typescript::conformance());
                return std::io::stdout().flush();
            }
            "--listen" => match args.next() {
                Some(addr) => listen = addr,
                None => {
                    return Err(std::io::Error::other(
                        "--listen needs an address, e.g. 127.0.0.1:0",
                    ));
                }
            },
            other => {
                return Err(std::io::Error::other(format!(
                    "unknown argument {other}; usage: --listen HOST:PORT [--data-dir DIR] \
                     [--allowed-origin ORIGIN]... | --typescript"
                )));
            }
        }
    }
    let (server, addr) = capwire_examples::conformance::bind(&listen).await?;
    let server = server.cors(capwire_examples::conformance::cors_policy(origins));
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    capwire_examples::conformance::run(server).await
}
