// Calls the typed-error service of tests/tests/typed_errors.rs and prints, one JSON line
// per call, what capnweb shows of the rejection: the error's class name, message, and
// every own property (the Rust error's fields).
// Usage: node app-errors.mjs ws://127.0.0.1:PORT/
import { WebSocket } from "ws";
import { newWebSocketRpcSession } from "capnweb";
globalThis.WebSocket ??= WebSocket;

const api = newWebSocketRpcSession(process.argv[2]);
for (const call of [() => api.find("missing"), () => api.reserve(99)]) {
  try {
    console.log(JSON.stringify({ resolved: await call() }));
  } catch (e) {
    const own = Object.fromEntries(Object.keys(e).map((k) => [k, e[k]]));
    console.log(JSON.stringify({ isError: e instanceof Error, name: e.name, message: e.message, ...own }));
  }
}
api[Symbol.dispose]();
