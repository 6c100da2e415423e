/**
 * `snapshot(value)` makes the copy `structuredClone(value)` would make, but
 * copies plain data (primitives, plain arrays, plain and null-prototype
 * objects) in JavaScript, which is about ten times faster than a
 * `structuredClone` call for a small message. Anything else anywhere in the
 * value (a `Date`, a `Map`, a class instance, a shared reference, a cycle, a
 * function, …) makes it hand the whole value to `structuredClone` instead, so
 * the result, and any error, is always structuredClone's.
 *
 * @module
 */

import {
  isArgumentsObject,
  isModuleNamespaceObject,
  isProxy,
} from "node:util/types";

/** Returned by the copy helpers when the value is not plain data. */
const BAIL: unique symbol = Symbol("snapshot.bail");

/** Deeper values go to `structuredClone` (which has its own stack limit). */
const MAX_DEPTH = 100;
/**
 * Longer arrays go to `structuredClone`, which copies them as fast (measured
 * here: equal at 10,000 numbers, twice as fast at 100,000).
 */
const MAX_ARRAY_LENGTH = 8192;
/** Objects seen before the revisit check switches from a scan to a `Set`. */
const LINEAR_SEEN_LIMIT = 32;

const OBJECT_PROTOTYPE: object = Object.prototype;
const ARRAY_PROTOTYPE: object = Array.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const keysOf = Object.keys;
const isArray = Array.isArray;
const hasOwn = Object.hasOwn;
/** An empty plain object: `for…in` over it finds enumerable inherited keys. */
const PROBE: object = {};

// State of the running copy, reused from call to call so that copying a flat
// object allocates nothing but the copy. `seen` holds the objects visited so
// far, `seenSet` replaces the scan once there are many of them.
const seen: (object | undefined)[] = [];
let seenCount = 0;
let seenSet: Set<object> | undefined;
let busy = false;

/**
 * Copies `value` as `structuredClone(value)` would: the copy has the same
 * structure, property order, prototypes (plain `Object` and `Array`), holes,
 * `-0`, shared references and cycles; getters are read, non-enumerable and
 * symbol-keyed properties are left out; and uncloneable values throw the same
 * `DataCloneError`.
 *
 * Plain data is copied in JavaScript; at the first value that is not plain
 * data the whole `value` is passed to `structuredClone`. One difference
 * remains: an own getter read before that point (in depth-first key order)
 * runs twice, once here and once in `structuredClone`.
 *
 * @param value The value to copy.
 * @returns The copy (primitives are returned as they are).
 * @throws {DOMException} `DataCloneError` when `value` holds something
 * structured clone cannot copy (a function, a symbol, a `WeakMap`, a proxy, …).
 *
 * @example Copy a message before handing it to a subscriber
 * ```ts
 * import { snapshot } from "./snapshot.ts";
 * import assert from "node:assert/strict";
 *
 * const message = { id: 7, tags: ["new"], at: new Date(0) };
 * const copy = snapshot(message);
 * assert.deepEqual(copy, message);
 * assert.notEqual(copy.tags, message.tags);
 * assert.throws(() => snapshot({ run: () => 1 }), { name: "DataCloneError" });
 * ```
 */
export function snapshot<T>(value: T): T {
  if (typeof value !== "object" || value === null) {
    if (typeof value === "function" || typeof value === "symbol") {
      return structuredClone(value);
    }
    return value;
  }
  // A getter that calls snapshot() while a copy is running, or enumerable
  // keys added to Object.prototype (which for…in would see): the slow way.
  if (busy || hasInheritedKeys()) return structuredClone(value);
  busy = true;
  let copy: unknown;
  try {
    copy = copyNode(value, 0);
  } finally {
    busy = false;
    for (let i = 0; i < seenCount; i++) seen[i] = undefined;
    seenCount = 0;
    seenSet = undefined;
  }
  return copy === BAIL ? structuredClone(value) : copy as T;
}

/** Whether `Object.prototype` has enumerable keys (someone polluted it). */
function hasInheritedKeys(): boolean {
  for (const _key in PROBE) return true;
  return false;
}

/** Records `node` as visited; `false` if it was visited before. */
function visit(node: object): boolean {
  if (seenSet !== undefined) {
    const size = seenSet.size;
    return seenSet.add(node).size !== size;
  }
  for (let i = 0; i < seenCount; i++) {
    if (seen[i] === node) return false;
  }
  if (seenCount === LINEAR_SEEN_LIMIT) {
    seenSet = new Set(seen as object[]);
    seenSet.add(node);
    return true;
  }
  seen[seenCount++] = node;
  return true;
}

/** Copies a plain array or object, or returns `BAIL`. */
function copyNode(node: object, depth: number): unknown {
  // Proxies first: getPrototypeOf() would run their trap.
  if (depth > MAX_DEPTH || isProxy(node)) return BAIL;
  const proto: unknown = getPrototypeOf(node);
  if (proto === ARRAY_PROTOTYPE) {
    if (!isArray(node) || !visit(node)) return BAIL;
    return copyArray(node as unknown[], depth);
  }
  if (
    proto === OBJECT_PROTOTYPE
      // Every arguments object has its own `callee`: the check spares an
      // op call per plain object.
      ? hasOwn(node, "callee") && isArgumentsObject(node)
      : proto !== null || isModuleNamespaceObject(node)
  ) {
    return BAIL;
  }
  // An array whose prototype was replaced is still cloned as an array.
  if (isArray(node) || !visit(node)) return BAIL;
  return copyObject(node as Record<string, unknown>, depth);
}

/** Copies the own enumerable string-keyed properties, or returns `BAIL`. */
function copyObject(source: Record<string, unknown>, depth: number): unknown {
  const copy: Record<string, unknown> = {};
  // for…in walks the keys in Object.keys() order, skips keys a getter
  // deleted, and is the fastest way to read them.
  for (const key in source) {
    // An assignment would set the prototype instead of an own property.
    if (key === "__proto__") return BAIL;
    const value = source[key];
    if (typeof value === "object") {
      if (value === null) {
        copy[key] = null;
      } else {
        const nested = copyNode(value, depth + 1);
        if (nested === BAIL) return BAIL;
        copy[key] = nested;
      }
    } else if (typeof value === "function" || typeof value === "symbol") {
      return BAIL;
    } else {
      copy[key] = value;
    }
  }
  return copy;
}

/** Copies a dense array without extra keys, or returns `BAIL`. */
function copyArray(source: unknown[], depth: number): unknown {
  const length = source.length;
  if (length > MAX_ARRAY_LENGTH) return BAIL;
  // With no holes, the own enumerable keys are exactly the indices; so a
  // different count, or a hole below, means holes or extra named keys.
  if (keysOf(source).length !== length) return BAIL;
  // Filled in order from empty, so V8 keeps it packed: a holey array (from
  // `new Array(length)`) would be serialized key by key on the channel.
  const copy: unknown[] = [];
  for (let i = 0; i < length; i++) {
    const value = source[i];
    if (typeof value === "object") {
      if (value === null) {
        copy[i] = null;
      } else {
        const nested = copyNode(value, depth + 1);
        if (nested === BAIL) return BAIL;
        copy[i] = nested;
      }
    } else if (typeof value === "function" || typeof value === "symbol") {
      return BAIL;
    } else if (value === undefined && !hasOwn(source, i)) {
      return BAIL;
    } else {
      copy[i] = value;
    }
  }
  return copy;
}
