import type {
  RemoteBatch,
  RemoteInterest,
  RemoteRun,
} from "../transport/remote.ts";
import type {
  Envelope,
  ReceivedBatch,
  Run,
  Transport,
} from "../transport/transport.ts";
import type { Logger } from "../logger.ts";
import type { MessageMeta } from "../service_context.ts";
import type { ArrivalBound } from "./arrival_bound.ts";
import { BatchHold, type Hold } from "./batch_hold.ts";
import type { MetaFactory } from "./meta.ts";
import type { Requests } from "./requests.ts";
import { deliveryOf, groupKeyOf, groupNameOf, type Routes } from "./routes.ts";
import { approximateSize } from "../_util/size.ts";
import type { LocalSubscription } from "./subscription.ts";

/** What the receiving side of a pool's bus works with. */
export interface InboundParts {
  /** This pool's index. */
  index: number;
  routes: Routes;
  requests: Requests;
  metas: MetaFactory;
  transport: Transport;
  log: Logger;
  /** Counts a message no subscription could take. */
  lost(queue: string, group: string): void;
  /** The bound on messages from other processes, when the pool joins them. */
  arrivals?: ArrivalBound | undefined;
}

/** The hold of a message that goes straight into its buffer. */
const NO_HOLD: Hold = { take(): void {}, release(): void {} };

/** A group member a message was addressed to that has left since. */
interface Departed {
  /** Its number. */
  id: number;
  /** Its group's key. */
  key: string;
}

/**
 * Routes the batches other pools send to this one into its subscriptions,
 * and hands a group message whose member has left to another member.
 *
 * The sender decided where each message goes: this side looks the
 * subscriptions it names up by number (see `Address`), matching no queue
 * names. Its one decision: a group member that has just left passes its
 * message to another member.
 */
export class Inbound {
  #parts: InboundParts;

  constructor(parts: InboundParts) {
    this.#parts = parts;
  }

  /**
   * Routes a batch. Its credit goes back once every message is in its
   * subscriptions' buffers: at once, or when the last one that found a
   * buffer full gets in (see `LocalSubscription.offer`).
   */
  receive(batch: ReceivedBatch): void {
    const hold = new BatchHold(batch.ack);
    let start = 0;
    for (const run of batch.runs) {
      this.#routeRun(batch, start, run, hold);
      start = run.end;
    }
    hold.release();
  }

  /**
   * Whether a message of `bytes` from another process for `interest` on
   * `queue` can be taken: `false` (and the drop counted, once per
   * subscription it was for) when every subscription it is for is full and
   * so is the arrival bound, so that the carrier need not even decode it.
   */
  admits(interest: RemoteInterest, queue: string, bytes: number): boolean {
    const { routes } = this.#parts;
    const bound = this.#parts.arrivals!;
    if (bound.held + bytes <= bound.limit) return true;
    const targets = interest.group === undefined
      ? routes.withPattern(queue, interest.pattern)
      : routes.membersHere(queue, groupKeyOf(interest.pattern, interest.group));
    if (targets.length === 0 || targets.some((t) => t.takesNow)) return true;
    const drops = interest.group === undefined ? targets.length : 1;
    for (let i = 0; i < drops; i++) bound.drop(queue);
    return false;
  }

  /**
   * Routes messages from another process, which the carrier received for
   * `interest` (those of one read, in order): into this pool's
   * subscriptions with that pattern, or each to one of its members of that
   * group, as from pool `sender` (`nats`), or from the pool of another
   * process that a run names. The subscriptions and the meta are worked out
   * once per run.
   */
  arrive(interest: RemoteInterest, batch: RemoteBatch, sender: number): void {
    let start = 0;
    for (const run of batch.runs) {
      this.#arriveRun(interest, batch, start, run, sender);
      start = run.end;
    }
  }

  #arriveRun(
    interest: RemoteInterest,
    batch: RemoteBatch,
    start: number,
    run: RemoteRun,
    sender: number,
  ): void {
    const { routes, metas } = this.#parts;
    const { envelope, end } = run;
    const { queue } = envelope;
    if (interest.group === undefined) {
      const targets = routes.withPattern(queue, interest.pattern);
      if (targets.length === 0) return;
      const meta = run.pool === undefined
        ? metas.of(envelope, sender)
        : metas.named(envelope, run.pool);
      const last = targets.length - 1;
      for (let i = 0; i <= last; i++) {
        this.#offer(
          targets[i]!,
          batch,
          start,
          end,
          meta,
          i === last ? "take-originals" : "copy",
          queue,
        );
      }
      return;
    }
    const key = groupKeyOf(interest.pattern, interest.group);
    let meta: MessageMeta | undefined;
    for (let j = start; j < end; j++) {
      const member = routes.pickHere(queue, key);
      if (member === undefined) {
        this.#parts.lost(queue, interest.group);
        continue;
      }
      meta ??= run.pool === undefined
        ? metas.of(envelope, sender)
        : metas.named(envelope, run.pool);
      // One that waits behind the buffer does not keep the batch's other
      // messages alive (they went to other members).
      if (member.room > 0) {
        member.offer(batch.data, j, j + 1, meta, NO_HOLD, "take-originals");
      } else {
        this.#offer(
          member,
          { data: [batch.data[j]], sizes: [batch.sizes[j]!], runs: [] },
          0,
          1,
          meta,
          "take-originals",
          queue,
        );
      }
    }
  }

  /**
   * Offers `batch.data[start..end)` to `target`: what its buffer has no
   * room for waits behind it within the pool's arrival bound; past the
   * bound, the rest is dropped and counted.
   */
  #offer(
    target: LocalSubscription,
    batch: RemoteBatch,
    start: number,
    end: number,
    meta: MessageMeta,
    ownership: "copy" | "take-originals",
    queue: string,
  ): void {
    const room = target.room;
    if (room >= end - start) {
      target.offer(batch.data, start, end, meta, NO_HOLD, ownership);
      return;
    }
    const bound = this.#parts.arrivals!;
    const { sizes } = batch;
    const free = bound.limit - bound.held;
    let keep = start + room;
    let bytes = 0;
    while (keep < end && bytes + sizes[keep]! <= free) bytes += sizes[keep++]!;
    if (keep > start) {
      const hold = keep > start + room ? bound.hold(bytes)! : NO_HOLD;
      target.offer(batch.data, start, keep, meta, hold, ownership);
    }
    for (let j = keep; j < end; j++) bound.drop(queue);
  }

  /**
   * Gives a group message whose member `departed` left to another member of
   * the group `key`, in this pool or another.
   */
  reassign(
    envelope: Envelope,
    data: unknown,
    key: string,
    departed: number,
    publisher: number,
  ): void {
    const { routes, metas, transport, log } = this.#parts;
    const group = routes.route(envelope.queue).groups.find((g) =>
      g.key === key
    );
    if (
      group === undefined || group.members.every((m) => m.id === departed)
    ) {
      const name = groupNameOf(key);
      log.warn(
        `No member of group "${name}" is left for a message on "${envelope.queue}"; it is not delivered`,
      );
      this.#parts.lost(envelope.queue, name);
      return;
    }
    const member = routes.pick(group, departed);
    if (member.local !== undefined) {
      member.local.push(data, metas.of(envelope, publisher));
      return;
    }
    const byPool: number[][] = [];
    byPool[member.pool] = [member.id];
    const { pools, address } = deliveryOf(byPool, publisher);
    transport.send(pools, {
      ...envelope,
      data,
      to: address,
      size: approximateSize(data),
    });
  }

  /** Routes one run: its targets and its meta are worked out once. */
  #routeRun(
    batch: ReceivedBatch,
    start: number,
    run: Run,
    hold: BatchHold,
  ): void {
    const { routes, requests, metas, index } = this.#parts;
    const { data, sender } = batch;
    const { envelope, end } = run;
    if (envelope.reply !== undefined) {
      for (let j = start; j < end; j++) {
        requests.resolve(envelope.reply, data[j]);
      }
      return;
    }
    const numbers = envelope.to?.subscriptions[index];
    if (numbers === undefined) return;
    const targets: LocalSubscription[] = [];
    let departed: Departed[] | undefined;
    for (let i = 0; i < numbers.length; i++) {
      const id = numbers[i]!;
      const target = routes.subscription(id);
      if (target !== undefined) {
        targets.push(target);
        continue;
      }
      // Gone since the sender decided: a group member's message goes to
      // another member; one outside a group unsubscribed, as if before.
      const key = routes.departedGroup(id);
      if (key !== undefined) (departed ??= []).push({ id, key });
    }
    if (targets.length > 0) {
      const meta: MessageMeta = metas.of(envelope, sender);
      // The last target may take the originals when no departed member's
      // message is handed on (`reassign` sends the original).
      const owner = departed === undefined ? targets.length - 1 : -1;
      for (let i = 0; i < targets.length; i++) {
        targets[i]!.offer(
          data,
          start,
          end,
          meta,
          hold,
          i === owner ? "take-originals" : "copy",
        );
      }
    }
    if (departed === undefined) return;
    const publisher = envelope.to?.publisher ?? sender;
    for (let j = start; j < end; j++) {
      for (const { id, key } of departed) {
        this.reassign(envelope, data[j], key, id, publisher);
      }
    }
  }
}
