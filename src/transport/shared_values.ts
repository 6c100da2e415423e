/**
 * Large strings and byte arrays carried in shared memory beside a
 * BroadcastChannel message.
 *
 * Every isolate with a BroadcastChannel open receives a copy of every channel
 * message, and Deno hands it over at about 60 ns a byte (a 512 KiB message
 * costs each pool ~30 ms of CPU, whether it is for that pool or not). A
 * value moved into a `SharedArrayBuffer` leaves only a reference on the
 * channel: the pools the message is for read it, the others drop it.
 *
 * Only values that come back exactly move: well-formed strings (UTF-8 on the
 * way) and plain `Uint8Array`s that span their whole, non-shared buffer.
 *
 * @module
 */

/** The smallest message (by its size estimate) whose data moves beside the channel. */
export const SHARED_VALUE_MIN_SIZE = 64 * 1024;

/** A value held in shared memory: `[kind, bytes]` (0: UTF-8 string, 1: bytes). */
export type SharedValue = [kind: 0 | 1, bytes: SharedArrayBuffer];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * `data` in shared memory, or `undefined` when it does not move (too small,
 * or a value that would not come back exactly).
 *
 * @example
 * ```ts
 * import { fromShared, toShared } from "./shared_values.ts";
 * import assert from "node:assert/strict";
 *
 * const text = "é".repeat(100_000);
 * assert.equal(fromShared(toShared(text)!), text);
 * assert.equal(toShared("small"), undefined);
 * assert.equal(toShared("\ud800".repeat(100_000)), undefined); // lone surrogates
 * ```
 */
export function toShared(data: unknown): SharedValue | undefined {
  if (typeof data === "string") {
    if (2 * data.length < SHARED_VALUE_MIN_SIZE || !data.isWellFormed()) {
      return undefined;
    }
    return [0, copyToShared(encoder.encode(data))];
  }
  if (
    data instanceof Uint8Array &&
    Object.getPrototypeOf(data) === Uint8Array.prototype &&
    data.byteLength >= SHARED_VALUE_MIN_SIZE &&
    data.buffer instanceof ArrayBuffer && !data.buffer.resizable &&
    data.byteOffset === 0 && data.byteLength === data.buffer.byteLength
  ) {
    return [1, copyToShared(data)];
  }
  return undefined;
}

/**
 * The value `toShared` moved, as a value of this thread's own.
 *
 * @example See {@linkcode toShared}.
 */
export function fromShared([kind, bytes]: SharedValue): string | Uint8Array {
  const view = new Uint8Array(bytes);
  return kind === 0 ? decoder.decode(view) : view.slice();
}

function copyToShared(bytes: Uint8Array): SharedArrayBuffer {
  const shared = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(shared).set(bytes);
  return shared;
}
