// How a capnweb WebSocket session sees a capwire server end it.
//
//   node close.mjs abort ws://127.0.0.1:PORT/
//
// `abort`: a capnweb session sends a bigint longer than the server's `max_bigint_digits`;
// the server aborts. Prints one JSON line: the error the call rejected with, and the code
// and reason of the close frame the server sent on the session's WebSocket, as capnweb's
// transport (and any JavaScript `WebSocket`) reads them:
//   {"error":"TypeError: ...","code":3000,"reason":"..."}

import { WebSocket } from "ws";
import { newWebSocketRpcSession } from "capnweb";

if (typeof globalThis.WebSocket === "undefined") globalThis.WebSocket = WebSocket;

const [what, url] = process.argv.slice(2);
if (what !== "abort" || !url) {
  process.stderr.write("usage: node close.mjs abort ws://HOST:PORT/\n");
  process.exit(2);
}

const ws = new WebSocket(url);
const closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
const api = newWebSocketRpcSession(ws);
let error;
try {
  await api.echo(10n ** 20000n);
  error = "the call resolved";
} catch (e) {
  error = `${e.name}: ${e.message}`;
}
const { code, reason } = await closed;
process.stdout.write(JSON.stringify({ error, code, reason }) + "\n");
process.exit(0);
