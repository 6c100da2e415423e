/**
 * The cost of the metrics on one subscription, in one thread (no workers, so
 * far less noise than the bus benchmark's row 7): 10,000 messages pushed
 * into a subscription whose handler only counts, then handled, with
 * `handlerTiming` `"off"` (the counters alone; the baseline), `"sampled"`
 * (the default: one call in 32 timed) and `"every"`. And what counting the
 * publishers adds to a publish's route lookup (10,000 lookups over 7
 * concrete queues that two patterns match, with and without
 * `Routes.countPublish`).
 *
 * Run: `deno bench bench/metrics_bench.ts`. The same loop counted in
 * instructions (repeatable on a busy machine, and against the code before
 * the counters): `bench/metrics_instructions.ts`.
 *
 * @module
 */
import { timingInterval } from "../src/bus/counters.ts";
import { SubscriptionCounters } from "../src/bus/counters.ts";
import { LocalSubscription } from "../src/bus/subscription.ts";
import type { HandlerTiming, MessageMeta } from "../mod.ts";
import { Scheduler } from "../src/scheduler.ts";
import { Routes } from "../src/bus/routes.ts";

const MESSAGES = 10_000;
const meta = {} as MessageMeta;
const scheduler = new Scheduler();

function subscription(
  timing: HandlerTiming,
  pattern = "q://bench/*",
): LocalSubscription {
  let handled = 0;
  return new LocalSubscription(
    {
      scheduler,
      timeEvery: timingInterval(timing),
      tracing: undefined,
      handlerFailed(): void {},
    },
    0,
    "bench",
    pattern,
    (() => void handled++) as never,
    {
      concurrency: 1,
      capacity: MESSAGES,
      counters: new SubscriptionCounters("bench", pattern, undefined),
    },
  );
}

for (const timing of ["off", "sampled", "every"] as const) {
  const target = subscription(timing);
  Deno.bench({
    group: "handler timing",
    name: `${
      MESSAGES.toLocaleString("en")
    } deliveries, handlerTiming ${timing}`,
    baseline: timing === "off",
    async fn(): Promise<void> {
      for (let i = 0; i < MESSAGES; i++) target.push(i, meta);
      await target.whenIdle();
    },
  });
}

// Publisher counting: the route lookup every publish makes, with and
// without counting the publisher on it.
const routes = new Routes(0);
for (const pattern of ["q://orders/*", "q://orders/>"]) {
  routes.add(subscription("off", pattern));
}
const QUEUES = Array.from({ length: 7 }, (_, i) => `q://orders/${i}`);
for (const counted of [false, true]) {
  Deno.bench({
    group: "publisher counting",
    name: `${MESSAGES.toLocaleString("en")} route lookups${
      counted ? " + countPublish" : ""
    }`,
    baseline: !counted,
    fn(): void {
      for (let i = 0; i < MESSAGES; i++) {
        const route = routes.route(QUEUES[i % 7]!);
        if (counted) routes.countPublish(route, "producer");
      }
    },
  });
}

addEventListener("unload", () => scheduler.close());
