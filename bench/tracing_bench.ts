/**
 * What tracing costs a message, in one thread (no workers): 10,000
 * publishes through `Outbound` into one subscription of the same pool, then
 * handled by a handler that does nothing. Untraced always (the baseline);
 * traced (a PRODUCER and a CONSUMER span per message, exported) when the
 * bench runs with Deno's OpenTelemetry on:
 *
 *     deno bench -A bench/tracing_bench.ts
 *     OTEL_DENO=true OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
 *       deno bench -A bench/tracing_bench.ts
 *
 * (Any collector, or none: Deno drops what it cannot send.) Add
 * `OTEL_TRACES_SAMPLER=always_off` for the cost of spans that are not
 * recorded.
 *
 * @module
 */
import { SubscriptionCounters, timingInterval } from "../src/bus/counters.ts";
import { MetaFactory } from "../src/bus/meta.ts";
import { Outbound } from "../src/bus/outbound.ts";
import { Requests } from "../src/bus/requests.ts";
import { Routes } from "../src/bus/routes.ts";
import { LocalSubscription } from "../src/bus/subscription.ts";
import { type MessageTracing, messageTracing } from "../src/bus/tracing.ts";
import { Scheduler } from "../src/scheduler.ts";
import type { Transport } from "../src/transport/transport.ts";

const MESSAGES = 10_000;
const QUEUE = "q://bench/a";

/** A transport for a pool alone: nothing is ever sent to another pool. */
const alone: Transport = {
  send(): never {
    throw new Error("Cannot send: the bench has one pool");
  },
  flush: (): Promise<void> => Promise.resolve(),
  busy: (): boolean => false,
  held: (): number => 0,
  onReceive(): void {},
  update(): void {},
  close: () => Promise.resolve([]),
};

/** Publishes `MESSAGES` and waits until they are handled. */
function workload(tracing: MessageTracing | undefined): () => Promise<void> {
  const scheduler = new Scheduler();
  const routes = new Routes(0);
  const subscription = new LocalSubscription(
    {
      scheduler,
      timeEvery: timingInterval("sampled"),
      tracing,
      handlerFailed(): void {},
    },
    0,
    "bench",
    "q://bench/*",
    (() => {}) as never,
    {
      concurrency: 1,
      capacity: MESSAGES,
      counters: new SubscriptionCounters("bench", "q://bench/*", undefined),
    },
  );
  routes.add(subscription);
  const outbound = new Outbound({
    index: 0,
    routes,
    requests: new Requests(0, 0),
    metas: new MetaFactory(["bench"]),
    transport: alone,
    scheduler,
    tracing,
  });
  return async (): Promise<void> => {
    const published: Promise<void>[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      published.push(outbound.publish("bench", QUEUE, i));
    }
    await Promise.all(published);
    await subscription.whenIdle();
  };
}

const tracing = messageTracing("bench");
const count = MESSAGES.toLocaleString("en");
Deno.bench({
  group: "tracing",
  name: `${count} publishes + deliveries, untraced`,
  baseline: true,
  fn: workload(undefined),
});
if (tracing !== undefined) {
  Deno.bench({
    group: "tracing",
    name: `${count} publishes + deliveries, traced`,
    fn: workload(tracing),
  });
}
