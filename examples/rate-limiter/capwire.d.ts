// TypeScript declarations of capwire RPC interfaces, generated from the Rust
// services by capwire::typescript::Declarations. Do not edit: regenerate instead.

import type { RpcStub, RpcTarget } from "capnweb";

export interface Gateway extends RpcTarget {
  /**
   * `"ok"` if `user` may make a request now, else a `RangeError`.
   */
  request(user: string): string;
  /**
   * The bucket of `user`, by reference: a capability the client was handed.
   */
  limiter(user: string): RpcStub<RateLimiter>;
}

export interface RateLimiter extends RpcTarget {
  /**
   * Takes a token: `true` if there was one. The first token taken from a full bucket
   * sets the alarm that fills it again.
   */
  tryAcquire(): boolean;
  /**
   * Tokens left.
   */
  readonly tokens: number;
  /**
   * The alarm: the bucket is full again.
   */
  alarm(): undefined;
}
