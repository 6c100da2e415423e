/**
 * Message data ↔ NATS payloads.
 *
 * - Data that JSON represents exactly goes as JSON text (UTF-8), so a Go or
 *   Python client reads it as it is: `null`, booleans, strings, finite
 *   numbers other than `-0`, and plain arrays and objects (prototype
 *   `Object.prototype` or `null`) of those, without holes, `undefined`
 *   values or shared or circular references.
 * - A `Uint8Array` goes as its bytes, with the header
 *   {@linkcode ENCODING_HEADER} `bytes`.
 * - Anything else (`Map`, `Set`, `Date`, `BigInt`, `undefined`, `NaN`, `-0`,
 *   other typed arrays, errors, cycles, shared references, class instances,
 *   …) goes in V8's structured-clone form (`node:v8` `serialize`), with the
 *   header `structured`, and arrives as `structuredClone` would give it
 *   (checked value by value in `tests/nats_encoding_test.ts`; one
 *   difference: a typed array that was a view into a larger buffer arrives
 *   with a buffer of its own bytes only). Known gap: named properties added to
 *   an array (`Object.assign([1], { extra: 2 })`) are not looked for, so such
 *   an array goes as JSON and loses them (`structuredClone` keeps them).
 *
 * A payload without the header (from a plain NATS client, or JSON from us,
 * which may leave the header out) is parsed as JSON when it is valid UTF-8
 * JSON text, and is otherwise its bytes.
 *
 * **For a plain NATS client** (the `"foreign"` reader: a reply to a request
 * whose reply subject is not a magic-foundation process's), data goes as
 * what `JSON.stringify` writes, with no header, when JSON carries it
 * faithfully: plain objects and arrays, strings, booleans, `null`, finite
 * numbers (`-0` as `0`), a `Date` as its ISO string, an `undefined` field
 * dropped and an `undefined` item or hole as `null`; `undefined` itself is an
 * empty payload and a whole `Uint8Array` its bytes. Anything else (a `Map`,
 * a `Set`, a `BigInt`, `NaN`, `±Infinity`, an invalid `Date`, a typed array
 * or `Uint8Array` inside the data, an `ArrayBuffer`, an error, a class
 * instance, a function, a symbol, a cycle) is refused with a
 * {@linkcode NotJsonError} naming where it is, since `JSON.stringify` would
 * drop it, change it or throw. A shared object is written once per place.
 *
 * @module
 */

import { deserialize, serialize } from "node:v8";
import { Buffer } from "node:buffer";

/**
 * The NATS header that says how a payload is encoded: `json`, `bytes` or
 * `structured`.
 *
 * @example Read the encoding from a header
 * ```ts
 * import { ENCODING_HEADER } from "./encoding.ts";
 * import assert from "node:assert/strict";
 *
 * const headers = new Map([[ENCODING_HEADER, "bytes"]]);
 * assert.equal(headers.get("Mf-Encoding"), "bytes");
 * ```
 */
export const ENCODING_HEADER = "Mf-Encoding";

/** How a payload is encoded: the value of {@linkcode ENCODING_HEADER}. */
export type PayloadEncoding = "json" | "bytes" | "structured";

/**
 * Who reads a payload: `"ours"`, a magic-foundation process, which reads
 * every encoding; `"foreign"`, a plain NATS client, which gets JSON text or
 * bytes only.
 */
export type PayloadReader = "ours" | "foreign";

/**
 * Data for a plain NATS client holds a value JSON cannot carry faithfully
 * (see the module documentation); the publisher turns it into a
 * `JsonDataError` naming the queue.
 *
 * @example Say where the value is
 * ```ts
 * import { encodePayload } from "./encoding.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => encodePayload({ tags: new Map() }, "foreign"), {
 *   name: "NotJsonError",
 *   path: "data.tags",
 *   what: "a Map",
 * });
 * ```
 */
export class NotJsonError extends TypeError {
  /** Where the value is: `data`, `data.tags`, `data.list[2]`, … */
  readonly path: string;
  /** What it is: `a Map`, `NaN`, `a cycle (it holds itself)`, … */
  readonly what: string;

  /**
   * Makes the error.
   *
   * @param path Where the value is.
   * @param what What it is.
   */
  constructor(path: string, what: string) {
    super(`${path} is ${what}, which JSON cannot carry`);
    this.name = "NotJsonError";
    this.path = path;
    this.what = what;
  }
}

/** A payload ready for NATS, and how it is encoded. */
export interface EncodedPayload {
  /** The bytes to publish (for `bytes`, the given array itself). */
  readonly payload: Uint8Array;
  /**
   * How `payload` is encoded; send it as {@linkcode ENCODING_HEADER}. For
   * `json` the header may be left out: a payload without it is read as JSON
   * first.
   */
  readonly encoding: PayloadEncoding;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const ObjectPrototype = Object.prototype;
const ArrayPrototype = Array.prototype;

/**
 * Objects met by the walk in progress (shared, so that a message costs no
 * allocation; a re-entrant call, from a getter, makes its own).
 */
const sharedSeen = new Set<object>();
let walking = false;

/**
 * Encodes message data for NATS.
 *
 * One walk decides whether JSON represents `data` exactly (see the module
 * documentation); a `Uint8Array` is passed through without a copy, so do not
 * change it until it has been sent.
 *
 * @param data Any data `structuredClone` can copy.
 * @param reader Who reads it: `"ours"` (the default) or `"foreign"`, a
 * plain NATS client, which gets JSON or bytes only.
 * @param utf8 Turns JSON text into its UTF-8 bytes (by default a
 * `TextEncoder`); a publisher may place them in a buffer of its own.
 * @returns The payload and its encoding.
 * @throws {DOMException} A `DataCloneError`, as `structuredClone` throws,
 * when `data` holds something it cannot copy (a function, a symbol, …).
 * @throws {NotJsonError} For a `"foreign"` reader, when JSON cannot carry
 * `data` faithfully.
 *
 * @example Pick the encoding by the data
 * ```ts
 * import { decodePayload, encodePayload } from "./encoding.ts";
 * import assert from "node:assert/strict";
 *
 * const json = encodePayload({ id: 1, text: "hello" });
 * assert.equal(json.encoding, "json");
 * assert.equal(new TextDecoder().decode(json.payload), '{"id":1,"text":"hello"}');
 *
 * const bytes = encodePayload(new Uint8Array([1, 2]));
 * assert.equal(bytes.encoding, "bytes");
 *
 * const at = new Date(0);
 * const structured = encodePayload({ at, tags: new Set(["a"]) });
 * assert.equal(structured.encoding, "structured");
 * assert.deepEqual(
 *   decodePayload(structured.payload, structured.encoding),
 *   { at, tags: new Set(["a"]) },
 * );
 * assert.throws(() => encodePayload(() => 1), { name: "DataCloneError" });
 *
 * // For a plain NATS client: JSON as JSON.stringify writes it.
 * const plain = encodePayload({ at, note: undefined }, "foreign");
 * assert.equal(
 *   new TextDecoder().decode(plain.payload),
 *   '{"at":"1970-01-01T00:00:00.000Z"}',
 * );
 * ```
 */
export function encodePayload(
  data: unknown,
  reader: PayloadReader = "ours",
  utf8: (text: string) => Uint8Array = encodeText,
): EncodedPayload {
  if (
    data instanceof Uint8Array && (reader === "foreign" || isPlainBytes(data))
  ) {
    return { payload: data, encoding: "bytes" };
  }
  if (reader === "foreign") {
    checkJson(data, "data", []);
    const text = JSON.stringify(data);
    return {
      payload: text === undefined ? new Uint8Array(0) : utf8(text),
      encoding: "json",
    };
  }
  if (isExactJson(data)) {
    return { payload: utf8(JSON.stringify(data)), encoding: "json" };
  }
  let buffer: Uint8Array;
  try {
    buffer = serialize(data);
  } catch (error) {
    throw new DOMException(
      error instanceof Error ? error.message : String(error),
      "DataCloneError",
    );
  }
  return {
    // A plain view, not a Node `Buffer` (whose `slice` shares memory).
    payload: new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length),
    encoding: "structured",
  };
}

function encodeText(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Decodes a NATS payload into message data.
 *
 * @param payload The payload as received.
 * @param encoding The {@linkcode ENCODING_HEADER} value, or `undefined`
 * when the message has none.
 * @returns The data: the parsed JSON, a `Uint8Array` with a buffer of its own
 * (for `bytes`, and for a payload without the header that is not UTF-8 JSON
 * text), or the structured-clone copy.
 * @throws {SyntaxError} When `encoding` is `json` but the payload is not
 * JSON text (a `TypeError` when it is not even UTF-8).
 * @throws {TypeError} When `encoding` is none of `json`, `bytes` and
 * `structured`, or a `structured` payload is corrupt.
 *
 * @example Read what plain NATS clients send
 * ```ts
 * import { decodePayload } from "./encoding.ts";
 * import assert from "node:assert/strict";
 *
 * const text = new TextEncoder().encode('{"id":1}');
 * assert.deepEqual(decodePayload(text, undefined), { id: 1 });
 * assert.deepEqual(decodePayload(text, "bytes"), text);
 * const bytes = new Uint8Array([0xff, 0x00]);
 * assert.deepEqual(decodePayload(bytes, undefined), bytes);
 * assert.deepEqual(decodePayload(new Uint8Array(), undefined), new Uint8Array());
 * assert.throws(() => decodePayload(text, "xml"), TypeError);
 * ```
 */
export function decodePayload(
  payload: Uint8Array,
  encoding: string | undefined,
): unknown {
  switch (encoding) {
    case undefined:
    case "":
      try {
        return JSON.parse(utf8(payload));
      } catch {
        return ownBytes(payload);
      }
    case "json":
      return JSON.parse(utf8(payload));
    case "bytes":
      return ownBytes(payload);
    case "structured":
      try {
        return deserialize(payload);
      } catch (error) {
        throw new TypeError("Cannot decode a structured payload", {
          cause: error,
        });
      }
    default:
      throw new TypeError(
        `Cannot decode a payload: unknown ${ENCODING_HEADER} "${encoding}" (expected json, bytes or structured)`,
      );
  }
}

/**
 * The UTF-8 text of `payload`; throws a `TypeError` if it is not UTF-8. A
 * fatal `TextDecoder` costs twice as much here (800 against 400 ns for a
 * 45-byte object, parse included), so the strict one only runs when the
 * lenient one met U+FFFD, which is either in the text or a replaced error.
 */
function utf8(payload: Uint8Array): string {
  // The client hands a Node `Buffer` view of its read buffer: its own
  // decoder is about twice as fast as a `TextDecoder` on it.
  const text = payload instanceof Buffer
    ? (payload as unknown as BufferWithSlice).utf8Slice(0, payload.length)
    : decoder.decode(payload);
  return text.includes("\uFFFD") ? strictDecoder.decode(payload) : text;
}

/** Node's `Buffer` has `utf8Slice`, which its types do not declare. */
interface BufferWithSlice {
  utf8Slice(start: number, end: number): string;
}

/** A `Uint8Array` itself, not a subclass such as Node's `Buffer`. */
function isPlainBytes(data: Uint8Array): boolean {
  return Object.getPrototypeOf(data) === Uint8Array.prototype;
}

/** `payload` as a plain `Uint8Array` that owns its whole buffer. */
function ownBytes(payload: Uint8Array): Uint8Array {
  if (
    isPlainBytes(payload) && payload.byteOffset === 0 &&
    payload.byteLength === payload.buffer.byteLength
  ) {
    return payload;
  }
  return new Uint8Array(payload);
}

/** Whether `JSON.parse(JSON.stringify(value))` equals `structuredClone(value)`. */
function isExactJson(value: unknown): boolean {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return isExactNumber(value as number);
    case "object": {
      if (value === null) return true;
      // Most messages are one flat object or array: no set of seen objects
      // is needed for those (a third faster on `{ id, text, at }` here).
      const flat = flatCheck(value as object);
      if (flat !== NESTED) return flat === EXACT;
      if (walking) return isExactObject(value as object, new Set());
      walking = true;
      try {
        return isExactObject(value as object, sharedSeen);
      } finally {
        walking = false;
        sharedSeen.clear();
      }
    }
    default:
      return false;
  }
}

const EXACT = 0;
const NOT_EXACT = 1;
const NESTED = 2;

/**
 * `EXACT` when `object` is a plain array or object of exact primitives,
 * `NOT_EXACT` when it is not exact, `NESTED` when it holds objects (which
 * need the walk that tracks cycles and shared references).
 */
function flatCheck(object: object): number {
  const prototype = Object.getPrototypeOf(object);
  let nested = false;
  if (prototype === ArrayPrototype) {
    const array = object as unknown[];
    for (let i = 0; i < array.length; i++) {
      const item = array[i];
      if (typeof item === "object" && item !== null) nested = true;
      else if (!isExactPrimitive(item)) return NOT_EXACT;
    }
    return nested ? NESTED : EXACT;
  }
  if (prototype !== ObjectPrototype && prototype !== null) return NOT_EXACT;
  const record = object as Record<string, unknown>;
  for (const key in record) {
    const item = record[key];
    if (typeof item === "object" && item !== null) nested = true;
    else if (!isExactPrimitive(item)) return NOT_EXACT;
  }
  return nested ? NESTED : EXACT;
}

/** A string, boolean, `null` or exact number. */
function isExactPrimitive(item: unknown): boolean {
  switch (typeof item) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return isExactNumber(item as number);
    default:
      return item === null;
  }
}

/** Finite and not `-0` (which JSON writes as `0`). */
function isExactNumber(value: number): boolean {
  return value - value === 0 && (value !== 0 || 1 / value > 0);
}

/** The object case of {@linkcode isExactJson}; `seen` holds the objects met. */
function isExactObject(object: object, seen: Set<object>): boolean {
  // Met before: a cycle or a shared reference, which JSON would not keep.
  if (seen.has(object)) return false;
  seen.add(object);
  const prototype = Object.getPrototypeOf(object);
  if (prototype === ArrayPrototype) {
    const array = object as unknown[];
    for (let i = 0; i < array.length; i++) {
      if (!isExactItem(array[i], seen)) return false;
    }
    return true;
  }
  if (prototype !== ObjectPrototype && prototype !== null) return false;
  const record = object as Record<string, unknown>;
  for (const key in record) {
    if (!isExactItem(record[key], seen)) return false;
  }
  return true;
}

/** An item of an array or object (a hole reads as `undefined`: refused). */
function isExactItem(item: unknown, seen: Set<object>): boolean {
  switch (typeof item) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return isExactNumber(item as number);
    case "object":
      return item === null || isExactObject(item as object, seen);
    default:
      return false;
  }
}

/** A key a path writes as `.key` (others as `["odd key"]`). */
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * Throws a {@linkcode NotJsonError} unless `JSON.stringify` writes `value`
 * faithfully (see the module documentation). `ancestors` are the objects
 * that hold `value`, to tell a cycle from a shared object.
 */
function checkJson(value: unknown, path: string, ancestors: object[]): void {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return;
    case "number":
      if (!Number.isFinite(value)) throw new NotJsonError(path, String(value));
      return;
    case "object":
      if (value === null) return;
      break;
    default:
      throw new NotJsonError(path, `a ${typeof value}`);
  }
  const object = value as object;
  const prototype = Object.getPrototypeOf(object);
  if (prototype === Date.prototype) {
    if (Number.isNaN((object as Date).getTime())) {
      throw new NotJsonError(path, "an invalid Date");
    }
    return;
  }
  if (ancestors.includes(object)) {
    throw new NotJsonError(path, "a cycle (it holds itself)");
  }
  ancestors.push(object);
  if (prototype === ArrayPrototype) {
    const array = object as unknown[];
    for (let i = 0; i < array.length; i++) {
      checkJson(array[i], `${path}[${i}]`, ancestors);
    }
  } else if (prototype === ObjectPrototype || prototype === null) {
    const record = object as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const step = IDENTIFIER.test(key)
        ? `.${key}`
        : `[${JSON.stringify(key)}]`;
      checkJson(record[key], path + step, ancestors);
    }
  } else {
    throw new NotJsonError(path, kindOf(object));
  }
  ancestors.pop();
}

/** `a Map`, `an Error`, `a Point`: what an object is, by its prototype. */
function kindOf(object: object): string {
  const prototype = Object.getPrototypeOf(object) as
    | { constructor?: unknown }
    | null;
  const constructor = prototype?.constructor;
  const name = typeof constructor === "function" && constructor.name !== ""
    ? constructor.name
    : "object with a prototype";
  const kind = `${/^[AEIO]/.test(name) ? "an" : "a"} ${name}`;
  return object instanceof Uint8Array
    ? `${kind} (only a whole message goes as bytes)`
    : kind;
}
