import assert from "node:assert/strict";
import { mock } from "node:test";
import { snapshot } from "../src/_util/snapshot.ts";
import {
  assertSameShape,
  countStructuredClones,
  fallbackCases,
  generate,
  plainCases,
  random,
  thrown,
  uncloneableCases,
} from "./_clone_cases.ts";

/** Asserts that `snapshot(make())` is what `structuredClone(make())` gives. */
function assertLikeStructuredClone(make: () => unknown): void {
  const expected = structuredClone(make());
  const original = make();
  const actual = snapshot(original);
  assert.deepStrictEqual(actual, expected);
  assertSameShape(actual, expected, original);
}

// ---------------------------------------------------------------------------
// Tests

for (const [name, make] of Object.entries(plainCases)) {
  Deno.test(`snapshot() copies ${name} like structuredClone`, () => {
    assertLikeStructuredClone(make);
  });
}

for (const [name, make] of Object.entries(fallbackCases)) {
  Deno.test(`snapshot() copies ${name} like structuredClone`, () => {
    assertLikeStructuredClone(make);
  });
}

for (const [name, make] of Object.entries(uncloneableCases)) {
  Deno.test(`snapshot() throws like structuredClone for ${name}`, () => {
    const expected = thrown(() => structuredClone(make()));
    const actual = thrown(() => snapshot(make()));
    assert.ok(actual instanceof Error && expected instanceof Error);
    assert.equal(actual.constructor, expected.constructor);
    assert.equal(actual.name, expected.name);
    assert.equal(actual.message, expected.message);
  });
}

Deno.test("snapshot() throws like structuredClone for a module namespace", async () => {
  // Only data exports: a function export would fail the copy anyway.
  const namespace = await import(
    "data:application/javascript,export const a = 1; export const b = [2];"
  );
  const expected = thrown(() => structuredClone(namespace));
  const actual = thrown(() => snapshot({ namespace }));
  assert.ok(actual instanceof DOMException && expected instanceof DOMException);
  assert.equal(actual.name, "DataCloneError");
  assert.equal(actual.message, expected.message);
});

Deno.test("snapshot() copies plain data without calling structuredClone", () => {
  for (const [name, make] of Object.entries(plainCases)) {
    const value = make();
    assert.equal(countStructuredClones(() => snapshot(value)), 0, name);
  }
});

Deno.test("snapshot() hands other values to structuredClone once, whole", () => {
  for (const [name, make] of Object.entries(fallbackCases)) {
    const value = make();
    const spy = mock.method(globalThis, "structuredClone");
    try {
      snapshot(value);
      assert.equal(spy.mock.callCount(), 1, name);
      assert.equal(spy.mock.calls[0]?.arguments[0], value, name);
    } finally {
      spy.mock.restore();
    }
  }
});

Deno.test("snapshot() returns the copy, never the original", () => {
  const nested = { a: [{ b: 1 }] };
  const value = { nested, list: nested.a };
  const copy = snapshot({ x: nested });
  assert.notEqual(copy.x, nested);
  assert.notEqual(copy.x.a, nested.a);
  assert.notEqual(copy.x.a[0], nested.a[0]);
  const fallback = snapshot(value);
  assert.notEqual(fallback.nested, nested);
  assert.equal(fallback.list, fallback.nested.a);
});

Deno.test("snapshot() reads an own getter once", () => {
  let calls = 0;
  const value = {
    get n(): number {
      calls++;
      return calls;
    },
    list: [1, { deep: true }],
  };
  const copy = snapshot(value);
  assert.equal(calls, 1);
  assert.deepEqual(copy, { n: 1, list: [1, { deep: true }] });
  assert.equal(Object.getOwnPropertyDescriptor(copy, "n")?.value, 1);
});

Deno.test("snapshot() reads getters in structuredClone's order", () => {
  const make = (log: string[]): unknown => ({
    get a(): unknown {
      log.push("a");
      return {
        get c(): number {
          log.push("c");
          return 3;
        },
      };
    },
    get b(): number {
      log.push("b");
      return 2;
    },
  });
  const expected: string[] = [];
  structuredClone(make(expected));
  const actual: string[] = [];
  snapshot(make(actual));
  assert.deepEqual(actual, expected);
  assert.deepEqual(actual, ["a", "c", "b"]);
});

Deno.test("snapshot() runs a getter again when it falls back (known difference)", () => {
  // The getter is read by the JavaScript copy, then the Date makes it hand the
  // whole value to structuredClone, which reads it again. A getter after the
  // Date, or in a value with no Date, runs once.
  let calls = 0;
  const value = {
    get n(): number {
      return ++calls;
    },
    at: new Date(0),
  };
  const copy = snapshot(value);
  assert.equal(calls, 2);
  assert.deepEqual(copy, { n: 2, at: new Date(0) });
});

Deno.test("snapshot() rethrows a getter's error, as structuredClone does", () => {
  const boom = new RangeError("boom");
  const make = (): unknown => ({
    ok: [1],
    get bad(): never {
      throw boom;
    },
  });
  assert.equal(thrown(() => structuredClone(make())), boom);
  assert.equal(thrown(() => snapshot(make())), boom);
  // The state of the copy was reset: a cycle is still found afterwards.
  const cycle: Record<string, unknown> = { a: {} };
  cycle.self = cycle;
  const copy = snapshot(cycle);
  assert.equal(copy.self, copy);
});

Deno.test("snapshot() works when a getter calls snapshot()", () => {
  const inner = { list: [1, 2] };
  const value = {
    get copied(): unknown {
      return snapshot(inner);
    },
    after: { x: 1 },
  };
  assertLikeStructuredClone(() => value);
});

Deno.test("snapshot() ignores enumerable keys added to Object.prototype", () => {
  const proto = Object.prototype as Record<string, unknown>;
  proto.polluted = "yes";
  try {
    assertLikeStructuredClone(() => ({ a: 1, b: { c: [2] } }));
    assert.equal(Object.hasOwn(snapshot({ a: 1 }), "polluted"), false);
  } finally {
    delete proto.polluted;
  }
});

Deno.test("snapshot() forgets the objects of the previous call", () => {
  for (const size of [3, 60]) {
    const rows = Array.from({ length: size }, (_, i) => ({ i }));
    snapshot({ rows });
    // The same rows again, in a new value: not a revisit, so no fallback.
    const clones = countStructuredClones(() => {
      assert.deepEqual(snapshot({ again: rows }), { again: rows });
    });
    assert.equal(clones, 0, `${size} rows`);
  }
});

Deno.test("snapshot() copies many shapes in a row without mixing them up", () => {
  const values = [
    { a: 1 },
    [1, 2],
    { b: { c: [3] } },
    { a: 1 },
  ];
  const copies = values.map((value) => snapshot(value));
  assert.deepEqual(copies, values);
  for (let i = 0; i < values.length; i++) {
    assert.notEqual(copies[i], values[i]);
  }
});

Deno.test("snapshot() matches structuredClone on 5,000 random values", () => {
  const next = random(0x5eed);
  let fast = 0;
  for (let i = 0; i < 5000; i++) {
    const value = generate(next, 0, []);
    const expected = structuredClone(value);
    let actual: unknown;
    const clones = countStructuredClones(() => {
      actual = snapshot(value);
    });
    if (clones === 0) fast++;
    try {
      assert.deepStrictEqual(actual, expected);
      assertSameShape(actual, expected, value);
    } catch (error) {
      throw new Error(`Random case ${i} differs`, { cause: error });
    }
  }
  // The generator mostly makes plain data: most cases take the fast path.
  assert.ok(fast > 2500, `only ${fast} of 5000 took the fast path`);
});
