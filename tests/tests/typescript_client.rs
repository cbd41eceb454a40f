//! The generated declarations of the conformance service type-check a TypeScript client
//! with the pinned `tsc --strict` (tests/node/typed-client.ts: every row, with the types
//! written out, and `@ts-expect-error` lines that must be errors), and that client, compiled
//! to JavaScript, runs every row against the Rust conformance server.

mod support;

/// `tsc -p .` (tests/node/tsconfig.json: strict, declaration files checked) with `args`:
/// its diagnostics outside `node_modules`.
fn tsc(args: &[&str]) -> String {
    let mut all = vec!["-p", "."];
    all.extend_from_slice(args);
    support::tsc(&all)
}

#[test]
fn the_typed_client_compiles_with_tsc_strict() {
    let diagnostics = tsc(&["--strict", "--noEmit"]);
    assert!(
        diagnostics.is_empty(),
        "tsc --strict rejected tests/node/typed-client.ts against examples/conformance-server/capwire.d.ts:\n{diagnostics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compiled_typed_client_runs_every_row() {
    let addr = support::start_conformance_server().await;
    let out = support::node_dir().join(format!("typed-client-out-{}", std::process::id()));
    let out_arg = out.to_string_lossy().into_owned();
    let url = format!("ws://{addr}/");
    let result = tokio::task::spawn_blocking(move || {
        let diagnostics = tsc(&["--noEmit", "false", "--outDir", &out_arg]);
        assert!(diagnostics.is_empty(), "tsc failed:\n{diagnostics}");
        // Node 20 has no global WebSocket: the `ws` package stands in, as in the README.
        let runner = out.join("runner.mjs");
        std::fs::write(
            &runner,
            "import { WebSocket } from \"ws\";\n\
             globalThis.WebSocket ??= WebSocket;\n\
             const { run } = await import(\"./typed-client.js\");\n\
             await run(process.argv[2]);\n\
             console.log(\"every row passed\");\n",
        )
        .expect("write the runner");
        let runner = runner.to_string_lossy().into_owned();
        let result = support::run_node(&[&runner, &url], None);
        let _ = std::fs::remove_dir_all(&out);
        result
    })
    .await
    .expect("the node run");
    let (ok, stdout, stderr) = result;
    assert!(ok, "the typed client failed:\n{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "every row passed", "{stderr}");
}
