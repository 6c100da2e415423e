/**
 * The outbox's choice between sending an item at once and coalescing it
 * with the rest of its turn.
 */
import assert from "node:assert/strict";
import { Scheduler } from "../src/scheduler.ts";
import { Outbox } from "../src/transport/outbox.ts";

Deno.test("outbox: after a turn that coalesced several items, the first of the next turn waits for its turn; after a turn of one, it leaves at once again", async () => {
  const scheduler = new Scheduler();
  const sent: number[][] = [];
  let idle = false;
  const outbox = new Outbox<number>(
    {
      trySend: (
        items,
        start,
        end,
      ) => (sent.push(items.slice(start, end)), true),
      idle: () => idle,
      whenWritable: () => Promise.resolve(),
    },
    scheduler,
    () => 8,
  );
  try {
    // Sparse flow, idle sink: at once.
    idle = true;
    outbox.push(1);
    assert.deepEqual(sent, [[1]]);
    // A busy sink: the turn's items are coalesced, two of them (dense).
    idle = false;
    outbox.push(2);
    outbox.push(3);
    await scheduler.yield();
    assert.deepEqual(sent, [[1], [2, 3]]);
    // Dense: even with an idle sink, the next item waits for its turn.
    idle = true;
    outbox.push(4);
    assert.deepEqual(sent, [[1], [2, 3]]);
    await scheduler.yield();
    // That turn held one item: sparse again, the next leaves at once.
    assert.deepEqual(sent, [[1], [2, 3], [4]]);
    outbox.push(5);
    assert.deepEqual(sent, [[1], [2, 3], [4], [5]]);
  } finally {
    outbox.close();
    scheduler.close();
  }
});
