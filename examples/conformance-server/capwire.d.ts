// TypeScript declarations of capwire RPC interfaces, generated from the Rust
// services by capwire::typescript::Declarations. Do not edit: regenerate instead.

import type { RpcStub, RpcTarget } from "capnweb";

/**
 * The main object of every conformance session (`TestTarget` in CONFORMANCE.md).
 */
export interface TestTarget extends RpcTarget {
  /**
   * `i * i`.
   */
  square(i: number): number;
  /**
   * `a + b`.
   */
  add(a: number, b: number): number;
  /**
   * `{ result: target.square(i) }`, with the call not awaited: a promise in a value.
   */
  callSquare(target: RpcStub<TestTarget>, i: number): CallSquareResult;
  /**
   * `{ result: await func(i) }`: calls back into the caller's function mid-call.
   */
  callFunction(func: RpcStub<(arg0: number) => unknown>, i: number): CallFunctionResult;
  /**
   * A closure `(increment = 0) => total` keeping a running total from 0.
   */
  newCounterFn(): RpcStub<(arg0?: number | null) => number>;
  /**
   * `{ bar: { baz: F } }`, `F` a function returning `"qux"`.
   */
  foo(): Foo;
  /**
   * Rejects with `RangeError: test error`.
   */
  throwError(): undefined;
  /**
   * A new counter starting at `i`, by reference.
   */
  makeCounter(i: number | bigint): Counter;
  /**
   * A new counter starting at 0, by reference.
   */
  getCounter(): Counter;
  /**
   * `await c.increment(i)`.
   */
  incrementCounter(c: RpcStub<Counter>, i?: number | bigint | null): number | bigint;
  /**
   * `await c.increment(i)`, for a counter that may live anywhere.
   */
  useCounter(c: RpcStub<Counter>, i?: number | bigint | null): number | bigint;
  /**
   * The first `n` Fibonacci numbers, as JavaScript numbers (past the 1476th they are
   * `Infinity`, as in JavaScript). `n` above [`MAX_LIST`] is refused: the caller picks
   * `n`, so it must not pick how much this allocates.
   */
  generateFibonacci(n: number): Array<number>;
  /**
   * `null`.
   */
  returnNull(): number | null;
  /**
   * `undefined`.
   */
  returnUndefined(): undefined;
  /**
   * `i`.
   */
  returnNumber(i: number): number;
  /**
   * `v`, unchanged.
   */
  echo(v: unknown): unknown;
  /**
   * `v`, after `ms` milliseconds, without blocking other calls.
   */
  delay(ms: number, v: unknown): unknown;
  /**
   * At once, a promise made from a future that settles to `v` after `ms` milliseconds:
   * calls pipelined on it (`later(50, makeCounter(1)).increment(2)`) wait for it, then
   * are delivered in the order they were made.
   */
  later(ms: number, v: unknown): unknown;
  /**
   * A stub of the Durable Object `DurableCounter` named `name`: every session reaches
   * the same object, and so does the same server after a restart with the same
   * `--data-dir`.
   */
  durableCounter(name: string): RpcStub<DurableCounter>;
  /**
   * `[1, 2, …, n]`; `n` above [`MAX_LIST`] is refused.
   */
  listIds(n: number): Array<number>;
  /**
   * `{ id, name: "user" + id }`.
   */
  getUser(id: number | bigint): User;
  /**
   * A new vault holding `secret`, by reference.
   */
  makeVault(secret: string): Vault;
  /**
   * A stream of exactly `n` bytes, byte `k` being `k % 251`, made as it is read.
   */
  readBytes(n: number | bigint): ReadableStream<Uint8Array>;
  /**
   * The count and the checksum (sum mod 2^32) of the bytes of `stream`.
   */
  sumBytes(stream: ReadableStream<Uint8Array>): ByteSum;
  /**
   * Writes `n` bytes (byte `k` = `k % 251`) into `w` in chunks of at most 64 KiB, closes
   * it, and returns `n`.
   */
  writeBytes(n: number | bigint, w: WritableStream<Uint8Array>): number | bigint;
  /**
   * A stream of any values back: the same values in the same order (objects, strings,
   * numbers, stubs; a stub chunk still calls its original object). Each chunk goes on
   * as it arrives, under flow control both ways.
   */
  echoStream(stream: ReadableStream<unknown>): ReadableStream<unknown>;
  /**
   * The same bytes and type.
   */
  echoBlob(blob: Blob): Blob;
  /**
   * `200`, header `x-method` set to the request's method, and the request's body.
   */
  echoRequest(request: Request): Response;
}

/**
 * The result of `callSquare`: a promise inside a value.
 */
export type CallSquareResult = {
/**
 * The promised square.
 */
result: number, };

/**
 * The result of `callFunction`.
 */
export type CallFunctionResult = {
/**
 * What the function returned.
 */
result: unknown, };

/**
 * The result of `foo`: a function inside plain data.
 */
export type Foo = {
/**
 * `{ baz }`.
 */
bar: Bar, };

/**
 * Holds `baz`.
 */
export type Bar = {
/**
 * Returns `"qux"`.
 */
baz: RpcStub<() => string>, };

/**
 * A counter handed out by reference.
 */
export interface Counter extends RpcTarget {
  /**
   * Adds `amount` (default 1) and returns the new value.
   */
  increment(amount?: number | bigint | null): number | bigint;
  /**
   * The current value (a property read on the wire).
   */
  readonly value: number | bigint;
}

/**
 * The Durable Object of `durableCounter(name)`: a counter whose value is stored durably.
 */
export interface DurableCounter extends RpcTarget {
  /**
   * Adds `amount` (default 1) and returns the new value, stored before it is returned.
   */
  increment(amount?: number | bigint | null): number | bigint;
  /**
   * The stored value (0 for a new object).
   */
  readonly value: number | bigint;
  /**
   * The object's ID: 64 lowercase hex digits, the same for the same name on every run.
   */
  readonly id: string;
}

/**
 * A user record.
 */
export type User = {
/**
 * The ID.
 */
id: number | bigint,
/**
 * `"user" + id`.
 */
name: string, };

/**
 * Holds a secret nobody can read; counts how often it was opened.
 */
export interface Vault extends RpcTarget {
  /**
   * `true` when `guess` is the secret; counts the call.
   */
  open(guess: string): boolean;
  /**
   * How many times `open` was called.
   */
  readonly opens: number | bigint;
}

/**
 * The result of `sumBytes`.
 */
export type ByteSum = {
/**
 * How many bytes were read.
 */
bytes: number | bigint,
/**
 * Their sum, mod 2^32.
 */
checksum: number, };
