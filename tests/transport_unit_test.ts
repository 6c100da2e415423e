/**
 * Each transport, wired in one thread through its own hub: the same checks
 * for both, as Hono checks each of its routers.
 */
import assert from "node:assert/strict";
import { approximateSize } from "../src/_util/size.ts";
import { Scheduler } from "../src/scheduler.ts";
import { createHub, openTransport } from "../src/transport/open.ts";
import { AT_ONCE_BELOW } from "../src/transport/port_link.ts";
import type {
  LinkWaits,
  ReceivedBatch,
  Transport,
  WireMessage,
} from "../src/transport/transport.ts";
import { TRANSPORT_KINDS, type TransportKind } from "../src/transport/kinds.ts";

/** Three pools' transports in this thread; pool 2 keeps its batches unacknowledged unless `hold` is false. */
function wire(kind: TransportKind, { hold = true } = {}): {
  runId: string;
  transports: Transport[];
  received: ReceivedBatch[][];
  schedulers: Scheduler[];
  close(): Promise<void>;
} {
  const transports: Transport[] = [];
  const schedulers: Scheduler[] = [];
  const received: ReceivedBatch[][] = [[], [], []];
  const runId = crypto.randomUUID();
  const hub = createHub(kind, runId, 3, (index, update) => {
    transports[index]?.update(update);
  });
  for (let index = 0; index < 3; index++) {
    const scheduler = new Scheduler();
    const { setup } = hub.connect(index, 1);
    const transport = openTransport(setup, index, 1, scheduler);
    transport.onReceive((batch) => {
      received[index]!.push(batch);
      if (index !== 2 || !hold) batch.ack();
    });
    transports.push(transport);
    schedulers.push(scheduler);
  }
  return {
    runId,
    transports,
    received,
    schedulers,
    async close(): Promise<void> {
      for (const transport of transports) await transport.close();
      for (const scheduler of schedulers) scheduler.close();
    },
  };
}

function message(queue: string, data: unknown, size = 16): WireMessage {
  return { queue, data, service: "S", publishedAt: Date.now(), size };
}

function count(batches: ReceivedBatch[]): number {
  return batches.reduce((sum, batch) => sum + batch.data.length, 0);
}

for (const kind of TRANSPORT_KINDS) {
  Deno.test(`${kind}: a pool receives only what is addressed to it, in order`, async () => {
    const { transports, received, close } = wire(kind);
    try {
      for (let i = 0; i < 10; i++) {
        transports[0]!.send([1], message("q://a", i));
      }
      await transports[0]!.flush(1);
      assert.deepEqual(received[1]!.flatMap((b) => b.data), [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
      ]);
      assert.equal(count(received[2]!), 0);
      assert.equal(count(received[0]!), 0);
    } finally {
      await close();
    }
  });

  Deno.test(`${kind}: mixed audiences in one turn: each pool gets its own in order, a group's turns in one batch`, async () => {
    const { transports, received, close } = wire(kind, { hold: false });
    try {
      // A group served in turn (pools 1 and 2), then fan-out to both
      // between messages for pool 1 alone: pool 1's order crosses audiences.
      const [toOne, toTwo, toBoth] = [[1], [2], [1, 2]];
      for (let i = 0; i < 100; i++) {
        transports[0]!.send(i % 2 === 0 ? toOne : toTwo, message("q://g", i));
      }
      transports[0]!.send(toBoth, message("q://all", "x"));
      transports[0]!.send(toOne, message("q://g", "y"));
      transports[0]!.send(toBoth, message("q://all", "z"));
      await transports[0]!.flush();
      const evens = Array.from({ length: 50 }, (_, i) => 2 * i);
      assert.deepEqual(received[1]!.flatMap((b) => b.data), [
        ...evens,
        "x",
        "y",
        "z",
      ]);
      assert.deepEqual(received[2]!.flatMap((b) => b.data), [
        ...evens.map((i) => i + 1),
        "x",
        "z",
      ]);
      // The group's messages, sent in one turn, go in one batch per member
      // (after the first ones, each at once and alone: one on a channel,
      // up to AT_ONCE_BELOW on a port), not one batch per message.
      const atOnce = kind === "ports" ? AT_ONCE_BELOW : 1;
      for (const pool of [1, 2]) {
        const batches = received[pool]!.filter((b) =>
          b.data.some((d) => typeof d === "number")
        );
        assert.ok(
          batches.length <= atOnce + 1,
          `${batches.length} batches to ${pool}`,
        );
      }
      assert.equal(count(received[0]!), 0);
    } finally {
      await close();
    }
  });

  Deno.test(`${kind}: large strings and bytes arrive exactly, whichever way they travel`, async () => {
    const { transports, received, close } = wire(kind, { hold: false });
    const big = 512 * 1024;
    const bytes = new Uint8Array(big).map((_, i) => i % 251);
    const values: unknown[] = [
      "é✓".repeat(big / 2),
      "\ud800".repeat(big / 2), // not well-formed: no UTF-8 round trip
      bytes,
      bytes.subarray(1), // a view into a larger buffer keeps its offset
      { nested: "x".repeat(big) },
      "small",
    ];
    try {
      for (const data of values) {
        transports[0]!.send(
          [1],
          message("q://big", data, approximateSize(data)),
        );
      }
      await transports[0]!.flush(1);
      const got = received[1]!.flatMap((b) => b.data);
      assert.deepEqual(got, values);
      const view = got[3] as Uint8Array;
      assert.equal(view.byteOffset, 1);
      assert.equal(view.buffer.byteLength, big);
      assert.ok(!((got[2] as Uint8Array).buffer instanceof SharedArrayBuffer));
    } finally {
      await close();
    }
  });

  Deno.test(`${kind}: send takes its copy of the data: a later change does not arrive`, async () => {
    const { transports, received, close } = wire(kind, { hold: false });
    try {
      const data = { list: [1], at: new Date(0) };
      const plain = { list: [1], text: "a" };
      transports[0]!.send([1, 2], message("q://c", data));
      transports[0]!.send([1], message("q://c", plain));
      data.list.push(2);
      data.at.setTime(5);
      plain.list.push(2);
      plain.text = "b";
      await transports[0]!.flush();
      const expected = [{ list: [1], at: new Date(0) }, {
        list: [1],
        text: "a",
      }];
      assert.deepStrictEqual(received[1]!.flatMap((b) => b.data), expected);
      assert.deepStrictEqual(received[2]!.flatMap((b) => b.data), [
        expected[0],
      ]);
    } finally {
      await close();
    }
  });

  Deno.test(`${kind}: send throws structuredClone's DataCloneError and queues nothing`, async () => {
    const { transports, received, close } = wire(kind, { hold: false });
    try {
      const bad = { ok: 1, run: (): number => 1 };
      const expected = (() => {
        try {
          structuredClone(bad);
        } catch (error) {
          return error as DOMException;
        }
      })()!;
      assert.throws(() => transports[0]!.send([1, 2], message("q://d", bad)), {
        name: "DataCloneError",
        message: expected.message,
      });
      transports[0]!.send([1], message("q://d", "after"));
      await transports[0]!.flush();
      assert.deepEqual(received[1]!.flatMap((b) => b.data), ["after"]);
      assert.equal(count(received[2]!), 0);
    } finally {
      await close();
    }
  });

  Deno.test(`${kind}: plain data and values left to structuredClone keep their order in a batch`, async () => {
    const { transports, received, close } = wire(kind, { hold: false });
    try {
      const cycle: Record<string, unknown> = { name: "c" };
      cycle.self = cycle;
      const values: unknown[] = [];
      for (let i = 0; i < 300; i++) {
        values.push(
          i % 7 === 0
            ? new Map([[i, { i }]])
            : i % 11 === 0
            ? cycle
            : { i, s: "x".repeat(i % 50), bytes: new Uint8Array([i % 256]) },
        );
      }
      for (const data of values) {
        transports[0]!.send([1], message("q://e", data, approximateSize(data)));
      }
      await transports[0]!.flush();
      const got = received[1]!.flatMap((b) => b.data);
      assert.deepStrictEqual(got, values.map((v) => structuredClone(v)));
      const copy = got[11] as Record<string, unknown>;
      assert.equal(copy.self, copy);
    } finally {
      await close();
    }
  });

  Deno.test(`${kind}: what a closing pool never acknowledged is counted by its sender, not lost`, async () => {
    const { transports, received, close } = wire(kind);
    try {
      for (let i = 0; i < 5; i++) transports[0]!.send([2], message("q://b", i));
      // Pool 2 receives, but never acknowledges, then closes.
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (count(received[2]!) === 5) {
            clearInterval(poll);
            resolve();
          }
        }, 1);
      });
      await transports[2]!.close();
      if (kind === "ports") {
        // The bye arrives on the port: wait for the link to be gone.
        await new Promise<void>((resolve) => {
          const poll = setInterval(() => {
            if (!transports[0]!.busy()) {
              clearInterval(poll);
              resolve();
            }
          }, 1);
        });
      }
      // Sent after pool 2 is gone: counted too.
      transports[0]!.send([2], message("q://b", 5));
      await transports[0]!.flush();
      // Over ports the sender counts the 5 that pool 2 never acknowledged
      // (over a BroadcastChannel a closing pool acknowledges nothing: the
      // bus acknowledges everything it holds before it closes).
      assert.deepEqual(await transports[0]!.close(), [
        { to: 2, queue: "q://b", count: kind === "ports" ? 6 : 1 },
      ]);
    } finally {
      await close();
    }
  });
}

Deno.test("ports: a receiver that stops acknowledging holds back only what is sent to it", async () => {
  const { transports, received, close } = wire("ports");
  try {
    // Pool 2 acknowledges nothing: the link to it fills, and tells to wait.
    let wait: Promise<void> | undefined;
    let sent = 0;
    while (wait === undefined) {
      wait = transports[0]!.send([2], message("q://held", sent++));
      if (sent % 100 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    // Meanwhile everything to pool 1 goes through and is acknowledged.
    let toldToWait = 0;
    for (let i = 0; i < 3000; i++) {
      if (transports[0]!.send([1], message("q://ok", i))) toldToWait++;
    }
    await transports[0]!.flush(1);
    assert.equal(count(received[1]!), 3000);
    assert.ok(transports[0]!.busy());
    // The waits are counted per link: to pool 2, one publisher told to wait
    // and batches behind the full window; to pool 1 (sent to in one burst,
    // not awaited), every send that returned a promise, and no window wait.
    const waits = transports[0]!.linkWaits!();
    const to2 = waits.find((w) => w.to === 2)!;
    assert.equal(to2.publisherWaits, 1);
    assert.ok(to2.windowWaits >= 1, `${to2.windowWaits} window waits`);
    assert.ok(toldToWait > 0);
    assert.deepEqual(waits.find((w) => w.to === 1), {
      to: 1,
      publisherWaits: toldToWait,
      windowWaits: 0,
    });
    for (const batch of received[2]!) batch.ack();
    await wait;
  } finally {
    await close();
  }
});

Deno.test("broadcast: a large string or byte array crosses the channel as a shared reference, not as bytes every pool copies", async () => {
  const { runId, transports, close } = wire("broadcast");
  const spy = new BroadcastChannel(`magic-foundation:${runId}`);
  const seen = Promise.withResolvers<unknown>();
  spy.onmessage = (event) => seen.resolve(event.data);
  try {
    const text = "x".repeat(512 * 1024);
    transports[0]!.send([1], message("q://big", text, approximateSize(text)));
    const onChannel = await seen.promise;
    // What every pool receives: the part for pool 1, whose data is shared.
    const strings: string[] = [];
    const shared: SharedArrayBuffer[] = [];
    (function walk(value: unknown): void {
      if (typeof value === "string") strings.push(value);
      else if (value instanceof SharedArrayBuffer) shared.push(value);
      else if (value !== null && typeof value === "object") {
        Object.values(value).forEach(walk);
      }
    })(onChannel);
    assert.ok(
      strings.every((s) => s.length < 100),
      "no large string on the channel",
    );
    assert.equal(shared.length, 1);
    assert.equal(shared[0]!.byteLength, text.length);
    await transports[0]!.flush(1);
  } finally {
    spy.close();
    await close();
  }
});

Deno.test("broadcast: credit waits are counted per receiving pool, once per wait", async () => {
  const { transports, schedulers, close } = wire("broadcast");
  // Pool 2 holds what it gets until told; 64 credits per receiver (3 pools).
  const held: ReceivedBatch[] = [];
  let holding = true;
  const allHeld = Promise.withResolvers<void>();
  transports[2]!.onReceive((batch) => {
    if (!holding) return batch.ack();
    held.push(batch);
    if (held.length === 64) allHeld.resolve();
  });
  try {
    // One batch per message (each sent at the scheduler's next turn): 64
    // batches use up the credits towards pool 2.
    for (let i = 0; i < 64; i++) {
      assert.equal(transports[0]!.send([2], message("q://held", i)), undefined);
      await schedulers[0]!.yield();
    }
    await allHeld.promise;
    // The 65th waits for pool 2's credits; pool 1 gives its back at once.
    transports[0]!.send([2], message("q://held", 64));
    await schedulers[0]!.yield();
    // Then the outbox fills (2,000 messages): one publisher told to wait,
    // for pool 2, the pool without credits.
    let wait: Promise<void> | undefined;
    for (let i = 65; wait === undefined; i++) {
      wait = transports[0]!.send([2], message("q://held", i));
    }
    await schedulers[0]!.yield();
    const byPeer = (): LinkWaits[] =>
      transports[0]!.linkWaits!().sort((a, b) => a.to - b.to);
    assert.deepEqual(byPeer(), [
      { to: 1, publisherWaits: 0, windowWaits: 0 },
      { to: 2, publisherWaits: 1, windowWaits: 1 },
    ]);
    holding = false;
    for (const batch of held) batch.ack();
    await wait;
    await transports[0]!.flush();
    assert.deepEqual(byPeer(), [
      { to: 1, publisherWaits: 0, windowWaits: 0 },
      { to: 2, publisherWaits: 1, windowWaits: 1 },
    ], "one wait each, however long it lasted");
  } finally {
    await close();
  }
});

Deno.test("ports: in a request/response flow the acknowledgements ride on the batches going back, and a flush still gets them", async () => {
  const hub = createHub("ports", crypto.randomUUID(), 2, (index, update) => {
    transports[index]?.update(update);
  });
  const transports: Transport[] = [];
  const schedulers: Scheduler[] = [];
  const arrived: Array<(batch: ReceivedBatch) => void> = [];
  for (let index = 0; index < 2; index++) {
    const scheduler = new Scheduler();
    const transport = openTransport(
      hub.connect(index, 1).setup,
      index,
      1,
      scheduler,
    );
    transport.onReceive((batch) => {
      batch.ack();
      arrived[index]?.(batch);
    });
    transports.push(transport);
    schedulers.push(scheduler);
  }
  const next = (index: number): Promise<ReceivedBatch> =>
    new Promise((resolve) => (arrived[index] = resolve));
  // Acknowledgements sent alone are numbers above 0 (a scheduler's ping is 0).
  const post = MessagePort.prototype.postMessage;
  let alone = 0;
  MessagePort.prototype.postMessage = function (
    this: MessagePort,
    message: unknown,
    options?: Transferable[] | StructuredSerializeOptions,
  ): void {
    if (typeof message === "number" && message > 0) alone++;
    post.call(this, message, options as StructuredSerializeOptions);
  };
  try {
    for (let i = 0; i < 5; i++) {
      const request = next(1);
      transports[0]!.send([1], message("q://request", i));
      assert.deepEqual((await request).data, [i]);
      // The answer leaves on a later turn, as one from a handler that waits.
      await schedulers[1]!.yield();
      const response = next(0);
      transports[1]!.send([0], message("q://response", i));
      assert.deepEqual((await response).data, [i]);
      await schedulers[0]!.yield();
    }
    // One: the first request, before any batch came back, is prompt.
    assert.equal(alone, 1);
    // Each side's last batch is acknowledged lazily: a flush asks for it.
    await transports[0]!.flush();
    await transports[1]!.flush();
    assert.ok(!transports[0]!.busy() && !transports[1]!.busy());
  } finally {
    MessagePort.prototype.postMessage = post;
    for (const transport of transports) await transport.close();
    for (const scheduler of schedulers) scheduler.close();
  }
});
