/**
 * The error classes of magic-foundation. Each sets `name`, keeps the original
 * error as `cause` and says in its message what failed and why.
 *
 * @module
 */

/** A phase of a service's lifecycle. */
export type LifecyclePhase = "initialize" | "run" | "terminate";

/**
 * Where a {@linkcode ServiceError} happened: a lifecycle phase, a message
 * `handler`, or `uncaught` (a stray callback of the pool; the service is
 * then `*`).
 */
export type FailurePhase = LifecyclePhase | "handler" | "uncaught";

/**
 * A service's `initialize`, `run` or `terminate` threw or did not finish in
 * time, one of its message handlers threw, or an error escaped every handler
 * in a pool. Kept on the service as `service.error` (lifecycle phases), and
 * carried by the `error` events of `Main` (see `ServiceErrorEvent`).
 *
 * @example Inspect a failure
 * ```ts
 * import { ServiceError } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const error = new ServiceError("io", "reader", "run", new Error("boom"));
 * assert.equal(error.message, 'Service "reader" in pool "io" failed in run(): boom');
 * const handler = new ServiceError("io", "reader", "handler", new Error("bad"));
 * assert.equal(
 *   handler.message,
 *   'Service "reader" in pool "io" failed in a message handler: bad',
 * );
 * ```
 */
export class ServiceError extends Error {
  /** The pool the service runs in. */
  readonly pool: string;
  /** The service's name (`*` for an uncaught error of the pool). */
  readonly service: string;
  /** Where it failed. */
  readonly phase: FailurePhase;

  /**
   * Wraps what a lifecycle phase or a handler threw.
   *
   * @param pool The pool the service runs in.
   * @param service The service's name (`*` for an uncaught error of the pool).
   * @param phase Where it failed.
   * @param cause What was thrown.
   */
  constructor(
    pool: string,
    service: string,
    phase: FailurePhase,
    cause: unknown,
  ) {
    super(`${where(pool, service, phase)}: ${describe(cause)}`, { cause });
    this.name = "ServiceError";
    this.pool = pool;
    this.service = service;
    this.phase = phase;
  }
}

function where(pool: string, service: string, phase: FailurePhase): string {
  switch (phase) {
    case "handler":
      return `Service "${service}" in pool "${pool}" failed in a message handler`;
    case "uncaught":
      return `Uncaught error in pool "${pool}"`;
    default:
      return `Service "${service}" in pool "${pool}" failed in ${phase}()`;
  }
}

/**
 * A queue name is malformed: empty, without a `scheme://`, with white space,
 * or with a wildcard where a concrete name is needed (in `publish`).
 *
 * @example Catch a bad name
 * ```ts
 * import { QueueNameError } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const error = new QueueNameError("orders", "it has no scheme");
 * assert.ok(error instanceof TypeError);
 * assert.equal(error.queue, "orders");
 * ```
 */
export class QueueNameError extends TypeError {
  /** The name that was refused. */
  readonly queue: string;

  /**
   * Makes the error for a refused queue name.
   *
   * @param queue The name that was refused.
   * @param reason Why it was refused.
   */
  constructor(queue: string, reason: string) {
    super(`Invalid queue name "${queue}": ${reason}`);
    this.name = "QueueNameError";
    this.queue = queue;
  }
}

/**
 * `publish` or `request` was given data that structured clone cannot copy
 * (a function, a symbol, a DOM node, …). Nothing was sent.
 *
 * Not every loss is an error: a class instance is copied as a plain object,
 * and its prototype, methods, getters and `#private` fields are dropped
 * silently (`structuredClone` does the same). Publish plain data.
 *
 * @example Catch uncloneable data
 * ```ts
 * import { DataCloneError } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const error = new DataCloneError("q://jobs", new Error("() => 1 could not be cloned"));
 * assert.equal(error.queue, "q://jobs");
 * assert.match(error.message, /q:\/\/jobs/);
 * ```
 */
export class DataCloneError extends TypeError {
  /** The queue the data was published on. */
  readonly queue: string;

  /**
   * Wraps the error structured clone raised.
   *
   * @param queue The queue the data was published on.
   * @param cause The error structured clone raised.
   */
  constructor(queue: string, cause: unknown) {
    super(
      `Cannot publish on "${queue}": the data cannot be cloned: ${
        describe(cause)
      }`,
      { cause },
    );
    this.name = "DataCloneError";
    this.queue = queue;
  }
}

/**
 * A reply to a plain NATS client (a request whose reply subject is not a
 * magic-foundation process's) holds a value JSON cannot carry faithfully: a
 * `Map`, a `Set`, a `BigInt`, `NaN` or `±Infinity`, an invalid `Date`, a
 * typed array or a `Uint8Array` inside the data, a class instance, a
 * function, a cycle, … Such a reply goes as JSON text (`undefined` fields
 * dropped and a `Date` as its ISO string, as `JSON.stringify` does; a whole
 * `Uint8Array` as its bytes). Nothing was sent.
 *
 * @example Catch data a plain client could not read
 * ```ts
 * import { JsonDataError } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const error = new JsonDataError("reply://nats/_INBOX.a1", "data.tags", "a Map");
 * assert.equal(error.path, "data.tags");
 * assert.equal(
 *   error.message,
 *   'Cannot publish on "reply://nats/_INBOX.a1": it goes to a plain NATS client as JSON, and data.tags is a Map, which JSON cannot carry',
 * );
 * ```
 */
export class JsonDataError extends TypeError {
  /** The queue the data was published on. */
  readonly queue: string;
  /** Where the value is in the data: `data`, `data.tags`, `data.list[2]`, … */
  readonly path: string;

  /**
   * Makes the error for a value JSON cannot carry.
   *
   * @param queue The queue the data was published on.
   * @param path Where the value is in the data.
   * @param what What the value is (`a Map`, `NaN`, `a cycle`, …).
   */
  constructor(queue: string, path: string, what: string) {
    super(
      `Cannot publish on "${queue}": it goes to a plain NATS client as JSON, and ${path} is ${what}, which JSON cannot carry`,
    );
    this.name = "JsonDataError";
    this.queue = queue;
    this.path = path;
  }
}

/**
 * A `request` got no reply within its timeout, or a `terminate` hook did not
 * finish in time.
 *
 * @example Catch a request timeout
 * ```ts
 * import { TimeoutError } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const error = new TimeoutError('No reply on "q://math/add" within 1000 ms');
 * assert.equal(error.name, "TimeoutError");
 * ```
 */
export class TimeoutError extends Error {
  /**
   * Makes a timeout error.
   *
   * @param message What did not finish in time.
   * @param options The usual error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TimeoutError";
  }
}

/**
 * A `request` was made on a queue that no subscription in any pool matches,
 * so no reply can ever come (the NATS "no responders" case).
 *
 * @example Catch a request nobody answers
 * ```ts
 * import { NoRespondersError } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const error = new NoRespondersError("q://math/add");
 * assert.equal(error.queue, "q://math/add");
 * ```
 */
export class NoRespondersError extends Error {
  /** The queue the request was made on. */
  readonly queue: string;

  /**
   * Makes the error for a request nobody can answer.
   *
   * @param queue The queue the request was made on.
   */
  constructor(queue: string) {
    super(`No subscription matches "${queue}": the request cannot be answered`);
    this.name = "NoRespondersError";
    this.queue = queue;
  }
}

/**
 * A `publish` waited longer than the NATS publish timeout for the NATS
 * pool's NATS connection to take it: the server has been unreachable (or too slow) for that
 * long. The message itself stays queued and goes out, in order, once NATS
 * takes it; the rejection tells the publisher to stop or slow down.
 *
 * @example Catch an outage that lasts too long
 * ```ts
 * import { NatsUnavailableError } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const error = new NatsUnavailableError("q://orders", 30_000);
 * assert.equal(error.queue, "q://orders");
 * assert.match(error.message, /30000 ms/);
 * ```
 */
export class NatsUnavailableError extends Error {
  /** The queue of the publish. */
  readonly queue: string;
  /** How long the publish waited, in ms. */
  readonly waited: number;

  /**
   * Makes the error for a publish NATS did not take in time.
   *
   * @param queue The queue of the publish.
   * @param waited How long it waited, in ms.
   */
  constructor(queue: string, waited: number) {
    super(
      `Publish on "${queue}" waited ${waited} ms for NATS to take it (is the server reachable?); the message stays queued and goes out in order once NATS takes it`,
    );
    this.name = "NatsUnavailableError";
    this.queue = queue;
    this.waited = waited;
  }
}

/**
 * A message larger than the NATS server accepts (its `max_payload`, 1 MiB
 * unless the server's configuration raises it): `publish` or `request`
 * rejects with it at the call, before the message is delivered anywhere
 * (local pools included), in a program joined to NATS.
 *
 * @example Read the sizes
 * ```ts
 * import { MessageTooLargeError } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const error = new MessageTooLargeError("q://files", 2_097_170, 1_048_576);
 * assert.ok(error instanceof RangeError);
 * assert.equal(error.size, 2_097_170);
 * assert.equal(error.limit, 1_048_576);
 * assert.match(error.message, /^Cannot publish on "q:\/\/files": /);
 * ```
 */
export class MessageTooLargeError extends RangeError {
  /** The queue of the publish. */
  readonly queue: string;
  /** The message's size on the wire (payload and headers), in bytes. */
  readonly size: number;
  /** The server's `max_payload`, in bytes. */
  readonly limit: number;

  /**
   * Makes the error for a message of `size` bytes over `limit`.
   *
   * @param queue The queue of the publish.
   * @param size The message's size on the wire, in bytes.
   * @param limit The server's `max_payload`, in bytes.
   */
  constructor(queue: string, size: number, limit: number) {
    super(
      `Cannot publish on "${queue}": the message is ${size} bytes, over the NATS server's max_payload of ${limit} bytes (raise max_payload in the server's configuration, or send less)`,
    );
    this.name = "MessageTooLargeError";
    this.queue = queue;
    this.size = size;
    this.limit = limit;
  }
}

/**
 * NATS refused the program's connection in a way no retry cures: the server
 * rejected the credentials (`Authorization Violation`), or TLS failed (the
 * server's certificate is not one the CA vouches for, the server has no
 * TLS). The run ends; `RunReport.failures` names this error and the exit
 * code is 1. The message names the server without any credentials.
 *
 * @example Read a refusal
 * ```ts
 * import { NatsAuthError } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const error = new NatsAuthError(
 *   "127.0.0.1:4222",
 *   'the server refused user "alice" and a password (Authorization Violation)',
 * );
 * assert.equal(error.name, "NatsAuthError");
 * assert.equal(error.server, "127.0.0.1:4222");
 * assert.match(error.message, /^Cannot join NATS at "127\.0\.0\.1:4222": /);
 * ```
 */
export class NatsAuthError extends Error {
  /** The server (or servers), without credentials. */
  readonly server: string;

  /**
   * Makes the error for a refused connection.
   *
   * @param server The server (or servers), without credentials.
   * @param reason What was refused, with the client's own words.
   * @param options The usual error options (`cause`: the client's error).
   */
  constructor(server: string, reason: string, options?: ErrorOptions) {
    super(`Cannot join NATS at "${server}": ${reason}`, options);
    this.name = "NatsAuthError";
    this.server = server;
  }
}

/**
 * The bus or the service was used after it stopped, or `Main` was used in a
 * way its state does not allow (running twice, no pools, …).
 *
 * @example Catch use after stop
 * ```ts
 * import { StateError } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const error = new StateError('Cannot publish on "q://a": pool "io" has stopped');
 * assert.equal(error.name, "StateError");
 * ```
 */
export class StateError extends Error {
  /**
   * Makes a state error.
   *
   * @param message What was attempted and why it is not possible now.
   * @param options The usual error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StateError";
  }
}

/** Errors cross a worker boundary as this plain record. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string | undefined;
}

/** Turns any thrown value into a record that survives `postMessage`. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    return { name: error.name, message: error.message, stack: error.stack };
  }
  return { name: "Error", message: describe(error) };
}

/** Rebuilds an `Error` from a record made by {@linkcode serializeError}. */
export function deserializeError(record: SerializedError): Error {
  const error = new Error(record.message);
  error.name = record.name;
  if (record.stack !== undefined) error.stack = record.stack;
  return error;
}

/** The message of an error, or the string form of any other thrown value. */
export function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
