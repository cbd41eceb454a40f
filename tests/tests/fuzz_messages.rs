//! Bad input never panics: thousands of mutated messages (bytes flipped, inserted, cut,
//! tags swapped) go through real sessions, which must answer each batch with results or an
//! `abort`, never a panic or a hang.

use capwire::transport::batch::serve_batch;
use capwire::{RpcStub, Stub, rpc_target};
use capwire_examples::conformance::Counter;

/// A target with nothing slow: every call settles at once.
struct Quick;

#[rpc_target]
impl Quick {
    pub fn echo(&self, v: capwire::Value) -> capwire::Value {
        v
    }

    pub fn make_counter(&self, i: i64) -> Counter {
        Counter::new(i)
    }

    pub async fn increment(
        &self,
        c: Stub<Counter>,
        by: Option<i64>,
    ) -> Result<i64, capwire::RpcError> {
        c.increment(by).await
    }
}

const ROUNDS: usize = 20_000;

const SEEDS: &[&str] = &[
    r#"["push",["pipeline",0,["echo"],[[[1,"two",null,{"a":["undefined"]}]]]]]"#,
    r#"["pull",1]"#,
    r#"["push",["pipeline",0,["makeCounter"],[5]]]"#,
    r#"["push",["pipeline",1,["increment"],[2]]]"#,
    r#"["push",["pipeline",0,["increment"],[["pipeline",1],3]]]"#,
    r#"["release",1,1]"#,
    r#"["push",["pipeline",0,["echo"],[["bytes","AQID/w","Uint16Array"]]]]"#,
    r#"["push",["pipeline",0,["echo"],[["error","RangeError","x",null,{"code":["bigint","99"]}]]]]"#,
    r#"["push",["pipeline",0,["echo"],[["date",1749342170815]]]]"#,
    r#"["push",["remap",0,["echo"],[["import",0]],[["pipeline",0,["id"]]]]]"#,
    r#"["push",["pipeline",0,["echo"],[["export",-1]]]]"#,
    r#"["push",["pipeline",0,["echo"],[["promise",-2]]]]"#,
    r#"["resolve",-2,42]"#,
    r#"["reject",-2,["error","Error","no"]]"#,
    r#"["pipe"]"#,
    r#"["stream",["pipeline",1,["write"],[["bytes","AA"]]]]"#,
    r#"["push",["pipeline",0,["echo"],[["readable",1]]]]"#,
    r#"["stream",["pipeline",1,["close"],[]]]"#,
    r#"["stream",["pipeline",1,["abort"],[["error","Error","x"]]]]"#,
    r#"["push",["pipeline",0,["echo"],[["writable",-1]]]]"#,
    r#"["push",["pipeline",0,["echo"],[["blob","text/plain",["readable",1]]]]]"#,
    r#"["push",["pipeline",0,["echo"],[["request","https://x/",{"method":"POST","headers":[["a","b"]],"body":["readable",1],"duplex":"half"}]]]]"#,
    r#"["push",["pipeline",0,["echo"],[["response",null,{"status":204}]]]]"#,
    r#"["abort",["error","Error","bye"]]"#,
];

const TAGS: &[&str] = &[
    "push",
    "pull",
    "resolve",
    "reject",
    "release",
    "abort",
    "stream",
    "pipe",
    "import",
    "pipeline",
    "export",
    "promise",
    "remap",
    "bytes",
    "bigint",
    "date",
    "error",
    "undefined",
    "inf",
    "nan",
    "readable",
    "writable",
    "url",
    "headers",
    "request",
    "response",
    "blob",
];

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                const ALPHABET: &[u8] = b"[]{}\",:-0123456789eE.aZ \\";
                bytes[i] = ALPHABET[rng.below(ALPHABET.len())];
            }
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes.truncate(i);
            }
            2 => {
                let i = rng.below(bytes.len() + 1);
                let piece = SEEDS[rng.below(SEEDS.len())];
                bytes.splice(i..i, piece.bytes());
            }
            3 => {
                let from = TAGS[rng.below(TAGS.len())];
                let to = TAGS[rng.below(TAGS.len())];
                let s = String::from_utf8_lossy(&bytes).replacen(from, to, 1);
                bytes = s.into_bytes();
            }
            4 => {
                let i = rng.below(bytes.len() + 1);
                let n = [
                    "-1",
                    "0",
                    "1",
                    "2",
                    "99",
                    "-7",
                    "1e308",
                    "9007199254740993",
                    "null",
                ][rng.below(9)];
                bytes.splice(i..i, n.bytes());
            }
            _ if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes.remove(i);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_messages_end_in_results_or_an_abort_never_a_panic() {
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut aborted = 0;
    for round in 0..ROUNDS {
        let lines: Vec<String> = (0..=rng.below(4))
            .map(|_| {
                let seed = SEEDS[rng.below(SEEDS.len())];
                // Most lines stay valid, so that sessions get far enough to matter.
                if rng.below(3) == 0 {
                    mutate(&mut rng, seed)
                } else {
                    seed.to_owned()
                }
            })
            .collect();
        let body = lines.join("\n");
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            serve_batch(&body, RpcStub::new(Quick), Default::default()),
        )
        .await
        .unwrap_or_else(|_| panic!("round {round} hung on {body:?}"));
        if let Err(answer) = outcome {
            aborted += 1;
            let last = answer.lines().last().unwrap_or("");
            assert!(
                last.starts_with("[\"abort\",[\"error\","),
                "round {round}: {body:?} ended with {last:?}"
            );
        }
    }
    // The mutations must actually exercise both paths.
    assert!(
        aborted > ROUNDS / 10 && aborted < ROUNDS * 9 / 10,
        "{aborted} of {ROUNDS} batches aborted"
    );
}
