/**
 * A durable message as the local log stores it, and its encoding. A record
 * body is `[1 u8][seq f64][storedAt f64][queue length u32][queue UTF-8]
 * [id length + 1 u32, 0 for none][id UTF-8][rest]`, little endian, where
 * `rest` is V8's serializer (`node:v8`, the structured-clone format) of the
 * publisher, the headers and the data, so a message's data survives the log
 * as it survives a `postMessage` (Maps, Dates, bytes).
 *
 * The publishing pool encodes the body (seq and storedAt left at 0) and the
 * consuming pool decodes it: the main thread, which owns the files, only
 * stamps the seq and the time and reads the queue, never the data. A body
 * of the first version (the whole message through V8's serializer, which
 * starts with 0xFF) still reads.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";
import type {
  EncodedMessage,
  MessageFields,
  OutgoingMessage,
} from "./protocol.ts";

/** A message stored on a durable queue. */
export interface StoredMessage extends MessageFields {
  /** Its place in its stream, from 1. */
  seq: number;
  /** The concrete queue it was published on. */
  queue: string;
  /** When it was stored (ms since the epoch): the dedupe window counts from here. */
  storedAt: number;
  /** The publisher's id, for deduplication. */
  id?: string | undefined;
}

const FORMAT = 1;
const SEQ_AT = 1;
const STORED_AT = 9;
const QUEUE_AT = 17;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const view = (body: Uint8Array): DataView =>
  new DataView(body.buffer, body.byteOffset, body.byteLength);

/**
 * The record body of `message`, seq and storedAt left for the broker
 * ({@linkcode stampMessage}).
 *
 * @throws {Error} When the data cannot be cloned (V8's serializer's error).
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeOutgoing, stampMessage } from "./message.ts";
 * import assert from "node:assert/strict";
 *
 * const { body } = encodeOutgoing({
 *   queue: "q://a", pool: "p", service: "S", publishedAt: 1,
 *   data: new Map([["k", 1]]),
 * });
 * stampMessage(body, 7, 2);
 * assert.deepEqual(decodeMessage(body), {
 *   seq: 7, queue: "q://a", pool: "p", service: "S", publishedAt: 1,
 *   storedAt: 2, data: new Map([["k", 1]]),
 * });
 * ```
 */
export function encodeOutgoing(message: OutgoingMessage): EncodedMessage {
  const rest: MessageFields = {
    pool: message.pool,
    service: message.service,
    publishedAt: message.publishedAt,
    data: message.data,
  };
  if (message.headers !== undefined) rest.headers = message.headers;
  if (message.replyTo !== undefined) rest.replyTo = message.replyTo;
  const serialized = serialize(rest);
  const queue = encoder.encode(message.queue);
  const id = message.id === undefined ? undefined : encoder.encode(message.id);
  const idAt = QUEUE_AT + 4 + queue.length;
  const restAt = idAt + 4 + (id?.length ?? 0);
  const body = new Uint8Array(restAt + serialized.length);
  const fields = view(body);
  body[0] = FORMAT;
  fields.setUint32(QUEUE_AT, queue.length, true);
  body.set(queue, QUEUE_AT + 4);
  fields.setUint32(idAt, id === undefined ? 0 : id.length + 1, true);
  if (id !== undefined) body.set(id, idAt + 4);
  body.set(serialized, restAt);
  const encoded: EncodedMessage = { queue: message.queue, body };
  if (message.id !== undefined) encoded.id = message.id;
  return encoded;
}

/** Writes the broker's part of a body: its seq and when it was stored. */
export function stampMessage(
  body: Uint8Array,
  seq: number,
  storedAt: number,
): void {
  const fields = view(body);
  fields.setFloat64(SEQ_AT, seq, true);
  fields.setFloat64(STORED_AT, storedAt, true);
}

/** The queue of a record body, read without the data. */
export function bodyQueue(body: Uint8Array): string {
  if (body[0] !== FORMAT) return decodeMessage(body).queue;
  const length = view(body).getUint32(QUEUE_AT, true);
  return decoder.decode(body.subarray(QUEUE_AT + 4, QUEUE_AT + 4 + length));
}

/** The id and storedAt of a record body, read without the data (the dedupe window's). */
export function bodyId(
  body: Uint8Array,
): { id: string | undefined; storedAt: number } {
  if (body[0] !== FORMAT) {
    const { id, storedAt } = decodeMessage(body);
    return { id, storedAt };
  }
  const fields = view(body);
  const idAt = QUEUE_AT + 4 + fields.getUint32(QUEUE_AT, true);
  const length = fields.getUint32(idAt, true);
  return {
    id: length === 0
      ? undefined
      : decoder.decode(body.subarray(idAt + 4, idAt + 3 + length)),
    storedAt: fields.getFloat64(STORED_AT, true),
  };
}

/** The message a record body holds. */
export function decodeMessage(body: Uint8Array): StoredMessage {
  if (body[0] !== FORMAT) return deserialize(body) as StoredMessage;
  const fields = view(body);
  const queueLength = fields.getUint32(QUEUE_AT, true);
  const idAt = QUEUE_AT + 4 + queueLength;
  const idLength = fields.getUint32(idAt, true);
  const restAt = idAt + 4 + Math.max(0, idLength - 1);
  const rest = deserialize(body.subarray(restAt)) as MessageFields;
  const message: StoredMessage = {
    seq: fields.getFloat64(SEQ_AT, true),
    queue: decoder.decode(body.subarray(QUEUE_AT + 4, idAt)),
    pool: rest.pool,
    service: rest.service,
    publishedAt: rest.publishedAt,
    storedAt: fields.getFloat64(STORED_AT, true),
    data: rest.data,
  };
  if (rest.headers !== undefined) message.headers = rest.headers;
  if (rest.replyTo !== undefined) message.replyTo = rest.replyTo;
  if (idLength > 0) {
    message.id = decoder.decode(body.subarray(idAt + 4, restAt));
  }
  return message;
}
