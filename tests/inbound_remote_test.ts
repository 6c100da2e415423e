/**
 * What arrives from another process, as the bus's `Inbound` takes it: a
 * batch of one read goes into its subscriptions' buffers, what has no room
 * waits behind them within the pool's arrival bound, the rest is dropped and
 * counted per message; a run shares one meta.
 */
import assert from "node:assert/strict";
import { ArrivalBound } from "../src/bus/arrival_bound.ts";
import { Inbound } from "../src/bus/inbound.ts";
import { MetaFactory } from "../src/bus/meta.ts";
import { Requests } from "../src/bus/requests.ts";
import { Routes } from "../src/bus/routes.ts";
import type { LocalSubscription } from "../src/bus/subscription.ts";
import { Scheduler } from "../src/scheduler.ts";
import type { RemoteBatch } from "../src/transport/remote.ts";
import type { Transport } from "../src/transport/transport.ts";
import { quietLog } from "./_quiet_log.ts";
import { type Got, testSubscription } from "./_bus_parts.ts";

// Deno loads its timers on the first `setTimeout` of an isolate, and that
// load runs the microtasks queued so far: the first drop (which arms the
// warning's timer) would start the handler in the middle of `arrive`. A pool
// has used timers long before its first arrival.
clearTimeout(setTimeout(() => {}, 0));

/** A pool's `Inbound` with an arrival bound of `limit` bytes. */
function inboundWith(limit: number): {
  inbound: Inbound;
  routes: Routes;
  bound: ArrivalBound;
  scheduler: Scheduler;
} {
  const scheduler = new Scheduler();
  const routes = new Routes(0);
  const bound = new ArrivalBound(limit, "p", quietLog);
  const inbound = new Inbound({
    index: 0,
    routes,
    requests: new Requests(0, 1),
    metas: new MetaFactory(["p", "nats"]),
    transport: {} as Transport,
    log: quietLog,
    lost(): void {},
    arrivals: bound,
  });
  return { inbound, routes, bound, scheduler };
}

/**
 * A subscription (buffer of `capacity`) whose handler records what it gets
 * and then waits for `gate`.
 */
function blockedSubscription(
  scheduler: Scheduler,
  id: number,
  capacity: number,
  gate: Promise<void>,
  group?: string,
): { subscription: LocalSubscription; got: Got[] } {
  const got: Got[] = [];
  const subscription = testSubscription(
    scheduler,
    { id, queue: "q://a", group, capacity },
    async (data, meta) => {
      got.push({ data, meta });
      await gate;
    },
  );
  return { subscription, got };
}

/** `count` messages of 10 bytes on `q://a`, one run from pool `web`. */
function batchOf(count: number): RemoteBatch {
  return {
    data: Array.from({ length: count }, (_, id) => ({ id })),
    sizes: Array.from({ length: count }, () => 10),
    runs: [{
      envelope: { queue: "q://a", service: "Api", publishedAt: 1 },
      pool: "web",
      end: count,
    }],
  };
}

Deno.test("Inbound: a batch from another process fills the buffer, waits within the arrival bound, and the rest is dropped, counted per message", async () => {
  const { inbound, routes, bound, scheduler } = inboundWith(25);
  const gate = Promise.withResolvers<void>();
  const { subscription, got } = blockedSubscription(
    scheduler,
    0,
    2,
    gate.promise,
  );
  routes.add(subscription);
  try {
    inbound.arrive({ pattern: "q://a" }, batchOf(6), 1);
    // Two in the buffer, two behind it (20 of the 25 bytes), two dropped.
    assert.equal(subscription.size, 2);
    assert.equal(subscription.overflowed, 2);
    assert.equal(bound.held, 20);
    assert.deepEqual(bound.dropped(), [{ queue: "q://a", count: 2 }]);
    gate.resolve();
    await subscription.whenIdle();
    assert.deepEqual(
      got.map((g) => g.data),
      [0, 1, 2, 3].map((id) => ({ id })),
    );
    // One meta for the run, naming the publisher's pool and service.
    assert.ok(got.every((g) => g.meta === got[0]!.meta));
    assert.deepEqual(got[0]!.meta.from, { pool: "web", service: "Api" });
    assert.equal(bound.held, 0);
  } finally {
    gate.resolve();
    bound.close();
    scheduler.close();
  }
});

Deno.test("Inbound: a batch for a group gives each message to one member; one behind a full buffer waits within the arrival bound, past it it is dropped", async () => {
  const { inbound, routes, bound, scheduler } = inboundWith(25);
  const gate = Promise.withResolvers<void>();
  const members = [0, 1].map((id) =>
    blockedSubscription(scheduler, id, 1, gate.promise, "g")
  );
  for (const { subscription } of members) routes.add(subscription);
  try {
    inbound.arrive({ pattern: "q://a", group: "g" }, batchOf(5), 1);
    // One in each buffer, two behind them (20 bytes), the fifth dropped.
    assert.deepEqual(members.map((m) => m.subscription.size), [1, 1]);
    assert.equal(
      members.reduce((sum, m) => sum + m.subscription.overflowed, 0),
      2,
    );
    assert.equal(bound.held, 20);
    assert.deepEqual(bound.dropped(), [{ queue: "q://a", count: 1 }]);
    gate.resolve();
    await Promise.all(members.map((m) => m.subscription.whenIdle()));
    const ids = members.flatMap((m) => m.got.map((g) => g.data)).map((d) =>
      (d as { id: number }).id
    ).sort();
    assert.deepEqual(ids, [0, 1, 2, 3]);
    assert.equal(bound.held, 0);
  } finally {
    gate.resolve();
    bound.close();
    scheduler.close();
  }
});
