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
 * The carrier to the local broker: requests and settlements posted to the
 * main thread, the settlements of one turn (of every subscription) in one
 * message; the broker answers and delivers in one message per turn.
 */
export class LocalCarrier implements DurableCarrier {
  #post: (message: PoolToBroker) => void;
  #requests = new Map<number, PromiseWithResolvers<void>>();
  /** The backlogs answered, until their request's waiter takes them. */
  #backlogs = new Map<number, ConsumerBacklog[]>();
  #nextRequest = 0;
  #deliverers = new Map<string, (messages: DeliveredMessage[]) => void>();
  #settlements = new Map<string, Settlement[]>();

  /** @param post Sends a message to the broker. */
  constructor(post: (message: PoolToBroker) => void) {
    this.#post = post;
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
    this.#deliverers.get(message.subscription)?.(message.messages);
  }

  #call(make: (request: number) => PoolToBroker): Promise<void> {
    const request = ++this.#nextRequest;
    const waiter = Promise.withResolvers<void>();
    this.#requests.set(request, waiter);
    try {
      this.#post(make(request));
    } catch (error) {
      this.#requests.delete(request);
      throw error;
    }
    return waiter.promise;
  }

  publish(message: OutgoingMessage): Promise<void> {
    return this.#call((request) => ({ op: "publish", request, message }));
  }

  consume(
    member: ConsumerMember,
    deliver: (messages: DeliveredMessage[]) => void,
  ): Promise<void> {
    this.#deliverers.set(member.subscription, deliver);
    return this.#call((request) => ({ op: "subscribe", request, member }));
  }

  settle(subscription: string, settlements: Settlement[]): void {
    if (this.#settlements.size === 0) queueMicrotask(() => this.flush());
    const list = this.#settlements.get(subscription);
    if (list === undefined) this.#settlements.set(subscription, settlements);
    else list.push(...settlements);
  }

  /** Sends the settlements not yet sent. */
  flush(): void {
    const messages: PoolToBroker[] = [];
    for (const [subscription, settlements] of this.#settlements) {
      messages.push({ op: "settle", subscription, settlements });
    }
    this.#settlements.clear();
    const [only] = messages;
    if (messages.length > 1) this.#post({ op: "batch", messages });
    else if (only !== undefined) this.#post(only);
  }

  /**
   * Asks the broker, after the settlements not yet sent (so what they
   * acknowledge is no longer pending).
   */
  async backlog(subscriptions: readonly string[]): Promise<ConsumerBacklog[]> {
    this.flush();
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
    this.flush();
    for (const id of subscriptions) this.#deliverers.delete(id);
    return this.#call((request) => ({
      op: "unsubscribe",
      request,
      subscriptions,
    }));
  }

  close(): Promise<void> {
    this.flush();
    for (const waiter of this.#requests.values()) {
      waiter.reject(new Error("The pool stopped before the broker answered"));
    }
    this.#requests.clear();
    return Promise.resolve();
  }
}
