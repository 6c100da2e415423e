import {
  DataCloneError,
  NoRespondersError,
  QueueNameError,
  StateError,
} from "../errors.ts";
import type { Scheduler } from "../pool/scheduler.ts";
import type { SubscriptionEntry } from "../pool/protocol.ts";
import type {
  Logger,
  MessageHandler,
  MessageMeta,
  MessageOrigin,
  PublishOptions,
  RequestOptions,
  SubscribeOptions,
  Subscription,
  Topology,
} from "../types.ts";
import { validateQueueName } from "./queue_name.ts";
import { groupKeyOf, Routes } from "./routes.ts";
import { snapshot } from "./snapshot.ts";
import {
  BatchHold,
  type Delivery,
  LocalSubscription,
  type SubscriptionHost,
} from "./subscription.ts";
import type {
  Envelope,
  ReceivedBatch,
  Run,
  Transport,
  WireMessage,
} from "./transport.ts";
import { Outbox } from "./outbox.ts";
import { isReplyQueue, replyAddress, Requests } from "./requests.ts";

/** What the bus asks of the primary. */
export interface PrimaryLink {
  /** Adds a subscription to the table; resolves once every pool has it. */
  subscribe(entry: SubscriptionEntry): Promise<void>;
  /** Removes subscriptions from the table; resolves once every pool knows. */
  unsubscribe(ids: string[]): Promise<void>;
  /** Collects every pool's part of the topology. */
  topology(): Promise<Topology>;
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
}

/**
 * A pool's end of the publish/subscribe bus. Delivery inside the pool goes
 * straight to the subscriptions' buffers; delivery to other pools is
 * coalesced per turn into batches on the transport.
 */
export class PoolBus implements SubscriptionHost {
  readonly scheduler: Scheduler;
  readonly pool: string;
  readonly index: number;
  #options: BusOptions;
  #log: Logger;
  #routes: Routes;
  #nextId = 0;
  #requests: Requests;
  #outbox: Outbox;
  #closed = false;

  constructor(options: BusOptions) {
    this.#options = options;
    this.#log = options.log;
    this.scheduler = options.scheduler;
    this.pool = options.pool;
    this.index = options.index;
    this.#requests = new Requests(options.index, options.incarnation);
    this.#routes = new Routes(options.index);
    this.#outbox = new Outbox(options.transport, options.scheduler);
    options.transport.onReceive((batch) => this.#receive(batch));
  }

  // ---- publish ---------------------------------------------------------

  /** Publishes on behalf of `service`; see `ServiceContext.publish`. */
  async publish(
    service: string,
    queue: string,
    data: unknown,
    options?: PublishOptions,
  ): Promise<void> {
    validateQueueName(queue, "publish");
    if (this.#closed) {
      throw new StateError(
        `Cannot publish on "${queue}": pool "${this.pool}" has stopped`,
      );
    }
    let copy: unknown;
    try {
      copy = snapshot(data);
    } catch (error) {
      throw new DataCloneError(queue, error);
    }
    const message: WireMessage = {
      q: queue,
      d: copy,
      f: service,
      t: Date.now(),
    };
    if (options !== undefined) {
      // Absent keys, not `undefined` ones: every key costs on the channel.
      if (options.replyTo !== undefined) {
        message.r = validateQueueName(options.replyTo, "publish");
      }
      if (options.headers !== undefined) {
        message.h = checkHeaders(queue, options.headers);
      }
    }
    if (isReplyQueue(queue)) {
      const address = replyAddress(queue);
      if (address.index === this.index) this.#requests.resolve(address, copy);
      else this.#outbox.push(message);
    } else {
      const route = this.#routes.route(queue);
      let targets = route.local;
      let groupTargets: string[] | undefined;
      if (route.groups.length > 0) {
        const withMembers = targets.slice();
        for (const group of route.groups) {
          const member = this.#routes.pick(group);
          if (member.local !== undefined) withMembers.push(member.local);
          else (groupTargets ??= []).push(member.id, group.key);
        }
        targets = withMembers;
      }
      const remote = route.remote || groupTargets !== undefined;
      while (firstFull(targets) !== undefined) {
        await Promise.all(targets.map((target) => target.whenSpace()));
      }
      if (targets.length > 0) {
        this.#deliver(targets, copy, this.#meta(message, this.index), !remote);
      }
      if (remote) {
        if (groupTargets !== undefined) message.g = groupTargets;
        if (!route.remote) message.o = 1;
        this.#outbox.push(message);
      }
    }
    if (this.#outbox.full) {
      await this.#outbox.whenSpace();
    } else if (this.scheduler.tick()) {
      await this.scheduler.yield();
    }
  }

  /**
   * Hands a message's snapshot to local subscriptions: each gets its own
   * copy; the last may take `data` itself when nothing else will read it.
   */
  #deliver(
    targets: readonly LocalSubscription[],
    data: unknown,
    meta: MessageMeta,
    mayTakeOriginal: boolean,
  ): void {
    const last = targets.length - 1;
    for (let i = 0; i <= last; i++) {
      targets[i]!.push(
        i === last && mayTakeOriginal ? data : snapshot(data),
        meta,
      );
    }
  }

  /** `meta.from` objects, frozen and shared: pool index → service → origin. */
  #origins: Array<Map<string, MessageOrigin>> = [];

  /**
   * The metadata of a message: one frozen object shared by every
   * subscription that receives it, and by the messages of a run, which
   * share every field (`from` and `headers` frozen too).
   */
  #meta(message: Envelope, sender: number): MessageMeta {
    const origin = message.p ?? sender;
    const services = this.#origins[origin] ??= new Map();
    let from = services.get(message.f);
    if (from === undefined) {
      from = Object.freeze({
        pool: this.#options.pools[origin] ?? String(origin),
        service: message.f,
      });
      services.set(message.f, from);
    }
    const meta: MessageMeta = {
      queue: message.q,
      from,
      publishedAt: message.t,
    };
    if (message.r !== undefined) meta.replyTo = message.r;
    if (message.h !== undefined) meta.headers = Object.freeze(message.h);
    return Object.freeze(meta);
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
    const id = `${this.index}.${this.#options.incarnation}.${this.#nextId++}`;
    const subscription = new LocalSubscription(
      this,
      id,
      service,
      queue,
      handler as MessageHandler<never>,
      { group, concurrency, capacity },
    );
    this.#routes.add(subscription);
    await this.#options.primary.subscribe({
      id,
      poolIndex: this.index,
      pool: this.pool,
      service,
      queue,
      group,
    });
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
    return this.#remove(found);
  }

  /** Removes every subscription of `service` (when it stops or restarts). */
  unsubscribeService(service: string): Promise<void> {
    return this.#remove(
      [...this.#routes.subscriptions()].filter((s) => s.service === service),
    );
  }

  async #remove(subscriptions: LocalSubscription[]): Promise<void> {
    const live = subscriptions.filter((s) => !s.closed);
    if (live.length === 0) return;
    for (const subscription of live) {
      this.#routes.remove(subscription);
    }
    for (const subscription of live) {
      const rest = subscription.close();
      if (subscription.group !== undefined) {
        const key = groupKeyOf(subscription.queue, subscription.group);
        for (const item of rest) {
          this.#reassign(item, key, subscription.id, this.index);
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

  // ---- the table of other pools' subscriptions -------------------------

  /** Applies a change of the table the primary keeps. */
  applyTable(add: SubscriptionEntry[], remove: string[]): void {
    this.#routes.applyTable(add, remove);
  }

  /** Gives a group message whose member left to another member. */
  #reassign(
    item: Delivery | WireMessage,
    key: string,
    departed: string,
    sender: number,
  ): void {
    const message: WireMessage = "q" in item ? item : {
      q: item.meta.queue,
      d: item.data,
      f: item.meta.from.service,
      t: item.meta.publishedAt,
      r: item.meta.replyTo,
      h: item.meta.headers,
      p: this.#options.pools.indexOf(item.meta.from.pool),
    };
    const origin = message.p ?? sender;
    const group = this.#routes.route(message.q).groups.find((g) =>
      g.key === key
    );
    const candidates = group?.members.filter((m) => m.id !== departed) ?? [];
    if (group === undefined || candidates.length === 0) {
      this.#log.warn(
        `No member of group "${
          key.split("\u0000")[1]
        }" is left for a message on "${message.q}"; it is not delivered`,
      );
      return;
    }
    const member = this.#routes.pick(group, departed);
    if (member.local !== undefined) {
      member.local.push(message.d, this.#meta(message, origin));
    } else {
      this.#outbox.push({ ...message, g: [member.id, key], o: 1, p: origin });
    }
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
    const timeout = options.timeout ?? 5000;
    if (!Number.isFinite(timeout) || timeout <= 0) {
      throw new RangeError(
        `Cannot request on "${queue}": timeout must be a number > 0, got ${timeout}`,
      );
    }
    const route = this.#routes.route(queue);
    if (
      !route.remote && route.local.length === 0 && route.groups.length === 0
    ) {
      throw new NoRespondersError(queue);
    }
    const { replyTo, reply, cancel } = this.#requests.open(queue, timeout);
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

  // ---- to and from other pools -----------------------------------------

  /** Resolves once everything published so far has left the pool. */
  flush(): Promise<void> {
    return this.#outbox.flush();
  }

  /**
   * Routes a batch from another pool. Its credit goes back once every
   * message is in its subscriptions' buffers: at once, or when the last one
   * that found a buffer full gets in (see `LocalSubscription.offer`).
   */
  #receive(batch: ReceivedBatch): void {
    const hold = new BatchHold(batch.ack);
    let start = 0;
    for (const run of batch.runs) {
      this.#routeRun(batch, start, run, hold);
      start = run.end;
    }
    hold.release();
  }

  /** Routes one run: its targets and its meta are worked out once. */
  #routeRun(
    batch: ReceivedBatch,
    start: number,
    run: Run,
    hold: BatchHold,
  ): void {
    const { data, sender } = batch;
    const { envelope, end } = run;
    if (isReplyQueue(envelope.q)) {
      const address = replyAddress(envelope.q);
      for (let j = start; j < end; j++) {
        this.#requests.resolve(address, data[j]);
      }
      return;
    }
    let targets = envelope.o === 1
      ? NONE
      : this.#routes.route(envelope.q).local;
    const departed: Array<[string, string]> = [];
    const groups = envelope.g;
    if (groups !== undefined) {
      const withMembers = targets.slice();
      targets = withMembers;
      for (let i = 0; i < groups.length; i += 2) {
        const id = groups[i]!;
        const target = this.#routes.subscription(id);
        if (target !== undefined) withMembers.push(target);
        else if (Number(id.split(".")[0]) === this.index) {
          departed.push([id, groups[i + 1]!]);
        }
      }
    }
    if (targets.length > 0) {
      const meta = this.#meta(envelope, sender);
      // The last target may take the originals when no departed member's
      // message is handed on (`#reassign` sends the original).
      const last = departed.length === 0 ? targets.length - 1 : -1;
      for (let i = 0; i < targets.length; i++) {
        targets[i]!.offer(data, start, end, meta, hold, i !== last);
      }
    }
    for (let j = start; j < end; j++) {
      for (const [id, key] of departed) {
        this.#reassign({ ...envelope, d: data[j] }, key, id, sender);
      }
    }
  }

  // ---- supervision and shutdown ----------------------------------------

  /** Logs a handler that threw; delivery goes on. */
  handlerFailed(
    subscription: LocalSubscription,
    error: unknown,
    meta: MessageMeta,
  ): void {
    const detail = error instanceof Error
      ? error.stack ?? error.message
      : String(error);
    this.#log.error(
      `Handler of ${subscription.service} on "${subscription.queue}" failed for a message on "${meta.queue}": ${detail}`,
    );
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

  /** This pool's part of the topology. */
  topology(): Topology {
    const topology: Topology = {};
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
    return topology;
  }

  /** Every pool's subscriptions; see `ServiceContext.topology`. */
  globalTopology(): Promise<Topology> {
    return this.#options.primary.topology();
  }

  /** Whether anything is waiting to be sent, received, routed or handled. */
  busy(): boolean {
    if (
      this.#outbox.size > 0 || this.#options.transport.pendingInbound() > 0
    ) return true;
    for (const subscription of this.#routes.subscriptions()) {
      if (subscription.size > 0 || subscription.active > 0) return true;
    }
    return false;
  }

  /**
   * Waits until every message sent to this pool so far (counted by the
   * transport even while still in flight) has been handled.
   */
  async drain(): Promise<void> {
    for (;;) {
      await this.flush();
      const subscriptions = [...this.#routes.subscriptions()];
      await Promise.all(subscriptions.map((s) => s.whenIdle()));
      const inbound = this.#options.transport.pendingInbound();
      if (
        inbound === 0 && this.#outbox.size === 0 &&
        subscriptions.every((s) => s.size === 0)
      ) {
        return;
      }
      if (inbound > 0 && subscriptions.every((s) => s.overflowed === 0)) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      } else {
        await this.scheduler.yield();
      }
    }
  }

  /** Stops the bus: pending requests fail, the transport closes. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const subscription of this.#routes.subscriptions()) {
      subscription.close();
    }
    this.#routes.clear();
    this.#requests.rejectAll((id) =>
      new StateError(
        `Request ${id} of pool "${this.pool}" ended: the pool stopped`,
      )
    );
    this.#outbox.close();
    this.#options.transport.close();
  }
}

const NONE: readonly LocalSubscription[] = Object.freeze([]);

function firstFull(
  targets: readonly LocalSubscription[],
): LocalSubscription | undefined {
  for (let i = 0; i < targets.length; i++) {
    if (targets[i]!.full) return targets[i];
  }
  return undefined;
}

function positiveInteger(queue: string, name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot subscribe to "${queue}": ${name} must be an integer >= 1, got ${value}`,
    );
  }
  return value;
}

/** Header objects already checked and frozen, shared as they are. */
const checkedHeaders = new WeakSet<object>();

/** A frozen, checked copy of `headers` (the object itself when it was checked before). */
function checkHeaders(
  queue: string,
  headers: Record<string, string>,
): Readonly<Record<string, string>> {
  if (checkedHeaders.has(headers)) return headers;
  const copy: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (typeof value !== "string") {
      throw new TypeError(
        `Cannot publish on "${queue}": header "${key}" must be a string`,
      );
    }
    copy[key] = value;
  }
  Object.freeze(copy);
  checkedHeaders.add(copy);
  if (Object.isFrozen(headers)) checkedHeaders.add(headers);
  return copy;
}
