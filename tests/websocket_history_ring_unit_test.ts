/**
 * HistoryRing, one stream's entries: what it gives back is what was pushed
 * (text, non-ASCII text, bytes), in order, through growth while wrapped
 * around, checked against a plain array; AppendOrder likewise.
 */
import assert from "node:assert/strict";
import {
  AppendOrder,
  type HistoryEntry,
  type HistoryFrame,
  HistoryRing,
} from "../src/websocket/history_ring.ts";
import { frameBytes } from "../src/websocket/counters.ts";

/** A deterministic pseudo-random sequence (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function frameOf(next: () => number, offset: number): HistoryFrame {
  const kind = Math.floor(next() * 5);
  const length = Math.floor(next() ** 3 * 3000);
  if (kind === 0) {
    return new Uint8Array(length).map((_, i) => (i + offset) & 0xff);
  }
  const unit = ["x", "é", "€", "😀", "\ufeffa"][kind - 1]!;
  return `${offset}:` + unit.repeat(Math.ceil(length / 4));
}

Deno.test("HistoryRing gives back every frame pushed, in order, through growth while wrapped around", () => {
  for (const [seed, max] of [[1, 8], [2, 50], [3, 1000], [4, 1]]) {
    const next = random(seed!);
    const ring = new HistoryRing(max!);
    const model: HistoryEntry[] = [];
    let bytes = 0;
    for (let offset = 1; offset <= 3000; offset++) {
      if (ring.full || (model.length > 0 && next() < 0.45)) {
        const dropped = model.shift()!;
        assert.equal(ring.oldestOffset, dropped.offset);
        bytes -= ring.dropOldest();
      }
      const frame = frameOf(next, offset);
      const size = frameBytes(frame);
      ring.push(offset, frame, size, offset);
      model.push({ offset, frame });
      bytes += size;
      assert.equal(ring.count, model.length);
      assert.equal(ring.bytes, bytes);
      if (offset % 97 === 0) {
        const from = model[Math.floor(next() * model.length)]!.offset - 1;
        assert.deepEqual(
          ring.after(from),
          model.filter((e) => e.offset > from),
        );
      }
    }
    assert.deepEqual(ring.after(0), model);
  }
});

Deno.test("AppendOrder gives back its entries oldest first, through growth while wrapped around and sweeps", () => {
  const next = random(5);
  const order = new AppendOrder<string>();
  const model: Array<[string, number]> = [];
  for (let offset = 1; offset <= 5000; offset++) {
    if (model.length > 0 && next() < 0.4) {
      const [owner, oldest] = model.shift()!;
      assert.equal(order.oldestOwner, owner);
      assert.equal(order.oldestOffset, oldest);
      order.dropOldest();
    }
    const owner = `stream-${offset % 7}`;
    order.push(owner, offset);
    model.push([owner, offset]);
    if (offset % 1000 === 0) {
      // Keeps the odd offsets.
      order.sweep((_, at) => at % 2 === 1);
      model.splice(0, model.length, ...model.filter(([, at]) => at % 2 === 1));
    }
    assert.equal(order.size, model.length);
  }
  while (model.length > 0) {
    const [owner, oldest] = model.shift()!;
    assert.equal(order.oldestOwner, owner);
    assert.equal(order.oldestOffset, oldest);
    order.dropOldest();
  }
  assert.equal(order.oldestOwner, undefined);
});
