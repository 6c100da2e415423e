/**
 * Queue names and wildcard patterns.
 *
 * A queue name is `scheme://path`, such as `q://orders`, `ws://inbound/client`
 * or `reply://th1/42`. The path is split into segments on `/` (empty segments
 * are allowed). When subscribing, a segment that is exactly `*` matches any
 * one segment and a last segment that is exactly `>` matches one or more
 * segments, as in NATS subjects; the scheme is always compared exactly.
 *
 * @module
 */

import { QueueNameError } from "./errors.ts";
import { REPLY_SCHEME } from "./transport/reply_queue.ts";

/** Longest accepted queue name, in UTF-16 code units. */
const MAX_LENGTH = 1024;
/** Entries kept by each cache before it is cleared. */
const CACHE_LIMIT = 10_000;
const SEPARATOR = "://";
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;
/**
 * White space, control characters and invisible format characters (`\p{Cf}`:
 * a zero-width space, U+2060, a soft hyphen, bidi marks, …), which would make
 * two different names look the same.
 */
const WHITE_SPACE_OR_CONTROL = /[\s\p{Cc}\p{Cf}]/u;

/** Names that passed `validateQueueName(name, "publish")`. */
const validPublishNames = new Set<string>();

/**
 * Checks that `name` is a valid queue name and returns it.
 *
 * A name is `scheme://path`: the scheme is a letter followed by letters,
 * digits, `+`, `-` or `.`; the path is not empty; the name has no white space
 * or control characters and at most 1024 characters. With `use` set to
 * `"subscribe"` the path may hold wildcard segments (`*` anywhere, `>` last);
 * with `"publish"` it may not. Valid publish names are remembered (up to
 * 10,000; `reply://` names, one per request, are not), so checking one again
 * costs a `Set` lookup.
 *
 * @param name The name to check (any value: non-strings are refused).
 * @param use `"publish"` for a concrete name, `"subscribe"` for a pattern.
 * @returns `name`, unchanged.
 * @throws {QueueNameError} When `name` is not a valid name for `use`; the
 * message says why.
 *
 * @example Accept a name, refuse a pattern when publishing
 * ```ts
 * import { validateQueueName } from "./queue_name.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(validateQueueName("q://orders", "publish"), "q://orders");
 * assert.equal(validateQueueName("q://orders/*", "subscribe"), "q://orders/*");
 * assert.throws(() => validateQueueName("q://orders/*", "publish"), {
 *   name: "QueueNameError",
 *   message: /wildcard/,
 * });
 * assert.throws(() => validateQueueName("orders", "publish"), {
 *   message:
 *     'Invalid queue name "orders": it has no scheme (expected scheme://path)',
 * });
 * ```
 */
export function validateQueueName(
  name: unknown,
  use: "publish" | "subscribe",
): string {
  // A valid publish name is valid for subscribing too.
  if (validPublishNames.has(name as string)) return name as string;
  if (typeof name !== "string") {
    throw new QueueNameError(
      stringForm(name),
      `it must be a string, not ${typeName(name)}`,
    );
  }
  const reason = invalidReason(name, use);
  if (reason !== undefined) throw new QueueNameError(name, reason);
  // A reply queue is one per request: remembering it would only push the
  // names a pool publishes on again and again out of the cache.
  if (use === "publish" && !name.startsWith(REPLY_SCHEME)) {
    if (validPublishNames.size >= CACHE_LIMIT) validPublishNames.clear();
    validPublishNames.add(name);
  }
  return name;
}

/**
 * Whether `name` is a pattern: a path segment is exactly `*` or `>`. A `*` or
 * `>` inside a longer segment is a literal character. The name is not
 * validated; without `://`, the whole name is taken as the path.
 *
 * @param name A queue name or pattern.
 * @returns `true` if a path segment is a wildcard.
 *
 * @example Tell patterns from names
 * ```ts
 * import { isPattern } from "./queue_name.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isPattern("q://orders/*"), true);
 * assert.equal(isPattern("q://orders/>"), true);
 * assert.equal(isPattern("q://orders/a*b"), false);
 * assert.equal(isPattern("q://orders"), false);
 * ```
 */
export function isPattern(name: string): boolean {
  const separator = name.indexOf(SEPARATOR);
  const path = separator === -1 ? name : name.slice(separator + 3);
  return hasWildcardSegment(path);
}

/**
 * Whether the concrete queue name `queue` matches `pattern` (a name or a
 * pattern). The schemes must be equal (case-sensitive); then `*` matches any
 * one path segment, even an empty one, a last `>` matches one or more
 * segments, and other segments must be equal. Neither argument is validated,
 * but a value without `://` or with an empty path matches nothing.
 *
 * @param pattern A subscription's name or pattern.
 * @param queue A concrete queue name.
 * @returns `true` if a subscription on `pattern` receives what is published
 * on `queue`.
 *
 * @example Match names against patterns
 * ```ts
 * import { matchesQueue } from "./queue_name.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(matchesQueue("q://orders/*", "q://orders/eu"), true);
 * assert.equal(matchesQueue("q://orders/*", "q://orders/eu/paid"), false);
 * assert.equal(matchesQueue("q://orders/>", "q://orders/eu/paid"), true);
 * assert.equal(matchesQueue("q://orders/>", "q://orders"), false);
 * assert.equal(matchesQueue("q://orders", "ws://orders"), false);
 * ```
 */
export function matchesQueue(pattern: string, queue: string): boolean {
  const compiled = compile(pattern);
  const parsed = parse(queue);
  return compiled !== undefined && parsed !== undefined &&
    compiled.scheme === parsed.scheme &&
    segmentsMatch(compiled.segments, compiled.tail, parsed.segments);
}

/**
 * Values registered under queue names and wildcard patterns, found by
 * concrete queue name: the subscriptions of a bus.
 *
 * `match(queue)` returns every value whose pattern matches `queue`, in the
 * order they were added. Exact names are found with one `Map` lookup;
 * patterns are tested one by one. Results are cached per queue (up to 10,000
 * queues, then the cache is cleared), so matching a queue again costs one
 * `Map` lookup until the next `add` or `remove` that could change it.
 *
 * @typeParam T The type of the registered values (handlers, ports, …).
 *
 * @example Register handlers and find those for a queue
 * ```ts
 * import { QueueIndex } from "./queue_name.ts";
 * import assert from "node:assert/strict";
 *
 * const index = new QueueIndex<string>();
 * index.add("q://orders/*", "any order");
 * index.add("q://orders/eu", "eu orders");
 * index.add("q://>", "everything on q");
 * assert.deepEqual(index.match("q://orders/eu"), [
 *   "any order",
 *   "eu orders",
 *   "everything on q",
 * ]);
 * assert.deepEqual(index.match("q://orders/us"), ["any order", "everything on q"]);
 * assert.equal(index.remove("q://>", "everything on q"), true);
 * assert.deepEqual(index.match("q://orders/us"), ["any order"]);
 * ```
 */
export class QueueIndex<T> {
  /** Entries under exact names, in the order they were added. */
  #exact = new Map<string, Entry<T>[]>();
  /** Entries under patterns, in the order they were added. */
  #wildcards: Entry<T>[] = [];
  /** Number of entries per pattern or name, in first-added order. */
  #counts = new Map<string, number>();
  /** Results of match(), per queue. */
  #cache = new Map<string, readonly T[]>();
  #size = 0;
  #nextOrder = 0;

  /** The number of registered values (a value added twice counts twice). */
  get size(): number {
    return this.#size;
  }

  /**
   * Registers `value` under `pattern`, after every value already registered.
   * Adding the same value under the same pattern again registers it again.
   *
   * @param pattern A queue name or pattern, checked as for subscribing.
   * @param value The value to register.
   * @throws {QueueNameError} When `pattern` is not a valid name or pattern.
   */
  add(pattern: string, value: T): void {
    validateQueueName(pattern, "subscribe");
    const order = this.#nextOrder++;
    if (isPattern(pattern)) {
      const compiled = compile(pattern) as Compiled;
      this.#wildcards.push({ pattern, value, order, compiled });
      this.#cache.clear();
    } else {
      const list = this.#exact.get(pattern);
      const entry: Entry<T> = { pattern, value, order, compiled: undefined };
      if (list === undefined) this.#exact.set(pattern, [entry]);
      else list.push(entry);
      this.#cache.delete(pattern);
    }
    this.#counts.set(pattern, (this.#counts.get(pattern) ?? 0) + 1);
    this.#size++;
  }

  /**
   * Unregisters `value` from `pattern` once: if it was added several times,
   * the most recently added registration goes (as Node's `removeListener`
   * does). Values are compared as `Map` keys are (SameValueZero).
   *
   * @param pattern The name or pattern the value was added under.
   * @param value The value to unregister.
   * @returns `true` if a registration was removed, `false` if there was none.
   */
  remove(pattern: string, value: T): boolean {
    const exact = this.#exact.get(pattern);
    if (exact !== undefined) {
      if (!removeLast(exact, value)) return false;
      if (exact.length === 0) this.#exact.delete(pattern);
      this.#cache.delete(pattern);
    } else {
      const index = findLast(this.#wildcards, pattern, value);
      if (index === -1) return false;
      this.#wildcards.splice(index, 1);
      this.#cache.clear();
    }
    const count = (this.#counts.get(pattern) ?? 1) - 1;
    if (count === 0) this.#counts.delete(pattern);
    else this.#counts.set(pattern, count);
    this.#size--;
    return true;
  }

  /**
   * Every value whose name or pattern matches the concrete name `queue`, in
   * the order the values were added. The array is frozen and shared by later
   * calls with the same queue; `queue` is not validated.
   *
   * @param queue A concrete queue name.
   * @returns The matching values (an empty array if none).
   */
  match(queue: string): readonly T[] {
    const cached = this.#cache.get(queue);
    if (cached !== undefined) return cached;
    const result = this.#compute(queue);
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(queue, result);
    return result;
  }

  /**
   * The distinct names and patterns that have values, in the order they were
   * first added (a pattern emptied and added again moves to the end).
   *
   * @returns An iterator over the names and patterns.
   */
  patterns(): IterableIterator<string> {
    return this.#counts.keys();
  }

  /**
   * Whether any value is registered under the name or pattern `pattern`
   * itself (not whether it matches).
   *
   * @param pattern A name or pattern, as given to `add`.
   * @returns `true` if some value is registered under it.
   */
  has(pattern: string): boolean {
    return this.#counts.has(pattern);
  }

  #compute(queue: string): readonly T[] {
    const exact = this.#exact.get(queue);
    const parsed = this.#wildcards.length === 0 ? undefined : parse(queue);
    const wildcards: Entry<T>[] = [];
    if (parsed !== undefined) {
      for (const entry of this.#wildcards) {
        const compiled = entry.compiled as Compiled;
        if (
          compiled.scheme === parsed.scheme &&
          segmentsMatch(compiled.segments, compiled.tail, parsed.segments)
        ) {
          wildcards.push(entry);
        }
      }
    }
    if (exact === undefined && wildcards.length === 0) return EMPTY;
    const values: T[] = [];
    // Merge the two lists, each in add order, by add order.
    const a = exact ?? [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < wildcards.length) {
      const x = a[i];
      const y = wildcards[j];
      if (y === undefined || (x !== undefined && x.order < y.order)) {
        values.push((x as Entry<T>).value);
        i++;
      } else {
        values.push(y.value);
        j++;
      }
    }
    return Object.freeze(values);
  }
}

/** A registration in a {@linkcode QueueIndex}. */
interface Entry<T> {
  readonly pattern: string;
  readonly value: T;
  /** Position in the order of `add` calls. */
  readonly order: number;
  /** The parsed pattern, for wildcard entries only. */
  readonly compiled: Compiled | undefined;
}

/** A name or pattern split into its scheme and path segments. */
interface Compiled {
  /** The scheme, without `://`. */
  readonly scheme: string;
  /** The path segments; without the final `>` when `tail` is set. */
  readonly segments: readonly string[];
  /** Whether the pattern ends in `>`. */
  readonly tail: boolean;
}

const EMPTY: readonly never[] = Object.freeze([]);

/** Splits a name into scheme and segments; `undefined` if it has neither. */
function parse(name: string): Compiled | undefined {
  const separator = name.indexOf(SEPARATOR);
  if (separator === -1 || separator + 3 === name.length) return undefined;
  return {
    scheme: name.slice(0, separator),
    segments: name.slice(separator + 3).split("/"),
    tail: false,
  };
}

/** Like {@linkcode parse}, with a last `>` segment moved into `tail`. */
function compile(pattern: string): Compiled | undefined {
  const parsed = parse(pattern);
  if (parsed === undefined || parsed.segments.at(-1) !== ">") return parsed;
  return {
    scheme: parsed.scheme,
    segments: parsed.segments.slice(0, -1),
    tail: true,
  };
}

/** Whether `queue` segments match the pattern `segments` (+ a `>` tail). */
function segmentsMatch(
  segments: readonly string[],
  tail: boolean,
  queue: readonly string[],
): boolean {
  const length = segments.length;
  if (tail ? queue.length <= length : queue.length !== length) return false;
  for (let i = 0; i < length; i++) {
    const segment = segments[i];
    if (segment !== "*" && segment !== queue[i]) return false;
  }
  return true;
}

/** Whether a segment of `path` (split on `/`) is exactly `*` or `>`. */
function hasWildcardSegment(path: string): boolean {
  let start = 0;
  while (start <= path.length) {
    let end = path.indexOf("/", start);
    if (end === -1) end = path.length;
    if (end - start === 1) {
      const c = path[start];
      if (c === "*" || c === ">") return true;
    }
    start = end + 1;
  }
  return false;
}

/** Why `name` is not valid for `use`, or `undefined` if it is. */
function invalidReason(
  name: string,
  use: "publish" | "subscribe",
): string | undefined {
  if (name.length === 0) return "it is empty";
  if (name.length > MAX_LENGTH) {
    return `it has ${name.length} characters (at most ${MAX_LENGTH})`;
  }
  const bad = WHITE_SPACE_OR_CONTROL.exec(name);
  if (bad !== null) {
    const code = bad[0].codePointAt(0) ?? 0;
    return `it contains white space or a control or invisible character (U+${
      code.toString(16).toUpperCase().padStart(4, "0")
    }) at index ${bad.index}`;
  }
  const separator = name.indexOf(SEPARATOR);
  if (separator === -1) return "it has no scheme (expected scheme://path)";
  const scheme = name.slice(0, separator);
  if (!SCHEME.test(scheme)) {
    return `its scheme "${scheme}" is invalid (expected a letter, then letters, digits, "+", "-" or ".")`;
  }
  const path = name.slice(separator + 3);
  if (path.length === 0) return "its path is empty (expected scheme://path)";
  const segments = path.split("/");
  const last = segments.length - 1;
  const tailAt = segments.indexOf(">");
  if (tailAt !== -1 && tailAt !== last) {
    return 'it has ">" before the last segment (">" may only end a pattern)';
  }
  if (use === "publish" && (tailAt !== -1 || segments.includes("*"))) {
    return 'it contains a wildcard segment ("*" or ">"), which only a subscription may use';
  }
  return undefined;
}

/** "null", "undefined", "an object", or "a" and the `typeof`. */
function typeName(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  const type = typeof value;
  return type === "object" ? "an object" : `a ${type}`;
}

/** `String(value)`, or a tag such as `[object Object]` if that throws. */
function stringForm(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Removes the last entry holding `value`; whether there was one. */
function removeLast<T>(list: Entry<T>[], value: T): boolean {
  for (let i = list.length - 1; i >= 0; i--) {
    if (sameValueZero((list[i] as Entry<T>).value, value)) {
      list.splice(i, 1);
      return true;
    }
  }
  return false;
}

/** Index of the last entry with `pattern` and `value`, or -1. */
function findLast<T>(list: Entry<T>[], pattern: string, value: T): number {
  for (let i = list.length - 1; i >= 0; i--) {
    const entry = list[i] as Entry<T>;
    if (entry.pattern === pattern && sameValueZero(entry.value, value)) {
      return i;
    }
  }
  return -1;
}

/** Equality as for `Map` keys: `===`, except that `NaN` equals `NaN`. */
function sameValueZero(a: unknown, b: unknown): boolean {
  return a === b || (a !== a && b !== b);
}
