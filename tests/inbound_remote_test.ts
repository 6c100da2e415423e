/**
 * What arrives from another process, as the bus's `Inbound` takes it: a
 * batch of one read goes into its subscriptions' buffers, what has no room
 * waits behind them within the pool's arrival bound, the rest is dropped and
 * counted per message; a run shares one meta.
 */
import assert from "node:assert/strict";
import { ArrivalBound } from "../src/bus/arrival_bound.ts";
import { SubscriptionCounters } from "../src/bus/counters.ts";
import { Inbound } from "../src/bus/inbound.ts";
import { MetaFactory } from "../src/bus/meta.ts";
import { Requests } from "../src/bus/requests.ts";
import { Routes } from "../src/bus/routes.ts";
import { LocalSubscription } from "../src/bus/subscription.ts";
import { Scheduler } from "../src/scheduler.ts";
import type { Logger } from "../src/logger.ts";
import type { MessageMeta } from "../src/service_context.ts";
import type { RemoteBatch } from "../src/transport/remote.ts";
import type { Transport } from "../src/transport/transport.ts";

const quiet: Logger = {
  debug(): void {},
  info(): void {},
  warn(): void {},
  error(): void {},
};

// Deno loads its timers on the first `setTimeout` of an isolate, and that
// load runs the microtasks queued so far: the first drop (which arms the
// warning's timer) would start the handler in the middle of `arrive`. A pool
// has used timers long before its first arrival.
clearTimeout(setTimeout(() => {}, 0));

Deno.test("Inbound: a batch from another process fills the buffer, waits within the arrival bound, and the rest is dropped, counted per message", async () => {
  const scheduler = new Scheduler();
  const routes = new Routes(0);
  const bound = new ArrivalBound(25, "p", quiet);
  const inbound = new Inbound({
    index: 0,
    routes,
    requests: new Requests(0, 1),
    metas: new MetaFactory(["p", "nats"]),
    transport: {} as Transport,
    log: quiet,
    lost(): void {},
    arrivals: bound,
  });
  const got: Array<{ data: unknown; meta: MessageMeta }> = [];
  const gate = Promise.withResolvers<void>();
  const subscription = new LocalSubscription(
    {
      scheduler,
      timeEvery: 0,
      tracing: undefined,
      handlerFailed(_subscription, error): void {
        throw error;
      },
    },
    0,
    "S",
    "q://a",
    async (data: unknown, meta: MessageMeta) => {
      got.push({ data, meta });
      await gate.promise;
    },
    {
      concurrency: 1,
      capacity: 2,
      counters: new SubscriptionCounters("S", "q://a", undefined),
    },
  );
  routes.add(subscription);
  try {
    const batch: RemoteBatch = {
      data: [0, 1, 2, 3, 4, 5].map((id) => ({ id })),
      sizes: [10, 10, 10, 10, 10, 10],
      runs: [{
        envelope: { queue: "q://a", service: "Api", publishedAt: 1 },
        pool: "web",
        end: 6,
      }],
    };
    inbound.arrive({ pattern: "q://a" }, batch, 1);
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
