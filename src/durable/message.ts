/**
 * A durable message as the local log stores it, and its encoding: V8's
 * serializer (`node:v8`), the structured-clone format, so a message's data
 * survives the log as it survives a `postMessage` (Maps, Dates, bytes).
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";

/** A message stored on a durable queue. */
export interface StoredMessage {
  /** Its place in its stream, from 1. */
  seq: number;
  /** The concrete queue it was published on. */
  queue: string;
  /** The publishing pool and service. */
  pool: string;
  service: string;
  /** When `publish` was called (ms since the epoch). */
  publishedAt: number;
  /** When it was stored (ms since the epoch): the dedupe window counts from here. */
  storedAt: number;
  headers?: Record<string, string> | undefined;
  replyTo?: string | undefined;
  /** The publisher's id, for deduplication. */
  id?: string | undefined;
  data: unknown;
}

/**
 * The record body of `message`.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./message.ts";
 * import assert from "node:assert/strict";
 *
 * const message = {
 *   seq: 1, queue: "q://a", pool: "p", service: "S", publishedAt: 1,
 *   storedAt: 2, data: new Map([["k", 1]]),
 * };
 * assert.deepEqual(decodeMessage(encodeMessage(message)), message);
 * ```
 */
export function encodeMessage(message: StoredMessage): Uint8Array {
  return serialize(message);
}

/** The message a record body holds. */
export function decodeMessage(body: Uint8Array): StoredMessage {
  return deserialize(body) as StoredMessage;
}
