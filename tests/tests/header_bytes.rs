//! Header values travel as bytes: a value that is not UTF-8, sent by capnweb from Node,
//! reaches Rust byte for byte, and bytes a Rust service puts in a header reach JavaScript
//! as the same bytes (a JavaScript byte string, one character per byte).

mod support;

use capwire::{Headers, RpcError};

struct HeaderProbe;

#[capwire::rpc_target]
impl HeaderProbe {
    /// The bytes of header `name`.
    pub fn bytes_of(&self, headers: Headers, name: String) -> Vec<u8> {
        headers
            .0
            .get(name.as_str())
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// Headers holding `bytes` under `name`.
    pub fn make(&self, name: String, bytes: Vec<u8>) -> Result<Headers, RpcError> {
        let name = capwire::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| RpcError::type_error("bad name"))?;
        let value = capwire::http::HeaderValue::from_bytes(&bytes)
            .map_err(|_| RpcError::type_error("bad value"))?;
        let mut map = capwire::http::HeaderMap::new();
        map.insert(name, value);
        Ok(Headers(map))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_bytes_that_are_not_utf8_round_trip_with_capnweb() {
    let server = capwire::Server::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    tokio::spawn(server.serve(|| HeaderProbe));
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || support::run_node(&["header-bytes.mjs", &url], None))
            .await
            .unwrap();
    assert!(ok, "node failed:\n{stdout}\n{stderr}");
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        seen,
        serde_json::json!({
            "bytes": [0xFF, 0x80, b'o', b'k'],
            "plain": [b'y', b'e', b's'],
            "isHeaders": true,
            "made": [0xFE, 0x41, 0x80],
        })
    );
}
