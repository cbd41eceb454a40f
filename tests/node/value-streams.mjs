// Streams of values (objects, strings, stubs as chunks) between the real capnweb client and
// the Rust service of tests/tests/interop_value_streams.rs, both ways.
//
//   node value-streams.mjs ws://HOST:PORT/
//
// Prints one JSON line per check ({"row":"...","ok":true} or {"row":"...","ok":false,"error":"..."}),
// then {"summary":{"passed":N,"failed":M}}. Exit code 0 only if every check passed.

import { inspect, isDeepStrictEqual } from "node:util";
import { WebSocket as WsWebSocket } from "ws";
import { RpcTarget, newWebSocketRpcSession } from "capnweb";

if (typeof globalThis.WebSocket === "undefined") globalThis.WebSocket = WsWebSocket;

const [url] = process.argv.slice(2);
if (!url) {
  process.stderr.write("usage: node value-streams.mjs ws://HOST:PORT/\n");
  process.exit(2);
}

class CheckFailure extends Error {}
const fail = (msg) => {
  throw new CheckFailure(msg);
};
const show = (v) => inspect(v, { depth: 6, breakLength: Infinity, maxStringLength: 80 });
function expectEq(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) fail(`${what}: got ${show(actual)}, expected ${show(expected)}`);
}
async function rejection(p, what) {
  try {
    const v = await p;
    fail(`${what}: resolved to ${show(v)}, expected a rejection`);
  } catch (e) {
    if (e instanceof CheckFailure) throw e;
    return e;
  }
}
function expectError(e, name, message, what) {
  if (!(e instanceof Error) || e.name !== name || !String(e.message).includes(message)) {
    fail(`${what}: rejected with ${show(e)}, expected a ${name} with "${message}"`);
  }
}

/** A ReadableStream of `chunks`, one per pull, then its end (or `error`). */
function valueStream(chunks, error) {
  let next = 0;
  return new ReadableStream({
    pull(controller) {
      if (next < chunks.length) controller.enqueue(chunks[next++]);
      else if (error) controller.error(error);
      else controller.close();
    },
  });
}

async function readAll(stream, what) {
  if (!(stream instanceof ReadableStream)) fail(`${what}: got ${show(stream)}, expected a ReadableStream`);
  const out = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

/** One of this client's objects, passed by reference inside chunks. */
class NodeCounter extends RpcTarget {
  constructor(value) {
    super();
    this.value = value;
  }
  increment(by = 1) {
    this.value += by;
    return this.value;
  }
}

const api = newWebSocketRpcSession(url);
let broken = null;
api.onRpcBroken((e) => {
  broken ??= e;
});

/** Round trips: each call is answered after every message sent before it was handled. */
async function roundTrips(n) {
  for (let i = 0; i < n; i++) await api.produced();
}

const PAD = 64 * 1024;
const padded = (i) => ({ i, pad: "y".repeat(PAD) });
const MiB = 1024 * 1024;

const CHECKS = [
  // Node -> Rust: objects, read by Rust as ReadableStream<Todo>.
  ["objectsToRust", async () => {
    const todos = [{ title: "a", done: true }, { title: "b", done: false }, { title: "c", done: true }];
    expectEq(await api.countDone(valueStream(todos)), 2, "countDone(<3 todos>)");
  }],

  // Node -> Rust: strings, read as ReadableStream<String>.
  ["stringsToRust", async () => {
    expectEq(await api.join(valueStream(["to", "be", "é🙂"])), "to+be+é🙂", "join(<3 strings>)");
  }],

  // Node -> Rust: chunks holding stubs of this client's objects, called by Rust as they arrive.
  ["stubsToRust", async () => {
    const counters = [new NodeCounter(1), new NodeCounter(50)];
    const results = await api.callEach(valueStream(counters.map((counter, i) => ({ name: `n${i}`, counter }))));
    expectEq(results, [2, 51], "callEach(<2 entries with counters>)");
    expectEq(counters.map((c) => c.value), [2, 51], "this client's counters after Rust called them");
  }],

  // Rust -> Node: a ReadableStream<Todo>, read as objects.
  ["objectsFromRust", async () => {
    const todos = await readAll(await api.todos(4), "todos(4)");
    expectEq(todos, [0, 1, 2, 3].map((i) => ({ title: `todo ${i}`, done: i % 2 === 0 })), "todos(4)");
  }],

  // Rust -> Node: chunks holding stubs of Rust counters, called after they were read, then
  // disposed, which releases the counters in Rust.
  ["stubsFromRust", async () => {
    const before = await api.liveCounters();
    const entries = await readAll(await api.entries(3), "entries(3)");
    expectEq(entries.map((e) => e.name), ["e0", "e1", "e2"], "entries(3) names");
    expectEq(await Promise.all(entries.map((e) => e.counter.increment(1))), [1, 11, 21], "entries(3) counters");
    expectEq(await api.liveCounters(), before + 3, "live counters while the chunks are held");
    for (const e of entries) e[Symbol.dispose]();
    expectEq(await api.liveCounters(), before, "live counters once the chunks are disposed");
  }],

  // Rust writes a WritableStream<Todo> of this client's.
  ["rustWritesNodeWritable", async () => {
    const got = [];
    let closed = false;
    const sink = new WritableStream({
      write(chunk) {
        got.push(chunk);
      },
      close() {
        closed = true;
      },
    });
    expectEq(await api.fillTodos(3, sink), 3, "fillTodos(3, sink)");
    if (!closed) fail("fillTodos: the sink was not closed");
    expectEq(got, [0, 1, 2].map((i) => ({ title: `written ${i}`, done: i % 3 === 0 })), "fillTodos chunks");
  }],

  // Rust writes chunks holding stubs into this client's sink; its call returns after the
  // writes and the close resolved; only then are the stubs called.
  ["stubAfterWriteResolved", async () => {
    const got = [];
    const sink = new WritableStream({
      write(chunk) {
        got.push(chunk);
      },
    });
    await api.fillEntries(sink);
    expectEq(got.map((e) => e.name), ["a", "b"], "fillEntries chunks");
    expectEq(await Promise.all(got.map((e) => e.counter.increment(3))), [103, 203], "counters in written chunks");
    for (const e of got) e[Symbol.dispose]();
  }],

  // This client writes chunks holding stubs into a Rust WritableStream; Rust calls them long
  // after the writes (and the close) resolved.
  ["nodeWritesRustWritable", async () => {
    const w = await api.collector();
    if (!(w instanceof WritableStream)) fail(`collector(): got ${show(w)}, expected a WritableStream`);
    const counters = [new NodeCounter(0), new NodeCounter(7)];
    const writer = w.getWriter();
    for (const [i, counter] of counters.entries()) await writer.write({ name: `w${i}`, counter });
    await writer.close();
    expectEq(await api.callCollected(), [["w0", 5], ["w1", 12]], "callCollected()");
    expectEq(counters.map((c) => c.value), [5, 12], "this client's counters after Rust called them");
  }],

  // Rust -> Node: an error after one chunk reaches the reader as that error, after the chunk
  // (capwire sends the abort once the chunks before it were acknowledged: capnweb's pipe
  // drops what its reader has not taken when it is aborted).
  ["errorFromRust", async () => {
    const reader = (await api.failing()).getReader();
    expectEq(await reader.read(), { done: false, value: { title: "first", done: true } }, "failing() first chunk");
    expectError(await rejection(reader.read(), "failing() second read"), "RangeError", "the list broke", "failing()");
  }],

  // Node -> Rust: a source failing after one chunk; Rust's read fails with it, and so does its call.
  ["errorToRust", async () => {
    const stream = valueStream([{ title: "before the error", done: false }], new RangeError("upload broke"));
    expectError(await rejection(api.countDone(stream), "countDone(<failing>)"), "RangeError", "upload broke",
      "countDone(<failing>)");
  }],

  // Rust -> a slow reader here: what Rust has made but this client has not read (bytes in
  // flight, as JSON) stays within capwire's window of 4 MiB of message text (8 MiB, were it
  // to double on an acknowledgement). Once the window is full, twice the round trips it took
  // to fill it give an unbounded sender the time to make as much again.
  ["slowReaderHere", async () => {
    const reader = (await api.paddedForever()).getReader();
    let read = 0;
    let readBytes = 0;
    const take = async () => {
      const { value } = await reader.read();
      if (value?.i !== read) fail(`paddedForever chunk ${read} is ${show(value?.i)}`);
      read++;
      readBytes += JSON.stringify(value).length;
    };
    await take();
    const chunk = readBytes;
    const inFlight = async () => (await api.produced())[1] - readBytes;
    let trips = 0;
    while ((await inFlight()) < 4 * MiB - 2 * chunk) {
      if (++trips > 1_000_000) fail("paddedForever: the sender never filled its window");
    }
    await roundTrips(2 * trips + 20);
    let now = await inFlight();
    if (now > 8 * MiB + 3 * chunk) fail(`${now} bytes in flight to a reader that stopped (window 4 MiB)`);
    // Reading lets the sender go on (100 more chunks arrive), within a grown window still.
    for (let i = 0; i < 100; i++) await take();
    await roundTrips(2 * trips + 20);
    now = await inFlight();
    if (now > 64 * MiB + 3 * chunk) fail(`${now} bytes in flight after reading 101 chunks`);
    await reader.cancel();
  }],

  // This client writes into a Rust stream nobody reads yet: capnweb's window (256 KiB at
  // first) lets only a few ~64 KiB writes resolve; then Rust reads it all.
  ["slowReaderThere", async () => {
    const writer = (await api.slowSink()).getWriter();
    const n = 40;
    let resolved = 0;
    const writing = (async () => {
      for (let i = 0; i < n; i++) {
        await writer.write(padded(i));
        resolved++;
      }
      await writer.close();
    })();
    await roundTrips(20);
    const chunk = JSON.stringify(padded(0)).length;
    // A write resolves at once while less than the window is unacknowledged; the one that
    // fills it waits for an acknowledgement, which nothing gives while Rust does not read.
    const inFlight = (resolved + 1) * chunk;
    if (resolved < 1 || inFlight > 256 * 1024 + chunk) {
      fail(`${resolved} writes resolved (${inFlight} bytes in flight) into a stream nobody reads`);
    }
    expectEq(await api.drain(), n, "drain() once read");
    await writing;
  }],
];

let passed = 0;
let failed = 0;
for (const [row, fn] of CHECKS) {
  try {
    await fn();
    passed++;
    process.stdout.write(JSON.stringify({ row, ok: true }) + "\n");
  } catch (e) {
    failed++;
    const error = e instanceof CheckFailure ? e.message : `${e?.name}: ${e?.message}\n${e?.stack}`;
    process.stdout.write(JSON.stringify({ row, ok: false, error }) + "\n");
  }
}
if (broken) {
  failed++;
  process.stdout.write(JSON.stringify({ row: "session", ok: false, error: String(broken) }) + "\n");
}
process.stdout.write(JSON.stringify({ summary: { passed, failed } }) + "\n");
api[Symbol.dispose]();
setTimeout(() => process.exit(failed === 0 ? 0 : 1), 50).unref();
