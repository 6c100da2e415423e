/**
 * A pool's durable queues, as its bus sees them: which queues are durable,
 * and publish / subscribe on them through a {@linkcode DurableCarrier}.
 *
 * @module
 */
import { DataCloneError, QueueNameError, StateError } from "../errors.ts";
import { matchesQueue } from "../queue_name.ts";
import { checkHeaders } from "../bus/headers.ts";
import type { DurableMetrics } from "../metrics_snapshot.ts";
import type { DurablePending } from "../run_report.ts";
import type {
  MessageHandler,
  MessageMeta,
  PublishOptions,
  Subscription,
  Topology,
} from "../service_context.ts";
import type { DurableCarrier } from "./carrier.ts";
import { patternCovers, patternsOverlap } from "./patterns.ts";
import { mergePending } from "./pending_report.ts";
import {
  DurableSubscriber,
  type RetryPolicy,
  type SubscriberHost,
} from "./subscriber.ts";

/** What a pool's durable client is built with. */
export interface DurableClientOptions {
  /** The durable patterns (streams). */
  streams: readonly string[];
  /** The patterns only groups subscribe to. */
  groupOnly?: readonly string[] | undefined;
  policy: RetryPolicy;
  carrier: DurableCarrier;
  pool: string;
  poolIndex: number;
  handlerFailed(service: string, error: unknown, meta: MessageMeta): void;
}

/** Options of {@linkcode DurableClient.subscribe}, checked by the bus. */
export interface DurableSubscribeOptions {
  group: string | undefined;
  concurrency: number;
  capacity: number;
}

/** A pool's side of the durable queues. */
export class DurableClient implements SubscriberHost {
  readonly carrier: DurableCarrier;
  readonly policy: RetryPolicy;
  #options: DurableClientOptions;
  #subscribers = new Map<string, DurableSubscriber>();
  #durableQueues = new Map<string, boolean>();
  #closed = false;

  constructor(options: DurableClientOptions) {
    this.#options = options;
    this.carrier = options.carrier;
    this.policy = options.policy;
  }

  handlerFailed(service: string, error: unknown, meta: MessageMeta): void {
    this.#options.handlerFailed(service, error, meta);
  }

  /** Whether the concrete `queue` is durable (remembered for 10,000 queues). */
  isDurable(queue: string): boolean {
    let durable = this.#durableQueues.get(queue);
    if (durable === undefined) {
      durable = this.#options.streams.some((s) => matchesQueue(s, queue));
      if (this.#durableQueues.size >= 10_000) this.#durableQueues.clear();
      this.#durableQueues.set(queue, durable);
    }
    return durable;
  }

  /**
   * Whether a subscription to `pattern` is durable: it lies inside a durable
   * pattern. One that only overlaps durable queues is refused, as it would
   * miss their messages.
   *
   * @throws {QueueNameError} When `pattern` overlaps a durable pattern without lying inside it.
   */
  coversSubscription(pattern: string): boolean {
    const streams = this.#options.streams;
    if (streams.some((s) => patternCovers(s, pattern))) return true;
    const overlapped = streams.find((s) => patternsOverlap(s, pattern));
    if (overlapped !== undefined) {
      throw new QueueNameError(
        pattern,
        `it overlaps the durable queues "${overlapped}" without lying inside them (subscribe to durable and other queues separately)`,
      );
    }
    return false;
  }

  /** Stores a message on a durable queue; resolves once it is stored. */
  publish(
    service: string,
    queue: string,
    data: unknown,
    options: PublishOptions | undefined,
  ): Promise<void> {
    if (this.#closed) {
      return Promise.reject(
        new StateError(
          `Cannot publish on "${queue}": pool "${this.#options.pool}" has stopped`,
        ),
      );
    }
    const id = options?.id;
    if (id !== undefined && (typeof id !== "string" || id === "")) {
      throw new TypeError(
        `Cannot publish on "${queue}": id must be a non-empty string`,
      );
    }
    const headers = options?.headers === undefined
      ? undefined
      : checkHeaders(queue, options.headers);
    try {
      return this.carrier.publish({
        queue,
        pool: this.#options.pool,
        service,
        publishedAt: Date.now(),
        headers,
        replyTo: options?.replyTo,
        id,
        data,
      });
    } catch (error) {
      // The local carrier posts the data to the main thread at once.
      throw new DataCloneError(queue, error);
    }
  }

  /** Subscribes `service` on the durable `queue`. */
  async subscribe(
    id: string,
    service: string,
    queue: string,
    handler: MessageHandler<unknown>,
    options: DurableSubscribeOptions,
  ): Promise<Subscription> {
    const groupOnly = this.#options.groupOnly?.find((p) =>
      patternCovers(p, queue)
    );
    if (groupOnly !== undefined && options.group === undefined) {
      throw new QueueNameError(
        queue,
        `durable queues "${groupOnly}" are for groups only (durable.groupOnly): subscribe with a group`,
      );
    }
    const subscriber = new DurableSubscriber(
      this,
      id,
      service,
      queue,
      handler,
      {
        group: options.group,
        concurrency: options.concurrency,
      },
    );
    this.#subscribers.set(id, subscriber);
    await this.carrier.consume({
      subscription: id,
      pool: this.#options.poolIndex,
      service,
      queue,
      group: options.group,
      capacity: options.capacity,
    }, (messages) => subscriber.receive(messages));
    const unsubscribe = (): Promise<void> => this.#remove([subscriber]);
    return {
      queue,
      group: options.group,
      unsubscribe,
      [Symbol.dispose]: () => void unsubscribe(),
      [Symbol.asyncDispose]: unsubscribe,
    };
  }

  /** Removes the subscriptions of `service` whose handler is in `match`. */
  unsubscribe(
    match: (subscriber: DurableSubscriber) => boolean,
  ): Promise<void> {
    return this.#remove([...this.#subscribers.values()].filter(match));
  }

  async #remove(subscribers: DurableSubscriber[]): Promise<void> {
    const live = subscribers.filter((s) => this.#subscribers.delete(s.id));
    if (live.length === 0) return;
    // What they were handling finishes and is settled; what waited goes back.
    for (const subscriber of live) subscriber.stop();
    await Promise.all(live.map((s) => s.whenIdle()));
    if (!this.#closed) await this.carrier.cancel(live.map((s) => s.id));
  }

  /**
   * The counters of its durable subscriptions, one entry each, with their
   * consumer's `pending` as the carrier tells it now (left out when it
   * cannot).
   */
  async metrics(): Promise<DurableMetrics[]> {
    const subscribers = [...this.#subscribers.values()];
    const backlog = subscribers.length === 0 || this.#closed
      ? []
      : await this.carrier.backlog(subscribers.map((s) => s.id)).catch(
        () => [],
      );
    const pending = new Map(backlog.map((b) => [b.subscription, b.pending]));
    return subscribers.map((s) => {
      const metrics = s.metrics(this.#options.pool);
      const value = pending.get(s.id);
      if (value !== undefined) metrics.pending = value;
      return metrics;
    });
  }

  /**
   * What its subscriptions' consumers leave pending, as the carrier tells it
   * now, with the pool's counts of each consumer's subscriptions added up
   * (the run report joined to NATS, taken once the handlers are settled).
   */
  async report(): Promise<DurablePending[]> {
    const subscribers = [...this.#subscribers.values()];
    const backlog = subscribers.length === 0
      ? []
      : await this.carrier.backlog(subscribers.map((s) => s.id));
    const report: DurablePending[] = [];
    for (const { subscription, stream, consumer, pending } of backlog) {
      const subscriber = this.#subscribers.get(subscription);
      if (subscriber === undefined) continue;
      const { delivered, acknowledged, redelivered, deadLettered } = subscriber
        .metrics(this.#options.pool);
      mergePending(report, [{
        stream,
        consumer,
        pending,
        delivered,
        acknowledged,
        redelivered,
        deadLettered,
      }]);
    }
    return report;
  }

  /** Adds its durable subscriptions to `topology`, under `pool`. */
  addTopology(topology: Topology): void {
    for (const subscriber of this.#subscribers.values()) {
      const pools = topology[subscriber.queue] ??= {};
      (pools[this.#options.pool] ??= []).push(subscriber.topologyEntry());
    }
  }

  /** Whether a durable handler runs. */
  busy(): boolean {
    for (const subscriber of this.#subscribers.values()) {
      if (subscriber.running > 0) return true;
    }
    return false;
  }

  /**
   * The stop: no more handlers start (what was delivered and not started
   * stays stored, pending), those running finish and are settled.
   */
  async drain(): Promise<void> {
    for (const subscriber of this.#subscribers.values()) subscriber.stop();
    await Promise.all(
      [...this.#subscribers.values()].map((s) => s.whenIdle()),
    );
  }

  /** Sends the last settlements; publishes fail from now on. */
  close(): void {
    this.#closed = true;
    for (const subscriber of this.#subscribers.values()) subscriber.stop();
    this.#subscribers.clear();
  }
}
