//! TypeScript declarations generated from Rust services (`capwire::typescript`): how the
//! Rust types map, what is left out, and that the examples' checked-in `capwire.d.ts`
//! files are what the code generates now.
//!
//! After a deliberate change, rewrite the checked-in files with
//! `CAPWIRE_UPDATE_TS=1 cargo test -p capwire-tests --test typescript_declarations`.

mod support;

use capwire::typescript::{Declarations, TS};
use capwire::{Function, RpcError, Stub, Value, entrypoint, rpc_target};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A shape, tagged as serde tags it.
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "capwire::typescript::ts_rs")]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Shape {
    Circle { radius: f64 },
    Square { side: f64 },
}

/// A listing.
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "capwire::typescript::ts_rs")]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub item_ids: Vec<u64>,
    pub owner: Option<String>,
    pub pair: (u8, String),
    pub tags: HashMap<String, bool>,
    #[serde(rename = "form")]
    pub shape: Shape,
    pub greeter: Stub<dyn Greeter>,
    pub describe: Function<(u32,), String>,
}

/// A row, reached only through a stream of rows.
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "capwire::typescript::ts_rs")]
pub struct Row {
    pub n: u32,
}

/// Data without a TypeScript description.
#[derive(Serialize, Deserialize)]
pub struct Opaque {
    pub x: u32,
}

/// Greets.
#[rpc_target]
pub trait Greeter {
    /// A greeting for `name`.
    fn greet(&self, name: String) -> String;
}

pub struct English;

#[rpc_target]
impl Greeter for English {
    fn greet(&self, name: String) -> String {
        format!("hello {name}")
    }
}

pub struct Shop;

/// The shop.
///
/// Second paragraph.
#[entrypoint]
impl Shop {
    /// The listing `id`.
    pub fn listing(&self, id: u64) -> Listing {
        let _ = id;
        unimplemented!()
    }

    /// Streams of values, of bytes, and a sink of strings.
    pub fn streams(
        &self,
        shapes: capwire::ReadableStream<Shape>,
        raw: capwire::ReadableStream,
        out: capwire::WritableStream<String>,
    ) -> capwire::ReadableStream<Row> {
        let _ = (shapes, raw, out);
        capwire::ReadableStream::from_values([Row { n: 1 }])
    }

    pub fn find(&self, query: String, limit: Option<u32>, cursor: Option<String>) -> Vec<Shape> {
        let _ = (query, limit, cursor);
        Vec::new()
    }

    pub fn middle(&self, first: Option<i32>, then: i32) {
        let _ = (first, then);
    }

    pub fn wide(&self, a: i128, b: capwire::BigInt, c: usize) -> u64 {
        let _ = (a, b, c);
        0
    }

    pub fn web(&self, bytes: capwire::Bytes, date: capwire::Date, any: Value) -> Value {
        let _ = (bytes, date);
        any
    }

    pub fn greeter(&self) -> English {
        English
    }

    pub fn relay(&self, greeter: Stub<dyn Greeter>) -> Stub<dyn Greeter> {
        greeter
    }

    pub fn callback(&self, f: Function<(String, Option<u32>), bool>) -> Function<(), ()> {
        let _ = f;
        Function::new(|| ())
    }

    pub async fn later(&self, user_id: u32) -> Result<Option<String>, RpcError> {
        let _ = user_id;
        Ok(None)
    }

    /// How many.
    #[rpc(getter)]
    pub fn count(&self) -> u32 {
        0
    }

    #[rpc(name = "odd-name")]
    pub fn odd(&self) {}

    pub fn new_thing(&self, new: String) -> String {
        new
    }

    pub fn misc(
        &self,
        stub: capwire::RpcStub,
        headers: capwire::Headers,
        url: capwire::Url,
        blob: capwire::Blob,
    ) -> capwire::RpcStub {
        let _ = (headers, url, blob);
        stub
    }

    pub fn fetch(
        &self,
        request: capwire::http::Request<capwire::Body>,
    ) -> capwire::http::Response<capwire::Body> {
        capwire::http::Response::new(request.into_body())
    }

    #[cfg(any())]
    pub fn configured_out(&self) {}

    #[allow(dead_code)]
    fn private_helper(&self) {}

    #[allow(dead_code)]
    pub(crate) fn crate_helper(&self) {}
}

pub struct Leaky;

#[rpc_target]
impl Leaky {
    pub fn take(&self, o: Opaque) -> u32 {
        o.x
    }
}

fn shop() -> String {
    let d = Declarations::new().add::<Shop>();
    assert!(d.problems().is_empty(), "{:?}", d.problems());
    d.to_string()
}

/// `text` has `line` as one of its lines (trimmed).
#[track_caller]
fn has_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l.trim() == line),
        "no line `{line}` in:\n{text}"
    );
}

#[test]
fn a_target_is_an_interface_with_its_wire_names_and_docs() {
    let ts = shop();
    assert!(
        ts.starts_with("// TypeScript declarations of capwire RPC interfaces, generated"),
        "{ts}"
    );
    has_line(&ts, r#"import type { RpcStub, RpcTarget } from "capnweb";"#);
    assert!(
        ts.contains("/**\n * The shop.\n *\n * Second paragraph.\n */\nexport interface Shop extends RpcTarget {\n"),
        "{ts}"
    );
    assert!(
        ts.contains(
            "  /**\n   * The listing `id`.\n   */\n  listing(id: number | bigint): Listing;\n"
        ),
        "{ts}"
    );
    has_line(&ts, "readonly count: number;");
    has_line(&ts, r#""odd-name"(): undefined;"#);
    has_line(&ts, "newThing(new_: string): string;");
    for hidden in ["privateHelper", "crateHelper", "fetch", "configuredOut"] {
        assert!(!ts.contains(hidden), "{hidden} is not reachable:\n{ts}");
    }
}

#[test]
fn arguments_and_results_map_as_the_wire_carries_them() {
    let ts = shop();
    // Trailing Options may be left out; an Option before a required argument may not.
    has_line(
        &ts,
        "find(query: string, limit?: number | null, cursor?: string | null): Array<Shape>;",
    );
    has_line(
        &ts,
        "middle(first: number | null | undefined, then: number): undefined;",
    );
    // Wide integers are numbers within 2^53 and bigints beyond.
    has_line(
        &ts,
        "wide(a: number | bigint, b: bigint, c: number): number | bigint;",
    );
    has_line(
        &ts,
        "web(bytes: Uint8Array, date: Date, any: unknown): unknown;",
    );
    // Targets by reference; async results and Result's Ok are the value.
    has_line(&ts, "greeter(): Greeter;");
    has_line(&ts, "relay(greeter: RpcStub<Greeter>): RpcStub<Greeter>;");
    has_line(
        &ts,
        "callback(f: RpcStub<(arg0: string, arg1?: number | null) => boolean>): RpcStub<() => void>;",
    );
    has_line(&ts, "later(userId: number): string | null;");
    has_line(
        &ts,
        "misc(stub: RpcStub<any>, headers: Headers, url: URL, blob: Blob): RpcStub<any>;",
    );
    // Streams of their chunks' type; of bytes, `Uint8Array`; the chunk type is declared.
    has_line(
        &ts,
        "streams(shapes: ReadableStream<Shape>, raw: ReadableStream<Uint8Array>, out: WritableStream<string>): ReadableStream<Row>;",
    );
    has_line(&ts, "export type Row = { n: number, };");
}

/// A client of `Shop` that uses every mapped type as capnweb's types see it.
const SHOP_CLIENT: &str = r#"
import { newWebSocketRpcSession, RpcTarget } from "capnweb";
import type { Greeter, Listing, Row, Shape, Shop } from "./shop";

class Local extends RpcTarget implements Greeter {
  greet(name: string): string {
    return `hi ${name}`;
  }
}

export async function use(url: string): Promise<void> {
  const shop = newWebSocketRpcSession<Shop>(url);
  const listing: Listing = await shop.listing(1n);
  const ids: Array<number | bigint> = listing.itemIds;
  const owner: string | null = listing.owner;
  const pair: [number, string] = listing.pair;
  const tag: boolean | undefined = listing.tags["x"];
  const shape: Shape = listing.form;
  if (shape.kind === "circle") {
    const radius: number = shape.radius;
    void radius;
  }
  const described: string = await listing.describe(3);
  const viaListing: string = await listing.greeter.greet("a");
  const shapes: Shape[] = await shop.find("q");
  await shop.find("q", 3);
  await shop.find("q", null, "cursor");
  await shop.middle(undefined, 2);
  await shop.middle(null, 2);
  const wide: number | bigint = await shop.wide(1, 2n, 3);
  const any: unknown = await shop.web(new Uint8Array([1]), new Date(), { x: [1] });
  const greeter = await shop.greeter();
  const hello: string = await greeter.greet("b");
  const pipelined: string = await shop.greeter().greet("c");
  const relayed = await shop.relay(greeter);
  const local = await shop.relay(new Local());
  const viaLocal: string = await local.greet("d");
  const back = await shop.callback((s: string, n?: number | null) => s.length > (n ?? 0));
  const nothing: void = await back();
  const count: number = await shop.count;
  await shop["odd-name"]();
  const renamed: string = await shop.newThing("e");
  const later: string | null = await shop.later(1);
  const stub = await shop.misc(greeter, new Headers(), new URL("https://example.com/"), new Blob([]));
  const rows: ReadableStream<Row> = await shop.streams(
    new ReadableStream<Shape>(), new ReadableStream<Uint8Array>(), new WritableStream<string>());
  // @ts-expect-error: a stream of strings is not a stream of shapes
  await shop.streams(new ReadableStream<string>(), new ReadableStream<Uint8Array>(), new WritableStream<string>());
  void [ids, owner, pair, tag, described, viaListing, shapes, wide, any, hello, pipelined];
  void [relayed, viaLocal, nothing, count, renamed, later, stub, rows];
  // @ts-expect-error: wide integers are numbers or bigints, not strings
  await shop.wide("1", 2n, 3);
  // @ts-expect-error: a required argument after an optional one cannot be left out
  await shop.middle(1);
  // @ts-expect-error: `fetch` is served over HTTP, not callable over RPC
  await shop.fetch(new Request("https://example.com/"));
  shop[Symbol.dispose]();
}
"#;

#[test]
fn the_declarations_of_every_mapped_type_pass_tsc_strict() {
    let dir = support::node_dir().join(format!("typescript-shop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the check directory");
    Declarations::new()
        .add::<Shop>()
        .write_to(dir.join("shop.d.ts"))
        .expect("write the declarations");
    std::fs::write(dir.join("client.ts"), SHOP_CLIENT).expect("write the client");
    let client = dir.join("client.ts").to_string_lossy().into_owned();
    let diagnostics = support::tsc(&[
        "--strict",
        "--noEmit",
        "--skipLibCheck",
        "false",
        "--noUnusedLocals",
        "--target",
        "es2022",
        "--module",
        "esnext",
        "--moduleResolution",
        "bundler",
        "--lib",
        "esnext,dom,dom.asynciterable",
        "--types",
        "node",
        &client,
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(diagnostics.is_empty(), "tsc --strict:\n{diagnostics}");
}

#[test]
fn data_types_follow_serde_and_are_declared_once() {
    let ts = shop();
    has_line(
        &ts,
        r#"export type Listing = { itemIds: Array<number | bigint>, owner: string | null, pair: [number, string], tags: { [key in string]: boolean }, form: Shape, greeter: RpcStub<Greeter>, describe: RpcStub<(arg0: number) => string>, };"#,
    );
    has_line(
        &ts,
        r#"export type Shape = { "kind": "circle", radius: number, } | { "kind": "square", side: number, };"#,
    );
    assert_eq!(ts.matches("export type Shape =").count(), 1, "{ts}");
    let shape = Declarations::new().add::<Shape>().to_string();
    assert!(!shape.contains("import"), "{shape}");
    // The interface reached through a stub, once, with its own docs.
    assert_eq!(
        ts.matches("export interface Greeter extends RpcTarget {")
            .count(),
        1,
        "{ts}"
    );
    has_line(&ts, "greet(name: string): string;");
    // In the order first reached: the root, then what it reaches.
    let at = |what: &str| ts.find(what).unwrap_or_else(|| panic!("{what} in {ts}"));
    assert!(at("interface Shop") < at("type Listing"));
    assert!(at("type Listing") < at("type Shape"));
}

#[test]
fn a_type_without_a_typescript_description_is_a_problem() {
    let d = Declarations::new().add::<Leaky>();
    assert!(d.to_string().contains("take(o: unknown): number;"), "{d}");
    // Only the capnweb types used are imported (`noUnusedLocals` holds).
    has_line(
        &d.to_string(),
        r#"import type { RpcTarget } from "capnweb";"#,
    );
    assert_eq!(d.problems().len(), 1, "{:?}", d.problems());
    assert!(
        d.problems()[0].contains("typescript_declarations::Opaque"),
        "{:?}",
        d.problems()
    );
    let path = std::env::temp_dir().join(format!("capwire-leaky-{}.d.ts", std::process::id()));
    let err = d
        .write_to(&path)
        .expect_err("incomplete declarations are not written");
    assert!(err.to_string().contains("Opaque"), "{err}");
    assert!(!path.exists());
}

/// A target named like a web platform type.
pub struct Response;

#[rpc_target]
impl Response {
    pub fn status(&self) -> u16 {
        200
    }
}

#[test]
fn a_name_the_declarations_use_is_a_problem() {
    let d = Declarations::new().add::<Response>();
    assert_eq!(d.problems().len(), 1, "{:?}", d.problems());
    assert!(
        d.problems()[0].contains("would shadow the `Response`"),
        "{:?}",
        d.problems()
    );
}

#[test]
fn checked_in_declarations_of_the_examples_are_current() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let update = std::env::var_os("CAPWIRE_UPDATE_TS").is_some();
    let mut stale = Vec::new();
    for (path, declarations) in capwire_examples::typescript::all() {
        assert!(
            declarations.problems().is_empty(),
            "{path}: {:?}",
            declarations.problems()
        );
        let file = examples.join(path);
        let fresh = declarations.to_string();
        let current = std::fs::read_to_string(&file).unwrap_or_default();
        if current == fresh {
            continue;
        }
        if update {
            declarations
                .write_to(&file)
                .expect("write the declarations");
            continue;
        }
        let first = current
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| current.lines().count().min(fresh.lines().count()));
        stale.push(format!(
            "examples/{path} (first difference at line {}: has {:?}, generated {:?})",
            first + 1,
            current.lines().nth(first).unwrap_or("<end of file>"),
            fresh.lines().nth(first).unwrap_or("<end of file>"),
        ));
    }
    assert!(
        stale.is_empty(),
        "stale TypeScript declarations:\n  {}\nrefresh them with `CAPWIRE_UPDATE_TS=1 cargo test -p capwire-tests --test typescript_declarations` and commit the result",
        stale.join("\n  ")
    );
}
