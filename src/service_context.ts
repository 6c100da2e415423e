/**
 * The service context API: what a service uses to talk to the rest of the
 * program (`ctx.publish`, `ctx.subscribe`, `ctx.request`, …), and the
 * message metadata, handlers, options and subscriptions it deals in.
 *
 * @module
 */
import type { Logger } from "./logger.ts";
import type { MetricsSnapshot } from "./metrics_snapshot.ts";

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
  /**
   * Set on a durable subscription (its queue is stored, see `docs/durable.md`);
   * its `buffered` and `highWater` count the deliveries waiting in its pool,
   * and `delivered` counts redeliveries again.
   */
  durable?: true;
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
   * subscriptions and services, and the pools (see docs/observability.md,
   * "Observability").
   */
  metrics(): Promise<MetricsSnapshot>;
  /** Logs {@linkcode ServiceContext.topology} as a tree. */
  dumpQueueTree(): Promise<void>;
}
