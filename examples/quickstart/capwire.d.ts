// TypeScript declarations of capwire RPC interfaces, generated from the Rust
// services by capwire::typescript::Declarations. Do not edit: regenerate instead.

import type { RpcStub, RpcTarget } from "capnweb";

export interface WorkerA extends RpcTarget {
  /**
   * `WORKER_B.add(a, b)`, through the service binding.
   */
  addViaB(a: number | bigint, b: number | bigint): number | bigint;
  /**
   * Streams `n` bytes from worker B and hands the stream back to B to count: the bytes
   * pass through here without being held.
   */
  relayViaB(n: number | bigint): number | bigint;
  /**
   * `"{GREETING}, {name}!"`, `GREETING` being a `[vars]` entry.
   */
  greet(name: string): string;
  /**
   * Answers at once; the signup is recorded afterwards, by `wait_until` work.
   */
  signup(user: string): string;
}

export interface WorkerB extends RpcTarget {
  /**
   * `a + b`.
   */
  add(a: number | bigint, b: number | bigint): number | bigint;
  /**
   * A stream of `n` bytes, made as it is read.
   */
  download(n: number | bigint): ReadableStream<Uint8Array>;
  /**
   * How many bytes `stream` holds, read as they arrive.
   */
  count(stream: ReadableStream<Uint8Array>): number | bigint;
}

export interface CounterService extends RpcTarget {
  /**
   * Increments the durable counter called `name` (a Durable Object of the `COUNTER`
   * namespace): its value survives restarts.
   */
  durableIncrement(name: string): number | bigint;
  /**
   * A closure keeping a running total: `f(2), f(1), f(-5)` give 2, 3, -2.
   */
  newCounterFn(): RpcStub<(arg0: number | bigint) => number | bigint>;
  /**
   * A `Counter` starting at 0, by reference.
   */
  getCounter(): Counter;
  /**
   * `{ bar: { baz: () => "qux" } }`.
   */
  foo(): Foo;
}

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

export interface AnotherService extends RpcTarget {
  /**
   * `counter.increment(by)`.
   */
  useCounter(counter: RpcStub<Counter>, by: number | bigint): number | bigint;
}

export interface Introducer extends RpcTarget {
  /**
   * Introduces a new counter to the other service; returns what it reads after
   * incrementing by `by` twice.
   */
  introduce(by: number | bigint): number | bigint;
}

export interface TodoApp extends RpcTarget {
  /**
   * What this worker is.
   */
  about(): string;
}

export interface AdminEntrypoint extends RpcTarget {
  /**
   * Creates a user; returns its ID.
   */
  createUser(name: string): number | bigint;
  /**
   * Deletes a user and their tasks; returns whether the user existed.
   */
  deleteUser(id: number | bigint): boolean;
}

export interface UserEntrypoint extends RpcTarget {
  /**
   * The tasks of user `user_id`, oldest first.
   */
  getTasks(userId: number | bigint): Array<Task>;
  /**
   * Adds a task for user `user_id`.
   */
  createTask(userId: number | bigint, title: string): Task;
}

/**
 * A task.
 */
export type Task = {
/**
 * Its ID.
 */
id: number | bigint,
/**
 * Its title.
 */
title: string, };

export interface AdminApp extends RpcTarget {
  /**
   * Creates users `names` through the `TODO_ADMIN` binding; returns their IDs.
   */
  onboard(names: Array<string>): Array<number | bigint>;
  /**
   * Removes user `id` through the binding.
   */
  offboard(id: number | bigint): boolean;
}
