/**
 * The seam between a pool's durable subscriptions and whatever stores the
 * messages: {@linkcode DurableCarrier}. The local log plugs in here through
 * {@linkcode LocalCarrier} (messages to the broker on the main thread);
 * JetStream through `nats/jetstream_carrier.ts` (`publish` a JetStream
 * publish with `Nats-Msg-Id`, `consume` a durable pull consumer, `settle`
 * `ack()` / `nak(delay)`, `cancel` stopping the consumer), chosen by the
 * pool when the program joins NATS.
 *
 * @module
 */
import { deserializeError } from "../errors.ts";
import { decodeMessage, encodeOutgoing } from "./message.ts";
import { unpackRecords } from "./packed_records.ts";
import type {
  BrokerToPool,
  ConsumerBacklog,
  ConsumerMember,
  DeliveredMessage,
  OutgoingMessage,
  PoolToBroker,
  Settlement,
} from "./protocol.ts";

/** Where a pool's durable messages are stored and come from. */
export interface DurableCarrier {
  /** Stores a message; resolves once it is stored (or found a duplicate). */
  publish(message: OutgoingMessage): Promise<void>;
  /**
   * Joins `member`'s consumer; `deliver` receives its messages, at most
   * `member.capacity` unsettled. Resolves once it is joined.
   */
  consume(
    member: ConsumerMember,
    deliver: (messages: DeliveredMessage[]) => void,
  ): Promise<void>;
  /** Settles delivered messages (acknowledged, dead-lettered, or to retry after a delay). */
  settle(subscription: string, settlements: Settlement[]): void;
  /**
   * The backlog of the consumers of `subscriptions`, one entry per
   * subscription it can tell (one it cannot is left out). Asked on the
   * metrics' cadence, never per message.
   */
  backlog(subscriptions: readonly string[]): Promise<ConsumerBacklog[]>;
  /** Leaves the consumers of `subscriptions`; what they held goes to others. */
  cancel(subscriptions: string[]): Promise<void>;
  /**
   * Sends the last settlements and leaves every consumer (what was
   * delivered and not settled goes back to the store); pending requests
   * fail. The pool stops.
   */
  close(): Promise<void>;
}

/**
 * The carrier to the local broker: what a pool says to the main thread in
 * one turn (publishes, settlements of every subscription, requests) goes in
 * one message, in order; the broker answers and delivers in one message per
 * turn. A publish is encoded here, at the call (so uncloneable data throws
 * there), and a delivery decoded here: the main thread handles bytes only.
 */
export class LocalCarrier implements DurableCarrier {
  #post: (message: PoolToBroker) => void;
  #defer: (task: () => void) => void;
  /** What this turn has to say, not yet sent. */
  #outbox: PoolToBroker[] = [];
  #closed = false;
  #requests = new Map<number, PromiseWithResolvers<void>>();
  /** The backlogs answered, until their request's waiter takes them. */
  #backlogs = new Map<number, ConsumerBacklog[]>();
  #nextRequest = 0;
  #deliverers = new Map<string, (messages: DeliveredMessage[]) => void>();
  /** This turn's settlements, by subscription (in the outbox already). */
  #settlements = new Map<string, Settlement[]>();

  /**
   * @param post Sends a message to the broker.
   * @param defer Runs the turn's flush later: the pool's next macrotask, so
   * the settlements of handlers run one after another (each its own chain
   * of microtasks) leave together; a microtask by default.
   */
  constructor(
    post: (message: PoolToBroker) => void,
    defer: (task: () => void) => void = queueMicrotask,
  ) {
    this.#post = post;
    this.#defer = defer;
  }

  /** Handles the broker's message. */
  receive(message: BrokerToPool): void {
    if (message.op === "batch") {
      for (const each of message.messages) this.receive(each);
      return;
    }
    if (message.op === "answer") {
      const request = this.#requests.get(message.request);
      this.#requests.delete(message.request);
      if (message.backlog !== undefined && request !== undefined) {
        this.#backlogs.set(message.request, message.backlog);
      }
      if (message.error === undefined) request?.resolve();
      else request?.reject(deserializeError(message.error));
      return;
    }
    const deliver = this.#deliverers.get(message.subscription);
    if (deliver === undefined) return;
    const { stream } = message;
    deliver(
      unpackRecords(message.records).map(({ seq, attempt, body }) => {
        const stored = decodeMessage(body);
        return {
          stream,
          seq,
          attempt,
          queue: stored.queue,
          pool: stored.pool,
          service: stored.service,
          publishedAt: stored.publishedAt,
          headers: stored.headers,
          replyTo: stored.replyTo,
          data: stored.data,
        };
      }),
    );
  }

  /** Queues `message` for this turn's post (posted at once once closed). */
  #queue(message: PoolToBroker): void {
    if (this.#closed) {
      this.#post(message);
      return;
    }
    if (this.#outbox.length === 0) this.#defer(() => this.flush());
    this.#outbox.push(message);
  }

  #call(make: (request: number) => PoolToBroker): Promise<void> {
    const request = ++this.#nextRequest;
    const waiter = Promise.withResolvers<void>();
    this.#requests.set(request, waiter);
    this.#queue(make(request));
    return waiter.promise;
  }

  /** @throws {Error} When the data cannot be cloned. */
  publish(message: OutgoingMessage): Promise<void> {
    const encoded = encodeOutgoing(message);
    return this.#call((request) => ({
      op: "publish",
      request,
      message: encoded,
    }));
  }

  consume(
    member: ConsumerMember,
    deliver: (messages: DeliveredMessage[]) => void,
  ): Promise<void> {
    this.#deliverers.set(member.subscription, deliver);
    return this.#call((request) => ({ op: "subscribe", request, member }));
  }

  settle(subscription: string, settlements: Settlement[]): void {
    const list = this.#settlements.get(subscription);
    if (list !== undefined) {
      list.push(...settlements);
      return;
    }
    const own = [...settlements];
    this.#settlements.set(subscription, own);
    this.#queue({ op: "settle", subscription, settlements: own });
  }

  /** Sends what this turn has to say. */
  flush(): void {
    const messages = this.#outbox;
    if (messages.length === 0) return;
    this.#outbox = [];
    this.#settlements.clear();
    packBodies(messages);
    const [only] = messages;
    if (messages.length > 1) this.#post({ op: "batch", messages });
    else if (only !== undefined) this.#post(only);
  }

  /**
   * Asks the broker, after the settlements not yet sent (so what they
   * acknowledge is no longer pending).
   */
  async backlog(subscriptions: readonly string[]): Promise<ConsumerBacklog[]> {
    let request = 0;
    await this.#call((id) => ({
      op: "backlog",
      request: request = id,
      subscriptions: [...subscriptions],
    }));
    const backlog = this.#backlogs.get(request) ?? [];
    this.#backlogs.delete(request);
    return backlog;
  }

  cancel(subscriptions: string[]): Promise<void> {
    for (const id of subscriptions) this.#deliverers.delete(id);
    return this.#call((request) => ({
      op: "unsubscribe",
      request,
      subscriptions,
    }));
  }

  close(): Promise<void> {
    this.flush();
    this.#closed = true;
    for (const waiter of this.#requests.values()) {
      waiter.reject(new Error("The pool stopped before the broker answered"));
    }
    this.#requests.clear();
    return Promise.resolve();
  }
}

/**
 * Moves the bodies of `messages`' publishes into one buffer (each body a
 * view of it), so a post clones one buffer, not one per publish (in the
 * bench, about 1.5 µs of CPU a publish less in the posting pool and on the
 * main thread each, three alternated runs under load).
 */
function packBodies(messages: PoolToBroker[]): void {
  let length = 0;
  let count = 0;
  for (const message of messages) {
    if (message.op !== "publish") continue;
    length += message.message.body.length;
    count++;
  }
  if (count < 2) return;
  const buffer = new Uint8Array(length);
  let offset = 0;
  for (const message of messages) {
    if (message.op !== "publish") continue;
    const { body } = message.message;
    buffer.set(body, offset);
    message.message.body = buffer.subarray(offset, offset + body.length);
    offset += body.length;
  }
}
