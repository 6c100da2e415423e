import assert from "node:assert/strict";
import { DataDecoder } from "../src/transport/data_decoder.ts";
import { DataEncoder } from "../src/transport/data_encoder.ts";
import { Cloned, LinkBytes } from "../src/transport/link_bytes.ts";
import {
  assertSameShape,
  fallbackCases,
  generate,
  plainCases,
  random,
  thrown,
  uncloneableCases,
} from "./_clone_cases.ts";

/**
 * One link's worth of codec: what `PortMeshTransport.send` and `PortLink`
 * do with a message's data, and what the peer's link decodes. The encoder
 * and decoder live as long as the link, so shapes accumulate as they do on
 * a real link.
 */
class Link {
  encoder = new DataEncoder();
  decoder = new DataDecoder();
  bytes = new LinkBytes();
  /** How many values the encoder did not know. */
  cloned = 0;

  /** Sends `values` as one batch and returns what the peer decodes. */
  carry(values: readonly unknown[]): unknown[] {
    for (const value of values) {
      if (this.encoder.encode(value)) {
        this.bytes.push(this.encoder);
      } else {
        this.cloned++;
        this.bytes.push(new Cloned(structuredClone(value)));
      }
    }
    const { bytes, beside } = this.bytes.take(values.length);
    // The clones cross the port as postMessage copies them.
    return this.decoder.decode(
      new Uint8Array(bytes),
      values.length,
      beside === undefined ? [] : structuredClone(beside),
    );
  }
}

/** Asserts that the codec carries `make()` as `structuredClone` copies it. */
function assertCarriedLikeClone(link: Link, make: () => unknown): void {
  const expected = structuredClone(make());
  const original = make();
  const [actual] = link.carry([original]);
  assert.deepStrictEqual(actual, expected);
  assertSameShape(actual, expected, original);
}

/** `Uint8Array`s the encoder writes itself. */
const bytesCases: Record<string, () => unknown> = {
  "Uint8Array": () => ({ bytes: new Uint8Array([1, 2, 3]) }),
  "empty Uint8Array": () => new Uint8Array(0),
  "large Uint8Array": () => new Uint8Array(20_000).fill(7),
  "Uint8Array with an extra property (structuredClone drops it)": () =>
    Object.assign(new Uint8Array([1, 2]), { extra: 1 }),
};

/** `Uint8Array`s structuredClone copies with more than their bytes. */
const bytesFallbackCases: Record<string, () => unknown> = {
  "Uint8Array on part of a buffer": () =>
    new Uint8Array(new ArrayBuffer(8), 2, 4),
  "two Uint8Arrays on one buffer": () => {
    const buffer = new ArrayBuffer(4);
    return [new Uint8Array(buffer), new Uint8Array(buffer)];
  },
  "the same Uint8Array twice": () => {
    const bytes = new Uint8Array([1]);
    return { a: bytes, b: bytes };
  },
  "Uint8Array on a resizable buffer": () =>
    new Uint8Array(new ArrayBuffer(4, { maxByteLength: 8 })),
  "Uint8Array subclass": () => {
    class Bytes extends Uint8Array {}
    return new Bytes(2);
  },
  "Uint8ClampedArray": () => new Uint8ClampedArray(2),
};

/** Values only the inline-key form of objects or long strings carry. */
const encoderEdgeCases: Record<string, () => unknown> = {
  "object of 100 keys": () =>
    Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i])),
  "long one-byte string": () => "ÿ".repeat(5000),
  "long ASCII string": () => "a".repeat(70),
  "long UTF-16 string": () => "✓🙂".repeat(100),
  "long string with a lone surrogate": () => "a".repeat(100) + "\ud800",
  "short string with a lone surrogate": () => "\udc00x",
  "strings of every length class": () =>
    [0, 1, 12, 13, 15, 16, 17, 39, 40, 41, 5000].map((n) => "é".repeat(n)),
  "integers at the edges of their tags": () => [
    255,
    256,
    -1,
    2 ** 31 - 1,
    -(2 ** 31),
    2 ** 31,
    -0,
    0.1,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
  ],
  "bigints": () => [0n, -1n, 2n ** 200n, -(2n ** 65n)],
  "array longer than 8192 (snapshot() clones it)": () =>
    Array.from({ length: 10_000 }, (_, i) => i),
  "the same shape many times": () =>
    Array.from({ length: 50 }, (_, i) => ({ id: i, name: `n${i}` })),
};

for (
  const [name, make] of Object.entries({
    ...plainCases,
    ...bytesCases,
    ...encoderEdgeCases,
  })
) {
  Deno.test(`DataEncoder carries ${name} like structuredClone, itself`, () => {
    const link = new Link();
    assertCarriedLikeClone(link, make);
    assert.equal(link.cloned, 0);
  });
}

for (
  const [name, make] of Object.entries({
    ...fallbackCases,
    ...bytesFallbackCases,
  })
) {
  // The encoder writes these itself (see above).
  if (name === "Uint8Array" || name === "array longer than 8192") continue;
  Deno.test(`DataEncoder leaves ${name} to structuredClone`, () => {
    const link = new Link();
    assert.equal(link.encoder.encode(make()), false);
    assertCarriedLikeClone(link, make);
    assert.equal(link.cloned, 1);
  });
}

Deno.test("DataEncoder leaves uncloneable values to structuredClone, which throws", () => {
  const encoder = new DataEncoder();
  for (const [name, make] of Object.entries(uncloneableCases)) {
    assert.equal(encoder.encode(make()), false, name);
    assert.ok(thrown(() => structuredClone(make())) instanceof Error, name);
  }
});

Deno.test("DataEncoder leaves a Uint8Array on a detached buffer to structuredClone, which throws", () => {
  const bytes = new Uint8Array(4);
  structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
  assert.equal(new DataEncoder().encode({ bytes }), false);
  assert.equal(
    (thrown(() => structuredClone({ bytes })) as Error).name,
    "DataCloneError",
  );
});

Deno.test("DataEncoder rethrows a getter's error and encodes on afterwards", () => {
  const encoder = new DataEncoder();
  const boom = new RangeError("boom");
  const value = {
    ok: [1],
    get bad(): never {
      throw boom;
    },
  };
  assert.equal(thrown(() => encoder.encode(value)), boom);
  const cycle: Record<string, unknown> = { a: {} };
  cycle.self = cycle;
  assert.equal(encoder.encode(cycle), false);
  assert.equal(encoder.encode({ a: { b: [1] } }), true);
});

Deno.test("DataEncoder gives up when a getter encodes (the inner value is cloned)", () => {
  const link = new Link();
  let inner: boolean | undefined;
  const value = {
    get nested(): number {
      inner = link.encoder.encode({ x: 1 });
      return 1;
    },
    after: "yes",
  };
  assert.deepEqual(link.carry([value]), [{ nested: 1, after: "yes" }]);
  assert.equal(inner, false);
});

Deno.test("DataEncoder writes keys inline once its shape table is full", () => {
  const link = new Link();
  // More distinct shapes than the table holds (4,096), in batches.
  for (let first = 0; first < 5000; first += 500) {
    const values = Array.from(
      { length: 500 },
      (_, i) => ({ [`key${first + i}`]: i, shared: { deep: first + i } }),
    );
    assert.deepStrictEqual(link.carry(values), structuredClone(values));
  }
  assert.equal(link.encoder.shapes, 4096);
  assert.equal(link.cloned, 0);
});

Deno.test("a link's batches decode in order with shapes taught once", () => {
  const link = new Link();
  const message = (i: number): unknown => ({ index: i, s: "hello" });
  const first = link.carry([message(0), message(1)]);
  const sizeBefore = link.encoder.length;
  const second = link.carry([message(2)]);
  assert.deepEqual([...first, ...second], [0, 1, 2].map(message));
  // The second batch carries no shape: only the values.
  assert.equal(sizeBefore, link.encoder.length);
  assert.equal(link.encoder.shapes, 1);
});

Deno.test("LinkBytes keeps messages apart when batches are cut at any point", () => {
  const encoder = new DataEncoder();
  const decoder = new DataDecoder();
  const queue = new LinkBytes();
  const next = random(7);
  const sent: unknown[] = [];
  const received: unknown[] = [];
  let pending = 0;
  for (let i = 0; i < 3000; i++) {
    const value = next() < 0.05
      ? new Date(i)
      : { i, text: "x".repeat(Math.floor(next() * 300)) };
    sent.push(value);
    if (encoder.encode(value)) queue.push(encoder);
    else queue.push(new Cloned(structuredClone(value)));
    pending++;
    if (next() < 0.1) {
      const count = 1 + Math.floor(next() * pending);
      const { bytes, beside } = queue.take(count);
      received.push(
        ...decoder.decode(new Uint8Array(bytes), count, beside ?? []),
      );
      pending -= count;
    }
  }
  const { bytes, beside } = queue.take(pending);
  received.push(
    ...decoder.decode(new Uint8Array(bytes), pending, beside ?? []),
  );
  assert.deepStrictEqual(received, sent);
});

Deno.test("DataEncoder carries 5,000 random values exactly as structuredClone copies them", () => {
  // Seeded: a failure names its case, and the same seed rebuilds it.
  const next = random(0xc0dec);
  const link = new Link();
  for (let batch = 0; batch < 50; batch++) {
    const originals: unknown[] = [];
    for (let i = 0; i < 100; i++) originals.push(generate(next, 0, []));
    const expected = originals.map((value) => structuredClone(value));
    const actual = link.carry(originals);
    for (let i = 0; i < originals.length; i++) {
      try {
        assert.deepStrictEqual(actual[i], expected[i]);
        assertSameShape(actual[i], expected[i], originals[i]);
      } catch (error) {
        throw new Error(`Random case ${batch * 100 + i} differs`, {
          cause: error,
        });
      }
    }
  }
  // The generator mostly makes plain data: most values were encoded.
  assert.ok(link.cloned < 2500, `${link.cloned} of 5000 were cloned`);
});

Deno.test("DataEncoder carries 2,000 random values with bytes and long strings exactly as structuredClone copies them", () => {
  const next = random(0xb17e5);
  const link = new Link();
  const texts = ["x", "é", "✓", "🙂", "\ud800"];
  for (let batch = 0; batch < 20; batch++) {
    const originals: unknown[] = [];
    for (let i = 0; i < 100; i++) {
      const text = texts[Math.floor(next() * texts.length)]!.repeat(
        Math.floor(next() * 120),
      );
      const bytes = new Uint8Array(Math.floor(next() * 64)).map(() =>
        Math.floor(next() * 256)
      );
      originals.push(
        next() < 0.5
          ? { value: generate(next, 1, []), text, bytes }
          : [text, generate(next, 1, []), bytes],
      );
    }
    const expected = originals.map((value) => structuredClone(value));
    const actual = link.carry(originals);
    for (let i = 0; i < originals.length; i++) {
      try {
        assert.deepStrictEqual(actual[i], expected[i]);
        assertSameShape(actual[i], expected[i], originals[i]);
      } catch (error) {
        throw new Error(`Random case ${batch * 100 + i} differs`, {
          cause: error,
        });
      }
    }
  }
  assert.ok(link.cloned < 1000, `${link.cloned} of 2000 were cloned`);
});
