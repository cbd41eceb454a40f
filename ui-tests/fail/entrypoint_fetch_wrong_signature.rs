// On an entrypoint, `fetch` is the HTTP handler: it must take an `http::Request<_>` and
// return an `http::Response<_>`.
use capwire::entrypoint;

pub struct Api;

#[entrypoint]
impl Api {
    pub fn fetch(&self, url: String) -> String {
        url
    }
}

fn main() {}
