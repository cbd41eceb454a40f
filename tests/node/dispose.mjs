// Disposal driven by the real capnweb client, for a Rust test to observe on the server.
//
//   node dispose.mjs ws://HOST:PORT/ N
//
// Makes N counters (and N closures), uses each once, has each counter echoed back, then disposes them all while the
// session stays open, makes one more call so the releases are known to have arrived, and
// prints `released`. Then it waits for a line on stdin, disposes the session and exits.

import { WebSocket as WsWebSocket } from "ws";
import { newWebSocketRpcSession } from "capnweb";
import { createInterface } from "node:readline";

if (typeof globalThis.WebSocket === "undefined") globalThis.WebSocket = WsWebSocket;

const [url, countText] = process.argv.slice(2);
const count = Number(countText);
if (!url || !(count > 0)) {
  process.stderr.write("usage: node dispose.mjs ws://HOST:PORT/ N\n");
  process.exit(2);
}

const api = newWebSocketRpcSession(url);
const counters = await Promise.all(Array.from({ length: count }, (_, i) => api.makeCounter(i)));
const fns = await Promise.all(Array.from({ length: count }, () => api.newCounterFn()));
for (const [i, c] of counters.entries()) {
  if ((await c.increment(1)) !== i + 1) throw new Error(`counter ${i} answered wrong`);
}
for (const f of fns) await f(1);
// Each counter introduced a second time (echoed back by the server): capnweb releases an
// import with a count of 1 whatever it was introduced with, so the server must give each
// introduction its own ID for these releases to free the counter.
const echoed = await Promise.all(counters.map((c) => api.echo({ c })));
for (const [i, e] of echoed.entries()) {
  if ((await e.c.increment(0)) !== i + 1) throw new Error(`echoed counter ${i} answered wrong`);
}
for (const e of echoed) e.c[Symbol.dispose]();
for (const c of counters) c[Symbol.dispose]();
for (const f of fns) f[Symbol.dispose]();
// Messages are handled in order: once this answers, every release before it was handled.
if ((await api.square(3)) !== 9) throw new Error("square answered wrong");
process.stdout.write("released\n");

const lines = createInterface({ input: process.stdin });
for await (const _ of lines) break;
api[Symbol.dispose]();
process.stdout.write("closed\n");
setTimeout(() => process.exit(0), 50).unref();
