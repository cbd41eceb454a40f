// @ts-check
// The notes board's page: talks to the capwire server with capnweb, over a WebSocket when
// it can open one and over HTTP batches when it cannot.
//
// For tests, `window.capwireDemo` offers `selfTest(params)` (a call, a pipelined chain, a
// callback and streams, reported as JSON-friendly data), `tryBatch(url, title, note, headers?)` and
// `tryWebSocket(url, title, note)` (adding a note through another endpoint, maybe of
// another origin, reporting success or failure).
// Query parameters: `?rpc=URL` (the HTTP endpoint, default `/rpc` on this origin) and
// `?ws=URL` (the WebSocket endpoint, default the same URL with `ws:`/`wss:`).

import { newHttpBatchRpcSession, newWebSocketRpcSession } from "capnweb";

// The board's types, generated from the Rust service into `capwire.d.ts` (see
// `examples/src/typescript.rs`); `tsconfig.json` checks this file against them.
/** @typedef {import("capnweb").RpcStub<import("./capwire").Board>} BoardStub */

/**
 * A connection to the board. Over a WebSocket, `api()` is one session for the page's
 * life; over HTTP, each `api()` is a new batch: the calls made on it in one tick of the
 * event loop travel in one request, and its stubs end with that request.
 * @typedef {object} Connection
 * @property {"websocket" | "http-batch"} transport
 * @property {() => BoardStub} api
 * @property {Array<[string, string]>} wire what went over the network, in order: over a
 *   WebSocket, each message sent or received as ["send" | "recv", message type]; over
 *   HTTP, each request as ["post", url]
 */

const params = new URLSearchParams(location.search);
const httpUrl = new URL(params.get("rpc") ?? "/rpc", location.href).href;
const wsUrl = params.get("ws") ?? httpUrl.replace(/^http/, "ws");

/**
 * The HTTP requests this page posted, as ["post", url], in order: capnweb posts a batch
 * with the global `fetch`, which this wraps to see them.
 * @type {Array<[string, string]>}
 */
const posted = [];
const fetchFromTheBrowser = window.fetch.bind(window);
window.fetch = (input, init) => {
  if (init?.method === "POST") {
    posted.push(["post", input instanceof Request ? input.url : String(input)]);
  }
  return fetchFromTheBrowser(input, init);
};

/**
 * Opens a WebSocket to `url`: resolves with it once open, or with null if it fails or
 * does not open within `ms` milliseconds.
 * @param {string} url
 * @param {number} ms
 * @returns {Promise<WebSocket | null>}
 */
function openWebSocket(url, ms) {
  return new Promise((resolve) => {
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      resolve(null);
      return;
    }
    const timer = setTimeout(() => {
      ws.close();
      resolve(null);
    }, ms);
    ws.addEventListener("open", () => {
      clearTimeout(timer);
      resolve(ws);
    });
    const failed = () => {
      clearTimeout(timer);
      resolve(null);
    };
    ws.addEventListener("error", failed);
    ws.addEventListener("close", failed);
  });
}

/**
 * The type of a Cap'n Web message (`push`, `pull`, `resolve`, ...).
 * @param {unknown} data
 * @returns {string}
 */
function messageType(data) {
  try {
    const message = JSON.parse(String(data));
    return Array.isArray(message) ? String(message[0]) : "?";
  } catch {
    return "?";
  }
}

/**
 * Connects to the board: a WebSocket session if one opens, else HTTP batches.
 * @returns {Promise<Connection>}
 */
async function connect() {
  const ws = await openWebSocket(wsUrl, 10000);
  if (!ws) {
    return { transport: "http-batch", api: () => newHttpBatchRpcSession(httpUrl), wire: posted };
  }
  // Record the traffic (before capnweb's own listener), to show pipelining at work.
  /** @type {Array<[string, string]>} */
  const wire = [];
  const send = ws.send.bind(ws);
  ws.send = (data) => {
    wire.push(["send", messageType(data)]);
    send(data);
  };
  ws.addEventListener("message", (event) => wire.push(["recv", messageType(event.data)]));
  /** @type {BoardStub} */
  const stub = newWebSocketRpcSession(ws);
  return { transport: "websocket", api: () => stub, wire };
}

/**
 * Reads a stream of bytes to its end.
 * @param {ReadableStream<Uint8Array>} stream
 * @returns {Promise<{ bytes: Uint8Array, chunks: number }>}
 */
async function readAll(stream) {
  const reader = stream.getReader();
  /** @type {Uint8Array[]} */
  const parts = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    length += value.length;
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return { bytes, chunks: parts.length };
}

/**
 * An error as plain data.
 * @param {unknown} e
 */
function describe(e) {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: "?", message: String(e) };
}

/**
 * Runs every feature once and reports what came back.
 * @param {Connection} conn
 * @param {{ name: string, title: string, notes: string[], bytes: number }} p
 */
async function selfTest(conn, p) {
  /** @type {Record<string, unknown>} */
  const report = { transport: conn.transport };

  // A call with a plain value, and one that rejects.
  report.greeting = await conn.api().greet(p.name);
  try {
    await conn.api().greet("");
    report.rejected = null;
  } catch (e) {
    report.rejected = describe(e);
  }

  // A pipelined chain: the list is used before it arrives; every call leaves before any
  // answer comes back (one round trip; over HTTP, one request).
  const mark = conn.wire.length;
  const api = conn.api();
  const list = api.list(p.title);
  const counts = p.notes.map((note) => list.add(note));
  const [added, notes, title] = await Promise.all([Promise.all(counts), list.notes(), list.title]);
  report.pipeline = { added, notes, title, wire: conn.wire.slice(mark) };
  report.titles = await conn.api().titles();

  // A callback: the server calls this function for each note.
  if (conn.transport === "websocket") {
    /** @type {Array<[number, string]>} */
    const visited = [];
    const count = await conn.api().list(p.title).each((/** @type {number} */ i, /** @type {string} */ note) => {
      visited.push([i, note]);
    });
    report.callback = { count, visited };
  } else {
    // An HTTP batch ends with its response, so the server cannot call back into it.
    report.callback = null;
  }

  // Streams: bytes made as they are read, and the notes as text.
  const download = await readAll(await conn.api().download(p.bytes));
  let checksum = 0;
  for (const b of download.bytes) checksum = (checksum + b) >>> 0;
  report.download = { length: download.bytes.length, checksum, chunks: download.chunks };
  const exported = await readAll(await conn.api().list(p.title).export());
  report.exported = new TextDecoder().decode(exported.bytes);
  return report;
}

/**
 * Adds `note` to the list `title` over one HTTP batch to `url` (which may be another
 * origin), reporting the list's new length or the error. With `headers` (say an
 * `authorization`), a request from another origin is preceded by a CORS preflight.
 * @param {string} url
 * @param {string} title
 * @param {string} note
 * @param {Record<string, string>} [headers]
 */
async function tryBatch(url, title, note, headers) {
  try {
    /** @type {BoardStub} */
    const board = newHttpBatchRpcSession(headers ? new Request(url, { headers }) : url);
    return { ok: true, value: await board.list(title).add(note) };
  } catch (e) {
    return { ok: false, error: describe(e) };
  }
}

/**
 * Adds `note` to the list `title` over a WebSocket to `url` (which may be another
 * origin), reporting the list's new length or the error.
 * @param {string} url
 * @param {string} title
 * @param {string} note
 */
async function tryWebSocket(url, title, note) {
  const ws = await openWebSocket(url, 10000);
  if (!ws) return { ok: false, error: { name: "WebSocket", message: "the WebSocket did not open" } };
  /** @type {BoardStub} */
  const board = newWebSocketRpcSession(ws);
  try {
    return { ok: true, value: await board.list(title).add(note) };
  } catch (e) {
    return { ok: false, error: describe(e) };
  } finally {
    board[Symbol.dispose]();
  }
}

// ---------------------------------------------------------------------------------------
// The app

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function element(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found;
}

/**
 * Shows the notes of the open list: over a WebSocket the server hands them to a callback
 * one by one; over HTTP it returns them in one array.
 * @param {Connection} conn
 * @param {string} title
 * @param {() => boolean} current whether this render is still the latest one
 */
async function render(conn, title, current) {
  /** @type {HTMLElement[]} */
  const items = [];
  /** @param {string} note */
  const item = (note) => {
    const li = document.createElement("li");
    li.textContent = note;
    items.push(li);
  };
  const list = conn.api().list(title);
  if (conn.transport === "websocket") {
    await list.each((/** @type {number} */ _i, /** @type {string} */ note) => {
      item(note);
    });
  } else {
    const notes = await list.notes();
    notes.forEach(item);
  }
  if (current()) element("notes").replaceChildren(...items);
}

/**
 * Wires the page's forms to the board; resolves once the open list is first shown.
 * @param {Connection} conn
 * @returns {Promise<void>}
 */
function start(conn) {
  const status = element("status");
  const title = /** @type {HTMLInputElement} */ (element("title"));
  const note = /** @type {HTMLInputElement} */ (element("note"));
  const exported = element("exported");
  /** @param {unknown} e */
  const fail = (e) => {
    status.textContent = `error: ${describe(e).message}`;
  };
  // Only the latest render shows: an older one finishing late would show stale notes.
  let renders = 0;
  const shown = () => {
    const mine = ++renders;
    return render(conn, title.value, () => mine === renders).catch(fail);
  };
  element("open").addEventListener("submit", (event) => {
    event.preventDefault();
    shown();
  });
  element("add").addEventListener("submit", (event) => {
    event.preventDefault();
    // Pipelined: the list and the note travel together.
    conn
      .api()
      .list(title.value)
      .add(note.value)
      .then(() => {
        note.value = "";
        return shown();
      })
      .catch(fail);
  });
  element("export").addEventListener("click", async () => {
    try {
      const { bytes } = await readAll(await conn.api().list(title.value).export());
      exported.textContent = new TextDecoder().decode(bytes);
      exported.hidden = false;
    } catch (e) {
      fail(e);
    }
  });
  status.textContent =
    conn.transport === "websocket" ? `connected over a WebSocket to ${wsUrl}` : `connected over HTTP batches to ${httpUrl}`;
  return shown();
}

const ready = connect().then(async (conn) => {
  await start(conn);
  return conn.transport;
});

Object.assign(window, {
  capwireDemo: {
    /** Resolves with the transport once connected and the open list is shown. */
    ready,
    /** @param {{ name: string, title: string, notes: string[], bytes: number }} p */
    selfTest: async (p) => selfTest(await connect(), p),
    tryBatch,
    tryWebSocket,
  },
});
