//! Reading incoming messages: `capwire::wire::Message::parse` on the messages of a call
//! and on a large value, next to `serde_json`'s own tree (`serde_json::Value`, the step
//! capwire's parser used to start from) as the baseline, measured in the same run.
//!
//! ```text
//! cargo bench -p capwire-bench --bench parse
//! ```

use capwire::Limits;
use capwire::wire::Message;
use std::time::Instant;

fn time(what: &str, text: &str, rounds: usize, f: impl Fn(&str)) -> f64 {
    for _ in 0..rounds / 10 + 1 {
        f(text);
    }
    let t0 = Instant::now();
    for _ in 0..rounds {
        f(text);
    }
    let ns = t0.elapsed().as_nanos() as f64 / rounds as f64;
    println!("  {what}: {ns:.0} ns");
    ns
}

fn main() {
    let limits = Limits::default();
    let million: Vec<String> = (0..1_000_000).map(|i| (i % 1000).to_string()).collect();
    let cases = [
        ("push of add(1234, 5678)", r#"["push",["pipeline",0,["add"],[1234,5678]]]"#.to_owned(), 1_000_000),
        ("resolve of a number", r#"["resolve",1,6912]"#.to_owned(), 1_000_000),
        ("release", r#"["release",1,1]"#.to_owned(), 1_000_000),
        (
            "push with an object argument",
            r#"["push",["pipeline",0,["echo"],[{"id":7,"name":"user7","tags":[["a","b"]],"nested":{"x":1.5,"y":null}}]]]"#.to_owned(),
            300_000,
        ),
        (
            "resolve of 1,000,000 small integers",
            format!(r#"["resolve",1,[[{}]]]"#, million.join(",")),
            5,
        ),
    ];
    println!("| message | bytes | capwire Message::parse | serde_json::Value alone | ratio |");
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (name, text, rounds) in &cases {
        println!("{name}:");
        let ours = time("capwire", text, *rounds, |t| {
            std::hint::black_box(Message::parse(t, &limits).unwrap());
        });
        let tree = time("serde_json::Value", text, *rounds, |t| {
            std::hint::black_box(serde_json::from_str::<serde_json::Value>(t).unwrap());
        });
        rows.push(format!(
            "| {name} | {} | {} | {} | {:.2}x |",
            text.len(),
            show(ours),
            show(tree),
            ours / tree
        ));
    }
    for row in rows {
        println!("{row}");
    }
}

fn show(ns: f64) -> String {
    if ns > 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{ns:.0} ns")
    }
}
