//! The seed scenarios, as the quickstart runs them from `examples/quickstart/workers.toml`:
//! each result asserted, with worker B both in-process and over WebSocket.

use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_scenarios_give_the_seed_results() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/workers.toml");
    let report = capwire_examples::workers::quickstart(&config)
        .await
        .expect("the quickstart runs");
    let results: Vec<&str> = report.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(
        results,
        [
            "3",
            "3",
            "Hello, Ada!",
            "\"welcome, ada\"; recorded: [\"ada\"]",
            "[2, 3, -2]",
            "[2, 3, -2], value -2",
            "1",
            "\"qux\"",
            "4",
        ],
        "{report:#?}"
    );
}
