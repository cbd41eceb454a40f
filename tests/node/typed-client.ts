// A TypeScript client of the conformance service, written against the declarations
// capwire generates from the Rust service (examples/conformance-server/capwire.d.ts).
// `tsc --strict` must accept every call below, with the types written out, and must
// reject each line marked `@ts-expect-error` (an unused marker is itself an error).
// Compiled to JavaScript, `run(url)` calls every row against a server and checks the
// results (tests/tests/typescript_client.rs does both).

import { newWebSocketRpcSession } from "capnweb";
import type { ByteSum, TestTarget, User } from "capwire-conformance";

function check(what: string, ok: boolean): void {
  if (!ok) {
    throw new Error(`${what}: unexpected result`);
  }
}

export async function run(url: string): Promise<void> {
  const api = newWebSocketRpcSession<TestTarget>(url);
  try {
    // TestTarget
    const square: number = await api.square(3);
    check("square", square === 9);
    const sum: number = await api.add(1, 2);
    check("add", sum === 3);
    const squared = await api.callSquare(api, 4);
    const result: number = squared.result;
    check("callSquare", result === 16);
    const called = await api.callFunction((i: number) => i * 2, 5);
    const value: unknown = called.result;
    check("callFunction", value === 10);
    let rejected = false;
    await api.throwError().catch((e: unknown) => {
      rejected = e instanceof Error && e.name === "RangeError";
    });
    check("throwError", rejected);
    const counter = api.makeCounter(2);
    const five: number | bigint = await counter.increment(3);
    check("makeCounter().increment", five === 5);
    const current: number | bigint = await counter.value;
    check("Counter.value", current === 5);
    const zero = await api.getCounter();
    const one: number | bigint = await api.incrementCounter(zero);
    const three: number | bigint = await api.incrementCounter(zero, 2);
    check("incrementCounter", one === 1 && three === 3);
    const four: number | bigint = await api.useCounter(zero, 1);
    check("useCounter", four === 4);
    const total = await api.newCounterFn();
    const two: number = await total(2);
    const still: number = await total();
    check("newCounterFn", two === 2 && still === 2);
    const foo = await api.foo();
    const qux: string = await foo.bar.baz();
    check("foo", qux === "qux");
    const fib: number[] = await api.generateFibonacci(6);
    check("generateFibonacci", fib.join() === "0,1,1,2,3,5");
    const nothing: number | null = await api.returnNull();
    check("returnNull", nothing === null);
    const none: undefined = await api.returnUndefined();
    check("returnUndefined", none === undefined);
    const seven: number = await api.returnNumber(7);
    check("returnNumber", seven === 7);
    const echoed: unknown = await api.echo({ list: [1, "two", null] });
    check("echo", JSON.stringify(echoed) === '{"list":[1,"two",null]}');
    const later: unknown = await api.delay(1, "late");
    check("delay", later === "late");
    const ids: number[] = await api.listIds(3);
    check("listIds", ids.join() === "1,2,3");
    const user: User = await api.getUser(7);
    check("getUser", user.id === 7 && user.name === "user7");
    const bytes: ReadableStream<Uint8Array> = await api.readBytes(300);
    let read = 0;
    for await (const chunk of bytes) {
      read += chunk.length;
    }
    check("readBytes", read === 300);
    const upload = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([1, 2, 3]));
        controller.close();
      },
    });
    const counted: ByteSum = await api.sumBytes(upload);
    check("sumBytes", counted.bytes === 3 && counted.checksum === 6);
    let written = 0;
    const sink = new WritableStream<Uint8Array>({
      write(chunk) {
        written += chunk.length;
      },
    });
    const n: number | bigint = await api.writeBytes(500, sink);
    check("writeBytes", n === 500 && written === 500);
    const values = new ReadableStream<unknown>({
      start(controller) {
        controller.enqueue({ a: 1 });
        controller.enqueue("two");
        controller.close();
      },
    });
    const echoedStream: ReadableStream<unknown> = await api.echoStream(values);
    const reader = echoedStream.getReader();
    const back: unknown[] = [];
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      back.push(next.value);
    }
    check("echoStream", back.length === 2 && back[1] === "two");
    const blob: Blob = await api.echoBlob(new Blob(["hi"], { type: "text/plain" }));
    check("echoBlob", blob.type === "text/plain" && (await blob.text()) === "hi");
    const response: Response = await api.echoRequest(
      new Request("https://example.com/", { method: "PUT", body: "body" }),
    );
    check("echoRequest", response.headers.get("x-method") === "PUT" && (await response.text()) === "body");

    // Vault
    const vault = api.makeVault("sesame");
    const open: boolean = await vault.open("sesame");
    const opens: number | bigint = await vault.opens;
    check("Vault", open && opens === 1);

    // DurableCounter
    const durable = api.durableCounter("typed-client");
    const before: number | bigint = await durable.value;
    const after: number | bigint = await durable.increment();
    const id: string = await durable.id;
    check("DurableCounter", Number(after) === Number(before) + 1 && /^[0-9a-f]{64}$/.test(id));

    // What the declarations rule out.
    // @ts-expect-error: a wrong argument type
    void api.square("3");
    // @ts-expect-error: a missing argument
    void api.add(1);
    // @ts-expect-error: a method the service does not have
    void api.squareRoot(9);
    // @ts-expect-error: a private Rust method of Vault
    void vault.matches("sesame");
    // @ts-expect-error: a `pub(crate)` Rust method of Vault
    void vault.secret();
    // @ts-expect-error: a field of Vault
    void vault.opens_count;
    // @ts-expect-error: a getter is a property, not a method
    void counter.value();
    // @ts-expect-error: a string is not a Counter
    void api.incrementCounter("counter", 1);
    // @ts-expect-error: the result is a number, not a string
    const wrong: string = await api.square(2);
    void wrong;
  } finally {
    api[Symbol.dispose]();
  }
}
