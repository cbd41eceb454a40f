// Conformance client built on the real `capnweb` npm package.
//
//   node client.mjs [--timeout MS] [--only row1,row2] [--exclude row3,row4] ws://127.0.0.1:PORT/
//   node client.mjs [--timeout MS] [--only row1,row2] [--exclude row3,row4] --batch http://127.0.0.1:PORT/
//
// --only runs just the named rows; --exclude skips the named rows (both may be given; a row runs
// only if it passes both filters). The final `session` row of WebSocket mode obeys them too.
//
// Prints one JSON line per check on stdout:
//   {"row":"square","ok":true}
//   {"row":"square","ok":false,"error":"<message>"}
// then {"summary":{"passed":N,"failed":M}}. Exit code 0 only if every check passed.
//
// WebSocket mode runs every check over one long-lived session (a new one is opened if it breaks)
// and ends with a `session` row that fails if that session broke at any point.
// Batch mode gives every check its own HTTP batch session(s): all calls of one batch are made in
// the same tick, before anything is awaited.
// Rows that need the server to call back into this client while a call is running
// (callFunction, useCounter, writeBytes) are WebSocket-only: an HTTP batch cannot carry a
// server-to-client call (capnweb's batch server then waits forever for the answer). So are the
// stream rows whose data does not fit in one request and its response (readBytes,
// readBytesLarge, sumBytes, echoBlob): every chunk is a call that the receiver acknowledges, and
// in a batch no acknowledgement comes back until the batch is over.

import { inspect } from "node:util";
import { WebSocket as WsWebSocket } from "ws";
import {
  RpcPromise,
  RpcStub,
  RpcTarget,
  deserialize,
  newHttpBatchRpcSession,
  newWebSocketRpcSession,
} from "capnweb";

// capnweb's WebSocket transport uses the global WebSocket; Node 20 has none without a flag.
if (typeof globalThis.WebSocket === "undefined") globalThis.WebSocket = WsWebSocket;

// ---------------------------------------------------------------------------------------------
// Command line

function usage(msg) {
  if (msg) process.stderr.write(`${msg}\n`);
  process.stderr.write(
    "usage: node client.mjs [--timeout MS] [--only a,b] [--exclude c,d] ws://HOST:PORT/\n" +
      "       node client.mjs [--timeout MS] [--only a,b] [--exclude c,d] --batch http://HOST:PORT/\n",
  );
  process.exit(2);
}

let mode = "ws";
let url;
let timeoutMs = 10_000;
let only = null;
const exclude = new Set();
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--batch") mode = "batch";
    else if (a === "--timeout") timeoutMs = Number(argv[++i]);
    else if (a === "--only") only = new Set(String(argv[++i]).split(","));
    else if (a === "--exclude") for (const r of String(argv[++i]).split(",")) exclude.add(r);
    else if (a.startsWith("-")) usage(`unknown option: ${a}`);
    else if (url === undefined) url = a;
    else usage(`unexpected argument: ${a}`);
  }
  if (!url) usage("missing URL");
  if (!(timeoutMs > 0)) usage("--timeout must be a positive number of milliseconds");
  const scheme = url.split(":")[0];
  if (mode === "ws" && scheme !== "ws" && scheme !== "wss") usage("WebSocket mode needs a ws:// URL (use --batch for http://)");
  if (mode === "batch" && scheme !== "http" && scheme !== "https") usage("--batch needs an http:// URL");
}

// ---------------------------------------------------------------------------------------------
// Helpers

class CheckFailure extends Error {}

function fail(msg) {
  throw new CheckFailure(msg);
}

function show(v) {
  return inspect(v, { depth: 8, breakLength: Infinity, maxArrayLength: 20, maxStringLength: 200 });
}

function errText(e) {
  if (e instanceof CheckFailure) return e.message;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `non-Error thrown: ${show(e)}`;
}

/** Structural equality; returns null when equal, else a description of the first difference. */
function diff(actual, expected, path = "$") {
  const here = () => `${path}: got ${show(actual)}, expected ${show(expected)}`;
  if (typeof expected === "number") {
    if (typeof actual !== "number") return here();
    if (Number.isNaN(expected) ? Number.isNaN(actual) : actual === expected) return null;
    return here();
  }
  if (typeof expected === "bigint" || typeof expected === "string" || typeof expected === "boolean" ||
      expected === null || expected === undefined) {
    return actual === expected ? null : here();
  }
  if (expected instanceof Date) {
    if (!(actual instanceof Date)) return here();
    const a = actual.getTime();
    const e = expected.getTime();
    return (Number.isNaN(e) ? Number.isNaN(a) : a === e) ? null : here();
  }
  if (expected instanceof Uint8Array) {
    // Buffer (a Uint8Array subclass) is what capnweb produces for bytes in Node.
    if (!(actual instanceof Uint8Array) || actual.length !== expected.length) return here();
    for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) return here();
    return null;
  }
  if (expected instanceof Error) {
    if (!(actual instanceof Error)) return here();
    if (actual.name !== expected.name || actual.message !== expected.message) {
      return `${path}: got ${actual.name}(${show(actual.message)}), expected ${expected.name}(${show(expected.message)})`;
    }
    return null;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return here();
    if (actual.length !== expected.length) return `${path}: length ${actual.length}, expected ${expected.length} (got ${show(actual)})`;
    for (let i = 0; i < expected.length; i++) {
      const d = diff(actual[i], expected[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual) ||
        actual instanceof Date || actual instanceof Uint8Array || actual instanceof Error) return here();
    const ak = Object.keys(actual).sort();
    const ek = Object.keys(expected).sort();
    if (ak.join("\u0000") !== ek.join("\u0000")) return `${path}: keys ${show(ak)}, expected ${show(ek)}`;
    for (const k of ek) {
      const d = diff(actual[k], expected[k], `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return `${path}: cannot compare expected value ${show(expected)}`;
}

function expectEq(actual, expected, what) {
  const d = diff(actual, expected);
  if (d) fail(`${what}: ${d}`);
}

/** Settles a promise into {ok, value} / {ok:false, error}. */
async function settle(p) {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

function dispose(x) {
  try {
    x?.[Symbol.dispose]?.();
  } catch {
    // Disposal is best effort.
  }
}

function withTimeout(promise, ms, row) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailure(`row "${row}" timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Sessions

let wsApi = null;
let wsBroken = null; // first error that broke a WebSocket session
let closing = false;

function api() {
  if (mode === "batch") return newHttpBatchRpcSession(url);
  if (!wsApi) {
    const stub = newWebSocketRpcSession(url);
    stub.onRpcBroken((err) => {
      if (closing) return;
      if (!wsBroken) wsBroken = err ?? new Error("session broken (no reason given)");
      if (wsApi === stub) wsApi = null; // next check reconnects
    });
    wsApi = stub;
  }
  return wsApi;
}

// ---------------------------------------------------------------------------------------------
// Raw wire probe (for vault_hidden): names such as `constructor`, `toString`, `__proto__`,
// `valueOf`, `hasOwnProperty` are answered locally by capnweb's stub proxy and never reach the
// server, so they are also sent as hand-written protocol messages.

// `messages`: each a message to JSON.stringify, or a string sent as it is.
async function rawExchange(messages, waitIds) {
  const lines = messages.map((m) => (typeof m === "string" ? m : JSON.stringify(m)));
  let replies;
  if (mode === "batch") {
    const res = await fetch(url, { method: "POST", body: lines.join("\n") });
    const text = await res.text();
    if (!res.ok) fail(`raw batch: HTTP ${res.status} ${text.slice(0, 200)}`);
    replies = text === "" ? [] : text.split("\n");
  } else {
    replies = await new Promise((resolve, reject) => {
      const ws = new WsWebSocket(url);
      const got = [];
      const pending = new Set(waitIds);
      let done = false;
      const finish = (err) => {
        if (done) return;
        done = true;
        try {
          ws.close(1000);
        } catch {}
        if (err) reject(err);
        else resolve(got);
      };
      ws.on("open", () => {
        for (const l of lines) ws.send(l);
      });
      ws.on("message", (data, isBinary) => {
        if (isBinary) return finish(new CheckFailure("raw: server sent a binary frame"));
        const text = data.toString();
        got.push(text);
        let msg;
        try {
          msg = JSON.parse(text);
        } catch {
          return finish(new CheckFailure(`raw: server sent non-JSON frame ${show(text)}`));
        }
        if (Array.isArray(msg) && msg[0] === "abort") return finish();
        if (Array.isArray(msg) && (msg[0] === "resolve" || msg[0] === "reject")) pending.delete(msg[1]);
        if (pending.size === 0) finish();
      });
      ws.on("error", (e) => finish(new CheckFailure(`raw: websocket error: ${e.message}`)));
      ws.on("close", (code, reason) => finish(new CheckFailure(`raw: server closed the websocket (${code} ${reason})`)));
    });
  }
  const byId = new Map();
  for (const line of replies) {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      fail(`raw: server sent non-JSON line ${show(line)}`);
    }
    if (Array.isArray(msg) && msg[0] === "abort") fail(`raw: server aborted the session: ${line}`);
    if (Array.isArray(msg) && (msg[0] === "resolve" || msg[0] === "reject")) byId.set(msg[1], { kind: msg[0], value: msg[2], line });
  }
  return byId;
}

// ---------------------------------------------------------------------------------------------
// Checks. Each entry: [row, wsFn, batchFn]; a missing fn means the row is not run in that mode.

const HIDDEN_NAMES = ["secret", "opens_count", "constructor", "__proto__", "toString", "toJSON",
  "valueOf", "hasOwnProperty", "clone", "drop", "fmt"];
const SECRET = "s3cret";

const ECHO_CASES = [
  ["nested_arrays", [1, [2, [3, []]]]],
  ["nested_object", { a: 1, b: { c: "x", d: { e: [true, null], f: {} } }, g: [] }],
  ["unicode_string", "héllo 🌍 \u0000 \"q\" \\ \n"],
  ["empty_string", ""],
  ["bytes", new Uint8Array([0, 1, 2, 253, 254, 255])],
  ["bytes_empty", new Uint8Array(0)],
  ["date", new Date(1749342170815)],
  ["bigint", 12345678901234567890n],
  ["neg_bigint", -5n],
  ["array_with_undefined", [1, undefined, 3]],
  ["object_with_undefined", { a: undefined, b: 1 }],
  ["inf", Infinity],
  ["neg_inf", -Infinity],
  ["nan", NaN],
  ["error_value", new RangeError("boom")],
  ["max_safe", 9007199254740991],
  ["true", true],
  ["false", false],
  ["zero", 0],
  // Half a surrogate pair (text cut in the middle of an emoji): JSON.stringify writes it as
  // a `\u` escape; a Rust string cannot hold it, so it comes back as U+FFFD (the third
  // element is the expected echo when it differs from what was sent).
  ["lone_high_surrogate", "cut \ud83d", "cut \ufffd"],
  ["lone_low_surrogate", "\ude00 and \ud83d\ude00", "\ufffd and \ud83d\ude00"],
];

function checkEchoResults(results) {
  const problems = [];
  ECHO_CASES.forEach(([name, value, ...echoed], i) => {
    const r = results[i];
    if (!r.ok) {
      problems.push(`${name}: rejected with ${errText(r.error)}`);
      return;
    }
    const d = diff(r.value, echoed.length ? echoed[0] : value);
    if (d) problems.push(`${name}: ${d}`);
    if (name === "object_with_undefined" && r.value && typeof r.value === "object" && !("a" in r.value)) {
      problems.push(`${name}: key "a" missing from echoed object ${show(r.value)}`);
    }
    if (name === "error_value" && !(r.value instanceof RangeError)) {
      problems.push(`${name}: echoed error is not instanceof RangeError`);
    }
  });
  if (problems.length) fail(problems.join("; "));
}

function checkThrowError(r) {
  if (r.ok) fail(`throwError() resolved to ${show(r.value)}; expected a rejection`);
  const e = r.error;
  if (!(e instanceof RangeError)) fail(`throwError() rejected with ${errText(e)}; expected instanceof RangeError`);
  if (e.name !== "RangeError") fail(`error name ${show(e.name)}, expected "RangeError"`);
  if (e.message !== "test error") fail(`error message ${show(e.message)}, expected "test error"`);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Results of `ids.map(id => counter.increment(id))` on a counter starting at `start`: the
// increments may run in any serial order, but each result must be the value before it (in
// that order) plus its own id.
function checkCounterMap(got, ids, start) {
  if (!Array.isArray(got) || got.length !== ids.length) fail(`counter map gave ${show(got)}, expected ${ids.length} results`);
  const order = got.map((v, k) => [v, ids[k]]).sort((x, y) => x[0] - y[0]);
  let prev = start;
  for (const [v, id] of order) {
    if (v !== prev + id) fail(`counter map gave ${show(got)} for increments ${show(ids)} from ${start}: not any serial order`);
    prev = v;
  }
}

// A local object passed by reference (for echoTarget).
class LocalTarget extends RpcTarget {
  hits = 0;
  ping(x) {
    this.hits++;
    return `pong ${x}`;
  }
}

// throwError() rejects; a call and a nested property call pipelined on it reject the same way.
async function checkPipelineErrors(s) {
  const p = s.throwError();
  const q = p.foo();
  const r = p.bar.baz(1);
  let brokenWith;
  q.onRpcBroken((e) => (brokenWith = e));
  const [pr, qr, rr] = await Promise.all([settle(p), settle(q), settle(r)]);
  const problems = [];
  // onRpcBroken on a pipelined promise fires with the same error.
  try {
    checkThrowError({ ok: false, error: brokenWith });
  } catch (e) {
    problems.push(`onRpcBroken of throwError().foo(): ${errText(e)}`);
  }
  for (const [what, res] of [["throwError()", pr], ["throwError().foo()", qr], ["throwError().bar.baz(1)", rr]]) {
    try {
      checkThrowError(res);
    } catch (e) {
      problems.push(`${what}: ${errText(e)}`);
    }
  }
  if (problems.length) fail(problems.join("; "));
}

// Proxy-level probes of a vault stub; returns a list of started promises (so batch mode can start
// all of them in one tick) and a function that judges their outcomes.
function startProxyProbes(vault) {
  const probes = [];
  for (const name of HIDDEN_NAMES) {
    if (name in RpcPromise.prototype) continue; // answered locally by the proxy, see raw probe
    probes.push({ name, kind: "call", p: settle(vault[name]()) });
    probes.push({ name, kind: "read", p: settle(vault[name]) });
  }
  return probes;
}

async function judgeProxyProbes(probes) {
  const problems = [];
  for (const { name, kind, p } of probes) {
    const r = await p;
    if (kind === "call") {
      if (r.ok) problems.push(`vault.${name}() resolved to ${show(r.value)}; expected rejection`);
      else if (String(r.error?.message).includes(SECRET) || r.error === SECRET) problems.push(`vault.${name}() error reveals the secret`);
    } else {
      if (r.ok && r.value !== undefined) problems.push(`vault.${name} read gave ${show(r.value)}; expected undefined or rejection`);
      else if (!r.ok && String(r.error?.message).includes(SECRET)) problems.push(`vault.${name} read error reveals the secret`);
    }
  }
  return problems;
}

async function checkOutOfRangeNumbers() {
  const literals = [
    ["1e400", ["inf"]],
    ["-1e400", ["-inf"]],
    ["1e-400", 0],
    [`1${"0".repeat(1_000_000)}`, ["inf"]],
    ["1e99999999999999999999", ["inf"]],
  ];
  const msgs = [];
  literals.forEach(([literal], i) => {
    msgs.push(`["push",["pipeline",0,["echo"],[${literal}]]]`, ["pull", i + 1]);
  });
  // A last ordinary call: answered only if the session is still alive.
  msgs.push(["push", ["pipeline", 0, ["square"], [3]]], ["pull", literals.length + 1]);
  const ids = literals.map((_, i) => i + 1).concat(literals.length + 1);
  const byId = await rawExchange(msgs, ids);
  const problems = [];
  literals.forEach(([literal, want], i) => {
    const r = byId.get(i + 1);
    const shown = literal.length > 30 ? `${literal.slice(0, 12)}…(${literal.length} chars)` : literal;
    if (!r || r.kind !== "resolve" || JSON.stringify(r.value) !== JSON.stringify(want)) {
      problems.push(`echo(${shown}): expected ${JSON.stringify(want)}, got ${r ? r.line.slice(0, 200) : "nothing"}`);
    }
  });
  const last = byId.get(literals.length + 1);
  if (!last || last.value !== 9) problems.push(`square(3) afterwards: got ${last ? last.line : "nothing"}`);
  if (problems.length) fail(problems.join("; "));
}

async function rawVaultProbe() {
  // Import IDs: 0 = main, then one per push, counting from 1.
  const msgs = [["push", ["pipeline", 0, ["makeVault"], [SECRET]]]];
  let next = 2;
  const expect = [];
  for (const name of HIDDEN_NAMES) {
    msgs.push(["push", ["pipeline", 1, [name], []]], ["pull", next]);
    expect.push({ id: next++, name, kind: "call" });
    msgs.push(["push", ["pipeline", 1, [name]]], ["pull", next]);
    expect.push({ id: next++, name, kind: "read" });
  }
  msgs.push(["push", ["pipeline", 1, ["open"], [SECRET]]], ["pull", next]);
  const openId = next++;
  const byId = await rawExchange(msgs, [...expect.map((e) => e.id), openId]);
  const problems = [];
  for (const { id, name, kind } of expect) {
    const r = byId.get(id);
    if (!r) {
      problems.push(`raw ${kind} ${name}: no resolve/reject for import ${id}`);
      continue;
    }
    if (r.line.includes(SECRET)) {
      problems.push(`raw ${kind} ${name}: reply reveals the secret: ${r.line}`);
      continue;
    }
    if (kind === "call") {
      if (r.kind !== "reject") problems.push(`raw call ${name}(): expected reject, got ${r.line}`);
    } else if (r.kind === "resolve") {
      let v;
      try {
        v = deserialize(JSON.stringify(r.value));
      } catch (e) {
        problems.push(`raw read ${name}: undecodable resolution ${r.line} (${errText(e)})`);
        continue;
      }
      if (v !== undefined) problems.push(`raw read ${name}: expected undefined or reject, got ${r.line}`);
    }
  }
  const o = byId.get(openId);
  if (!o || o.kind !== "resolve" || o.value !== true) {
    problems.push(`raw: open("${SECRET}") after probes: expected ["resolve",${openId},true], got ${o ? o.line : "nothing"}`);
  }
  return problems;
}

// --- Byte streams ------------------------------------------------------------------------------

// The server's streams (readBytes, writeBytes) carry byte k = k % 251.
function patternByte(k) {
  return k % 251;
}

// Sum of the pattern bytes 0..n-1, mod 2^32 (exact: n * 250 stays far below 2^53).
function patternChecksum(n) {
  const cycle = (250 * 251) / 2;
  const r = n % 251;
  return (Math.floor(n / 251) * cycle + (r * (r - 1)) / 2) % 2 ** 32;
}

/** Reads a byte stream to its end, handing each chunk to onChunk; cancels the stream on failure. */
async function consumeBytes(stream, onChunk, what) {
  if (!(stream instanceof ReadableStream)) fail(`${what}: got ${show(stream)}, expected a ReadableStream`);
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (!(value instanceof Uint8Array)) fail(`${what}: chunk ${show(value)} is not bytes`);
      onChunk(value);
    }
  } catch (e) {
    reader.cancel(e).catch(() => {});
    throw e;
  }
}

/** Reads a stream of any values to its end. */
async function readValues(stream, what) {
  if (!(stream instanceof ReadableStream)) fail(`${what}: got ${show(stream)}, expected a ReadableStream`);
  const out = [];
  for await (const chunk of stream) out.push(chunk);
  return out;
}

/** Checks that `chunks` (arriving in order) are exactly n bytes of the k % 251 pattern. */
function patternChecker(n, what) {
  let offset = 0;
  return {
    add(chunk) {
      if (offset + chunk.length > n) fail(`${what}: more than ${n} bytes`);
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i] !== patternByte(offset + i)) fail(`${what}: byte ${offset + i} is ${chunk[i]}, expected ${patternByte(offset + i)}`);
      }
      offset += chunk.length;
    },
    end() {
      if (offset !== n) fail(`${what}: got ${offset} bytes, expected ${n}`);
    },
  };
}

async function checkPatternStream(stream, n, what) {
  const check = patternChecker(n, what);
  await consumeBytes(stream, (chunk) => check.add(chunk), what);
  check.end();
}

/** { bytes, checksum } of a list of byte chunks, as sumBytes computes it. */
function byteSum(chunks) {
  let bytes = 0;
  let checksum = 0;
  for (const chunk of chunks) {
    bytes += chunk.length;
    for (let i = 0; i < chunk.length; i++) checksum = (checksum + chunk[i]) >>> 0;
  }
  return { bytes, checksum };
}

/** A ReadableStream that hands out `chunks` one per pull, then ends (or fails with `error`). */
function chunkStream(chunks, error) {
  let next = 0;
  return new ReadableStream({
    pull(controller) {
      if (next < chunks.length) controller.enqueue(chunks[next++]);
      else if (error) throw error;
      else controller.close();
    },
  });
}

// Chunks for sumBytes: varied sizes (one empty, one well past the 256 KiB flow-control window)
// and every byte value.
const SUM_CHUNKS = [3, 1000, 300_000, 0, 65_536, 1].map((len, c) =>
  Uint8Array.from({ length: len }, (_, i) => (i * 7 + c * 31) & 255));

function checkSourceFailed(r) {
  if (r.ok) fail(`sumBytes(<stream failing with RangeError>) resolved to ${show(r.value)}; expected a rejection`);
  const e = r.error;
  if (!(e instanceof RangeError)) fail(`sumBytes(<failing stream>) rejected with ${errText(e)}; expected instanceof RangeError`);
  if (!String(e.message).includes("source failed")) fail(`error message ${show(e.message)}, expected it to contain "source failed"`);
}

async function checkBlob(blob, type, bytes, what) {
  if (!(blob instanceof Blob)) fail(`${what}: got ${show(blob)}, expected a Blob`);
  expectEq(blob.type, type, `${what}.type`);
  expectEq(new Uint8Array(await blob.arrayBuffer()), bytes, `${what} bytes`);
}

function echoRequests() {
  return [
    new Request("https://example.com/path?q=1", {
      method: "POST",
      headers: { "content-type": "text/plain", "x-test": "yes" },
      body: "ping-body",
    }),
    new Request("https://example.com/path?q=1"),
  ];
}

async function checkEchoedResponse(resp, method, body) {
  const what = `echoRequest(<${method} request>)`;
  if (!(resp instanceof Response)) fail(`${what}: got ${show(resp)}, expected a Response`);
  expectEq(resp.status, 200, `${what}.status`);
  expectEq(resp.headers.get("x-method"), method, `${what}.headers x-method`);
  expectEq(await resp.text(), body, `${what} body`);
}

const CHECKS = [
  ["square",
    async () => {
      expectEq(await api().square(5), 25, "square(5)");
      expectEq(await api().square(-1.5), 2.25, "square(-1.5)");
    },
    async () => {
      const s = api();
      const [a, b] = await Promise.all([s.square(5), s.square(-1.5)]);
      expectEq(a, 25, "square(5)");
      expectEq(b, 2.25, "square(-1.5)");
    }],

  ["add",
    async () => expectEq(await api().add(2, 3), 5, "add(2, 3)"),
    async () => expectEq(await api().add(2, 3), 5, "add(2, 3)")],

  ["callSquare",
    async () => {
      const s = api();
      expectEq(await s.callSquare(s, 6), { result: 36 }, "callSquare(main, 6)");
    },
    async () => {
      const s = api();
      expectEq(await s.callSquare(s, 6), { result: 36 }, "callSquare(main, 6)");
    }],

  ["throwError",
    async () => checkThrowError(await settle(api().throwError())),
    async () => checkThrowError(await settle(api().throwError()))],

  ["makeCounter",
    async () => {
      const c = await api().makeCounter(2);
      try {
        expectEq(await c.increment(3), 5, "increment(3)");
        expectEq(await c.increment(), 6, "increment()");
        expectEq(await c.value, 6, "counter.value");
      } finally {
        dispose(c);
      }
    },
    async () => {
      const c = api().makeCounter(2);
      const [a, b, v] = await Promise.all([c.increment(3), c.increment(), c.value]);
      expectEq(a, 5, "increment(3)");
      expectEq(b, 6, "increment()");
      expectEq(v, 6, "counter.value");
    }],

  ["getCounter",
    async () => {
      const c = await api().getCounter();
      try {
        expectEq(await c.value, 0, "getCounter().value");
        expectEq(await c.increment(), 1, "increment()");
      } finally {
        dispose(c);
      }
    },
    async () => {
      const c = api().getCounter();
      // A property read is only sent once awaited; then() it first so it goes out before the call.
      const v0 = c.value.then((x) => x);
      const [v, a] = await Promise.all([v0, c.increment()]);
      expectEq(v, 0, "getCounter().value");
      expectEq(a, 1, "increment()");
    }],

  ["incrementCounter",
    async () => {
      const s = api();
      const c = await s.makeCounter(10);
      try {
        expectEq(await s.incrementCounter(c), 11, "incrementCounter(c)");
        expectEq(await s.incrementCounter(c, 5), 16, "incrementCounter(c, 5)");
      } finally {
        dispose(c);
      }
    },
    async () => {
      // Both calls go to the main object in one batch; they must run in message order.
      const s = api();
      const c = s.makeCounter(10);
      const [a, b] = await Promise.all([s.incrementCounter(c), s.incrementCounter(c, 5)]);
      expectEq(a, 11, "incrementCounter(c)");
      expectEq(b, 16, "incrementCounter(c, 5)");
    }],

  ["pipelining",
    async () => {
      const s = api();
      const c = s.makeCounter(2); // never awaited
      try {
        expectEq(await c.increment(3), 5, "makeCounter(2).increment(3)");
      } finally {
        dispose(c);
      }
      expectEq(await s.getUser(7).name, "user7", "getUser(7).name");
    },
    async () => {
      const s = api();
      const [a, n] = await Promise.all([s.makeCounter(2).increment(3), s.getUser(7).name]);
      expectEq(a, 5, "makeCounter(2).increment(3)");
      expectEq(n, "user7", "getUser(7).name");
    }],

  ["generateFibonacci",
    async () => expectEq(await api().generateFibonacci(10), [0, 1, 1, 2, 3, 5, 8, 13, 21, 34], "generateFibonacci(10)"),
    async () => expectEq(await api().generateFibonacci(10), [0, 1, 1, 2, 3, 5, 8, 13, 21, 34], "generateFibonacci(10)")],

  ["returnNull",
    async () => expectEq(await api().returnNull(), null, "returnNull()"),
    async () => expectEq(await api().returnNull(), null, "returnNull()")],

  ["returnUndefined",
    async () => {
      const v = await api().returnUndefined();
      if (v !== undefined) fail(`returnUndefined() gave ${show(v)}`);
    },
    async () => {
      const v = await api().returnUndefined();
      if (v !== undefined) fail(`returnUndefined() gave ${show(v)}`);
    }],

  ["returnNumber",
    async () => {
      expectEq(await api().returnNumber(42), 42, "returnNumber(42)");
      expectEq(await api().returnNumber(-3.25), -3.25, "returnNumber(-3.25)");
    },
    async () => {
      const s = api();
      const [a, b] = await Promise.all([s.returnNumber(42), s.returnNumber(-3.25)]);
      expectEq(a, 42, "returnNumber(42)");
      expectEq(b, -3.25, "returnNumber(-3.25)");
    }],

  ["listIds",
    async () => expectEq(await api().listIds(5), [1, 2, 3, 4, 5], "listIds(5)"),
    async () => expectEq(await api().listIds(5), [1, 2, 3, 4, 5], "listIds(5)")],

  ["getUser",
    async () => expectEq(await api().getUser(3), { id: 3, name: "user3" }, "getUser(3)"),
    async () => expectEq(await api().getUser(3), { id: 3, name: "user3" }, "getUser(3)")],

  ["echo_values",
    async () => {
      const s = api();
      checkEchoResults(await Promise.all(ECHO_CASES.map(([, v]) => settle(s.echo(v)))));
    },
    async () => {
      const s = api();
      checkEchoResults(await Promise.all(ECHO_CASES.map(([, v]) => settle(s.echo(v)))));
    }],

  ["echo_stub",
    async () => {
      const s = api();
      const c = await s.makeCounter(1);
      let e;
      try {
        e = await s.echo(c);
        expectEq(await e.increment(), 2, "echoed.increment()");
        expectEq(await c.increment(), 3, "original.increment() after echoed.increment()");
      } finally {
        dispose(e);
        dispose(c);
      }
    },
    async () => {
      // One batch; the data dependency (b waits for a) makes the order deterministic:
      // if the echoed stub did not reach the original counter, b would be 3, not 4.
      const s = api();
      const c = s.makeCounter(1);
      const a = s.echo(c).increment();
      const b = s.incrementCounter(c, a);
      const [av, bv] = await Promise.all([a, b]);
      expectEq(av, 2, "echo(c).increment()");
      expectEq(bv, 4, "incrementCounter(c, <that result>)");
    }],

  ["delay",
    async () => {
      const s = api();
      const order = [];
      const slow = s.delay(300, "slow").then((v) => (order.push("delay"), v));
      const fast = s.square(3).then((v) => (order.push("square"), v));
      const [sv, fv] = await Promise.all([slow, fast]);
      expectEq(fv, 9, "square(3)");
      expectEq(sv, "slow", "delay(300, \"slow\")");
      expectEq(order, ["square", "delay"], "settle order");
    },
    async () => {
      // Batch: no ordering assertion (all results arrive in one response); checks that the
      // server waits for the delayed result before answering the batch.
      const s = api();
      const [sv, fv] = await Promise.all([s.delay(300, "slow"), s.square(3)]);
      expectEq(fv, 9, "square(3)");
      expectEq(sv, "slow", "delay(300, \"slow\")");
    }],

  ["later",
    async () => {
      const s = api();
      // A promise made from a future: calls pipelined on it wait for it, then run in order.
      const c = s.later(50, s.makeCounter(1));
      const a = c.increment(2);
      const b = c.increment(3);
      expectEq([await a, await b], [3, 6], "later(50, makeCounter(1)).increment(2), .increment(3)");
      expectEq(await c.value, 6, "later(...).value");
      expectEq(await s.later(10, "v"), "v", 'later(10, "v")');
    },
    async () => {
      const s = api();
      const c = s.later(50, s.makeCounter(1));
      const [a, b, v] = await Promise.all([c.increment(2), c.increment(3), s.later(10, "v")]);
      expectEq([a, b], [3, 6], "later(50, makeCounter(1)).increment(2), .increment(3)");
      expectEq(v, "v", 'later(10, "v")');
    }],

  ["vault",
    async () => {
      const v = await api().makeVault(SECRET);
      try {
        expectEq(await v.open("x"), false, 'open("x")');
        expectEq(await v.open(SECRET), true, `open("${SECRET}")`);
        expectEq(await v.opens, 2, "vault.opens");
      } finally {
        dispose(v);
      }
    },
    async () => {
      const v = api().makeVault(SECRET);
      const [a, b, n] = await Promise.all([v.open("x"), v.open(SECRET), v.opens]);
      expectEq(a, false, 'open("x")');
      expectEq(b, true, `open("${SECRET}")`);
      expectEq(n, 2, "vault.opens");
    }],

  // Number literals beyond what a double holds read as JSON.parse reads them (1e400 is
  // Infinity), and a number of a million digits is read too: the session goes on. Sent as
  // raw text, since no JavaScript value stringifies to such a literal.
  ["out_of_range_numbers", checkOutOfRangeNumbers, checkOutOfRangeNumbers],

  ["vault_hidden",
    async () => {
      const v = await api().makeVault(SECRET);
      const problems = [];
      try {
        problems.push(...(await judgeProxyProbes(startProxyProbes(v))));
        const r = await settle(v.open(SECRET));
        if (!r.ok || r.value !== true) problems.push(`proxy: open("${SECRET}") afterwards: ${r.ok ? show(r.value) : errText(r.error)}`);
      } finally {
        dispose(v);
      }
      problems.push(...(await rawVaultProbe()));
      if (problems.length) fail(problems.join("; "));
    },
    async () => {
      const v = api().makeVault(SECRET);
      const probes = startProxyProbes(v);
      const open = settle(v.open(SECRET));
      const problems = await judgeProxyProbes(probes);
      const r = await open;
      if (!r.ok || r.value !== true) problems.push(`proxy: open("${SECRET}") afterwards: ${r.ok ? show(r.value) : errText(r.error)}`);
      problems.push(...(await rawVaultProbe()));
      if (problems.length) fail(problems.join("; "));
    }],

  ["concurrency",
    async () => {
      const s = api();
      const got = await Promise.all(Array.from({ length: 100 }, (_, i) => s.square(i)));
      expectEq(got, Array.from({ length: 100 }, (_, i) => i * i), "100 concurrent square(i)");
    },
    async () => {
      const s = api();
      const got = await Promise.all(Array.from({ length: 100 }, (_, i) => s.square(i)));
      expectEq(got, Array.from({ length: 100 }, (_, i) => i * i), "100 concurrent square(i)");
    }],

  ["batch_pipeline",
    null,
    async () => {
      const s = api();
      const c = s.makeCounter(2);
      const a = c.increment(3);
      const b = s.incrementCounter(c, 4);
      const v = c.value;
      const [av, bv, vv] = await Promise.all([a, b, v]);
      expectEq(av, 5, "c.increment(3)");
      expectEq(bv, 9, "incrementCounter(c, 4)");
      // The read is queued on c right after increment(3) but races with the increment that
      // incrementCounter makes once its argument resolves: 5 or 9 are both correct.
      if (vv !== 5 && vv !== 9) fail(`c.value read in the same batch gave ${show(vv)}; expected 5 or 9`);
    }],
  // --- Functions passed by reference, callbacks, forwarding -------------------------------------

  // The server calls the client's function in the middle of the call. Not in batch mode: the
  // server would have to call back to the client, which an HTTP batch cannot carry.
  ["callFunction",
    async () => {
      const s = api();
      let calls = 0;
      expectEq(await s.callFunction((x) => (calls++, x * 10), 3), { result: 30 }, "callFunction(x => x * 10, 3)");
      expectEq(await s.callFunction(async (x) => {
        await sleep(20);
        calls++;
        return `async ${x}`;
      }, 4), { result: "async 4" }, "callFunction(async x => `async ${x}`, 4)");
      expectEq(calls, 2, "local function invocations");
    },
    null],

  ["newCounterFn",
    async () => {
      const f = await api().newCounterFn();
      try {
        expectEq(await f(2), 2, "f(2)");
        expectEq(await f(1), 3, "f(1)");
        expectEq(await f(-5), -2, "f(-5)");
        expectEq(await f(), -2, "f()");
      } finally {
        dispose(f);
      }
    },
    async () => {
      // Calls pipelined on the not-yet-resolved function run in message order.
      const f = api().newCounterFn();
      const got = await Promise.all([f(2), f(1), f(-5), f()]);
      expectEq(got, [2, 3, -2, -2], "[f(2), f(1), f(-5), f()]");
    }],

  ["foo",
    async () => expectEq(await api().foo().bar.baz(), "qux", "foo().bar.baz()"),
    async () => expectEq(await api().foo().bar.baz(), "qux", "foo().bar.baz()")],

  // A stub from a second, independent session passed into the first: the server of session 1
  // calls a counter that lives behind session 2 (it goes through this client, which forwards).
  // Not in batch mode: the server would have to call back to the client.
  ["useCounter",
    async () => {
      const s1 = api();
      const s2 = newWebSocketRpcSession(url);
      let c;
      try {
        c = await s2.makeCounter(5);
        expectEq(await s1.useCounter(c, 2), 7, "session1.useCounter(<counter of session 2>, 2)");
        expectEq(await c.value, 7, "counter.value via session 2");
        // The same with a counter that is still a pipelined promise of session 2.
        const p = s2.makeCounter(10);
        try {
          expectEq(await s1.useCounter(p, 3), 13, "session1.useCounter(<unresolved promise of session 2>, 3)");
          expectEq(await p.value, 13, "pipelined counter.value via session 2");
        } finally {
          dispose(p);
        }
      } finally {
        dispose(c);
        dispose(s2);
      }
    },
    null],

  // Stubs inside an echoed value: a server-made counter (twice) and a local function.
  ["echoStubs",
    async () => {
      const s = api();
      const c = await s.makeCounter(1);
      let calls = 0;
      const fn = (x) => (calls++, x + 1);
      let r;
      try {
        r = await s.echo({ c, list: [c, fn] });
        expectEq(await r.c.increment(), 2, "echoed.c.increment()");
        expectEq(await r.list[0].increment(), 3, "echoed.list[0].increment()");
        expectEq(await c.increment(), 4, "original.increment() afterwards");
        expectEq(await r.list[1](5), 6, "echoed.list[1](5)");
        // Pipelined on the echo result: the server forwards the call back to this client.
        expectEq(await s.echo({ f: fn }).f(7), 8, "echo({ f: fn }).f(7)");
        expectEq(calls, 2, "local function invocations");
      } finally {
        dispose(r);
        dispose(c);
      }
    },
    async () => {
      // The counter stubs only live as long as the batch, so they are used by pipelining, and
      // only through `c`: capnweb's proxy turns `e.list[0]` into the path ["list", "0"] (a string
      // key), which a capnweb server does not apply to an array. The echoed function points back
      // at this client, so it is called after the batch, locally.
      const s = api();
      const c = s.makeCounter(1);
      let calls = 0;
      const fn = (x) => (calls++, x + 1);
      const e = s.echo({ c, list: [c, fn] });
      const a = e.c.increment();
      const b = s.incrementCounter(e.c, a);
      const [av, bv, ev] = await Promise.all([a, b, e]);
      expectEq(av, 2, "echo(...).c.increment()");
      expectEq(bv, 4, "incrementCounter(echo(...).c, <that result>)");
      if (!(ev.list[0] instanceof RpcStub)) fail(`echoed list[0] is ${show(ev.list[0])}, expected a stub`);
      expectEq(await ev.list[1](5), 6, "echoed.list[1](5), after the batch");
      expectEq(calls, 1, "local function invocations");
    }],

  // A local RpcTarget echoed back. It is wrapped in an object: when a call resolves to a bare
  // stub of the caller's own object (["resolve", id, ["import", -N]]), capnweb 0.12.0 rejects
  // the await with "Tried to resolve a non-promise stub." whatever the server.
  ["echoTarget",
    async () => {
      const s = api();
      const local = new LocalTarget();
      // Pipelined: the server forwards the call back to this client.
      expectEq(await s.echo(local).ping(1), "pong 1", "echo(local).ping(1)");
      const e = await s.echo({ t: local });
      try {
        expectEq(await e.t.ping(2), "pong 2", "echo({ t: local }).t.ping(2)");
        expectEq(await e.t.ping(3), "pong 3", "echo({ t: local }).t.ping(3)");
        expectEq(local.hits, 3, "local object invocations");
      } finally {
        dispose(e);
      }
    },
    async () => {
      // The echoed stub points back at this client, so it is called after the batch, locally.
      const local = new LocalTarget();
      const e = await api().echo({ t: local });
      expectEq(await e.t.ping(1), "pong 1", "echo({ t: local }).t.ping(1), after the batch");
      expectEq(local.hits, 1, "local object invocations");
    }],

  // Calls pipelined on a promise that rejects all reject with that same error.
  ["pipelineErrors",
    async () => checkPipelineErrors(api()),
    async () => checkPipelineErrors(api())],

  // --- map() ------------------------------------------------------------------------------------

  ["map",
    async () => {
      const s = api();
      expectEq(await s.listIds(3).map((id) => s.getUser(id)),
        [{ id: 1, name: "user1" }, { id: 2, name: "user2" }, { id: 3, name: "user3" }],
        "listIds(3).map(id => getUser(id))");
      expectEq(await s.listIds(2).map((id) => s.getUser(id).name), ["user1", "user2"],
        "listIds(2).map(id => getUser(id).name)");
    },
    async () => {
      const s = api();
      const [users, names] = await Promise.all([
        s.listIds(3).map((id) => s.getUser(id)),
        s.listIds(2).map((id) => s.getUser(id).name),
      ]);
      expectEq(users, [{ id: 1, name: "user1" }, { id: 2, name: "user2" }, { id: 3, name: "user3" }],
        "listIds(3).map(id => getUser(id))");
      expectEq(names, ["user1", "user2"], "listIds(2).map(id => getUser(id).name)");
    }],

  ["mapSingle",
    async () => {
      const s = api();
      expectEq(await s.getUser(4).map((u) => u.name), "user4", "getUser(4).map(u => u.name)");
    },
    async () => {
      const s = api();
      expectEq(await s.getUser(4).map((u) => u.name), "user4", "getUser(4).map(u => u.name)");
    }],

  ["mapNull",
    async () => {
      const s = api();
      expectEq(await s.returnNull().map((x) => s.square(x)), null, "returnNull().map(x => square(x))");
      expectEq(await s.returnUndefined().map((x) => s.square(x)), undefined, "returnUndefined().map(x => square(x))");
    },
    async () => {
      const s = api();
      const [n, u] = await Promise.all([
        s.returnNull().map((x) => s.square(x)),
        s.returnUndefined().map((x) => s.square(x)),
      ]);
      expectEq(n, null, "returnNull().map(x => square(x))");
      expectEq(u, undefined, "returnUndefined().map(x => square(x))");
    }],

  ["mapObject",
    async () => {
      const s = api();
      const k = await s.add(1, 2); // a plain value, recorded into the mapper as a constant
      expectEq(await s.listIds(2).map((id) => ({ id, k, sq: s.square(id), deep: { s: [s.add(id, k)] } })),
        [{ id: 1, k: 3, sq: 1, deep: { s: [4] } }, { id: 2, k: 3, sq: 4, deep: { s: [5] } }],
        "listIds(2).map(id => ({ id, k, sq: square(id), deep: { s: [add(id, k)] } }))");
    },
    async () => {
      const s = api();
      const k = 3;
      expectEq(await s.listIds(2).map((id) => ({ id, k, sq: s.square(id), deep: { s: [s.add(id, k)] } })),
        [{ id: 1, k: 3, sq: 1, deep: { s: [4] } }, { id: 2, k: 3, sq: 4, deep: { s: [5] } }],
        "listIds(2).map(id => ({ id, k, sq: square(id), deep: { s: [add(id, k)] } }))");
    }],

  // Captures: a not-yet-resolved promise and a counter stub, both used inside the mapper.
  ["mapCapture",
    async () => {
      const s = api();
      const k = s.add(1, 2); // not awaited: captured as a promise
      const c = await s.makeCounter(10);
      try {
        expectEq(await s.listIds(2).map((id) => s.add(id, k)), [4, 5], "listIds(2).map(id => add(id, <promise of 3>))");
        checkCounterMap(await s.listIds(3).map((id) => c.increment(id)), [1, 2, 3], 10);
        expectEq(await c.value, 16, "counter.value after the map");
      } finally {
        dispose(k);
        dispose(c);
      }
    },
    async () => {
      const s = api();
      const k = s.add(1, 2);
      const c = s.makeCounter(10);
      const [a, b] = await Promise.all([
        s.listIds(2).map((id) => s.add(id, k)),
        s.listIds(3).map((id) => c.increment(id)),
      ]);
      expectEq(a, [4, 5], "listIds(2).map(id => add(id, <promise of 3>))");
      checkCounterMap(b, [1, 2, 3], 10);
    }],

  ["mapNested",
    async () => {
      const s = api();
      expectEq(await s.listIds(3).map((id) => s.listIds(id).map((j) => s.square(j))), [[1], [1, 4], [1, 4, 9]],
        "listIds(3).map(id => listIds(id).map(j => square(j)))");
    },
    async () => {
      const s = api();
      expectEq(await s.listIds(3).map((id) => s.listIds(id).map((j) => s.square(j))), [[1], [1, 4], [1, 4, 9]],
        "listIds(3).map(id => listIds(id).map(j => square(j)))");
    }],

  // map() on a result that is a stub: the mapper runs once, on the stub.
  ["mapStub",
    async () => {
      const s = api();
      expectEq(await s.makeCounter(4).map((c) => c.increment(1)), 5, "makeCounter(4).map(c => c.increment(1))");
    },
    async () => {
      const s = api();
      expectEq(await s.makeCounter(4).map((c) => c.increment(1)), 5, "makeCounter(4).map(c => c.increment(1))");
    }],

  ["mapEmpty",
    async () => {
      const s = api();
      expectEq(await s.listIds(0).map((id) => s.getUser(id)), [], "listIds(0).map(id => getUser(id))");
    },
    async () => {
      const s = api();
      expectEq(await s.listIds(0).map((id) => s.getUser(id)), [], "listIds(0).map(id => getUser(id))");
    }],

  // --- Streams, Blob, Request/Response ------------------------------------------------------------

  // Not in batch mode: 300 000 bytes overflow the sender's 256 KiB flow-control window, and the
  // acknowledgements that would reopen it only come after the batch (capnweb's batch server
  // answers without the rest, and the stream fails with "...disposed without calling close()").
  ["readBytes",
    async () => {
      const s = api();
      for (const n of [0, 1, 1000, 300_000]) await checkPatternStream(await s.readBytes(n), n, `readBytes(${n})`);
    },
    null],

  // Not in batch mode, as readBytes.
  ["readBytesLarge",
    async () => {
      const n = 40 * 1024 * 1024;
      let bytes = 0;
      let checksum = 0;
      await consumeBytes(await api().readBytes(n), (chunk) => {
        bytes += chunk.length;
        for (let i = 0; i < chunk.length; i++) checksum = (checksum + chunk[i]) >>> 0;
      }, `readBytes(${n})`);
      expectEq({ bytes, checksum }, { bytes: n, checksum: patternChecksum(n) }, `readBytes(${n}) length and checksum`);
    },
    null],

  // Not in batch mode: the 300 000-byte chunk fills the 256 KiB window, so the rest of the
  // stream waits for an acknowledgement that only comes after the batch, and the batch never ends
  // (capnweb's batch server waits forever for the end of the stream).
  ["sumBytes",
    async () => {
      const s = api();
      expectEq(await s.sumBytes(chunkStream(SUM_CHUNKS)), byteSum(SUM_CHUNKS), "sumBytes(<6 chunks>)");
      expectEq(await s.sumBytes(chunkStream([])), { bytes: 0, checksum: 0 }, "sumBytes(<empty stream>)");
    },
    null],

  // The source fails after one chunk: the server's read fails with the same error, so the call
  // rejects with it (capnweb carries it as an `abort` of the pipe, keeping name and message).
  ["sumBytesError",
    async () => checkSourceFailed(await settle(api().sumBytes(chunkStream([new Uint8Array([1, 2, 3])], new RangeError("source failed"))))),
    async () => checkSourceFailed(await settle(api().sumBytes(chunkStream([new Uint8Array([1, 2, 3])], new RangeError("source failed")))))],

  // Not in batch mode: the server writes into the client's stream, which is a server-to-client
  // call.
  ["writeBytes",
    async () => {
      const n = 200_000;
      const check = patternChecker(n, "writeBytes sink");
      let closed = false;
      let aborted = null;
      const sink = new WritableStream({
        write(chunk) {
          if (!(chunk instanceof Uint8Array)) fail(`writeBytes sink: chunk ${show(chunk)} is not bytes`);
          if (chunk.length > 64 * 1024) fail(`writeBytes sink: chunk of ${chunk.length} bytes, expected at most 64 KiB`);
          check.add(chunk);
        },
        close() {
          closed = true;
        },
        abort(reason) {
          aborted = reason ?? "(no reason)";
        },
      });
      expectEq(await api().writeBytes(n, sink), n, `writeBytes(${n}, sink)`);
      // The server awaits close(), which completes only once this sink has closed.
      if (aborted !== null) fail(`writeBytes sink was aborted: ${errText(aborted)}`);
      if (!closed) fail("writeBytes sink was not closed");
      check.end();
    },
    null],

  // A stream of any values comes back the same, in order; a stub chunk still calls the object it
  // came from (this client's own). Not in batch mode: the server's echo is written into the
  // client's pipe, chunk by chunk, and no acknowledgement comes back within one batch.
  ["echoStream",
    async () => {
      const s = api();
      const target = new LocalTarget();
      const sent = [{ id: 1, tags: ["a", "b"], nested: { ok: true, n: null } }, "text é🙂", 42, -0.5, [1, "two"], target];
      const back = await readValues(await s.echoStream(chunkStream(sent)), "echoStream(<6 chunks>)");
      if (back.length !== sent.length) fail(`echoStream: ${back.length} chunks came back, expected ${sent.length}`);
      expectEq(back.slice(0, 5), sent.slice(0, 5), "echoStream(<objects, strings, numbers, arrays>)");
      expectEq(await back[5].ping("x"), "pong x", "echoStream(<stub>): the echoed stub's call");
      expectEq(target.hits, 1, "echoStream(<stub>): calls on the echoed stub reach this client's own object");
      dispose(back[5]);
      expectEq(await readValues(await s.echoStream(chunkStream([])), "echoStream(<empty>)"), [], "echoStream(<empty>)");
    },
    null],

  // Not in batch mode: the server makes the echoed Blob's content from Blob.stream(), which
  // produces it asynchronously, so capnweb's batch server answers before that content stream is
  // closed and the client's Blob never completes.
  ["echoBlob",
    async () => {
      const s = api();
      await checkBlob(await s.echoBlob(new Blob(["hello blob"], { type: "text/plain" })), "text/plain",
        new TextEncoder().encode("hello blob"), 'echoBlob(<"hello blob", text/plain>)');
      const binary = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 13) & 255);
      await checkBlob(await s.echoBlob(new Blob([binary], { type: "application/octet-stream" })),
        "application/octet-stream", binary, "echoBlob(<100 000 bytes>)");
      await checkBlob(await s.echoBlob(new Blob([])), "", new Uint8Array(0), "echoBlob(<empty>)");
    },
    null],

  ["echoRequest",
    async () => {
      const s = api();
      const [post, get] = echoRequests();
      await checkEchoedResponse(await s.echoRequest(post), "POST", "ping-body");
      await checkEchoedResponse(await s.echoRequest(get), "GET", "");
    },
    async () => {
      // The bodies are small enough that both travel whole in the batch and its response.
      const s = api();
      const [post, get] = await Promise.all(echoRequests().map((req) => s.echoRequest(req)));
      await checkEchoedResponse(post, "POST", "ping-body");
      await checkEchoedResponse(get, "GET", "");
    }],

  // A Durable Object: the same object for the same name from every session and batch.
  ["durableCounter",
    async () => {
      const name = `conformance-ws-${process.pid}-${Date.now()}`;
      const s = api();
      expectEq(await s.durableCounter(name).increment(2), 2, "durableCounter(name).increment(2)");
      expectEq(await s.durableCounter(name).increment(), 3, "durableCounter(name).increment()");
      expectEq(await s.durableCounter(name).value, 3, "durableCounter(name).value");
      const id = await s.durableCounter(name).id;
      if (!/^[0-9a-f]{64}$/.test(id)) fail(`durableCounter(name).id: ${show(id)} is not 64 lowercase hex digits`);
      const other = await s.durableCounter(`${name}-other`).id;
      if (other === id) fail("two names gave the same ID");
      // Another session reaches the same object.
      const s2 = newWebSocketRpcSession(url);
      try {
        expectEq(await s2.durableCounter(name).value, 3, "value from another session");
        expectEq(await s2.durableCounter(name).id, id, "id from another session");
      } finally {
        dispose(s2);
      }
    },
    async () => {
      const name = `conformance-batch-${process.pid}-${Date.now()}`;
      expectEq(await api().durableCounter(name).increment(5), 5, "durableCounter(name).increment(5) in a batch");
      expectEq(await api().durableCounter(name).value, 5, "durableCounter(name).value in another batch");
    }],
];

// ---------------------------------------------------------------------------------------------
// Runner

let passed = 0;
let failed = 0;
const unhandled = [];

process.on("unhandledRejection", (err) => {
  unhandled.push(err);
  process.stderr.write(`unhandled rejection: ${err?.stack ?? show(err)}\n`);
});
process.on("uncaughtException", (err) => {
  unhandled.push(err);
  process.stderr.write(`uncaught exception: ${err?.stack ?? show(err)}\n`);
});

function report(row, error) {
  if (error === undefined) {
    passed++;
    process.stdout.write(JSON.stringify({ row, ok: true }) + "\n");
  } else {
    failed++;
    process.stdout.write(JSON.stringify({ row, ok: false, error }) + "\n");
  }
}

function selected(row) {
  return (!only || only.has(row)) && !exclude.has(row);
}

async function main() {
  for (const [row, wsFn, batchFn] of CHECKS) {
    const fn = mode === "batch" ? batchFn : wsFn;
    if (!fn || !selected(row)) continue;
    try {
      await withTimeout(Promise.resolve().then(fn), timeoutMs, row);
      report(row);
    } catch (e) {
      report(row, errText(e));
    }
  }
  if (mode === "ws" && selected("session")) {
    report("session", wsBroken ? `WebSocket session broke: ${errText(wsBroken)}` : undefined);
  }
  if (unhandled.length) report("unhandled", `unhandled rejection/exception: ${errText(unhandled[0])}`);
}

let exitCode = 1;
try {
  await main();
  exitCode = failed === 0 && passed > 0 ? 0 : 1;
} catch (e) {
  report("client", `client crashed: ${e?.stack ?? errText(e)}`);
} finally {
  closing = true;
  if (wsApi) dispose(wsApi);
  process.stdout.write(JSON.stringify({ summary: { passed, failed } }) + "\n");
  // Let stdout flush, then exit regardless of lingering sockets.
  setTimeout(() => process.exit(exitCode), 50).unref();
  process.exitCode = exitCode;
}
