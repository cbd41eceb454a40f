// The rate limiter example (examples/rate-limiter), called by the real capnweb client.
//
//   node ratelimit.mjs ws://HOST:PORT/ USER
//
// Sends 12 requests for USER at once through the gateway, then reads USER's bucket (a
// Durable Object stub the gateway hands out) until its alarm has filled it again, and
// prints one JSON line: {"granted":N,"refused":M,"refusal":"...","left":K,"refilled":T}.

import { WebSocket as WsWebSocket } from "ws";
import { newWebSocketRpcSession } from "capnweb";

if (typeof globalThis.WebSocket === "undefined") globalThis.WebSocket = WsWebSocket;

const [url, user] = process.argv.slice(2);
if (!url || !user) {
  process.stderr.write("usage: node ratelimit.mjs ws://HOST:PORT/ USER\n");
  process.exit(2);
}

const api = newWebSocketRpcSession(url);
const outcomes = await Promise.allSettled(Array.from({ length: 12 }, () => api.request(user)));
const granted = outcomes.filter((o) => o.status === "fulfilled" && o.value === "ok").length;
const refusals = outcomes.filter((o) => o.status === "rejected");
const refusal = refusals.length ? `${refusals[0].reason.name}: ${refusals[0].reason.message}` : null;

const bucket = api.limiter(user);
const left = await bucket.tokens;
let refilled = left;
const deadline = Date.now() + 10_000;
while (refilled < 5 && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 50));
  refilled = await bucket.tokens;
}
process.stdout.write(JSON.stringify({ granted, refused: refusals.length, refusal, left, refilled }) + "\n");
bucket[Symbol.dispose]();
api[Symbol.dispose]();
setTimeout(() => process.exit(0), 50).unref();
