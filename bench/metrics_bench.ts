/**
 * The cost of the metrics on one subscription, in one thread (no workers, so
 * far less noise than the bus benchmark's row 7): 10,000 messages pushed
 * into a subscription whose handler only counts, then handled, with
 * `handlerTiming` `"off"` (the counters alone; the baseline), `"sampled"`
 * (the default: one call in 32 timed) and `"every"`.
 *
 * Run: `deno bench bench/metrics_bench.ts`.
 *
 * @module
 */
import { timingInterval } from "../src/bus/counters.ts";
import { SubscriptionCounters } from "../src/bus/counters.ts";
import { LocalSubscription } from "../src/bus/subscription.ts";
import type { HandlerTiming, MessageMeta } from "../mod.ts";
import { Scheduler } from "../src/scheduler.ts";

const MESSAGES = 10_000;
const meta = {} as MessageMeta;
const scheduler = new Scheduler();

function subscription(timing: HandlerTiming): LocalSubscription {
  let handled = 0;
  return new LocalSubscription(
    {
      scheduler,
      timeEvery: timingInterval(timing),
      handlerFailed(): void {},
    },
    "0.0.0",
    "bench",
    "q://bench/*",
    (() => void handled++) as never,
    {
      concurrency: 1,
      capacity: MESSAGES,
      counters: new SubscriptionCounters("bench", "q://bench/*", undefined),
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

addEventListener("unload", () => scheduler.close());
