// Reference conformance server built on the real `capnweb` npm package.
//
// Serves the conformance service (see CONFORMANCE.md: TestTarget, Counter, Vault) so the
// Node client (client.mjs) can be checked against a known-good peer, and so the Rust client can
// be pointed at it.
//
//   node server.mjs [--listen HOST:PORT]      (default 127.0.0.1:0)
//
// Prints exactly one line `listening on http://HOST:PORT` on stdout once accepting, then serves
// until killed.
//   ws://HOST:PORT/    WebSocket RPC session (one message per text frame)
//   POST http://HOST:PORT/   HTTP batch RPC session; other methods on `/` answer 405.
// Every session's main object is a fresh TestTarget.
//
// Implements every TestTarget method of CONFORMANCE.md, including the stream/Blob/Request ones
// (readBytes, sumBytes, writeBytes, echoStream, echoBlob, echoRequest).
// Harness-only extras, not in CONFORMANCE.md: `disposedCounters()`, for release tests, and
// `closeSocket(code, reason)`, which closes the session's WebSocket with that code and
// reason and nothing before it (as capnweb's transport does when its `abort` message cannot
// be sent), for close-code tests.

import http from "node:http";
import { WebSocketServer, WebSocket as WsWebSocket } from "ws";
import {
  RpcTarget,
  RpcStub,
  RpcPromise,
  newWebSocketRpcSession,
  nodeHttpBatchRpcResponse,
} from "capnweb";

// capnweb's WebSocketTransport reads the global `WebSocket.CONNECTING`; Node 20 has no global
// WebSocket (it is behind --experimental-websocket), so provide the `ws` one.
if (typeof globalThis.WebSocket === "undefined") globalThis.WebSocket = WsWebSocket;

// Counters disposed so far in this process (capnweb calls Symbol.dispose once the last
// stub to one is released). Read by the harness-only `disposedCounters()` below.
let disposedCounters = 0;

class Counter extends RpcTarget {
  #value;
  constructor(start = 0) {
    super();
    this.#value = start;
  }
  increment(amount = 1) {
    this.#value += amount;
    return this.#value;
  }
  get value() {
    return this.#value;
  }
  [Symbol.dispose]() {
    disposedCounters++;
  }
}

class Vault extends RpcTarget {
  #secret;
  #opens = 0;
  constructor(secret) {
    super();
    this.#secret = secret;
  }
  open(guess) {
    this.#opens++;
    return guess === this.#secret;
  }
  get opens() {
    return this.#opens;
  }
}

// Stubs received as call parameters are disposed by capnweb when the call returns; anything we
// hand back must hold its own reference.
//  - A stub the peer exported to us (["export", id]) arrives as an RpcStub: dup() it.
//  - A stub to one of OUR objects handed back to us (["import", id]) arrives as an RpcPromise
//    wrapping the local target; capnweb 0.12.0 refuses to dup() that ("Can't dup an RpcTarget
//    stub as a promise."), and returning it as-is fails once the params are disposed. An
//    identity map() yields a fresh, independently owned stub to the same local object.
function keepStubs(value) {
  if (value instanceof RpcPromise) return value.map((x) => x);
  if (value instanceof RpcStub) return value.dup();
  if (Array.isArray(value)) return value.map(keepStubs);
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out = {};
    for (const key of Object.keys(value)) out[key] = keepStubs(value[key]);
    return out;
  }
  return value;
}

// Byte streams carry the pattern byte k = k % 251, in chunks of at most 64 KiB.
const CHUNK_BYTES = 64 * 1024;

function patternChunk(start, len) {
  const chunk = new Uint8Array(len);
  for (let i = 0; i < len; i++) chunk[i] = (start + i) % 251;
  return chunk;
}

class TestTarget extends RpcTarget {
  #socket;
  // `socket`: the session's WebSocket (none for an HTTP batch).
  constructor(socket) {
    super();
    this.#socket = socket;
  }
  square(i) {
    return i * i;
  }
  add(a, b) {
    return a + b;
  }
  callSquare(self, i) {
    // Deliberately not awaited: the result carries a promise.
    return { result: self.square(i) };
  }
  throwError() {
    throw new RangeError("test error");
  }
  makeCounter(i) {
    return new Counter(i);
  }
  getCounter() {
    return new Counter(0);
  }
  async incrementCounter(c, i = 1) {
    return await c.increment(i);
  }
  async callFunction(func, i) {
    // `func` is a stub of the caller's function: this calls back to the caller mid-call.
    return { result: await func(i) };
  }
  async useCounter(c, i) {
    // `c` may be a stub this server never made (forwarded from another session/peer).
    return await c.increment(i);
  }
  newCounterFn() {
    let total = 0;
    return (increment = 0) => {
      total += increment;
      return total;
    };
  }
  foo() {
    return { bar: { baz: () => "qux" } };
  }
  generateFibonacci(n) {
    if (n > 1000000) throw new RangeError(`n must be at most 1000000, not ${n}`);
    const out = [];
    let a = 0;
    let b = 1;
    for (let k = 0; k < n; k++) {
      out.push(a);
      [a, b] = [b, a + b];
    }
    return out;
  }
  returnNull() {
    return null;
  }
  returnUndefined() {
    return undefined;
  }
  returnNumber(i) {
    return i;
  }
  echo(v) {
    return keepStubs(v);
  }
  delay(ms, v) {
    return new Promise((resolve) => setTimeout(() => resolve(keepStubs(v)), ms));
  }
  listIds(n) {
    if (n > 1000000) throw new RangeError(`n must be at most 1000000, not ${n}`);
    const out = [];
    for (let k = 1; k <= n; k++) out.push(k);
    return out;
  }
  getUser(id) {
    return { id, name: "user" + id };
  }
  // Harness extra, not in CONFORMANCE.md: how many counters were disposed, so a Rust
  // client's releases can be observed.
  disposedCounters() {
    return disposedCounters;
  }
  closeSocket(code, reason) {
    if (!this.#socket) throw new TypeError("closeSocket() needs a WebSocket session");
    this.#socket.close(code, reason);
  }
  makeVault(secret) {
    return new Vault(secret);
  }
  readBytes(n) {
    // Lazy: a chunk is made only when the consumer (capnweb's pump into the pipe) pulls, so the
    // pipe's flow control paces the producer.
    let sent = 0;
    return new ReadableStream({
      pull(controller) {
        if (sent >= n) {
          controller.close();
          return;
        }
        const len = Math.min(CHUNK_BYTES, n - sent);
        controller.enqueue(patternChunk(sent, len));
        sent += len;
        if (sent >= n) controller.close();
      },
    });
  }
  async sumBytes(stream) {
    // A source error reaches us as the reader's rejection; letting it propagate makes the call
    // reject with that same error.
    let bytes = 0;
    let checksum = 0;
    for await (const chunk of stream) {
      bytes += chunk.length;
      for (let i = 0; i < chunk.length; i++) checksum = (checksum + chunk[i]) >>> 0;
    }
    return { bytes, checksum };
  }
  async writeBytes(n, w) {
    // Finish (close, which waits for the peer's ack of every write) before returning: capnweb
    // releases a writable parameter when the call returns, which would abort it.
    const writer = w.getWriter();
    for (let sent = 0; sent < n; ) {
      const len = Math.min(CHUNK_BYTES, n - sent);
      await writer.write(patternChunk(sent, len));
      sent += len;
    }
    await writer.close();
    return n;
  }
  echoStream(stream) {
    // Relayed, as echoRequest's body is (see relay): each chunk, a stub inside it included, goes
    // back as it arrives.
    return relay(stream);
  }
  async echoBlob(blob) {
    return new Blob([await blob.arrayBuffer()], { type: blob.type });
  }
  echoRequest(req) {
    // The body is passed on as a stream, but re-wrapped: capnweb hands us the body as the readable
    // end of a TransformStream, whose prototype under Node 20 is not ReadableStream.prototype,
    // so capnweb would refuse to serialize it ("Cannot serialize value: [object ReadableStream]").
    const body = req.body === null ? null : relay(req.body);
    return new Response(body, { status: 200, headers: { "x-method": req.method } });
  }
}

// A plain ReadableStream that passes on the chunks of `stream` (and its end, error or
// cancellation), for handing a received stream back to capnweb. The source is locked at once, so
// capnweb does not cancel it as an unconsumed parameter when the call returns.
function relay(stream) {
  const reader = stream.getReader();
  return new ReadableStream({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

function parseArgs(argv) {
  let host = "127.0.0.1";
  let port = 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let v;
    if (a === "--listen") v = argv[++i];
    else if (a.startsWith("--listen=")) v = a.slice("--listen=".length);
    else {
      process.stderr.write(`usage: node server.mjs [--listen HOST:PORT]\nunknown argument: ${a}\n`);
      process.exit(2);
    }
    const m = /^(.*):(\d+)$/.exec(v ?? "");
    if (!m) {
      process.stderr.write(`--listen expects HOST:PORT, got ${v}\n`);
      process.exit(2);
    }
    host = m[1].replace(/^\[(.*)\]$/, "$1");
    port = Number(m[2]);
  }
  return { host, port };
}

function pathOf(req) {
  try {
    return new URL(req.url ?? "/", "http://x").pathname;
  } catch {
    return null;
  }
}

const { host, port } = parseArgs(process.argv.slice(2));

const server = http.createServer((req, res) => {
  if (pathOf(req) !== "/") {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
    return;
  }
  if (req.method !== "POST") {
    res.writeHead(405, { allow: "POST", "content-type": "text/plain" });
    res.end("This endpoint only accepts POST requests.\n");
    return;
  }
  nodeHttpBatchRpcResponse(req, res, new TestTarget()).catch((err) => {
    process.stderr.write(`batch session failed: ${err?.stack ?? err}\n`);
    if (!res.headersSent) {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`batch session failed: ${err?.message ?? err}\n`);
    } else {
      res.destroy();
    }
  });
});

const wss = new WebSocketServer({ noServer: true });
wss.on("error", (err) => process.stderr.write(`ws server error: ${err?.stack ?? err}\n`));

server.on("upgrade", (req, socket, head) => {
  socket.on("error", () => {});
  if (pathOf(req) !== "/") {
    socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on("error", (err) => process.stderr.write(`websocket error: ${err?.message ?? err}\n`));
    try {
      newWebSocketRpcSession(ws, new TestTarget(ws));
    } catch (err) {
      process.stderr.write(`failed to start websocket session: ${err?.stack ?? err}\n`);
      ws.close(1011, "internal error");
    }
  });
});

server.on("clientError", (err, socket) => {
  socket.destroy();
});

// A misbehaving peer must not take the whole server down.
process.on("uncaughtException", (err) => process.stderr.write(`uncaught exception: ${err?.stack ?? err}\n`));
process.on("unhandledRejection", (err) => process.stderr.write(`unhandled rejection: ${err?.stack ?? err}\n`));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));

server.listen(port, host, () => {
  const addr = server.address();
  const shownHost = addr.family === "IPv6" || addr.family === 6 ? `[${addr.address}]` : addr.address;
  process.stdout.write(`listening on http://${shownHost}:${addr.port}\n`);
});
