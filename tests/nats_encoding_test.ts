import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import {
  decodePayload,
  encodePayload,
  type PayloadEncoding,
} from "../src/nats/encoding.ts";

/** Encodes and decodes `value` as a message would travel. */
function travel(value: unknown): { data: unknown; encoding: PayloadEncoding } {
  const { payload, encoding } = encodePayload(value);
  // As received: a copy, inside a larger buffer (as a client's read chunk).
  const chunk = new Uint8Array(payload.length + 8);
  chunk.set(payload, 4);
  return {
    data: decodePayload(chunk.subarray(4, 4 + payload.length), encoding),
    encoding,
  };
}

const ERROR = new TypeError("bad", { cause: 1 });

/** Values with the encoding each must get. */
const CATALOG: Array<[string, unknown, PayloadEncoding]> = [
  ["null", null, "json"],
  ["true", true, "json"],
  ["a number", 1.5, "json"],
  ["a string with a lone surrogate", "a\uD800b", "json"],
  ["an empty object", {}, "json"],
  ["nested plain data", { a: [1, "x", { b: null }], c: false }, "json"],
  [
    "a null-prototype object",
    Object.assign(Object.create(null), { a: 1 }),
    "json",
  ],
  ["integer-like keys", { 2: "b", 1: "a", x: 0 }, "json"],
  ["a __proto__ own key", JSON.parse('{"__proto__":{"a":1}}'), "json"],
  ["bytes", new Uint8Array([0, 1, 255]), "bytes"],
  ["empty bytes", new Uint8Array(), "bytes"],
  ["undefined", undefined, "structured"],
  ["NaN", NaN, "structured"],
  ["Infinity", Infinity, "structured"],
  ["-0", -0, "structured"],
  ["-0 inside", { a: [-0] }, "structured"],
  ["a BigInt", 10n, "structured"],
  ["undefined inside an object", { a: undefined }, "structured"],
  ["undefined inside an array", [1, undefined], "structured"],
  // deno-lint-ignore no-sparse-arrays
  ["a sparse array", [1, , 3], "structured"],
  ["a Map", new Map<unknown, unknown>([[1, { a: 2n }]]), "structured"],
  ["a Set", new Set(["a"]), "structured"],
  ["a Date", new Date(1733100000000), "structured"],
  ["a RegExp", /x/gi, "structured"],
  ["an Error", ERROR, "structured"],
  ["a Float64Array", new Float64Array([1.5, -0]), "structured"],
  ["a BigInt64Array", new BigInt64Array([3n]), "structured"],
  ["a Uint8ClampedArray", new Uint8ClampedArray([3]), "structured"],
  ["a DataView", new DataView(new ArrayBuffer(4)), "structured"],
  ["an ArrayBuffer", new Uint8Array([1, 2]).buffer, "structured"],
  [
    "a class instance",
    new (class Point {
      x = 1;
      y = 2;
    })(),
    "structured",
  ],
  ["a String object", new String("x"), "structured"],
  ["a Date inside", { at: new Date(0) }, "structured"],
];

Deno.test("encodePayload() picks json, bytes or structured, and the data arrives as structuredClone gives it", () => {
  for (const [label, value, expected] of CATALOG) {
    const { data, encoding } = travel(value);
    assert.equal(encoding, expected, label);
    assert.deepStrictEqual(data, structuredClone(value), label);
    if (data !== null && typeof data === "object") {
      assert.equal(
        Object.getPrototypeOf(data),
        Object.getPrototypeOf(structuredClone(value)),
        label,
      );
    }
  }
});

Deno.test("encodePayload() keeps cycles, shared references and errors as structuredClone does", () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const back = travel(cyclic);
  assert.equal(back.encoding, "structured");
  const data = back.data as Record<string, unknown>;
  assert.equal(data.self, data);

  const shared = { n: 1 };
  const two = travel({ a: shared, b: shared });
  assert.equal(two.encoding, "structured");
  const pair = two.data as { a: unknown; b: unknown };
  assert.equal(pair.a, pair.b);

  const error = travel(ERROR).data as TypeError;
  assert.ok(error instanceof TypeError);
  assert.equal(error.message, "bad");
  assert.equal(error.cause, 1);
  assert.equal(error.stack, ERROR.stack);
});

Deno.test("encodePayload() throws DataCloneError where structuredClone does", () => {
  for (const value of [() => 1, Symbol("x"), { f(): void {} }]) {
    assert.throws(() => structuredClone(value), { name: "DataCloneError" });
    assert.throws(() => encodePayload(value), { name: "DataCloneError" });
  }
});

Deno.test("encodePayload() passes Uint8Array through; a Buffer-like subclass goes structured", () => {
  const bytes = new Uint8Array([1, 2, 3]);
  assert.equal(encodePayload(bytes).payload, bytes);
  class Bytes extends Uint8Array {}
  const sub = travel(new Bytes([4, 5]));
  assert.equal(sub.encoding, "structured");
  assert.deepStrictEqual(sub.data, structuredClone(new Bytes([4, 5])));
});

Deno.test("decodePayload() reads a plain client's payloads: JSON text, else bytes that own their buffer", () => {
  const text = new TextEncoder().encode(' [1, {"a": "é"}] ');
  assert.deepStrictEqual(decodePayload(text, undefined), [1, { a: "é" }]);
  const notJson = new TextEncoder().encode("hello");
  const bytes = decodePayload(notJson, undefined) as Uint8Array;
  assert.deepStrictEqual(bytes, notJson);
  const chunk = new Uint8Array([9, 0xc3, 0x28, 9]);
  const view = chunk.subarray(1, 3); // invalid UTF-8, inside a larger buffer
  const copy = decodePayload(view, undefined) as Uint8Array;
  assert.deepStrictEqual(copy, view);
  assert.equal(copy.buffer.byteLength, 2);
  assert.deepStrictEqual(
    decodePayload(new TextEncoder().encode("42"), undefined),
    42,
  );
  // A real U+FFFD is text; a replaced error is not.
  const replacement = new TextEncoder().encode('"\uFFFD"');
  assert.equal(decodePayload(replacement, undefined), "\uFFFD");
  const broken = new Uint8Array([0x22, 0xff, 0x22]); // "\xFF"
  assert.deepStrictEqual(decodePayload(broken, undefined), broken);
});

Deno.test("decodePayload() refuses a bad json or structured payload and an unknown encoding", () => {
  const text = new TextEncoder().encode("{");
  assert.throws(() => decodePayload(text, "json"), SyntaxError);
  assert.throws(() => decodePayload(new Uint8Array([0xff]), "json"), TypeError);
  assert.throws(() => decodePayload(new Uint8Array([1, 2]), "structured"), {
    name: "TypeError",
    message: "Cannot decode a structured payload",
  });
  assert.throws(() => decodePayload(text, "gzip"), {
    name: "TypeError",
    message: /unknown Mf-Encoding "gzip"/,
  });
});

/** A small deterministic PRNG (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LEAVES: unknown[] = [
  0,
  -0,
  1,
  -1.25,
  2 ** 53,
  1e300,
  NaN,
  Infinity,
  "",
  "é😀",
  "\uDC00",
  true,
  false,
  null,
  undefined,
  10n,
];

function generate(next: () => number, depth: number): unknown {
  const roll = next();
  if (depth > 3 || roll < 0.5) {
    return LEAVES[Math.floor(next() * LEAVES.length)];
  }
  const length = Math.floor(next() * 4);
  if (roll < 0.75) {
    return Array.from({ length }, () => generate(next, depth + 1));
  }
  const object: Record<string, unknown> = {};
  for (let i = 0; i < length; i++) {
    object[next() < 0.2 ? String(i) : `k${i}`] = generate(next, depth + 1);
  }
  return object;
}

Deno.test("encodePayload() uses JSON exactly when JSON round-trips the value (20,000 generated values)", () => {
  const next = random(7);
  const counts = { json: 0, structured: 0, bytes: 0 };
  for (let i = 0; i < 20_000; i++) {
    const value = generate(next, 0);
    const expected = structuredClone(value);
    const { data, encoding } = travel(value);
    counts[encoding]++;
    assert.deepStrictEqual(data, expected);
    if (encoding === "json") {
      assert.deepStrictEqual(JSON.parse(JSON.stringify(value)), expected);
    } else {
      // Refused only when JSON would change it.
      let json: string | undefined;
      try {
        json = JSON.stringify(value);
      } catch {
        continue; // a BigInt: JSON cannot write it at all
      }
      assert.ok(
        json === undefined || !isDeepStrictEqual(JSON.parse(json), expected),
        `refused JSON for ${Deno.inspect(value)}`,
      );
    }
  }
  assert.ok(
    counts.json > 5000 && counts.structured > 5000,
    JSON.stringify(counts),
  );
});

Deno.test('encodePayload(data, "foreign") writes what JSON.stringify writes when JSON carries the data faithfully', () => {
  const shared = { x: 1 };
  const cases: Array<[string, unknown, string]> = [
    ["an undefined field (dropped)", { a: 1, b: undefined }, '{"a":1}'],
    ["an undefined item (null)", [1, undefined], "[1,null]"],
    // deno-lint-ignore no-sparse-arrays
    ["a hole (null)", [1, , 3], "[1,null,3]"],
    [
      "a Date (its ISO string)",
      { at: new Date(0) },
      '{"at":"1970-01-01T00:00:00.000Z"}',
    ],
    ["-0 (0)", [-0], "[0]"],
    [
      "a shared object (written twice)",
      { a: shared, b: shared },
      '{"a":{"x":1},"b":{"x":1}}',
    ],
    [
      "a null-prototype object",
      Object.assign(Object.create(null), { a: "é" }),
      '{"a":"é"}',
    ],
    ["a string", "hi", '"hi"'],
    ["null", null, "null"],
    ["undefined itself (no payload)", undefined, ""],
  ];
  for (const [label, value, text] of cases) {
    const { payload, encoding } = encodePayload(value, "foreign");
    assert.equal(encoding, "json", label);
    assert.equal(new TextDecoder().decode(payload), text, label);
  }
  const bytes = new Uint8Array([1, 2]);
  assert.deepEqual(encodePayload(bytes, "foreign"), {
    payload: bytes,
    encoding: "bytes",
  });
});

Deno.test('encodePayload(data, "foreign") refuses what JSON cannot carry faithfully, naming where it is', () => {
  const cycle: Record<string, unknown> = {};
  cycle.list = [0, { up: cycle }];
  const cases: Array<[unknown, string, string]> = [
    [new Map(), "data", "a Map"],
    [{ tags: new Set([1]) }, "data.tags", "a Set"],
    [{ deep: [{ n: 10n }] }, "data.deep[0].n", "a bigint"],
    [{ x: NaN }, "data.x", "NaN"],
    [[Infinity], "data[0]", "Infinity"],
    [{ when: new Date(NaN) }, "data.when", "an invalid Date"],
    [{ f: new Float32Array(1) }, "data.f", "a Float32Array"],
    [
      { raw: new Uint8Array(1) },
      "data.raw",
      "a Uint8Array (only a whole message goes as bytes)",
    ],
    [{ b: new ArrayBuffer(1) }, "data.b", "an ArrayBuffer"],
    [{ e: new Error("x") }, "data.e", "an Error"],
    [{ at: new (class Point {})() }, "data.at", "a Point"],
    [{ "a b": { f: () => 1 } }, 'data["a b"].f', "a function"],
    [{ s: Symbol("s") }, "data.s", "a symbol"],
    [cycle, "data.list[1].up", "a cycle (it holds itself)"],
  ];
  for (const [value, path, what] of cases) {
    assert.throws(() => encodePayload(value, "foreign"), {
      name: "NotJsonError",
      path,
      what,
    }, path);
  }
});
