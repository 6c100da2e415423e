/**
 * Metrics: exact counts after a known workload, the handler-time histogram,
 * one series per pattern, and the pools' and services' counters.
 */
import assert from "node:assert/strict";
import {
  Service,
  type ServiceContext,
  type SubscriptionMetrics,
  type TransportKind,
} from "@magic/foundation";
import { startServices } from "@magic/foundation/testing";

const MESSAGES = 1234;
/** Concrete queues the messages are spread over; both patterns match each. */
const QUEUES = 7;

/** Counts what it handles; throws on every 100th message it is given. */
class Counter extends Service {
  readonly done = Promise.withResolvers<void>();
  #seen = 0;
  constructor(name: string, readonly pattern: string) {
    super(name);
  }
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe<number>(this.pattern, (n) => {
      if (++this.#seen === MESSAGES) this.done.resolve();
      if (n % 100 === 0) throw new Error(`message ${n} refused`);
    });
  }
}

/** Publishes the workload from `run()`, over `QUEUES` concrete queues. */
class Producer extends Service {
  override async run(ctx: ServiceContext): Promise<void> {
    for (let n = 0; n < MESSAGES; n++) {
      await ctx.publish(`q://orders/${n % QUEUES}`, n);
    }
  }
}

function only(
  subscriptions: SubscriptionMetrics[],
  queue: string,
): SubscriptionMetrics {
  const found = subscriptions.filter((s) => s.queue === queue);
  assert.equal(found.length, 1, `one series for ${queue}`);
  return found[0]!;
}

for (const transport of ["ports", "broadcast"] as TransportKind[]) {
  Deno.test(`ctx.metrics() counts 1,234 published and 2,468 delivered to two subscriptions [${transport}]`, async () => {
    const star = new Counter("star", "q://orders/*");
    const rest = new Counter("rest", "q://orders/>");
    const bed = await startServices({
      // A small buffer: messages from the other pool also wait behind it.
      pools: { a: [star, new Producer("producer")], b: [rest] },
      bufferSize: 16,
      transport,
      logSink: () => {},
    });
    try {
      await Promise.all([star.done.promise, rest.done.promise]);
      const snapshot = await bed.context.metrics();
      const errors = Math.ceil(MESSAGES / 100);
      // Local deliveries (pool a) and deliveries from another pool (b).
      for (
        const [queue, pool, service] of [
          ["q://orders/*", "a", "star"],
          ["q://orders/>", "b", "rest"],
        ]
      ) {
        const s = only(snapshot.subscriptions, queue!);
        assert.equal(s.pool, pool);
        assert.equal(s.service, service);
        assert.equal(s.published, MESSAGES);
        assert.equal(s.delivered, MESSAGES);
        assert.equal(s.buffered, 0);
        assert.equal(s.handlerErrors, errors);
        const h = s.handlerSeconds;
        assert.equal(h.count, MESSAGES, "one observation per delivery");
        assert.equal(h.bounds.length, h.cumulative.length);
        for (let i = 1; i < h.cumulative.length; i++) {
          assert.ok(h.bounds[i]! > h.bounds[i - 1]!, "bounds ascending");
          assert.ok(h.cumulative[i]! >= h.cumulative[i - 1]!, "cumulative");
        }
        assert.ok(h.cumulative.at(-1)! <= h.count);
        assert.ok(h.sum > 0 && h.sum < 60);
      }
      const delivered = snapshot.subscriptions
        .filter((s) => s.queue.startsWith("q://orders/"))
        .reduce((sum, s) => sum + s.delivered, 0);
      assert.equal(delivered, 2 * MESSAGES);
      assert.deepEqual(
        snapshot.services.filter((s) => s.pool !== "test").map((s) => [
          s.pool,
          s.service,
          s.restarts,
        ]).sort(),
        [["a", "producer", 0], ["a", "star", 0], ["b", "rest", 0]],
      );
      assert.deepEqual(
        snapshot.pools.map((p) => [p.pool, p.restarts, p.stalls]).sort(),
        [["a", 0, 0], ["b", 0, 0], ["test", 0, 0]],
      );
    } finally {
      const report = await bed.stop();
      assert.equal(report.errors.length, 2 * Math.ceil(MESSAGES / 100));
    }
  });
}
