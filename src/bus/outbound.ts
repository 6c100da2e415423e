import { DataCloneError, NatsUnavailableError } from "../errors.ts";
import type { Scheduler } from "../scheduler.ts";
import type { Transport, WireMessage } from "../transport/transport.ts";
import type { MessageMeta, PublishOptions } from "../service_context.ts";
import type {
  EncodedMessage,
  Handled,
  RemoteCarrier,
} from "../transport/remote.ts";
import { checkHeaders } from "./headers.ts";
import type { MetaFactory } from "./meta.ts";
import { validateQueueName } from "../queue_name.ts";
import type { Requests } from "./requests.ts";
import {
  isRemoteReply,
  isReplyQueue,
  replyAddress,
} from "../transport/reply_queue.ts";
import {
  type Delivery,
  deliveryOf,
  type Member,
  type Route,
  type Routes,
} from "./routes.ts";
import { approximateSize } from "../_util/size.ts";
import { snapshot } from "../_util/snapshot.ts";
import { type MessageTracing, publishTarget } from "./tracing.ts";
import type { LocalSubscription } from "./subscription.ts";

/** What every publish that need not wait returns. */
const RESOLVED: Promise<void> = Promise.resolve();

/** What the sending side of a pool's bus works with. */
export interface OutboundParts {
  /** This pool's index. */
  index: number;
  routes: Routes;
  requests: Requests;
  metas: MetaFactory;
  transport: Transport;
  scheduler: Scheduler;
  /** The pool's carrier to other processes, when the program joins them. */
  remote?: RemoteCarrier | undefined;
  /** The pool's spans, when OpenTelemetry is on. */
  tracing?: MessageTracing | undefined;
}

/**
 * The sending side of a pool's bus: it decides where each message goes,
 * once. This pool's subscriptions get it straight into their buffers; for
 * the other pools it picks the group members and hands the message to the
 * transport, addressed to their subscriptions by number (see `Address`).
 */
export class Outbound {
  #parts: OutboundParts;

  constructor(parts: OutboundParts) {
    this.#parts = parts;
  }

  /**
   * Publishes on behalf of `service` (see `ServiceContext.publish`); the
   * queue's name is valid.
   */
  publish(
    service: string,
    queue: string,
    data: unknown,
    options?: PublishOptions,
  ): Promise<void> {
    const message: WireMessage = {
      queue,
      data,
      service,
      publishedAt: Date.now(),
      size: 0,
      // Set below for other pools; present from the start, so that setting
      // it changes no object's shape.
      to: undefined,
    };
    if (options !== undefined) {
      try {
        if (options.replyTo !== undefined) {
          message.replyTo = validateQueueName(options.replyTo, "publish");
        }
        if (options.headers !== undefined) {
          message.headers = checkHeaders(queue, options.headers);
        }
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const tracing = this.#parts.tracing;
    if (tracing === undefined) return this.#sendNow(message);
    const target = publishTarget(
      queue,
      isReplyQueue(queue) ? [] : this.#parts.routes.route(queue).patterns,
    );
    return tracing.publish(message, target, () => this.#sendNow(message));
  }

  /**
   * Routes `message` and sends it where it goes, synchronously. The promise
   * is a shared, resolved one unless the publisher must wait (a subscription
   * or a link is full, NATS has no room, or the slice is used up): a publish
   * that need not wait allocates no promise and runs no async function.
   */
  #sendNow(message: WireMessage): Promise<void> {
    let wait: Promise<void> | undefined;
    try {
      wait = this.#send(message);
    } catch (error) {
      return Promise.reject(error);
    }
    if (wait !== undefined) return wait;
    const scheduler = this.#parts.scheduler;
    return scheduler.tick() ? scheduler.yield() : RESOLVED;
  }

  /**
   * Routes `message` and sends it where it goes; returns what the publisher
   * waits for, if anything (see {@linkcode Outbound.#sendNow}).
   */
  #send(message: WireMessage): Promise<void> | undefined {
    const { queue, data, service } = message;
    const remote = this.#parts.remote;
    if (isReplyQueue(queue)) {
      this.#parts.routes.countReply(service);
      if (isRemoteReply(queue)) {
        // A reply to a request of another process, over NATS.
        if (remote === undefined) return undefined;
        const taken = remote.send(remote.encode(message), "none");
        return taken === undefined
          ? undefined
          : this.#waitForRemote(queue, taken);
      }
      // The one place a reply queue is read: the receiver gets the record.
      const address = replyAddress(queue);
      if (address.index === this.#parts.index) {
        this.#parts.requests.resolve(address, copyOf(queue, data));
        return undefined;
      }
      message.reply = address;
      return sendVia(this.#parts.transport, [address.index], message);
    }
    const route = this.#parts.routes.route(queue);
    // Encoded (and refused when too large) before anything is delivered.
    const encoded = remote === undefined
      ? undefined
      : route.elsewhere
      ? remote.encode(message)
      : checkSize(remote, message);
    this.#parts.routes.countPublish(route, service);
    let targets = route.local;
    let picks: Member[] | undefined;
    // A group with members in other processes too is served by the server
    // (a NATS queue group), which picks each message's member among all.
    const pickHere = route.groups.length > 0 && !route.groupsElsewhere;
    if (pickHere) {
      const withMembers = targets.slice();
      for (const group of route.groups) {
        const member = this.#parts.routes.pick(group);
        if (member.local !== undefined) withMembers.push(member.local);
        else (picks ??= []).push(member);
      }
      targets = withMembers;
    }
    const delivery = picks === undefined
      ? route.plain
      : deliveryWith(route, picks);
    // Marked when this process got it already: its pools then drop the copy
    // the server sends them.
    const handled: Handled = pickHere
      ? "all"
      : route.plain.pools.length > 0
      ? "plain"
      : "none";
    if (targets.length > 0) {
      // The snapshot that makes placement invisible, for this pool's
      // subscriptions; the transport takes its own copy for other pools (of
      // the snapshot: getters run once), NATS encodes the data itself, at
      // once.
      message.data = copyOf(queue, data);
      if (firstFull(targets) !== undefined) {
        return this.#dispatchWhenSpace(
          message,
          targets,
          delivery,
          encoded,
          handled,
        );
      }
    }
    return this.#dispatch(message, targets, delivery, encoded, handled);
  }

  /** Waits until every local target has room, then dispatches (in order). */
  async #dispatchWhenSpace(
    message: WireMessage,
    targets: readonly LocalSubscription[],
    delivery: Delivery,
    encoded: EncodedMessage | undefined,
    handled: Handled,
  ): Promise<void> {
    while (firstFull(targets) !== undefined) {
      await Promise.all(targets.map((target) => target.whenSpace()));
    }
    await this.#dispatch(message, targets, delivery, encoded, handled);
  }

  /**
   * Hands a routed message to this pool's subscriptions (`targets`), to the
   * other pools (`delivery`) and to NATS (`encoded`, when it goes there);
   * returns what the publisher waits for, if anything.
   */
  #dispatch(
    message: WireMessage,
    targets: readonly LocalSubscription[],
    delivery: Delivery,
    encoded: EncodedMessage | undefined,
    handled: Handled,
  ): Promise<void> | undefined {
    if (targets.length > 0) {
      // The transport and NATS copy the data before any handler runs:
      // the last subscription may take the snapshot itself.
      this.#deliver(
        targets,
        message.data,
        this.#parts.metas.of(message, this.#parts.index),
      );
    }
    let wait: Promise<void> | undefined;
    if (delivery.pools.length > 0) {
      message.to = delivery.address;
      wait = sendVia(this.#parts.transport, delivery.pools, message);
    }
    if (encoded === undefined) return wait;
    const taken = this.#parts.remote!.send(encoded, handled);
    if (taken === undefined) return wait;
    const remoteWait = this.#waitForRemote(message.queue, taken);
    return wait === undefined ? remoteWait : remoteWait.then(() => wait);
  }

  /**
   * Waits until the pool's NATS end has room again; rejects with a
   * `NatsUnavailableError` after the publish timeout (the message itself is
   * kept and goes out, in order, once NATS takes it).
   */
  async #waitForRemote(
    queue: string,
    taken: Promise<void>,
  ): Promise<void> {
    const timeout = this.#parts.remote!.publishTimeout;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), timeout);
    });
    try {
      if (await Promise.race([taken, expired]) === "expired") {
        throw new NatsUnavailableError(queue, timeout);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Hands a message's snapshot to local subscriptions: each gets its own
   * copy but the last, which takes `data` itself (the transports and NATS
   * copy it before `publish` returns, so nothing else reads it).
   */
  #deliver(
    targets: readonly LocalSubscription[],
    data: unknown,
    meta: MessageMeta,
  ): void {
    const last = targets.length - 1;
    for (let i = 0; i < targets.length; i++) {
      targets[i]!.push(i === last ? data : snapshot(data), meta);
    }
  }
}

/**
 * The delivery of a message to the route's subscriptions outside groups in
 * other pools and to the group members `picks` (in other pools): built once
 * per member when one is picked (the common case: one group), so messages to
 * the same member share their address and travel as one run.
 */
function deliveryWith(route: Route, picks: readonly Member[]): Delivery {
  if (picks.length === 1) {
    const { id } = picks[0]!;
    let delivery = route.withMember.get(id);
    if (delivery === undefined) {
      delivery = deliveryOf(withMembers(route, picks));
      route.withMember.set(id, delivery);
    }
    return delivery;
  }
  return deliveryOf(withMembers(route, picks));
}

/** `route.plain`'s numbers per pool, plus those of `picks`. */
function withMembers(
  route: Route,
  picks: readonly Member[],
): Array<readonly number[] | undefined> {
  const byPool: Array<readonly number[] | undefined> = [
    ...route.plain.address.subscriptions,
  ];
  for (const { id, pool } of picks) byPool[pool] = [...byPool[pool] ?? [], id];
  return byPool;
}

/**
 * Refuses a message that stays in this process but that the carrier between
 * processes could not carry, so where its subscribers are stays invisible:
 * measured exactly (encoded) when its estimate is near the limit. Returns
 * `undefined` (nothing to send).
 */
function checkSize(remote: RemoteCarrier, message: WireMessage): undefined {
  const limit = remote.maxBytes;
  if (limit !== undefined && approximateSize(message.data) * 2 >= limit) {
    remote.encode(message);
  }
  return undefined;
}

function firstFull(
  targets: readonly LocalSubscription[],
): LocalSubscription | undefined {
  for (let i = 0; i < targets.length; i++) {
    if (targets[i]!.full) return targets[i];
  }
  return undefined;
}

/** `transport.send(to, message)`; a `DataCloneError` names the queue. */
function sendVia(
  transport: Transport,
  to: readonly number[],
  message: WireMessage,
): Promise<void> | undefined {
  try {
    return transport.send(to, message);
  } catch (error) {
    throw new DataCloneError(message.queue, error);
  }
}

/** The snapshot of `data` for subscribers, or a `DataCloneError` naming `queue`. */
function copyOf(queue: string, data: unknown): unknown {
  try {
    return snapshot(data);
  } catch (error) {
    throw new DataCloneError(queue, error);
  }
}
