//! The TypeScript declarations of the examples' services, as checked in beside each
//! example (`capwire.d.ts`). A test regenerates them and fails when a checked-in file is
//! stale; `CAPWIRE_UPDATE_TS=1 cargo test -p capwire-tests --test typescript_declarations`
//! rewrites them.

use capwire::typescript::Declarations;

/// The conformance service: `TestTarget` and all it reaches (`Counter`, `Vault`,
/// `DurableCounter`, the data types). `conformance-server --typescript` prints these.
pub fn conformance() -> Declarations {
    Declarations::new().add::<crate::conformance::TestTarget>()
}

/// The quickstart's workers (`examples/quickstart/workers.toml`) and the to-do app.
pub fn quickstart() -> Declarations {
    use crate::{todo, workers};
    Declarations::new()
        .add::<workers::WorkerA>()
        .add::<workers::WorkerB>()
        .add::<workers::CounterService>()
        .add::<workers::AnotherService>()
        .add::<workers::Introducer>()
        .add::<todo::TodoApp>()
        .add::<todo::AdminEntrypoint>()
        .add::<todo::UserEntrypoint>()
        .add::<todo::AdminApp>()
}

/// The rate limiter's gateway, and the Durable Object it hands out.
pub fn rate_limiter() -> Declarations {
    Declarations::new().add::<crate::rate_limiter::Gateway>()
}

/// The browser example's notes board: `Board` and the `NoteList` it hands out.
pub fn browser() -> Declarations {
    Declarations::new().add::<crate::browser::Board>()
}

/// Each example's declarations with the path (relative to the `examples` directory) of
/// its checked-in copy.
pub fn all() -> Vec<(&'static str, Declarations)> {
    vec![
        ("browser/capwire.d.ts", browser()),
        ("conformance-server/capwire.d.ts", conformance()),
        ("quickstart/capwire.d.ts", quickstart()),
        ("rate-limiter/capwire.d.ts", rate_limiter()),
    ]
}
