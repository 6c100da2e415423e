/**
 * The metrics snapshot: the counters of the whole program at one moment, as
 * `main.metrics()` and `ctx.metrics()` return them, section by section.
 *
 * @module
 */
import type { WebSocketMetrics } from "./websocket/metrics.ts";

/**
 * The counters of the whole program at one moment, as `main.metrics()` and
 * `ctx.metrics()` return it: plain data, ready for `JSON.stringify`.
 *
 * @example Messages waiting, per pattern, from a snapshot
 * ```ts
 * import type { MetricsSnapshot } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * function waiting(snapshot: MetricsSnapshot): Record<string, number> {
 *   const byQueue: Record<string, number> = {};
 *   for (const s of snapshot.subscriptions) {
 *     byQueue[s.queue] = (byQueue[s.queue] ?? 0) + s.buffered;
 *   }
 *   return byQueue;
 * }
 *
 * const histogram = { bounds: [], cumulative: [], count: 0, sum: 0 };
 * const s = {
 *   pool: "app",
 *   service: "a",
 *   queue: "q://orders/*",
 *   routed: 5,
 *   delivered: 2,
 *   handled: 2,
 *   buffered: 3,
 *   handlerErrors: 0,
 *   stuck: false,
 *   handlerSeconds: histogram,
 * };
 * assert.deepEqual(
 *   waiting({ takenAt: 0, subscriptions: [s, { ...s, service: "b" }], services: [], pools: [] }),
 *   { "q://orders/*": 6 },
 * );
 * ```
 */
export interface MetricsSnapshot {
  /** When it was taken (`Date.now()`). */
  takenAt: number;
  /** Every pool's subscriptions. */
  subscriptions: SubscriptionMetrics[];
  /** Every pool's services. */
  services: ServiceMetrics[];
  /** Every pool. */
  pools: PoolMetrics[];
  /**
   * Every `WebSocketService` (`main.metrics()` and `ctx.metrics()` always
   * set it; it may be left out of a snapshot made by hand).
   */
  websockets?: WebSocketMetrics[];
  /**
   * Every link between pools that has carried something (set by
   * `main.metrics()` and `ctx.metrics()`).
   */
  links?: LinkMetrics[];
  /**
   * Every service that published something: its messages in all, and per
   * pattern reached (set by `main.metrics()` and `ctx.metrics()`).
   */
  publishers?: PublisherMetrics[];
  /**
   * Messages from other processes each pool dropped on arrival, per queue
   * (set by `main.metrics()` and `ctx.metrics()`; see
   * {@linkcode DroppedMetrics}).
   */
  dropped?: DroppedMetrics[];
  /**
   * Every durable subscription's counters (set by `main.metrics()` and
   * `ctx.metrics()`; see {@linkcode DurableMetrics}).
   */
  durable?: DurableMetrics[];
}

/**
 * The counters of one subscription in {@linkcode MetricsSnapshot}. They are
 * kept per service, pattern and group while the service has a subscription
 * to it (several subscriptions to one pattern count together); after the
 * last one is removed (also when the service restarts), a new one counts
 * from zero.
 */
export interface SubscriptionMetrics {
  /** The pool of the subscribing service. */
  pool: string;
  /** The subscribing service. */
  service: string;
  /** The queue or pattern subscribed to (never one concrete queue it matched). */
  queue: string;
  /** The group, when it is a competing consumer. */
  group?: string | undefined;
  /**
   * Messages routed to the subscription (into its buffer or waiting behind
   * it): a message published once counts once in every subscription it
   * reached.
   */
  routed: number;
  /** Messages handed to the handler (calls started). */
  delivered: number;
  /**
   * Handler calls that finished (returned, resolved, threw or rejected):
   * every call, exactly, whatever `handlerTiming` says.
   */
  handled: number;
  /** Messages waiting for the handler now (a gauge). */
  buffered: number;
  /** Handler calls that threw or rejected. */
  handlerErrors: number;
  /**
   * Whether it is stuck now, as its pool judges it: messages have waited
   * and no handler call has started for the run option `stuckThreshold`
   * (5 s by default; the pool logs a warning then). It clears as soon as a
   * message is handled or none waits.
   */
  stuck: boolean;
  /**
   * How long the timed handler calls took, in seconds: all of them with
   * `handlerTiming: "every"`, a sample by default (see {@linkcode HandlerTiming}),
   * so its `count` is the number of timed calls; `handled` counts them all.
   */
  handlerSeconds: HistogramSnapshot;
}

/**
 * A histogram with fixed buckets, as {@linkcode SubscriptionMetrics} gives
 * the handler's time.
 */
export interface HistogramSnapshot {
  /** The buckets' upper bounds, in seconds, ascending (`+Inf` is implied). */
  bounds: number[];
  /** Observations at or below each bound: cumulative, one per bound. */
  cumulative: number[];
  /** Every observation (the `+Inf` bucket). */
  count: number;
  /** The sum of the observations, in seconds. */
  sum: number;
}

/**
 * Which handler calls are timed for the handler-time histogram:
 * `"sampled"` (the default), one call in 32 (the 1st, 33rd, 65th, … of
 * each subscription), `"every"` call (two `performance.now()` calls, about
 * 0.2 µs, per message), or none (`"off"`; the histogram stays empty). The
 * other counters are kept in every case.
 *
 * @example Every call timed, for an exact histogram
 * ```ts ignore
 * import { Main } from "@magic/foundation";
 *
 * await Main.instance().run({ handlerTiming: "every" });
 * ```
 */
export type HandlerTiming = "sampled" | "every" | "off";

/** One service in {@linkcode MetricsSnapshot}. */
export interface ServiceMetrics {
  /** The service's pool. */
  pool: string;
  /** The service's name. */
  service: string;
  /** Its status now: `initialized`, `running`, `terminated` or `error`. */
  status: string;
  /** Times its pool restarted it (after `run()` failed or returned), since the worker started. */
  restarts: number;
}

/** One pool in {@linkcode MetricsSnapshot}, as the main thread sees it. */
export interface PoolMetrics {
  /** The pool's name. */
  pool: string;
  /** Times its worker died and was started again. */
  restarts: number;
  /** Times its event loop stopped turning for longer than the stall threshold. */
  stalls: number;
  /** Whether it is stalled now (its counters are then missing from the snapshot). */
  stalled: boolean;
}

/**
 * What one service published, in {@linkcode MetricsSnapshot}: every message
 * (`published`), and per pattern its messages reached (`patterns`); with
 * {@linkcode SubscriptionMetrics} it says who publishes to whom. Counted
 * since the pool's worker started.
 *
 * @example Who publishes to the services subscribed to a pattern
 * ```ts
 * import type { PublisherMetrics, SubscriptionMetrics } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const publishers: PublisherMetrics[] = [{
 *   pool: "web",
 *   service: "api",
 *   published: 12,
 *   patterns: [
 *     { queue: "q://orders/*", published: 12 },
 *     { queue: "q://audit/>", published: 12 },
 *   ],
 * }];
 * const histogram = { bounds: [], cumulative: [], count: 0, sum: 0 };
 * const billing: SubscriptionMetrics = {
 *   pool: "db",
 *   service: "billing",
 *   queue: "q://orders/*",
 *   routed: 12,
 *   delivered: 12,
 *   handled: 12,
 *   buffered: 0,
 *   handlerErrors: 0,
 *   stuck: false,
 *   handlerSeconds: histogram,
 * };
 * const arrows = publishers.flatMap((p) =>
 *   p.patterns.filter((to) => to.queue === billing.queue)
 *     .map((to) => `${p.pool}/${p.service} → ${to.queue} → ${billing.service}`)
 * );
 * assert.deepEqual(arrows, ["web/api → q://orders/* → billing"]);
 * ```
 */
export interface PublisherMetrics {
  /** The pool of the publishing service. */
  pool: string;
  /** The publishing service. */
  service: string;
  /**
   * Every message the service published (`publish`, `request`, and replies),
   * once each, whether any subscription took it or not.
   */
  published: number;
  /** What it published that reached each pattern. */
  patterns: PatternPublishes[];
}

/**
 * The messages one service published that reached one pattern, in
 * {@linkcode PublisherMetrics}. A message counts once for each distinct
 * pattern (in any pool) its queue matched when it was published; a message
 * no subscription matched, and a reply, count nowhere. The counter goes when
 * no pool subscribes to the pattern any more.
 *
 * @example Messages that reached two patterns
 * ```ts
 * import type { PatternPublishes } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const patterns: PatternPublishes[] = [
 *   { queue: "q://orders/*", published: 12 },
 *   { queue: "q://orders/>", published: 12 },
 * ];
 * assert.equal(patterns.reduce((n, p) => n + p.published, 0), 24);
 * ```
 */
export interface PatternPublishes {
  /** The pattern (or exact name) subscribed to, never a concrete queue it matched. */
  queue: string;
  /** Messages the service published that reached the pattern's subscriptions. */
  published: number;
}

/**
 * How often one pool's sending to another had to wait, in
 * {@linkcode MetricsSnapshot} (since the sending pool's worker started).
 * With `transport: "broadcast"` every batch costs a credit towards every
 * live pool, so a pool without credits makes its senders wait whatever they
 * send: the wait is counted on the link to that pool.
 *
 * @example The links that made publishers wait
 * ```ts
 * import type { LinkMetrics } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const links: LinkMetrics[] = [
 *   { pool: "api", peer: "db", publisherWaits: 4, windowWaits: 9 },
 *   { pool: "api", peer: "log", publisherWaits: 0, windowWaits: 0 },
 * ];
 * const slow = links.filter((l) => l.publisherWaits > 0)
 *   .map((l) => `${l.pool} → ${l.peer}`);
 * assert.deepEqual(slow, ["api → db"]);
 * ```
 */
export interface LinkMetrics {
  /** The sending pool. */
  pool: string;
  /** The receiving pool. */
  peer: string;
  /**
   * Times a publisher was told to wait because the link's queue was full
   * (its `publish` resolved later).
   */
  publisherWaits: number;
  /**
   * Times a batch waited for the link's window: the receiver had not yet
   * acknowledged the batches already sent (with `transport: "broadcast"`:
   * no credit was left towards it; one wait counts once, however often the
   * sender looks again).
   */
  windowWaits: number;
}

/**
 * Messages from other processes a pool dropped on arrival, on one queue, in
 * {@linkcode MetricsSnapshot} (since the pool's worker started): their
 * subscription's buffer was full and so was the pool's arrival bound
 * (`nats.arrivalBytes`). Core NATS cannot pause a subscription: past the
 * bound, what arrives is dropped and counted here.
 *
 * @example Total what was dropped
 * ```ts
 * import type { DroppedMetrics } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const dropped: DroppedMetrics[] = [
 *   { pool: "db", queue: "q://orders", count: 12 },
 *   { pool: "db", queue: "q://audit", count: 3 },
 * ];
 * assert.equal(dropped.reduce((sum, d) => sum + d.count, 0), 15);
 * ```
 */
export interface DroppedMetrics {
  /** The pool that dropped them. */
  pool: string;
  /** The concrete queue. */
  queue: string;
  /** How many messages. */
  count: number;
}

/**
 * The counters of one durable subscription in {@linkcode MetricsSnapshot},
 * as its pool counts them, from its subscribe on (a restarted service, or a
 * restarted pool, counts from zero). Each delivery counts once in
 * `delivered` when handed to the handler and, once settled, once in
 * `acknowledged`, `redelivered` or `deadLettered`; `inFlight` is what the
 * pool holds unsettled now (handlers running, and deliveries waiting for one).
 *
 * @example Deliveries settled so far
 * ```ts
 * import type { DurableMetrics } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const jobs: DurableMetrics = {
 *   pool: "workers",
 *   service: "Worker",
 *   queue: "q://jobs/>",
 *   group: "g",
 *   delivered: 5,
 *   acknowledged: 3,
 *   redelivered: 1,
 *   deadLettered: 1,
 *   inFlight: 0,
 * };
 * // Nothing in flight: every delivery handed to the handler is settled.
 * assert.equal(
 *   jobs.acknowledged + jobs.redelivered + jobs.deadLettered,
 *   jobs.delivered,
 * );
 * ```
 */
export interface DurableMetrics {
  /** The pool of the subscribing service. */
  pool: string;
  /** The subscribing service. */
  service: string;
  /** The durable queue or pattern subscribed to. */
  queue: string;
  /** The group, when it is a competing consumer. */
  group?: string | undefined;
  /** Deliveries handed to the handler (attempts: a redelivery counts again). */
  delivered: number;
  /** Deliveries whose handler resolved: acknowledged, done with. */
  acknowledged: number;
  /** Deliveries whose handler threw and that were sent back for another attempt. */
  redelivered: number;
  /** Deliveries whose handler threw at the last attempt: moved to `dlq://`. */
  deadLettered: number;
  /** Deliveries the pool holds now, running or waiting for the handler (a gauge). */
  inFlight: number;
  /**
   * Messages stored and not yet acknowledged by the subscription's durable
   * consumer (a gauge): not delivered yet, plus delivered and not settled
   * (running, waiting for a handler, or due again after a retry). It is the
   * consumer's figure, so every member of a group shows the same one (sum
   * `inFlight`, not this). On the local log the broker counts it when the
   * snapshot is taken (for a pattern narrower than its stream, the stream's
   * other queues count until the consumer passes them). Joined to NATS it
   * is JetStream's `num_pending + num_ack_pending` from a consumer info
   * asked when the snapshot is taken (one request per consumer of the
   * pool); if the server does not answer within a second, or is out of
   * reach, the last figure it gave, and none before the first.
   */
  pending?: number | undefined;
}
