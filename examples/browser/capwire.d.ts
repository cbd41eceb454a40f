// TypeScript declarations of capwire RPC interfaces, generated from the Rust
// services by capwire::typescript::Declarations. Do not edit: regenerate instead.

import type { RpcStub, RpcTarget } from "capnweb";

export interface Board extends RpcTarget {
  /**
   * `"Hello, {name}!"`.
   */
  greet(name: string): string;
  /**
   * The list named `title`, by reference: an empty one on first use. At most
   * [`MAX_LISTS`] lists exist.
   */
  list(title: string): NoteList;
  /**
   * The titles of the board's lists, in order.
   */
  titles(): Array<string>;
  /**
   * A stream of exactly `n` bytes, byte `k` being `k % 251`, in chunks of at most
   * 16 KiB, made as it is read. `n` is at most [`MAX_DOWNLOAD`].
   */
  download(n: number): ReadableStream<Uint8Array>;
}

export interface NoteList extends RpcTarget {
  /**
   * The list's title (a property on the wire).
   */
  readonly title: string;
  /**
   * Appends `text` and returns how many notes the list now holds (at most
   * [`MAX_NOTES`]).
   */
  add(text: string): number;
  /**
   * The notes, in the order they were added.
   */
  notes(): Array<string>;
  /**
   * Calls `visit(index, note)` for each note in order, waiting for each call, and
   * returns how many it visited: the server calling back into the page.
   */
  each(visit: RpcStub<(arg0: number, arg1: string) => void>): number;
  /**
   * The notes as UTF-8 text, one line each, streamed one note per chunk.
   */
  export(): ReadableStream<Uint8Array>;
}
