// `connect` is reserved on an entrypoint.
use capwire::entrypoint;

pub struct Api;

#[entrypoint]
impl Api {
    pub fn connect(&self, host: String) -> bool {
        !host.is_empty()
    }
}

fn main() {}
