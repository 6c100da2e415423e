/**
 * The types a service sees: its context, message metadata, handlers and
 * subscriptions.
 *
 * @module
 */

/** Log levels, quietest last. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** One log line, as handed to a custom log sink. */
export interface LogRecord {
  /** The level of the line. */
  level: Exclude<LogLevel, "silent">;
  /** The pool the line comes from; absent for the primary. */
  pool?: string | undefined;
  /** The service the line comes from, when there is one. */
  service?: string | undefined;
  /** The text of the line. */
  message: string;
  /** When the line was written, in ms since the epoch. */
  time: number;
}

/** Writes log lines prefixed with the pool and the service. */
export interface Logger {
  /** Writes a line at `debug` level (hidden by default). */
  debug(message: string): void;
  /** Writes a line at `info` level. */
  info(message: string): void;
  /** Writes a line at `warn` level. */
  warn(message: string): void;
  /** Writes a line at `error` level. */
  error(message: string): void;
}

/** Where a message comes from. */
export interface MessageOrigin {
  /** The publishing pool. */
  pool: string;
  /** The publishing service. */
  service: string;
}

/** What a handler learns about a message besides its data (frozen: read it, do not change it). */
export interface MessageMeta {
  /** The concrete queue the message was published on. */
  queue: string;
  /** Where to publish an answer, when the sender expects one. */
  replyTo?: string | undefined;
  /** The publishing pool and service. */
  from: MessageOrigin;
  /** When `publish` was called, in ms since the epoch (`Date.now()`). */
  publishedAt: number;
  /** Extra string fields set by the publisher (the WebSocket service puts the connection here); frozen. */
  headers?: Readonly<Record<string, string>> | undefined;
  /**
   * On a durable queue only: the message's id in its stream (the same on
   * every delivery, for idempotent handlers) and which delivery this is
   * (1, then 2, 3, … after a handler threw or its pool died).
   */
  delivery?: Readonly<{ id: string; attempt: number }> | undefined;
}

/** Handles one message. A returned promise is awaited before the next message of the same subscription (unless `concurrency` > 1). */
export type MessageHandler<T = unknown> = (
  data: T,
  meta: MessageMeta,
) => void | Promise<void>;

/** Options of `ctx.publish`. */
export interface PublishOptions {
  /** Sets `meta.replyTo`, for a responder to answer on. */
  replyTo?: string;
  /** Sets `meta.headers`; a frozen object is checked once and then shared. */
  headers?: Readonly<Record<string, string>>;
  /**
   * On a durable queue: a publish with an `id` already stored within the
   * dedupe window (`durable.dedupeWindow`) is not stored again. Ignored on
   * other queues.
   */
  id?: string;
}

/** Options of `ctx.subscribe`. */
export interface SubscribeOptions {
  /** Competing consumers: each message goes to exactly one member of the group, across all pools. */
  group?: string;
  /** How many messages the handler may process at once. Default 1 (in order). */
  concurrency?: number;
  /** How many messages may wait for the handler before publishers wait. Default 1024. */
  bufferSize?: number;
}

/** Options of `ctx.request`. */
export interface RequestOptions {
  /** How long to wait for the reply, in ms. Default 5000. */
  timeout?: number;
  /** Sets `meta.headers`. */
  headers?: Readonly<Record<string, string>>;
}

/** A live subscription. `using sub = await ctx.subscribe(…)` unsubscribes at the end of the scope. */
export interface Subscription extends Disposable, AsyncDisposable {
  /** The queue name or pattern subscribed to. */
  readonly queue: string;
  /** The group, when the subscription is a competing consumer. */
  readonly group: string | undefined;
  /** Stops delivery to this subscription; the returned promise settles once every pool knows. */
  unsubscribe(): Promise<void>;
}

/** One subscription in {@linkcode Topology}. */
export interface TopologyEntry {
  /** The service that subscribed. */
  service: string;
  /** The group, when it is a competing consumer. */
  group?: string | undefined;
  /** Messages waiting for the handler now. */
  buffered: number;
  /** The most messages that ever waited for the handler. */
  highWater: number;
  /** Messages handed to the handler so far. */
  delivered: number;
}

/**
 * Messages whose `publish` resolved but that were never handled, as
 * `main.run()` reports them: they waited behind a handler that did not
 * finish by the stop deadline, never left the publishing pool because the
 * receiving pool took nothing more, or found no group member left.
 */
export interface Undelivered {
  /** The pool they were for. */
  pool: string;
  /** The subscribing service, when they waited in its subscription. */
  service?: string | undefined;
  /** The group, when no member of it was left to take them. */
  group?: string | undefined;
  /** The subscription's queue (pattern), or the concrete queue of messages that never left their pool. */
  queue: string;
  /** How many messages. */
  count: number;
  /** The pool that held them at the end: the subscriber's, or the publisher's when they were never sent. */
  heldBy: string;
  /**
   * Set on messages from another process that the pool dropped on arrival:
   * their subscription's buffer was full and so was the pool's arrival
   * bound (`nats.arrivalBytes`). `heldBy` is then `"nats"`.
   */
  dropped?: true | undefined;
}

/** Queue (or pattern) → pool → subscriptions, as `ctx.topology()` returns it. */
export type Topology = Record<string, Record<string, TopologyEntry[]>>;

/**
 * Everything a service uses to talk to the rest of the program. One context
 * per service; `initialize`, `run` and `terminate` receive it.
 */
export interface ServiceContext {
  /** The pool (and worker) the service runs in. */
  readonly pool: string;
  /** The service's name. */
  readonly service: string;
  /** Aborted when the program begins to stop. */
  readonly signal: AbortSignal;
  /** A logger that prefixes pool and service. */
  readonly log: Logger;
  /**
   * Waits `ms` milliseconds, or less: it resolves early once stopping begins.
   *
   * @param ms How long to wait.
   */
  sleep(ms: number): Promise<void>;
  /**
   * Sends `data` to every subscription matching `queue`, in every pool.
   * Resolves when the message is accepted; waits while a subscriber is full.
   *
   * @throws {QueueNameError} When `queue` is malformed or has a wildcard.
   * @throws {DataCloneError} When `data` cannot be cloned; nothing is sent.
   */
  publish(
    queue: string,
    data: unknown,
    options?: PublishOptions,
  ): Promise<void>;
  /**
   * Calls `handler` for each message on `queue` (a name or a pattern with
   * `*` for one segment and `>` for the rest). Resolves once every pool
   * knows of the subscription.
   */
  subscribe<T = unknown>(
    queue: string,
    handler: MessageHandler<T>,
    options?: SubscribeOptions,
  ): Promise<Subscription>;
  /** Removes this service's subscriptions on `queue` that use `handler`. */
  unsubscribe<T = unknown>(
    queue: string,
    handler: MessageHandler<T>,
  ): Promise<void>;
  /**
   * Publishes `data` with a `replyTo` and resolves with the first answer.
   *
   * @throws {TimeoutError} When no answer comes within `timeout`.
   * @throws {NoRespondersError} When no subscription matches `queue`.
   */
  request<T = unknown>(
    queue: string,
    data: unknown,
    options?: RequestOptions,
  ): Promise<T>;
  /** Every subscription in every pool, by queue and pool. */
  topology(): Promise<Topology>;
  /**
   * One snapshot of the whole program's counters: every pool's
   * subscriptions and services, and the pools (see the README,
   * "Observability").
   */
  metrics(): Promise<MetricsSnapshot>;
  /** Logs {@linkcode ServiceContext.topology} as a tree. */
  dumpQueueTree(): Promise<void>;
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
 * The counters of one `WebSocketService` (`@magic/foundation/websocket`) in
 * {@linkcode MetricsSnapshot}, since its pool's worker started. Bytes are
 * the payloads' (UTF-8 for text frames), without the WebSocket framing.
 *
 * @example Connections open, per service
 * ```ts
 * import type { MetricsSnapshot } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * function open(snapshot: MetricsSnapshot): Record<string, number> {
 *   const out: Record<string, number> = {};
 *   for (const w of snapshot.websockets ?? []) {
 *     out[`${w.pool}/${w.service}`] = w.connections;
 *   }
 *   return out;
 * }
 *
 * assert.deepEqual(
 *   open({
 *     takenAt: 0,
 *     subscriptions: [],
 *     services: [],
 *     pools: [],
 *     websockets: [{
 *       pool: "web",
 *       service: "ws",
 *       connections: 3,
 *       framesIn: 10,
 *       framesOut: 12,
 *       bytesIn: 500,
 *       bytesOut: 640,
 *       closes: { "1000": 2 },
 *     }],
 *   }),
 *   { "web/ws": 3 },
 * );
 * ```
 */
export interface WebSocketMetrics {
  /** The service's pool. */
  pool: string;
  /** The service's name. */
  service: string;
  /** Connections open now (a gauge). */
  connections: number;
  /** Data frames received from clients. */
  framesIn: number;
  /** Data frames sent to clients. */
  framesOut: number;
  /** Payload bytes received from clients. */
  bytesIn: number;
  /** Payload bytes sent to clients. */
  bytesOut: number;
  /**
   * Closed connections by close code (as the `disconnected` event reports
   * it, e.g. `"1000"`, `"1001"`, `"1006"`).
   */
  closes: Record<string, number>;
}

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
 * A durable consumer at the end of a run (`RunReport.durable`): what it left
 * pending, and its counts in the run.
 *
 * @example
 * ```ts
 * import type { DurablePending } from "@magic/foundation";
 *
 * function describe(entry: DurablePending): string {
 *   return `${entry.consumer}: ${entry.pending} pending`;
 * }
 * ```
 */
export interface DurablePending {
  /** The durable pattern (stream) it reads. */
  stream: string;
  /** Its name: `group+<pattern>+<group>` or `service+<pattern>+<service>` (parts URI-encoded). */
  consumer: string;
  /** Messages stored and not yet acknowledged by it; delivered after the next start. */
  pending: number;
  /** Deliveries in the run (redeliveries included). */
  delivered: number;
  /** Messages its handlers acknowledged. */
  acknowledged: number;
  /** Deliveries after a handler threw or its pool died. */
  redelivered: number;
  /** Messages moved to their `dlq://` queue. */
  deadLettered: number;
}
