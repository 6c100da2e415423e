/**
 * MemoryHistory, the in-memory HistoryStore behind sessions: offsets across
 * streams, merged reads, and each bound (count, bytes, age per stream;
 * bytes in all), with a test clock.
 */
import assert from "node:assert/strict";
import { ENTRY_COST, MemoryHistory } from "../src/websocket/history.ts";

const ROOMY = {
  maxMessages: 100,
  maxBytes: 1 << 20,
  maxAge: 60_000,
  maxTotalBytes: 1 << 24,
};

Deno.test("MemoryHistory records only retained streams, with offsets that grow across streams, and merges reads in offset order", () => {
  using history = new MemoryHistory(ROOMY);
  assert.equal(history.append("a", "nobody follows"), undefined);
  history.retain("a");
  history.retain("b");
  assert.equal(history.append("a", "a1"), 1);
  assert.equal(history.append("b", "b1"), 2);
  assert.equal(history.append("a", new Uint8Array([3])), 3);
  assert.equal(history.last, 3);
  assert.deepEqual(
    history.read([{ stream: "a", after: 0 }, { stream: "b", after: 0 }]),
    [
      { offset: 1, frame: "a1" },
      { offset: 2, frame: "b1" },
      { offset: 3, frame: new Uint8Array([3]) },
    ],
  );
  assert.deepEqual(history.read([{ stream: "a", after: 1 }]), [
    { offset: 3, frame: new Uint8Array([3]) },
  ]);
  assert.deepEqual(history.stats(), { streams: 2, messages: 3, bytes: 5 });
});

Deno.test("MemoryHistory frees a stream at its last release", () => {
  using history = new MemoryHistory(ROOMY);
  history.retain("a");
  history.retain("a");
  history.append("a", "x");
  history.release("a");
  assert.ok(history.has("a"));
  history.release("a");
  assert.ok(!history.has("a"));
  assert.deepEqual(history.stats(), { streams: 0, messages: 0, bytes: 0 });
  assert.deepEqual(history.read([{ stream: "a", after: 0 }]), []);
});

Deno.test("MemoryHistory drops a stream's oldest past maxMessages, maxBytes (UTF-8) and maxAge, and a read that needed one is 'trimmed'", () => {
  let now = 0;
  using history = new MemoryHistory({
    maxMessages: 3,
    maxBytes: 8,
    maxAge: 1000,
    maxTotalBytes: 1 << 20,
  }, () => now);
  history.retain("count");
  for (let i = 1; i <= 5; i++) history.append("count", "x");
  assert.equal(history.read([{ stream: "count", after: 1 }]), "trimmed");
  assert.deepEqual(
    history.read([{ stream: "count", after: 2 }]),
    [3, 4, 5].map((offset) => ({ offset, frame: "x" })),
  );

  history.retain("bytes");
  history.append("bytes", "éé"); // 4 bytes
  history.append("bytes", "éé");
  history.append("bytes", "é"); // 10 bytes: the first goes
  assert.deepEqual(
    history.read([{ stream: "bytes", after: 6 }]),
    [{ offset: 7, frame: "éé" }, { offset: 8, frame: "é" }],
  );
  assert.equal(history.read([{ stream: "bytes", after: 5 }]), "trimmed");

  // Appends are stamped with the clock of the last sweep; a message goes
  // once its stamp is more than maxAge plus a sweep period (1000 / 8) old.
  history.retain("age");
  history.append("age", "old");
  now = 600;
  history.sweep();
  history.append("age", "new");
  now = 1125;
  assert.equal(history.read([{ stream: "age", after: 8 }]).length, 2);
  now = 1126;
  assert.equal(history.read([{ stream: "age", after: 8 }]), "trimmed");
  assert.deepEqual(history.read([{ stream: "age", after: 9 }]), [
    { offset: 10, frame: "new" },
  ]);
  // The sweep drops what aged without a read, in every stream.
  assert.equal(history.stats().messages, 3 + 2 + 1);
  now = 1726;
  history.sweep();
  assert.equal(history.stats().messages, 0);
});

Deno.test("MemoryHistory keeps at most maxTotalBytes in all (payload and bookkeeping), dropping the oldest whatever its stream", () => {
  using history = new MemoryHistory({
    ...ROOMY,
    maxTotalBytes: 2 * (5 + ENTRY_COST),
  });
  for (const stream of ["a", "b", "c"]) history.retain(stream);
  for (let i = 0; i < 1000; i++) {
    history.append(["a", "b", "c"][i % 3]!, "12345");
  }
  assert.deepEqual(history.stats(), { streams: 3, messages: 2, bytes: 10 });
  // Offsets 999 and 1000 are left: on streams c and a.
  assert.deepEqual(
    history.read(["a", "b", "c"].map((stream) => ({ stream, after: 998 }))),
    [{ offset: 999, frame: "12345" }, { offset: 1000, frame: "12345" }],
  );
  assert.equal(history.read([{ stream: "b", after: 900 }]), "trimmed");
  history.release("a");
  history.retain("d");
  history.append("d", "1234567890");
  assert.deepEqual(history.stats(), { streams: 3, messages: 1, bytes: 10 });
  // Empty messages cost their bookkeeping.
  for (let i = 0; i < 1000; i++) history.append("d", "");
  assert.deepEqual(history.stats(), { streams: 3, messages: 2, bytes: 0 });
});
