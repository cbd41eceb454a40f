// capnweb 0.12 calls per second: Node <-> Node in this process, and Node -> the capwire
// server whose URL is the first argument (the side-by-side benchmark starts it). Same job
// as bench/benches/side_by_side.rs: add(a, b), 1 and 64 calls in flight, every result
// checked, CAPWIRE_BENCH_ROUNDS rounds of CAPWIRE_BENCH_SECS seconds after a warm-up.
import { WebSocket, WebSocketServer } from "ws";
import { RpcTarget, newWebSocketRpcSession } from "capnweb";

globalThis.WebSocket ??= WebSocket;
const secs = Number(process.env.CAPWIRE_BENCH_SECS ?? 2);
const rounds = Number(process.env.CAPWIRE_BENCH_ROUNDS ?? 3);

class Calc extends RpcTarget {
  add(a, b) {
    return a + b;
  }
}

function nodeServer() {
  return new Promise((resolve) => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 }, () =>
      resolve(`ws://127.0.0.1:${wss.address().port}/`),
    );
    wss.on("connection", (ws) => newWebSocketRpcSession(ws, new Calc()));
  });
}

async function round(api, inFlight) {
  const latencies = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + secs * 1000;
  let next = 0;
  async function lane() {
    while (performance.now() < deadline) {
      const a = next++;
      const started = performance.now();
      const sum = await api.add(a, 1);
      if (sum !== a + 1) throw new Error(`wrong result ${sum} for ${a} + 1`);
      latencies.push(performance.now() - started);
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((x, y) => x - y);
  const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  return {
    rate: latencies.length / elapsed,
    p50: at(0.5) * 1000,
    p99: at(0.99) * 1000,
    cpuPerCall: (cpu.user + cpu.system) / latencies.length,
  };
}

async function measure(name, url, cpuCounts) {
  const api = newWebSocketRpcSession(url);
  for (const inFlight of [1, 64]) {
    const results = [];
    for (let r = 0; r <= rounds; r++) {
      const result = await round(api, inFlight);
      if (r > 0) results.push(result);
    }
    results.sort((x, y) => x.rate - y.rate);
    const median = results[Math.floor(results.length / 2)];
    const k = (x) => (x / 1000).toFixed(1) + "k";
    const cpu = cpuCounts ? median.cpuPerCall.toFixed(2) : "–";
    console.log(
      `| ${name} | ${inFlight} | ${k(results[0].rate)} / ${k(median.rate)} / ${k(results.at(-1).rate)} | ${median.p50.toFixed(1)} / ${median.p99.toFixed(1)} | ${cpu} |`,
    );
  }
  api[Symbol.dispose]();
}

console.log("| system | in flight | calls/s min / median / max | p50 / p99 µs (median round) | CPU µs per call |");
console.log("|---|---|---|---|---|");
await measure("capnweb Node ↔ Node", await nodeServer(), true);
if (process.argv[2]) await measure("capnweb Node → capwire", process.argv[2], false);
process.exit(0);
