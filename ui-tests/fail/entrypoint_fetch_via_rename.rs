// The `fetch` check follows the wire name, so renaming a method to `fetch` is checked too.
use capwire::entrypoint;

pub struct Api;

#[entrypoint]
impl Api {
    #[rpc(name = "fetch")]
    pub fn download(&self, url: String) -> String {
        url
    }
}

fn main() {}
