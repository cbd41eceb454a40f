//! The rate limiter example, called by the capnweb client from Node: concurrent requests
//! never take more tokens than a bucket holds (the input gate), and the bucket's alarm
//! fills it again.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capnweb_requests_share_a_bucket_and_its_alarm_refills_it() {
    use capwire_examples::rate_limiter::{CAPACITY, register};
    let dir = std::env::temp_dir().join(format!("capwire-rate-limiter-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rate-limiter/workers.toml"
    ))
    .expect("read the example's config")
    .replace("127.0.0.1:8790", "127.0.0.1:0");
    let host = register(capwire::host::Host::builder())
        .data_dir(&dir)
        .config_str(&config, "rate-limiter/workers.toml")
        .expect("the example's config is valid");
    let serving = host.start().await.expect("the gateway listens");
    let url = format!("ws://{}/", serving.addr("gateway").expect("its address"));
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        support::run_node(&["ratelimit.mjs", &url, "alice"], None)
    })
    .await
    .unwrap();
    assert!(ok, "node failed:\n{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["granted"], CAPACITY, "{report}");
    assert_eq!(report["refused"], 12 - CAPACITY, "{report}");
    assert_eq!(
        report["refusal"], "RangeError: rate limited: try again later",
        "{report}"
    );
    assert_eq!(report["left"], 0, "{report}");
    assert_eq!(
        report["refilled"], CAPACITY,
        "the alarm filled the bucket: {report}"
    );
    serving.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
