//! The README's JavaScript snippet runs as written on the machine's Node (20+), against
//! the Rust conformance server.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_javascript_snippet_runs_on_node() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read the README");
    let snippet = readme
        .split("```js\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a JavaScript block");
    let addr = support::start_conformance_server().await;
    let script = snippet.replace("ws://127.0.0.1:8787/", &format!("ws://{addr}/"));
    // In the harness directory, so that `capnweb` and `ws` resolve.
    let path = support::node_dir().join(format!("readme-snippet-{}.mjs", std::process::id()));
    std::fs::write(&path, script).expect("write the snippet");
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || support::run_node(&[&file], None))
            .await
            .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(ok, "node failed:\n{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "5", "{stderr}");
}
