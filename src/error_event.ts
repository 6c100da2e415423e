/**
 * The `error` event of `Main`.
 *
 * @module
 */

import type { FailurePhase, ServiceError } from "./errors.ts";

/**
 * Dispatched on `Main` (in the main thread) for every service failure (a
 * lifecycle phase that threw or timed out), every message handler that
 * threw, and every error that escaped all handlers in a pool. `error` is
 * the {@linkcode ServiceError} rebuilt in the main thread, its `cause` the
 * thrown error (name, message and stack).
 *
 * The default action logs the error with its pool and service; call
 * `event.preventDefault()` in a listener to log it your own way.
 *
 * @example Count failures by pool, log them yourself
 * ```ts
 * import { Main, ServiceError, ServiceErrorEvent } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const main = new Main();
 * const perPool = new Map<string, number>();
 * main.addEventListener("error", (event) => {
 *   event.preventDefault();
 *   perPool.set(event.pool, (perPool.get(event.pool) ?? 0) + 1);
 * });
 * const error = new ServiceError("io", "reader", "handler", new Error("bad"));
 * main.dispatchEvent(new ServiceErrorEvent(error, "q://jobs"));
 * assert.equal(perPool.get("io"), 1);
 * ```
 */
export class ServiceErrorEvent extends ErrorEvent {
  /** The pool where it happened. */
  readonly pool: string;
  /** The service (`*` for an uncaught error of the pool). */
  readonly service: string;
  /** Where it happened: a lifecycle phase, `handler` or `uncaught`. */
  readonly phase: FailurePhase;
  /** The queue of the message, when a handler threw. */
  readonly queue: string | undefined;

  /**
   * Makes the event (`type` is `"error"`, cancelable).
   *
   * @param error The failure.
   * @param queue The queue of the message, when a handler threw.
   */
  constructor(error: ServiceError, queue?: string) {
    super("error", { error, message: error.message, cancelable: true });
    this.pool = error.pool;
    this.service = error.service;
    this.phase = error.phase;
    this.queue = queue;
  }

  /** The failure, rebuilt in the main thread; its `cause` is what was thrown. */
  override get error(): ServiceError {
    return super.error as ServiceError;
  }
}
