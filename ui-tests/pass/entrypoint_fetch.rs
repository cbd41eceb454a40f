// An entrypoint's `fetch` handles HTTP: served by the host, not dispatched as an RPC call.
use capwire::http::{Request, Response};
use capwire::{Body, RpcError, entrypoint};

pub struct Site;

#[entrypoint]
impl Site {
    pub async fn fetch(&self, request: Request<Body>) -> Result<Response<Body>, RpcError> {
        let path = request.uri().path().to_owned();
        Response::builder()
            .status(200)
            .body(Body::from(path))
            .map_err(|e| RpcError::error(e.to_string()))
    }

    pub fn ping(&self) -> String {
        "pong".to_owned()
    }
}

fn main() {
    let site = std::sync::Arc::new(Site);
    let _future = capwire::RpcObject::fetch(site, Request::new(Body::empty()));
}
