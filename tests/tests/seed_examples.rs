//! The seed scenarios, as the quickstart runs them from `examples/quickstart/workers.toml`:
//! each result asserted, with worker B both in-process and over WebSocket.

mod support;

use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_scenarios_give_the_seed_results() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/workers.toml");
    let data = std::env::temp_dir().join(format!("capwire-quickstart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let report = capwire_examples::workers::quickstart(&config, Some(&data))
        .await
        .expect("the quickstart runs");
    // A second run finds the durable counter where the first left it.
    let again = capwire_examples::workers::quickstart(&config, Some(&data))
        .await
        .expect("the quickstart runs again");
    let _ = std::fs::remove_dir_all(&data);
    let durable = |r: &[(String, String)]| {
        r.iter()
            .find(|(what, _)| what.contains("durable counter"))
            .map(|(_, n)| n.clone())
            .expect("a durable counter line")
    };
    assert_eq!(
        (durable(&report), durable(&again)),
        ("1".into(), "2".into())
    );
    let results: Vec<&str> = report.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(
        results,
        [
            "3",
            "3",
            "1048576",
            "1048576",
            "Hello, Ada!",
            "\"welcome, ada\"; recorded: [\"ada\"]",
            "[2, 3, -2]",
            "[2, 3, -2], value -2",
            "1",
            "\"qux\"",
            "1",
            "4",
            "[1, 2]",
            "[\"write the docs\", \"ship it\"]",
            "deleted true, 0 tasks left",
        ],
        "{report:#?}"
    );
}

/// `get_counter().increment()` on the counter service is one round trip: every message the
/// client sends goes out before the service has answered anything (the server end of the
/// link starts only afterwards).
#[tokio::test]
async fn get_counter_increment_is_one_round_trip() {
    use capwire::transport::memory::channel;
    use capwire::{Session, Stub, TypedStub};
    use capwire_examples::workers::{CounterService, register};
    use support::{eventually, recording};

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/workers.toml");
    let host = register(capwire::host::Host::builder())
        .unwrap()
        .config_file(&config)
        .unwrap();
    let (a, b) = channel(std::time::Duration::ZERO);
    let (client, log) = recording(a, None);
    let counters: Stub<CounterService> = TypedStub::from_raw(client.main());
    let one = counters.get_counter().increment(None);
    one.pull();
    // (A release of the intermediate result may follow: nothing else holds it.)
    eventually("the client sent the chain", || {
        log.lock().unwrap().len() >= 3
    })
    .await;
    let service = host
        .service::<Stub<CounterService>>("counter-service", None)
        .unwrap();
    let _server = Session::start(b, Some(TypedStub::into_raw(service)), Default::default());
    assert_eq!(one.await.unwrap(), 1);
    let sent = log.lock().unwrap().clone();
    assert_eq!(
        sent[..3],
        [
            r#"["push",["pipeline",0,["getCounter"],[]]]"#,
            r#"["push",["pipeline",1,["increment"],[null]]]"#,
            r#"["pull",2]"#,
        ]
    );
}
