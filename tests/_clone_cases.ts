/**
 * What the tests of `snapshot()` and of the data codec compare against
 * `structuredClone`: a deep comparison that also checks prototypes, key
 * order, `-0` and shared references, tables of values by how they are
 * copied, and a seeded generator of random nested values.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mock } from "node:test";

// ---------------------------------------------------------------------------
// Helpers

/** Every object reachable from `root` through own data properties, Map and Set. */
export function reachableObjects(root: unknown): Set<object> {
  const found = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value !== "object" || value === null || found.has(value)) {
      continue;
    }
    found.add(value);
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Reflect.getOwnPropertyDescriptor(value, key);
      if (descriptor !== undefined && "value" in descriptor) {
        stack.push(descriptor.value);
      }
    }
    if (value instanceof Map) {
      for (const [k, v] of value) stack.push(k, v);
    } else if (value instanceof Set) {
      for (const v of value) stack.push(v);
    }
  }
  return found;
}

/**
 * Walks `actual` and `expected` side by side and checks what deepStrictEqual
 * does not: the same prototype on every node, the same own keys in the same
 * order with the same attributes, `Object.is` on primitives, the same
 * shared-reference structure, and that no node of the copy is a node of the
 * original.
 */
export function assertSameShape(
  actual: unknown,
  expected: unknown,
  original: unknown,
): void {
  const originals = reachableObjects(original);
  const actualIds = new Map<object, number>();
  const expectedIds = new Map<object, number>();
  const walk = (a: unknown, e: unknown, path: string): void => {
    assert.equal(typeof a, typeof e, `type at ${path}`);
    if (typeof a !== "object" || a === null) {
      assert.ok(Object.is(a, e), `value at ${path}: ${String(a)}`);
      return;
    }
    assert.ok(typeof e === "object" && e !== null, `object at ${path}`);
    const seenA = actualIds.get(a);
    const seenE = expectedIds.get(e);
    assert.equal(seenA, seenE, `shared reference structure at ${path}`);
    if (seenA !== undefined) return;
    actualIds.set(a, actualIds.size);
    expectedIds.set(e, expectedIds.size);
    assert.ok(!originals.has(a), `copy shares the original's node at ${path}`);
    assert.equal(
      Object.getPrototypeOf(a),
      Object.getPrototypeOf(e),
      `prototype at ${path}`,
    );
    const keys = Reflect.ownKeys(a);
    assert.deepEqual(keys, Reflect.ownKeys(e), `own keys at ${path}`);
    for (const key of keys) {
      const da: PropertyDescriptor | undefined = Reflect
        .getOwnPropertyDescriptor(a, key);
      const de: PropertyDescriptor | undefined = Reflect
        .getOwnPropertyDescriptor(e, key);
      assert.ok(da !== undefined && de !== undefined);
      const { value: va, ...flagsA } = da;
      const { value: ve, ...flagsE } = de;
      assert.deepEqual(flagsA, flagsE, `attributes of ${path}.${String(key)}`);
      walk(va, ve, `${path}.${String(key)}`);
    }
    if (a instanceof Map && e instanceof Map) {
      walk([...a], [...e], `${path}<entries>`);
    } else if (a instanceof Set && e instanceof Set) {
      walk([...a], [...e], `${path}<values>`);
    }
  };
  walk(actual, expected, "$");
}

/** What `f` throws, or fails if it returns. */
export function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  assert.fail("expected an exception");
}

/** Counts calls of `structuredClone` made while `f` runs. */
export function countStructuredClones(f: () => void): number {
  const spy = mock.method(globalThis, "structuredClone");
  try {
    f();
    return spy.mock.callCount();
  } finally {
    spy.mock.restore();
  }
}

export class Point {
  x: number;
  y: number;
  constructor(x: number, y: number) {
    this.x = x;
    this.y = y;
  }
  get length(): number {
    return Math.hypot(this.x, this.y);
  }
}

export function argumentsOf(..._args: unknown[]): unknown {
  return arguments;
}

// ---------------------------------------------------------------------------
// The table

const shared = (): Record<string, unknown> => ({ id: 1 });

/** Values snapshot() copies in JavaScript (no structuredClone call). */
export const plainCases: Record<string, () => unknown> = {
  "zero": () => 0,
  "negative zero": () => -0,
  "NaN": () => NaN,
  "Infinity": () => -Infinity,
  "string": () => "héllo ✓",
  "empty string": () => "",
  "boolean": () => false,
  "null": () => null,
  "undefined": () => undefined,
  "bigint": () => 12345678901234567890n,
  "flat object": () => ({ index: 3, s: "hello" }),
  "empty object": () => ({}),
  "ten fields": () => ({
    id: 1,
    name: "order",
    qty: 3,
    price: 9.5,
    tags: ["a", "b"],
    ok: true,
    note: null,
    meta: { by: "x", at: 123 },
    items: [{ sku: "s1", n: 1 }],
    extra: undefined,
  }),
  "nested objects": () => ({ a: { b: { c: { d: [1, { e: 2 }] } } } }),
  "empty array": () => [],
  "array of mixed primitives": () => [1, "a", null, undefined, true, 2n, -0],
  "nested arrays": () => [[1, [2, [3, []]]], [[]]],
  "array filled after new Array(n)": () => {
    const a: number[] = new Array(3);
    a[0] = 1;
    a[1] = 2;
    a[2] = 3;
    return a;
  },
  "-0 and NaN in an object": () => ({ z: -0, n: NaN, list: [-0, NaN] }),
  "bigint nested": () => ({ big: { n: -(2n ** 70n) }, list: [0n] }),
  "undefined properties": () => ({ a: undefined, b: { c: undefined } }),
  "null-prototype object": () =>
    Object.assign(Object.create(null), { a: 1, b: { c: 2 } }),
  "nested null-prototype object": () => ({
    inner: Object.assign(Object.create(null), { x: [1] }),
  }),
  "integer-like keys keep their order": () => ({
    b: 1,
    2: 2,
    a: 3,
    1: 4,
    "-1": 5,
    "01": 6,
    "4294967295": 7,
    "1.5": 8,
  }),
  "own getter": () => ({
    get computed(): { x: number } {
      return { x: 1 };
    },
    plain: 2,
  }),
  "getter that deletes a later key": () => ({
    get a(): number {
      delete (this as Record<string, unknown>).b;
      return 1;
    },
    b: 2,
    c: 3,
  }),
  "non-enumerable property": () =>
    Object.defineProperty({ a: 1 }, "hidden", { value: 2, enumerable: false }),
  "symbol-keyed property": () => ({ [Symbol("s")]: 1, a: 2 }),
  "symbol-keyed property holding a function": () => ({
    [Symbol("s")]: () => 1,
    a: 2,
  }),
  "frozen object": () => Object.freeze({ a: Object.freeze([1, 2]) }),
  "Math (plain object, non-enumerable keys)": () => Math,
  "many nested objects (more than 32)": () => ({
    rows: Array.from({ length: 60 }, (_, i) => ({ i, tags: [String(i)] })),
  }),
  "unicode keys": () => ({ "ключ": 1, "🔑": { "ä": 2 }, "": 3 }),
  "object as array element": () => [{ a: 1 }, { a: 2 }],
};

/** Values snapshot() hands to structuredClone. */
export const fallbackCases: Record<string, () => unknown> = {
  "sparse array": () => [1, , 3],
  "array with only holes": () => new Array(4),
  "hole at the end": () => [1, 2, ,],
  "nested sparse array": () => ({ list: [, "b"] }),
  "shared reference in an object": () => {
    const s = shared();
    return { a: s, b: s };
  },
  "shared reference in an array": () => {
    const s = shared();
    return [s, [s], { s }];
  },
  "shared array": () => {
    const list = [1, 2];
    return { a: list, b: list };
  },
  "object cycle": () => {
    const o: Record<string, unknown> = { a: 1 };
    o.self = o;
    return o;
  },
  "array cycle": () => {
    const a: unknown[] = [1];
    a.push(a);
    return a;
  },
  "deep cycle": () => {
    const root: Record<string, unknown> = { x: { y: { z: {} } } };
    ((root.x as Record<string, unknown>).y as Record<string, unknown>).z = root;
    return root;
  },
  "shared reference after 32 objects": () => {
    const s = shared();
    const rows: unknown[] = Array.from({ length: 40 }, (_, i) => ({ i }));
    return { rows, s, again: { s } };
  },
  "Date": () => new Date(1_700_000_000_000),
  "Date nested": () => ({ at: new Date(0), list: [1, { d: new Date(5) }] }),
  "Map": () => new Map<unknown, unknown>([["a", 1], [{ k: 1 }, [2]]]),
  "Map holding a plain object also referenced outside": () => {
    const s = shared();
    return { s, m: new Map([["s", s]]) };
  },
  "Map holding the root": () => {
    const root: Record<string, unknown> = { a: 1 };
    root.m = new Map([["root", root]]);
    return root;
  },
  "Set": () => new Set([1, "a", { b: 2 }]),
  "Uint8Array": () => ({ bytes: new Uint8Array([1, 2, 3]) }),
  "ArrayBuffer": () => new ArrayBuffer(8),
  "RegExp": () => ({ re: /a+b/gi }),
  "Error": () => ({ error: new TypeError("bad") }),
  "class instance": () => new Point(3, 4),
  "class instance nested": () => ({ p: [new Point(1, 2)] }),
  "boxed number": () => new Number(3),
  "boxed string nested": () => ({ s: Object("abc") }),
  "own __proto__ key from JSON.parse": () =>
    JSON.parse('{"a":1,"__proto__":{"x":1},"b":2}'),
  "nested own __proto__ key": () => JSON.parse('{"outer":{"__proto__":[1,2]}}'),
  "array with an extra key": () => Object.assign([1, 2], { extra: "x" }),
  "array with an extra key and a hole": () =>
    Object.assign([1, , 3], { extra: "x" }),
  "RegExp match result (array with index, input, groups)": () =>
    /(?<word>b+)/.exec("abbc"),
  "array with a null prototype": () => Object.setPrototypeOf([1, 2], null),
  "array with Object.prototype": () =>
    Object.setPrototypeOf([1, 2], Object.prototype),
  "object with Array.prototype": () => Object.create(Array.prototype),
  "array subclass": () => {
    class List extends Array<number> {}
    return List.from([1, 2]);
  },
  "object deeper than 100 levels": () => {
    let value: unknown = { leaf: true };
    for (let i = 0; i < 150; i++) value = { next: value, list: [i] };
    return value;
  },
  "array longer than 8192": () => Array.from({ length: 10_000 }, (_, i) => i),
};

/** Values structuredClone refuses; snapshot must throw the same. */
export const uncloneableCases: Record<string, () => unknown> = {
  "function": () => () => 1,
  "symbol": () => Symbol("s"),
  "object holding a function": () => ({ a: 1, run: function run(): void {} }),
  "nested symbol": () => ({ a: { b: [1, Symbol("deep")] } }),
  "function in an array": () => [1, () => 2],
  "function after a Date": () => ({ d: new Date(0), f: () => 1 }),
  "WeakMap": () => new WeakMap(),
  "nested WeakSet": () => ({ w: [new WeakSet()] }),
  "proxy of a plain object": () => new Proxy({ a: 1 }, {}),
  "proxy of an array, nested": () => ({ list: new Proxy([1, 2], {}) }),
  "arguments object": () => argumentsOf(1, 2),
  "empty arguments object": () => argumentsOf(),
  "array deeper than the stack": () => {
    let value: unknown = 1;
    for (let i = 0; i < 100_000; i++) value = [value];
    return value;
  },
};

// ---------------------------------------------------------------------------
// Randomized comparison

/** A small seeded generator (mulberry32). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const KEYS = [
  "a",
  "b",
  "id",
  "0",
  "1",
  "10",
  "01",
  "-1",
  "x y",
  "é",
  "",
  "len",
];
export const STRINGS = ["", "hello", "ü✓🙂", "\u0000", "a\nb", "0"];
export const NUMBERS = [
  0,
  -0,
  1,
  -1,
  1.5,
  NaN,
  Infinity,
  -Infinity,
  2 ** 53,
  1e-300,
];

/** Builds a random value of nested plain data (with rare exotic parts). */
export function generate(
  next: () => number,
  depth: number,
  pool: object[],
): unknown {
  const pick = <V>(list: readonly V[]): V =>
    list[Math.floor(next() * list.length)] as V;
  const roll = next();
  if (depth > 4 || roll < 0.35) {
    const kind = Math.floor(next() * 7);
    switch (kind) {
      case 0:
        return pick(NUMBERS);
      case 1:
        return Math.floor(next() * 1000) - 500;
      case 2:
        return pick(STRINGS);
      case 3:
        return next() < 0.5;
      case 4:
        return next() < 0.5 ? null : undefined;
      case 5:
        return BigInt(Math.floor(next() * 1e6)) * (next() < 0.5 ? -1n : 1n);
      default:
        return String(next());
    }
  }
  if (roll < 0.38 && pool.length > 0) return pick(pool); // shared or cycle
  if (roll < 0.40) return new Date(Math.floor(next() * 1e12));
  if (roll < 0.41) return new Map([[pick(KEYS), depth]]);
  if (roll < 0.70) {
    const length = Math.floor(next() * 6);
    const list: unknown[] = [];
    if (next() < 0.3) pool.push(list);
    for (let i = 0; i < length; i++) {
      if (next() < 0.05) {
        list.length++; // a hole
      } else {
        list.push(generate(next, depth + 1, pool));
      }
    }
    return list;
  }
  const record: Record<string, unknown> = next() < 0.1
    ? Object.create(null)
    : {};
  if (next() < 0.3) pool.push(record);
  const count = Math.floor(next() * 6);
  for (let i = 0; i < count; i++) {
    record[pick(KEYS)] = generate(next, depth + 1, pool);
  }
  return record;
}
