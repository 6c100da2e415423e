/**
 * The bytes a message's data travels in between pools: written once, at
 * `publish`, straight from the publisher's value, read back on the receiving
 * side. It replaces two copies (a snapshot at `publish`, then V8's
 * serializer inside `postMessage`) with one pass.
 *
 * It knows plain data: `undefined`, `null`, booleans, numbers, bigints,
 * strings, plain arrays without holes or extra keys, plain and
 * null-prototype objects, and `Uint8Array`s that span their whole buffer.
 * Anything else anywhere in a value (a `Date`, a `Map`, a class instance, a
 * shared reference, a cycle, a hole, a function, …) makes the encoder give up
 * on that value: the caller then sends `structuredClone(value)` beside the
 * bytes instead, so what arrives, and any error, is always structuredClone's.
 * As with `snapshot()`, one difference remains: an own getter read before
 * the encoder gives up runs twice (here, then in `structuredClone`).
 *
 * Object shapes go once per link, not per object: an object is its shape's
 * number and then its values; the keys of a shape go on the link the first
 * time a message that may use it does (see {@linkcode DataEncoder.shapes}),
 * and the receiving side builds objects of a shape with an object literal
 * compiled for it.
 *
 * @module
 */

import {
  isArgumentsObject,
  isModuleNamespaceObject,
  isProxy,
} from "node:util/types";
import {
  ARRAY,
  BESIDE,
  BIGINT,
  BYTES,
  END,
  FALSE,
  FLOAT64,
  INT32,
  LATIN1,
  NULL,
  OBJECT,
  SHAPE,
  TRUE,
  UINT8,
  UNDEFINED,
  UTF16,
} from "./data_tags.ts";

/** Shapes an encoder numbers at most; later ones write their keys inline. */
const MAX_SHAPES = 4096;
/** Objects with more keys write them inline (dictionaries, not records). */
const MAX_SHAPE_KEYS = 64;
/** Deeper values are cloned (as `snapshot()` does). */
const MAX_DEPTH = 100;
/** Objects seen before the revisit check switches from a scan to a `Set`. */
const LINEAR_SEEN_LIMIT = 32;
/**
 * Strings at least this long go beside the bytes (V8's serializer copies a
 * one-byte string in one block); shorter ones are written char by char, as
 * latin-1 when they can, else as UTF-16. Measured here (Deno 2.9.6, ns a
 * string): a loop of `charCodeAt` into bytes costs 28 for 5 characters, 99
 * for 40, 275 for 120, and reading back with `String.fromCharCode` 26 for 5,
 * 195 for 40; `TextEncoder.encodeInto` 100–120 whatever the length up to
 * 1,000 and `TextDecoder.decode` 125–170 (so UTF-8 on the wire never paid).
 */
const LONG_STRING = 40;
const OBJECT_PROTOTYPE: object = Object.prototype;
const ARRAY_PROTOTYPE: object = Array.prototype;
const UINT8_PROTOTYPE: object = Uint8Array.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const keysOf = Object.keys;
const isArray = Array.isArray;
const hasOwn = Object.hasOwn;
/** An empty plain object: `for…in` over it finds enumerable inherited keys. */
const PROBE: object = {};

/** Thrown inside the encoder when the value is not plain data. */
const GIVE_UP: unique symbol = Symbol("data_encoder.give_up");

/** A node of the shape trie: the keys so far, and the shape ending here. */
interface ShapeNode {
  key: string;
  parent: ShapeNode | undefined;
  children: Map<string, ShapeNode> | undefined;
  /** The first child's key and node, looked up without the map. */
  firstKey: string | undefined;
  firstChild: ShapeNode | undefined;
  /** The shape's number, or -1 when no object ended here yet. */
  id: number;
}

/**
 * Writes values as bytes into a scratch buffer, one message at a time; a
 * link copies each message's bytes into its own batch (see
 * `port_link.ts`). One encoder per pool: shape numbers are the pool's, and
 * each link tells its peer the shapes it has not told yet.
 *
 * @example Round trip
 * ```ts
 * import { DataDecoder } from "./data_decoder.ts";
 * import { DataEncoder } from "./data_encoder.ts";
 * import assert from "node:assert/strict";
 *
 * const encoder = new DataEncoder();
 * const decoder = new DataDecoder();
 * const value = { id: 7, tags: ["new"], body: "héllo" };
 * assert.ok(encoder.encode(value));
 * // The link puts the shapes its peer does not know before the message.
 * const bytes = new Uint8Array([...encoder.shapesSince(0), ...encoder.bytes()]);
 * const [copy] = decoder.decode(bytes, 1, []);
 * assert.deepEqual(copy, value);
 * assert.equal(encoder.encode(new Date(0)), false); // not plain data
 * ```
 */
export class DataEncoder {
  #buffer = new Uint8Array(1024);
  #view = new DataView(this.#buffer.buffer);
  #length = 0;
  #root: ShapeNode = {
    key: "",
    parent: undefined,
    children: undefined,
    firstKey: undefined,
    firstChild: undefined,
    id: -1,
  };
  /** Every numbered shape's keys, by number. */
  #shapes: string[][] = [];
  /** The shapes' records (see {@linkcode DataEncoder.shapesSince}), one after another. */
  #shapeRecords = new Uint8Array(256);
  #shapeLength = 0;
  /** Where each shape's record starts. */
  #shapeStarts: number[] = [];
  #seen: (object | undefined)[] = [];
  #seenCount = 0;
  #seenSet: Set<object> | undefined;
  #busy = false;
  #beside: unknown[] = [];
  #besideChars = 0;

  /** How many shapes are numbered (a link tells its peer those it has not). */
  get shapes(): number {
    return this.#shapes.length;
  }

  /**
   * Encodes `value` as the current message. `false` when it is not plain
   * data (or when called from a getter of a value being encoded): the
   * caller sends a clone instead. A getter's error is rethrown.
   */
  encode(value: unknown): boolean {
    if (this.#busy || hasInheritedKeys()) return false;
    this.#busy = true;
    this.#length = 0;
    this.#beside.length = 0;
    this.#besideChars = 0;
    try {
      this.#value(value, 0);
      return true;
    } catch (error) {
      if (error === GIVE_UP) return false;
      throw error;
    } finally {
      this.#busy = false;
      for (let i = 0; i < this.#seenCount; i++) this.#seen[i] = undefined;
      this.#seenCount = 0;
      this.#seenSet = undefined;
    }
  }

  /** The bytes of the last message encoded. */
  get length(): number {
    return this.#length;
  }

  /**
   * The values of the last message that travel beside its bytes, in order
   * (long strings; the link sends them in the batch with the bytes).
   */
  get beside(): readonly unknown[] {
    return this.#beside;
  }

  /** About how many bytes the last message is on the wire, beside values included. */
  get size(): number {
    return this.#length + 2 * this.#besideChars;
  }

  /** Copies the last message's bytes into `target` at `offset`. */
  copyTo(target: Uint8Array, offset: number): void {
    const length = this.#length;
    const buffer = this.#buffer;
    if (length <= 32) {
      for (let i = 0; i < length; i++) target[offset + i] = buffer[i]!;
    } else {
      target.set(buffer.subarray(0, length), offset);
    }
  }

  /** The last message's bytes (a copy, for tests and examples). */
  bytes(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }

  /**
   * The records that teach a peer shapes `from` to the last numbered one:
   * bytes to put on the link before the next message.
   */
  shapesSince(from: number): Uint8Array {
    return this.#shapeRecords.subarray(
      this.#shapeStarts[from] ?? this.#shapeLength,
      this.#shapeLength,
    );
  }

  /** Numbers the shape ending at `node` and records its keys for peers. */
  #number(node: ShapeNode): number {
    const id = node.id = this.#shapes.length;
    const keys = keysAt(node);
    this.#shapes.push(keys);
    const record = shapeRecord(id, keys);
    if (this.#shapeLength + record.length > this.#shapeRecords.length) {
      const grown = new Uint8Array(
        2 * (this.#shapeLength + record.length),
      );
      grown.set(this.#shapeRecords.subarray(0, this.#shapeLength));
      this.#shapeRecords = grown;
    }
    this.#shapeStarts.push(this.#shapeLength);
    this.#shapeRecords.set(record, this.#shapeLength);
    this.#shapeLength += record.length;
    return id;
  }

  #ensure(bytes: number): void {
    const needed = this.#length + bytes;
    if (needed <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
    this.#view = new DataView(grown.buffer);
  }

  #byte(value: number): void {
    this.#ensure(1);
    this.#buffer[this.#length++] = value;
  }

  #varint(value: number): void {
    this.#ensure(5);
    const buffer = this.#buffer;
    while (value >= 0x80) {
      buffer[this.#length++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buffer[this.#length++] = value;
  }

  #value(value: unknown, depth: number): void {
    switch (typeof value) {
      case "string":
        this.#string(value);
        return;
      case "number":
        this.#numeric(value);
        return;
      case "boolean":
        this.#byte(value ? TRUE : FALSE);
        return;
      case "undefined":
        this.#byte(UNDEFINED);
        return;
      case "bigint":
        this.#byte(BIGINT);
        this.#string(value.toString(16));
        return;
      case "object":
        if (value === null) this.#byte(NULL);
        else this.#object(value, depth);
        return;
      default:
        // Functions and symbols: structuredClone throws the error.
        throw GIVE_UP;
    }
  }

  #numeric(value: number): void {
    if ((value | 0) === value && (value !== 0 || 1 / value > 0)) {
      if (value >= 0 && value < 256) {
        this.#ensure(2);
        this.#buffer[this.#length++] = UINT8;
        this.#buffer[this.#length++] = value;
        return;
      }
      this.#ensure(5);
      this.#buffer[this.#length++] = INT32;
      this.#view.setInt32(this.#length, value, true);
      this.#length += 4;
      return;
    }
    this.#ensure(9);
    this.#buffer[this.#length++] = FLOAT64;
    this.#view.setFloat64(this.#length, value, true);
    this.#length += 8;
  }

  #string(value: string): void {
    const length = value.length;
    if (length >= LONG_STRING) {
      this.#longString(value);
      return;
    }
    this.#ensure(1 + 5 + 2 * length);
    const start = this.#length;
    this.#buffer[this.#length++] = LATIN1;
    this.#varint(length);
    const buffer = this.#buffer;
    let at = this.#length;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code > 0xff) {
        this.#length = start;
        this.#utf16(value);
        return;
      }
      buffer[at++] = code;
    }
    this.#length = at;
  }

  /**
   * A long string goes beside the bytes, as it is: strings are immutable,
   * so holding it is a copy, and V8's serializer then copies its characters
   * in one block.
   */
  #longString(value: string): void {
    this.#byte(BESIDE);
    this.#beside.push(value);
    this.#besideChars += value.length;
  }

  /** Two bytes a unit: exact for any string, lone surrogates included. */
  #utf16(value: string): void {
    const length = value.length;
    this.#buffer[this.#length++] = UTF16;
    this.#varint(length);
    const buffer = this.#buffer;
    let at = this.#length;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      buffer[at++] = code & 0xff;
      buffer[at++] = code >>> 8;
    }
    this.#length = at;
  }

  #visit(node: object): void {
    const seenSet = this.#seenSet;
    if (seenSet !== undefined) {
      const size = seenSet.size;
      if (seenSet.add(node).size === size) throw GIVE_UP;
      return;
    }
    const seen = this.#seen;
    for (let i = 0; i < this.#seenCount; i++) {
      if (seen[i] === node) throw GIVE_UP;
    }
    if (this.#seenCount === LINEAR_SEEN_LIMIT) {
      this.#seenSet = new Set(seen as object[]);
      this.#seenSet.add(node);
      return;
    }
    seen[this.#seenCount++] = node;
  }

  #object(node: object, depth: number): void {
    // Proxies first: getPrototypeOf() would run their trap.
    if (depth > MAX_DEPTH || isProxy(node)) throw GIVE_UP;
    const proto: unknown = getPrototypeOf(node);
    if (proto === ARRAY_PROTOTYPE) {
      if (!isArray(node)) throw GIVE_UP;
      this.#visit(node);
      this.#array(node as unknown[], depth);
      return;
    }
    if (proto === UINT8_PROTOTYPE) {
      this.#bytes(node as Uint8Array);
      return;
    }
    if (
      proto === OBJECT_PROTOTYPE
        ? hasOwn(node, "callee") && isArgumentsObject(node)
        : proto !== null || isModuleNamespaceObject(node)
    ) {
      throw GIVE_UP;
    }
    // An array whose prototype was replaced is still cloned as an array.
    if (isArray(node)) throw GIVE_UP;
    this.#visit(node);
    this.#record(node as Record<string, unknown>, depth);
  }

  #bytes(view: Uint8Array): void {
    const buffer = view.buffer;
    // Views on part of a buffer, or on a shared, resizable or detached one,
    // clone with their buffer's extent: leave them to structuredClone.
    if (
      !(buffer instanceof ArrayBuffer) || buffer.resizable ||
      buffer.detached || view.byteOffset !== 0 ||
      view.byteLength !== buffer.byteLength
    ) throw GIVE_UP;
    this.#visit(buffer);
    const length = view.byteLength;
    this.#ensure(1 + 5 + length);
    this.#buffer[this.#length++] = BYTES;
    this.#varint(length);
    this.#buffer.set(view, this.#length);
    this.#length += length;
  }

  #array(source: unknown[], depth: number): void {
    const length = source.length;
    // With no holes, the own enumerable keys are exactly the indices.
    if (keysOf(source).length !== length) throw GIVE_UP;
    this.#ensure(6);
    this.#buffer[this.#length++] = ARRAY;
    this.#varint(length);
    for (let i = 0; i < length; i++) {
      const value = source[i];
      if (value === undefined && !hasOwn(source, i)) throw GIVE_UP;
      this.#value(value, depth + 1);
    }
  }

  #record(source: Record<string, unknown>, depth: number): void {
    this.#ensure(3);
    const header = this.#length;
    this.#buffer[header] = OBJECT;
    this.#length += 3;
    let node = this.#root;
    /** Keys past the trie, once it may not grow (written inline). */
    let rest: string[] | undefined;
    let count = 0;
    // for…in walks the keys in Object.keys() order and skips keys a getter
    // deleted, as structuredClone does.
    for (const key in source) {
      // An assignment would set the prototype instead of an own property.
      if (key === "__proto__") throw GIVE_UP;
      count++;
      if (rest !== undefined) {
        rest.push(key);
      } else {
        // Most nodes have one child: a comparison of internalized keys.
        const next = node.firstKey === key
          ? node.firstChild!
          : node.children?.get(key) ?? this.#grow(node, key, count);
        if (next === undefined) rest = [key];
        else node = next;
      }
      this.#value(source[key], depth + 1);
    }
    let id = -1;
    if (rest === undefined) {
      id = node.id;
      if (id < 0 && this.#shapes.length < MAX_SHAPES) id = this.#number(node);
    }
    const buffer = this.#buffer;
    if (id >= 0) {
      buffer[header + 1] = id & 0xff;
      buffer[header + 2] = id >>> 8;
      return;
    }
    // No shape: the keys follow the values, after an END.
    buffer[header + 1] = buffer[header + 2] = 0xff;
    this.#byte(END);
    for (const key of keysAt(node)) this.#string(key);
    for (const key of rest ?? []) this.#string(key);
  }

  /** A new trie node, or `undefined` when the trie may not grow. */
  #grow(parent: ShapeNode, key: string, count: number): ShapeNode | undefined {
    if (count > MAX_SHAPE_KEYS || this.#shapes.length >= MAX_SHAPES) {
      return undefined;
    }
    const node: ShapeNode = {
      key,
      parent,
      children: undefined,
      firstKey: undefined,
      firstChild: undefined,
      id: -1,
    };
    (parent.children ??= new Map()).set(key, node);
    if (parent.firstChild === undefined) {
      parent.firstKey = key;
      parent.firstChild = node;
    }
    return node;
  }
}

/** The keys from the trie's root to `node`. */
function keysAt(node: ShapeNode | undefined): string[] {
  const keys: string[] = [];
  for (let at = node; at?.parent !== undefined; at = at.parent) {
    keys.push(at.key);
  }
  return keys.reverse();
}

/**
 * A shape's record: `SHAPE`, its number, its key count, then each key as a
 * UTF-16 string (exact for any key).
 */
function shapeRecord(id: number, keys: readonly string[]): Uint8Array {
  const bytes: number[] = [SHAPE];
  const varint = (value: number): void => {
    while (value >= 0x80) {
      bytes.push((value & 0x7f) | 0x80);
      value >>>= 7;
    }
    bytes.push(value);
  };
  varint(id);
  varint(keys.length);
  for (const key of keys) {
    bytes.push(UTF16);
    varint(key.length);
    for (let i = 0; i < key.length; i++) {
      const code = key.charCodeAt(i);
      bytes.push(code & 0xff, code >>> 8);
    }
  }
  return new Uint8Array(bytes);
}

/** Whether `Object.prototype` has enumerable keys (someone polluted it). */
function hasInheritedKeys(): boolean {
  for (const _key in PROBE) return true;
  return false;
}
