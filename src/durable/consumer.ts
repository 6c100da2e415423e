/**
 * A durable consumer on the main thread: its position in one stream, what
 * it has delivered and not yet settled, and the members it delivers to.
 * With a group, every member of (pattern, group); without, the subscriptions
 * of one service on one pattern. Each message goes to one member; at most
 * `capacity` unsettled per member.
 *
 * @module
 */
import { matchesQueue } from "../queue_name.ts";
import type { AckFile, AckState } from "./ack_file.ts";
import type { StoredMessage } from "./message.ts";
import type {
  ConsumerMember,
  DeliveredMessage,
  Settlement,
} from "./protocol.ts";

/** What a consumer needs of its stream. */
export interface ConsumerStream {
  readonly pattern: string;
  readonly firstSeq: number;
  readonly syncedSeq: number;
  read(from: number, max: number): Promise<StoredMessage[]>;
  /** The consumer's floor moved: segments may be removed. */
  advanced(): void;
  /** A read or a save failed: the consumer delivers no more. */
  failed(error: unknown): void;
}

/** A consumer's counters, for the metrics and the run report. */
export interface ConsumerCounts {
  delivered: number;
  acknowledged: number;
  redelivered: number;
  deadLettered: number;
}

interface Member {
  info: ConsumerMember;
  unsettled: Set<number>;
}

/** Sends messages to a pool's subscription. */
export type Deliver = (
  member: ConsumerMember,
  messages: DeliveredMessage[],
) => void;

/** One durable consumer. */
export class Consumer {
  /** The file name's stem: `group+<pattern>+<group>` or `service+<pattern>+<service>` (URI-encoded parts). */
  readonly name: string;
  readonly filter: string;
  readonly counts: ConsumerCounts = {
    delivered: 0,
    acknowledged: 0,
    redelivered: 0,
    deadLettered: 0,
  };
  #stream: ConsumerStream;
  #file: AckFile;
  #deliver: Deliver;
  /** Everything before it is settled. */
  #floor: number;
  /** Settled above the floor. */
  #acked = new Set<number>();
  /** The next message never yet read for delivery. */
  #next: number;
  /** Deliveries so far of unsettled messages. */
  #attempts = new Map<number, number>();
  /** Messages due again, read back when a member has room. */
  #due: number[] = [];
  #timers = new Map<number, ReturnType<typeof setTimeout>>();
  #members: Member[] = [];
  #turn = 0;
  #pumping = false;
  #again = false;
  #stopped = false;
  #saving: Promise<void> | undefined;
  #dirty = false;
  #settledWaiters: Array<() => void> = [];

  constructor(
    name: string,
    filter: string,
    stream: ConsumerStream,
    file: AckFile,
    deliver: Deliver,
  ) {
    this.name = name;
    this.filter = filter;
    this.#stream = stream;
    this.#file = file;
    this.#deliver = deliver;
    const loaded: AckState = file.loaded ??
      { floor: stream.firstSeq, acked: [] };
    this.#floor = Math.max(loaded.floor, stream.firstSeq);
    for (const seq of loaded.acked) {
      if (seq >= this.#floor) this.#acked.add(seq);
    }
    this.#advanceFloor();
    this.#next = this.#floor;
  }

  /** Everything before it is settled. */
  get floor(): number {
    return this.#floor;
  }

  /** Messages delivered and not yet settled. */
  get unsettled(): number {
    let count = 0;
    for (const member of this.#members) count += member.unsettled.size;
    return count;
  }

  /**
   * Stored messages not yet settled (for a consumer of a narrower pattern
   * than its stream, those of other queues it has not reached yet count).
   */
  get pending(): number {
    return Math.max(0, this.#stream.syncedSeq - this.#floor - this.#acked.size);
  }

  /** Whether `id` is one of its members. */
  has(subscription: string): boolean {
    return this.#members.some((m) => m.info.subscription === subscription);
  }

  /** Adds a member and delivers to it. */
  join(info: ConsumerMember): void {
    this.#members.push({ info, unsettled: new Set() });
    this.pump();
  }

  /**
   * Removes members (unsubscribed, or their pool died): what they held is
   * due again at once. Returns whether any was a member.
   */
  leave(match: (info: ConsumerMember) => boolean): boolean {
    const leaving = this.#members.filter((m) => match(m.info));
    if (leaving.length === 0) return false;
    this.#members = this.#members.filter((m) => !match(m.info));
    for (const member of leaving) {
      for (const seq of member.unsettled) this.#makeDue(seq);
    }
    this.#checkSettled();
    this.pump();
    return true;
  }

  /** Applies a member's settlements. */
  settle(subscription: string, settlements: Settlement[]): void {
    const member = this.#members.find((m) =>
      m.info.subscription === subscription
    );
    for (const settlement of settlements) {
      const { seq } = settlement;
      if (member === undefined || !member.unsettled.delete(seq)) continue;
      if (settlement.outcome === "retry") {
        if (this.#stopped) continue;
        this.#timers.set(
          seq,
          setTimeout(() => {
            this.#timers.delete(seq);
            this.#makeDue(seq);
            this.pump();
          }, settlement.delay),
        );
        continue;
      }
      if (settlement.outcome === "dead-lettered") this.counts.deadLettered++;
      else this.counts.acknowledged++;
      this.#acked.add(seq);
      this.#attempts.delete(seq);
    }
    this.#advanceFloor();
    this.#save();
    this.#checkSettled();
    this.pump();
  }

  #makeDue(seq: number): void {
    let i = this.#due.length;
    while (i > 0 && this.#due[i - 1]! > seq) i--;
    this.#due.splice(i, 0, seq);
  }

  #advanceFloor(): void {
    const before = this.#floor;
    while (this.#acked.delete(this.#floor)) this.#floor++;
    if (this.#floor !== before) this.#stream.advanced();
  }

  /** Delivers while a member has room and messages wait. */
  pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    void this.#pump().catch((error) => {
      this.stop();
      this.#stream.failed(error);
    }).finally(() => {
      this.#pumping = false;
      if (this.#again) {
        this.#again = false;
        this.pump();
      }
    });
  }

  async #pump(): Promise<void> {
    while (!this.#stopped) {
      const room = this.#members.reduce(
        (sum, m) => sum + m.info.capacity - m.unsettled.size,
        0,
      );
      if (room <= 0) return;
      const messages = await this.#take(room);
      if (messages.length === 0) return;
      this.#assign(messages);
    }
  }

  /** Up to `max` messages to deliver: those due again first, then new ones. */
  async #take(max: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    while (this.#due.length > 0 && out.length < max) {
      const seq = this.#due.shift()!;
      const [message] = await this.#stream.read(seq, 1);
      if (message?.seq === seq) {
        this.counts.redelivered++;
        out.push(message);
      }
    }
    while (out.length < max && this.#next < this.#stream.syncedSeq) {
      const read = await this.#stream.read(this.#next, max - out.length);
      if (read.length === 0) {
        this.#next = this.#stream.syncedSeq;
        break;
      }
      this.#next = read.at(-1)!.seq + 1;
      let skipped = false;
      for (const message of read) {
        if (this.#acked.has(message.seq)) continue;
        if (matchesQueue(this.filter, message.queue)) out.push(message);
        else {
          this.#acked.add(message.seq);
          skipped = true;
        }
      }
      if (skipped) {
        this.#advanceFloor();
        this.#save();
      }
    }
    return out;
  }

  /** Hands `messages` out round robin to members with room. */
  #assign(messages: StoredMessage[]): void {
    const batches = new Map<Member, DeliveredMessage[]>();
    let i = 0;
    for (let tries = 0; i < messages.length && tries < this.#members.length;) {
      const member = this.#members[this.#turn++ % this.#members.length]!;
      if (member.unsettled.size >= member.info.capacity) {
        tries++;
        continue;
      }
      tries = 0;
      const message = messages[i++]!;
      const attempt = (this.#attempts.get(message.seq) ?? 0) + 1;
      this.#attempts.set(message.seq, attempt);
      member.unsettled.add(message.seq);
      let batch = batches.get(member);
      if (batch === undefined) batches.set(member, batch = []);
      batch.push({
        stream: this.#stream.pattern,
        seq: message.seq,
        attempt,
        queue: message.queue,
        pool: message.pool,
        service: message.service,
        publishedAt: message.publishedAt,
        headers: message.headers,
        replyTo: message.replyTo,
        data: message.data,
      });
    }
    // Members left while reading: what is left is due again.
    for (; i < messages.length; i++) this.#makeDue(messages[i]!.seq);
    for (const [member, batch] of batches) {
      this.counts.delivered += batch.length;
      this.#deliver(member.info, batch);
    }
  }

  /** Saves the position; saves asked for while one runs make one more. */
  #save(): void {
    if (this.#saving !== undefined) {
      this.#dirty = true;
      return;
    }
    const state = { floor: this.#floor, acked: [...this.#acked] };
    this.#saving = this.#file.save(state).catch((error) => {
      this.stop();
      this.#stream.failed(error);
    }).finally(() => {
      this.#saving = undefined;
      if (this.#dirty) {
        this.#dirty = false;
        this.#save();
      }
    });
  }

  #checkSettled(): void {
    if (this.unsettled > 0) return;
    for (const resolve of this.#settledWaiters.splice(0)) resolve();
  }

  /** Delivers nothing more (a stop); retries waiting are dropped (they stay stored). */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /** Resolves once nothing delivered is unsettled. */
  whenSettled(): Promise<void> {
    if (this.unsettled === 0) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#settledWaiters.push(resolve);
    return promise;
  }

  /** Waits for the last save, syncs and closes the file. */
  async close(): Promise<void> {
    this.stop();
    while (this.#saving !== undefined) await this.#saving;
    await this.#file.close();
  }
}
