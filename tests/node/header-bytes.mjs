// Sends header values that are not UTF-8 to the header service of
// tests/tests/header_bytes.rs and prints, as one JSON line, the bytes the Rust side read
// and the value JavaScript reads from headers the Rust side made of bytes.
// Usage: node header-bytes.mjs ws://127.0.0.1:PORT/
import { WebSocket } from "ws";
import { newWebSocketRpcSession } from "capnweb";
globalThis.WebSocket ??= WebSocket;

const api = newWebSocketRpcSession(process.argv[2]);
// A byte string: one character per byte, 0xFF and 0x80 among them.
const sent = new Headers([["x-bin", "\u00ff\u0080ok"], ["x-plain", "yes"]]);
const bytes = await api.bytesOf(sent, "x-bin");
const plain = await api.bytesOf(sent, "x-plain");
const made = await api.make("x-bin", [0xfe, 0x41, 0x80]);
console.log(JSON.stringify({
  bytes,
  plain,
  isHeaders: made instanceof Headers,
  made: [...made.get("x-bin")].map((c) => c.charCodeAt(0)),
}));
api[Symbol.dispose]();
