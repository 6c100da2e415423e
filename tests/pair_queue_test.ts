import assert from "node:assert/strict";
import { PairQueue } from "../src/bus/pair_queue.ts";

Deno.test("PairQueue keeps FIFO order across wrap-arounds and growth", () => {
  const queue = new PairQueue<number, string>();
  const expected: Array<[number, string]> = [];
  let next = 0;
  // Interleave pushes and shifts so the ring wraps, then grows while wrapped.
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < round % 7 + 3; i++) {
      queue.push(next, `m${next}`);
      expected.push([next, `m${next}`]);
      next++;
    }
    for (let i = 0; i < round % 5 + 1 && queue.length > 0; i++) {
      assert.deepEqual([queue.firstA(), queue.firstB()], expected.shift());
      queue.shift();
    }
    assert.equal(queue.length, expected.length);
  }
  assert.deepEqual(queue.drain(), expected);
  assert.equal(queue.length, 0);
  queue.shift();
  assert.equal(queue.length, 0);
});
