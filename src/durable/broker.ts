/**
 * The local broker: owns every durable stream's log on the main thread (one
 * writer per file, and it outlives any pool's worker), answers the pools'
 * publishes once stored and delivers to their subscriptions.
 *
 * @module
 */
import { serializeError } from "../errors.ts";
import { matchesQueue } from "../queue_name.ts";
import type { DurablePending } from "../run_report.ts";
import type { Logger } from "../logger.ts";
import type { DurableSettings } from "./options.ts";
import { patternCovers } from "./patterns.ts";
import { packRecords } from "./packed_records.ts";
import type {
  BrokerToPool,
  ConsumerBacklog,
  ConsumerMember,
  PoolToBroker,
} from "./protocol.ts";
import { consumerName, Stream } from "./stream.ts";

/**
 * The main thread's owner of the durable streams. What it says to a pool in
 * one turn (answers to publishes synced together, deliveries) goes in one
 * message.
 */
export class LocalBroker {
  #streams: Stream[];
  #post: (pool: number, message: BrokerToPool) => void;
  #log: Logger;
  /** The stream of each concrete queue published on. */
  #byQueue = new Map<string, Stream | undefined>();
  /** Per pool, the messages of this turn not yet sent. */
  #outbox = new Map<number, BrokerToPool[]>();

  private constructor(
    streams: Stream[],
    post: (pool: number, message: BrokerToPool) => void,
    log: Logger,
  ) {
    this.#streams = streams;
    this.#post = post;
    this.#log = log;
  }

  /** Queues `message` for `pool`; the turn's messages leave together. */
  #send(pool: number, message: BrokerToPool): void {
    if (this.#outbox.size === 0) queueMicrotask(() => this.#flush());
    const queued = this.#outbox.get(pool);
    if (queued === undefined) this.#outbox.set(pool, [message]);
    else queued.push(message);
  }

  #flush(): void {
    const outbox = [...this.#outbox];
    this.#outbox.clear();
    for (const [pool, messages] of outbox) {
      const [only] = messages;
      if (messages.length > 1) this.#post(pool, { op: "batch", messages });
      else if (only !== undefined) this.#post(pool, only);
    }
  }

  /**
   * Opens every stream of `settings` (creating the directory), cutting and
   * logging torn tails.
   */
  static async open(
    settings: DurableSettings,
    send: (pool: number, message: BrokerToPool) => void,
    log: Logger,
  ): Promise<LocalBroker> {
    const streams: Stream[] = [];
    const broker = new LocalBroker(streams, send, log);
    for (const pattern of settings.streams) {
      const stream = await Stream.open(pattern, {
        directory: settings.directory,
        segmentBytes: settings.segmentBytes,
        dedupeWindow: settings.dedupeWindow,
        deliver: (member, stream, records) =>
          broker.#send(member.pool, {
            op: "deliver",
            subscription: member.subscription,
            stream,
            records: packRecords(records),
          }),
        failed: (error) =>
          log.error(
            `Durable queue "${pattern}" failed: ${
              String(error)
            }; its consumers deliver no more`,
          ),
      });
      for (const cut of stream.cut) {
        log.warn(
          `Durable queue "${pattern}": cut ${cut.bytes} bytes at the end of "${cut.file}" (${cut.reason}); the records before are kept`,
        );
      }
      streams.push(stream);
    }
    return broker;
  }

  /** The streams, for tests and the report. */
  get streams(): readonly Stream[] {
    return this.#streams;
  }

  /** Handles a pool's message. */
  receive(pool: number, message: PoolToBroker): void {
    switch (message.op) {
      case "batch":
        for (const each of message.messages) this.receive(pool, each);
        break;
      case "publish": {
        const stream = this.#streamOf(message.message.queue);
        const answer = stream === undefined
          ? Promise.reject(
            new Error(
              `Cannot publish on "${message.message.queue}": it is not durable`,
            ),
          )
          : stream.publish(message.message);
        this.#answer(pool, message.request, answer);
        break;
      }
      case "subscribe":
        this.#answer(pool, message.request, this.#join(message.member));
        break;
      case "unsubscribe": {
        const ids = new Set(message.subscriptions);
        this.#leave((member) => ids.has(member.subscription));
        this.#answer(pool, message.request, Promise.resolve());
        break;
      }
      case "settle":
        for (const stream of this.#streams) {
          for (const consumer of stream.consumers.values()) {
            if (consumer.has(message.subscription)) {
              consumer.settle(message.subscription, message.settlements);
            }
          }
        }
        break;
      case "backlog":
        this.#send(pool, {
          op: "answer",
          request: message.request,
          backlog: this.#backlog(message.subscriptions),
        });
        break;
      default: {
        const unknown: never = message;
        this.#log.warn(`Unknown durable message: ${JSON.stringify(unknown)}`);
      }
    }
  }

  /** The stream a concrete queue is stored in (remembered for 10,000 queues). */
  #streamOf(queue: string): Stream | undefined {
    let stream = this.#byQueue.get(queue);
    if (stream === undefined && !this.#byQueue.has(queue)) {
      stream = this.#streams.find((s) => matchesQueue(s.pattern, queue));
      if (this.#byQueue.size >= 10_000) this.#byQueue.clear();
      this.#byQueue.set(queue, stream);
    }
    return stream;
  }

  /** The backlog of each subscription's consumer, as it stands now. */
  #backlog(subscriptions: readonly string[]): ConsumerBacklog[] {
    const backlog: ConsumerBacklog[] = [];
    for (const subscription of subscriptions) {
      for (const stream of this.#streams) {
        for (const consumer of stream.consumers.values()) {
          if (!consumer.has(subscription)) continue;
          backlog.push({
            subscription,
            stream: stream.pattern,
            consumer: consumer.name,
            pending: consumer.pending,
          });
        }
      }
    }
    return backlog;
  }

  async #join(member: ConsumerMember): Promise<void> {
    const stream = this.#streams.find((s) =>
      patternCovers(s.pattern, member.queue)
    );
    if (stream === undefined) {
      throw new Error(
        `Cannot subscribe to "${member.queue}": it is not durable`,
      );
    }
    const name = consumerName(member.queue, member.group, member.service);
    (await stream.consumer(name, member.queue)).join(member);
  }

  #answer(pool: number, request: number, done: Promise<unknown>): void {
    done.then(
      () => this.#send(pool, { op: "answer", request }),
      (error) =>
        this.#send(pool, {
          op: "answer",
          request,
          error: serializeError(error),
        }),
    );
  }

  #leave(match: (member: ConsumerMember) => boolean): void {
    for (const stream of this.#streams) {
      for (const consumer of stream.consumers.values()) consumer.leave(match);
    }
  }

  /** A pool's worker died: what its subscriptions held is delivered again. */
  poolGone(pool: number): void {
    this.#leave((member) => member.pool === pool);
  }

  /** A stop began: nothing new is delivered; what is out may still be settled. */
  stopDelivering(): void {
    for (const stream of this.#streams) {
      for (const consumer of stream.consumers.values()) consumer.stop();
    }
  }

  /** Resolves once every delivered message is settled (or its pool gone). */
  async settled(): Promise<void> {
    for (const stream of this.#streams) {
      for (const consumer of stream.consumers.values()) {
        await consumer.whenSettled();
      }
    }
  }

  /** Closes every stream; returns what each consumer left pending. */
  async close(): Promise<DurablePending[]> {
    const pending: DurablePending[] = [];
    for (const stream of this.#streams) {
      for (const consumer of stream.consumers.values()) {
        pending.push({
          stream: stream.pattern,
          consumer: consumer.name,
          pending: consumer.pending,
          ...consumer.counts,
        });
      }
      await stream.close();
    }
    return pending;
  }
}
