import { NoRespondersError, QueueNameError, StateError } from "../errors.ts";
import type { Scheduler } from "../scheduler.ts";
import type { Transport } from "../transport/transport.ts";
import type {
  DroppedMetrics,
  HandlerTiming,
  MetricsSnapshot,
  PublisherMetrics,
  SubscriptionMetrics,
} from "../metrics_snapshot.ts";
import type { Logger } from "../logger.ts";
import type {
  MessageHandler,
  MessageMeta,
  PublishOptions,
  RequestOptions,
  SubscribeOptions,
  Subscription,
  Topology,
} from "../service_context.ts";
import type { Undelivered } from "../run_report.ts";
import {
  countersKey,
  SubscriptionCounters,
  timingInterval,
} from "./counters.ts";
import type { SubscriptionEntry } from "./entry.ts";
import { ArrivalBound } from "./arrival_bound.ts";
import { Inbound } from "./inbound.ts";
import { MetaFactory } from "./meta.ts";
import { Outbound } from "./outbound.ts";
import type {
  OpenRemoteCarrier,
  RemoteCarrier,
  RemoteInterest,
  RemoteStatus,
  SharedStore,
} from "../transport/remote.ts";
import { validateQueueName } from "../queue_name.ts";
import { checkReplyQueue, Requests } from "./requests.ts";
import { isReplyQueue } from "../transport/reply_queue.ts";
import { groupKeyOf, Routes } from "./routes.ts";
import { LocalSubscription, type SubscriptionHost } from "./subscription.ts";
import { type MessageTracing, messageTracing } from "./tracing.ts";
import type { DurableClient } from "../durable/client.ts";

/** What the bus asks of the primary. */
export interface PrimaryLink {
  /** Adds a subscription to the table; resolves once every pool has it. */
  subscribe(entry: SubscriptionEntry): Promise<void>;
  /** Removes subscriptions from the table; resolves once every pool knows. */
  unsubscribe(ids: number[]): Promise<void>;
  /** Collects every pool's part of the topology. */
  topology(): Promise<Topology>;
  /** Collects every pool's counters. */
  metrics(): Promise<MetricsSnapshot>;
}

/** Settings of one pool's bus. */
export interface BusOptions {
  pool: string;
  index: number;
  incarnation: number;
  pools: readonly string[];
  scheduler: Scheduler;
  transport: Transport;
  primary: PrimaryLink;
  log: Logger;
  bufferSize: number;
  /** Which handler calls are timed. */
  handlerTiming: HandlerTiming;
  /** Reports a handler that threw or rejected; delivery goes on. */
  onHandlerError(service: string, error: unknown, meta: MessageMeta): void;
  /**
   * Opens the pool's carrier to other processes, when the program joins
   * them (NATS; loaded by the worker only then, see `pool/boot.ts`).
   */
  remote?: OpenRemoteCarrier | undefined;
  /** Told when one of the carrier's connections comes up or goes down. */
  onRemoteStatus?(change: RemoteStatus): void;
  /** The durable queues, when the program has some (`durable/client.ts`). */
  durable?: DurableClient | undefined;
}

/**
 * A pool's end of the publish/subscribe bus: subscriptions, request/reply
 * and the stop, with the sending side in {@linkcode Outbound} and the
 * receiving side in {@linkcode Inbound}.
 */
export class PoolBus implements SubscriptionHost {
  readonly scheduler: Scheduler;
  readonly pool: string;
  readonly index: number;
  readonly timeEvery: number;
  /** The pool's spans, when OpenTelemetry is on (`OTEL_DENO=true`). */
  readonly tracing: MessageTracing | undefined;
  #options: BusOptions;
  /** How many pools the program has: subscriptions are numbered by it. */
  #poolCount: number;
  /** Counters per service, pattern and group, while a subscription uses them. */
  #counters = new Map<string, SubscriptionCounters>();
  #transport: Transport;
  #log: Logger;
  #routes: Routes;
  #metas: MetaFactory;
  #inbound: Inbound;
  #outbound: Outbound;
  #nextId = 0;
  #requests: Requests;
  /** The pool's carrier to other processes, when the program joins them. */
  #remote: RemoteCarrier | undefined;
  /** What the pool keeps from other processes, when it joins them. */
  #arrivals: ArrivalBound | undefined;
  /** Messages that could not be delivered: key → count. */
  #undelivered = new Map<string, Undelivered>();
  #closed = false;

  constructor(options: BusOptions) {
    this.#options = options;
    this.#poolCount = options.pools.length;
    this.#transport = options.transport;
    this.#log = options.log;
    this.scheduler = options.scheduler;
    this.pool = options.pool;
    this.index = options.index;
    this.timeEvery = timingInterval(options.handlerTiming);
    this.tracing = messageTracing(options.pool);
    this.#requests = new Requests(options.index, options.incarnation);
    this.#routes = new Routes(options.index);
    // Messages from other processes come from the pool named "nats".
    const remoteIndex = options.pools.length;
    this.#metas = new MetaFactory(
      options.remote === undefined ? options.pools : [...options.pools, "nats"],
    );
    if (options.remote !== undefined) {
      const requests = this.#requests;
      this.#remote = options.remote({
        index: options.index,
        incarnation: options.incarnation,
        pool: options.pool,
        scheduler: options.scheduler,
        log: options.log,
        events: {
          admits: (interest, queue, bytes) =>
            this.#inbound.admits(interest, queue, bytes),
          arrive: (interest, batch) =>
            this.#inbound.arrive(interest, batch, remoteIndex),
          reply: (address, reply) =>
            reply.kind === "reply"
              ? requests.resolve(address, reply.data)
              : requests.noResponders(address),
          status: (change) => options.onRemoteStatus?.(change),
          interests: (add, remove) => this.#routes.applyElsewhere(add, remove),
          known: (complete) => this.#routes.knowElsewhere(complete),
          wanted: (queue) =>
            isReplyQueue(queue) || this.#routes.route(queue).elsewhere,
        },
      });
      this.#routes.knowElsewhere(false);
      this.#arrivals = new ArrivalBound(
        this.#remote.arrivalBytes,
        options.pool,
        options.log,
      );
    }
    this.#inbound = new Inbound({
      index: options.index,
      routes: this.#routes,
      requests: this.#requests,
      metas: this.#metas,
      transport: options.transport,
      log: options.log,
      lost: (queue, group) =>
        this.#count({ pool: this.pool, group, queue, count: 1 }),
      arrivals: this.#arrivals,
    });
    this.#outbound = new Outbound({
      index: options.index,
      routes: this.#routes,
      requests: this.#requests,
      metas: this.#metas,
      transport: options.transport,
      scheduler: options.scheduler,
      remote: this.#remote,
      tracing: this.tracing,
    });
    options.transport.onReceive((batch) => this.#inbound.receive(batch));
    this.#remote?.start();
  }

  // ---- publish ---------------------------------------------------------

  /** Publishes on behalf of `service`; see `ServiceContext.publish`. */
  publish(
    service: string,
    queue: string,
    data: unknown,
    options?: PublishOptions,
  ): Promise<void> {
    validateQueueName(queue, "publish");
    checkReplyQueue(queue);
    if (this.#closed) {
      return Promise.reject(
        new StateError(
          `Cannot publish on "${queue}": pool "${this.pool}" has stopped`,
        ),
      );
    }
    if (this.#options.durable?.isDurable(queue)) {
      return this.#options.durable.publish(service, queue, data, options);
    }
    return this.#outbound.publish(service, queue, data, options);
  }

  // ---- subscribe -------------------------------------------------------

  /** Subscribes on behalf of `service`; see `ServiceContext.subscribe`. */
  async subscribe<T>(
    service: string,
    queue: string,
    handler: MessageHandler<T>,
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    validateQueueName(queue, "subscribe");
    if (isReplyQueue(queue)) {
      throw new QueueNameError(
        queue,
        "the reply:// scheme is reserved for request/reply",
      );
    }
    if (typeof handler !== "function") {
      throw new TypeError(
        `Cannot subscribe to "${queue}": the handler must be a function`,
      );
    }
    const concurrency = positiveInteger(
      queue,
      "concurrency",
      options.concurrency ?? 1,
    );
    const capacity = positiveInteger(
      queue,
      "bufferSize",
      options.bufferSize ?? this.#options.bufferSize,
    );
    const group = options.group;
    if (group !== undefined && (typeof group !== "string" || group === "")) {
      throw new TypeError(
        `Cannot subscribe to "${queue}": group must be a non-empty string`,
      );
    }
    if (this.#closed) {
      throw new StateError(
        `Cannot subscribe to "${queue}": pool "${this.pool}" has stopped`,
      );
    }
    const n = this.#nextId++;
    const durable = this.#options.durable;
    if (durable?.coversSubscription(queue)) {
      return await durable.subscribe(
        `${this.index}.${this.#options.incarnation}.${n}`,
        service,
        queue,
        handler as MessageHandler<unknown>,
        { group, concurrency, capacity },
      );
    }
    const key = countersKey(service, queue, group);
    let counters = this.#counters.get(key);
    if (counters === undefined) {
      counters = new SubscriptionCounters(service, queue, group);
      this.#counters.set(key, counters);
    }
    counters.live++;
    // Its number, unique in the table (see `SubscriptionEntry.id`).
    const id = n * this.#poolCount + this.index;
    const subscription = new LocalSubscription(
      this,
      id,
      service,
      queue,
      handler as MessageHandler<never>,
      { group, concurrency, capacity, counters },
    );
    this.#routes.add(subscription);
    // In force in every pool, and on the NATS server when joined to it.
    await Promise.all([
      this.#options.primary.subscribe({
        id,
        poolIndex: this.index,
        pool: this.pool,
        service,
        queue,
        group,
      }),
      this.#remote?.subscribe(interestOf(subscription)),
    ]);
    return this.#handle(subscription);
  }

  #handle(subscription: LocalSubscription): Subscription {
    const unsubscribe = (): Promise<void> => this.#remove([subscription]);
    return {
      queue: subscription.queue,
      group: subscription.group,
      unsubscribe,
      [Symbol.dispose]: () => void unsubscribe(),
      [Symbol.asyncDispose]: unsubscribe,
    };
  }

  /** Removes `service`'s subscriptions on `queue` whose handler is `handler`. */
  unsubscribe(
    service: string,
    queue: string,
    handler: MessageHandler<never>,
  ): Promise<void> {
    validateQueueName(queue, "subscribe");
    const found = [...this.#routes.subscriptions()].filter((s) =>
      s.service === service && s.queue === queue && s.handler === handler
    );
    return Promise.all([
      this.#remove(found),
      this.#options.durable?.unsubscribe((s) =>
        s.service === service && s.queue === queue && s.handler === handler
      ),
    ]).then(() => {});
  }

  /** Removes every subscription of `service` (when it restarts). */
  unsubscribeService(service: string): Promise<void> {
    return Promise.all([
      this.#remove(
        [...this.#routes.subscriptions()].filter((s) => s.service === service),
      ),
      this.#options.durable?.unsubscribe((s) => s.service === service),
    ]).then(() => {});
  }

  async #remove(subscriptions: LocalSubscription[]): Promise<void> {
    const live = subscriptions.filter((s) => !s.closed);
    if (live.length === 0) return;
    for (const subscription of live) {
      this.#routes.remove(subscription);
      this.#remote?.unsubscribe(interestOf(subscription));
      if (--subscription.counters.live === 0) {
        const { service, queue, group } = subscription;
        this.#counters.delete(countersKey(service, queue, group));
      }
    }
    for (const subscription of live) {
      const rest = subscription.close();
      if (subscription.group !== undefined) {
        const key = groupKeyOf(subscription.queue, subscription.group);
        for (const { data, meta } of rest) {
          this.#inbound.reassign(
            {
              queue: meta.queue,
              service: meta.from.service,
              publishedAt: meta.publishedAt,
              replyTo: meta.replyTo,
              headers: meta.headers,
            },
            data,
            key,
            subscription.id,
            this.#metas.poolIndex(meta.from.pool),
          );
        }
      } else if (rest.length > 0) {
        this.#log.debug(
          `Unsubscribed ${subscription.service} from "${subscription.queue}": ${rest.length} buffered messages discarded`,
        );
      }
    }
    if (!this.#closed) {
      await this.#options.primary.unsubscribe(live.map((s) => s.id));
    }
  }

  /** Applies a change of the table the primary keeps. */
  applyTable(add: SubscriptionEntry[], remove: number[]): void {
    this.#routes.applyTable(add, remove);
  }

  // ---- request / reply -------------------------------------------------

  /** See `ServiceContext.request`. */
  async request<T>(
    service: string,
    queue: string,
    data: unknown,
    options: RequestOptions = {},
  ): Promise<T> {
    validateQueueName(queue, "publish");
    // The context checked `options.timeout`.
    const timeout = options.timeout ?? 5000;
    const route = this.#routes.route(queue);
    // A group with members in other processes is served through the
    // server, which says when nobody anywhere answers; a responder in this
    // process answers directly.
    const here = route.plain.pools.length > 0 || route.local.length > 0 ||
      (route.groups.length > 0 && !route.groupsElsewhere);
    const elsewhere = this.#remote !== undefined && route.elsewhere;
    if (!here && !elsewhere) throw new NoRespondersError(queue);
    const { replyTo, reply, cancel } = this.#requests.open(queue, timeout, {
      noResponders: here ? "ignore" : "fail",
    });
    try {
      const publishOptions: PublishOptions = { replyTo };
      if (options.headers !== undefined) {
        publishOptions.headers = options.headers;
      }
      await this.publish(service, queue, data, publishOptions);
    } catch (error) {
      cancel();
      throw error;
    }
    return reply as Promise<T>;
  }

  // ---- supervision and shutdown ----------------------------------------

  /** Reports a handler that threw; delivery goes on. */
  handlerFailed(
    subscription: LocalSubscription,
    error: unknown,
    meta: MessageMeta,
  ): void {
    this.#options.onHandlerError(subscription.service, error, meta);
  }

  /**
   * Subscriptions that have had messages waiting, and no handler starting,
   * for `after` ms or more; each stall is returned once.
   */
  stuck(after: number): LocalSubscription[] {
    const now = Date.now();
    return [...this.#routes.subscriptions()].filter((subscription) =>
      subscription.stalled(now, after)
    );
  }

  /** The store shared by the processes of the run, when joined to them. */
  sharedStore(): SharedStore | undefined {
    return this.#remote?.store;
  }

  /**
   * This pool's part of the topology (its NATS subscriptions under `nats`,
   * its durable ones marked `durable`).
   */
  topology(): Topology {
    const topology: Topology = this.#remote?.topology() ?? {};
    for (const subscription of this.#routes.subscriptions()) {
      const pools = topology[subscription.queue] ??= {};
      (pools[this.pool] ??= []).push({
        service: subscription.service,
        group: subscription.group,
        buffered: subscription.size,
        highWater: subscription.highWater,
        delivered: subscription.delivered,
      });
    }
    this.#options.durable?.addTopology(topology);
    return topology;
  }

  /**
   * This pool's subscription counters, one entry per service, pattern and
   * group, with what waits in its live subscriptions as `buffered`, and
   * `stuck` when one of them is stuck (see {@linkcode PoolBus.stuck}).
   */
  metrics(): SubscriptionMetrics[] {
    const buffered = new Map<SubscriptionCounters, number>();
    const stuck = new Set<SubscriptionCounters>();
    for (const subscription of this.#routes.subscriptions()) {
      const waiting = subscription.size + subscription.overflowed;
      const counters = subscription.counters;
      buffered.set(counters, (buffered.get(counters) ?? 0) + waiting);
      if (subscription.stuck) stuck.add(counters);
    }
    return [...this.#counters.values()].map((counters) =>
      counters.snapshot(
        this.pool,
        buffered.get(counters) ?? 0,
        stuck.has(counters),
      )
    );
  }

  /** What this pool dropped from other processes, per queue. */
  droppedMetrics(): DroppedMetrics[] {
    return (this.#arrivals?.dropped() ?? []).map(({ queue, count }) => ({
      pool: this.pool,
      queue,
      count,
    }));
  }

  /** What this pool's services published, per pattern reached. */
  publisherMetrics(): PublisherMetrics[] {
    return this.#routes.publisherMetrics(this.pool);
  }

  /** Every pool's counters; see `ServiceContext.metrics`. */
  globalMetrics(): Promise<MetricsSnapshot> {
    return this.#options.primary.metrics();
  }

  /** Every pool's subscriptions; see `ServiceContext.topology`. */
  globalTopology(): Promise<Topology> {
    return this.#options.primary.topology();
  }

  /**
   * Resolves once everything published so far (to pool `to`, or to every
   * pool) has been received and routed there.
   */
  flush(to?: number): Promise<void> {
    return this.#transport.flush(to);
  }

  /** Whether anything is waiting to be sent, acknowledged, routed or handled. */
  busy(): boolean {
    if (this.#transport.busy() || this.#transport.held() > 0) return true;
    if (this.#remote?.busy()) return true;
    if (this.#options.durable?.busy()) return true;
    for (const subscription of this.#routes.subscriptions()) {
      if (subscription.size > 0 || subscription.active > 0) return true;
    }
    return false;
  }

  /**
   * Resolves once the pool knows what other processes subscribe to (at
   * once when it joins none): its services' `run()` begins after.
   */
  ready(): Promise<void> {
    return this.#remote?.ready() ?? Promise.resolve();
  }

  /**
   * Waits until everything this pool has sent was routed by its receivers,
   * and every message in this pool's subscriptions was handled.
   */
  async drain(): Promise<void> {
    await this.#options.durable?.drain();
    while (this.busy()) {
      await this.flush();
      await Promise.all(
        [...this.#routes.subscriptions()].map((s) => s.whenIdle()),
      );
      await this.scheduler.yield();
    }
  }

  /**
   * Stops the bus: pending requests fail, the transport closes. Returns the
   * messages that were never handled: still waiting in a subscription, never
   * sent to another pool, or left without a group member.
   */
  async close(): Promise<Undelivered[]> {
    if (this.#closed) return [];
    this.#closed = true;
    this.#options.durable?.close();
    for (const subscription of this.#routes.subscriptions()) {
      const rest = subscription.close().length;
      if (rest > 0) {
        this.#count({
          pool: this.pool,
          service: subscription.service,
          queue: subscription.queue,
          count: rest,
        });
      }
    }
    this.#routes.clear();
    this.#requests.rejectAll((id) =>
      new StateError(
        `Request ${id} of pool "${this.pool}" ended: the pool stopped`,
      )
    );
    const [unsent, natsUnsent] = await Promise.all([
      this.#transport.close(),
      this.#remote?.close() ?? [],
    ]);
    for (const { to, queue, count } of unsent) {
      this.#count({ pool: this.#metas.poolName(to), queue, count });
    }
    for (const { queue, count } of natsUnsent) {
      this.#count({ pool: "nats", queue, count });
    }
    this.#arrivals?.close();
    for (const { queue, count } of this.#arrivals?.dropped() ?? []) {
      this.#count({
        pool: this.pool,
        queue,
        count,
        heldBy: "nats",
        dropped: true,
      });
    }
    return [...this.#undelivered.values()];
  }

  #count(
    counted: Omit<Undelivered, "heldBy"> & { heldBy?: string },
  ): void {
    const { pool, service, group, queue, count, dropped } = counted;
    const key = [pool, service, group, queue, dropped].join("\u0000");
    const entry = this.#undelivered.get(key);
    if (entry !== undefined) entry.count += count;
    else this.#undelivered.set(key, { heldBy: this.pool, ...counted });
  }
}

function positiveInteger(queue: string, name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot subscribe to "${queue}": ${name} must be an integer >= 1, got ${value}`,
    );
  }
  return value;
}

/** What the carrier to other processes holds for a subscription. */
function interestOf(subscription: LocalSubscription): RemoteInterest {
  return { pattern: subscription.queue, group: subscription.group };
}
