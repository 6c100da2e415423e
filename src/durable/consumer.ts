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
import { bodyQueue } from "./message.ts";
import type {
  ConsumerMember,
  DeliveredRecord,
  Settlement,
} from "./protocol.ts";
import type { StoredRecord } from "./stream_log.ts";

/** What a consumer needs of its stream. */
export interface ConsumerStream {
  readonly pattern: string;
  readonly firstSeq: number;
  readonly syncedSeq: number;
  read(from: number, max: number): Promise<StoredRecord[]>;
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

/** Sends records of the stream `stream` to a pool's subscription. */
export type Deliver = (
  member: ConsumerMember,
  stream: string,
  records: DeliveredRecord[],
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
  /** Deliveries so far of unsettled messages (in this run, or on file). */
  #attempts = new Map<number, number>();
  /** Every message before it was delivered at least once (saved). */
  #delivered: number;
  /**
   * `#delivered` when the file was read: a message before it with no entry
   * in `#attempts` was delivered once.
   */
  #deliveredBefore: number;
  /** Messages due again, read back when a member has room. */
  #due: number[] = [];
  #timers = new Map<number, ReturnType<typeof setTimeout>>();
  #members: Member[] = [];
  #turn = 0;
  #pumping = false;
  #again = false;
  #stopped = false;
  /** The save being written. */
  #saving: Promise<void> | undefined;
  /** The save asked for while one was written: it starts after it. */
  #queued: Promise<void> | undefined;
  /** The state changed since the last save began. */
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
    const loaded: AckState = file.loaded ?? {
      floor: stream.firstSeq,
      acked: [],
      delivered: stream.firstSeq,
      attempts: [],
    };
    this.#floor = Math.max(loaded.floor, stream.firstSeq);
    for (const seq of loaded.acked) {
      if (seq >= this.#floor) this.#acked.add(seq);
    }
    this.#advanceFloor();
    this.#next = this.#floor;
    this.#delivered = this.#deliveredBefore = Math.max(
      loaded.delivered,
      this.#floor,
    );
    for (const [seq, deliveries] of loaded.attempts) {
      if (seq >= this.#floor && !this.#acked.has(seq)) {
        this.#attempts.set(seq, deliveries);
      }
    }
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
    // Saved by the pump: with what it delivers next, or when it ends.
    this.#dirty = true;
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
      if (this.#dirty) void this.#save();
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
      const batches = this.#assign(messages);
      // Their attempt counts are on file before a handler sees them, so a
      // crash during a handler counts that attempt.
      await this.#save();
      this.#send(batches);
    }
  }

  /** Up to `max` messages to deliver: those due again first, then new ones. */
  async #take(max: number): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
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
      // A consumer of the whole stream needs no queue read.
      const all = this.filter === this.#stream.pattern;
      for (const message of read) {
        if (this.#acked.has(message.seq)) continue;
        if (all || matchesQueue(this.filter, bodyQueue(message.body))) {
          out.push(message);
        } else {
          this.#acked.add(message.seq);
          skipped = true;
        }
      }
      if (skipped) {
        this.#advanceFloor();
        this.#dirty = true;
      }
    }
    return out;
  }

  /**
   * Hands `messages` out round robin to members with room, counting their
   * attempts; returns the batches to send.
   */
  #assign(messages: StoredRecord[]): Map<Member, DeliveredRecord[]> {
    const batches = new Map<Member, DeliveredRecord[]>();
    let i = 0;
    for (let tries = 0; i < messages.length && tries < this.#members.length;) {
      const member = this.#members[this.#turn++ % this.#members.length]!;
      if (member.unsettled.size >= member.info.capacity) {
        tries++;
        continue;
      }
      tries = 0;
      const message = messages[i++]!;
      const before = this.#attempts.get(message.seq) ??
        (message.seq < this.#deliveredBefore ? 1 : 0);
      const attempt = before + 1;
      this.#attempts.set(message.seq, attempt);
      this.#delivered = Math.max(this.#delivered, message.seq + 1);
      member.unsettled.add(message.seq);
      let batch = batches.get(member);
      if (batch === undefined) batches.set(member, batch = []);
      batch.push({ seq: message.seq, attempt, body: message.body });
    }
    // Members left while reading: what is left is due again.
    for (; i < messages.length; i++) this.#makeDue(messages[i]!.seq);
    return batches;
  }

  /**
   * Sends the batches of `#assign` once their attempts are saved: not to a
   * member that left meanwhile (what it held is due again), nor after a stop
   * (they stay stored); those attempts did not happen.
   */
  #send(batches: Map<Member, DeliveredRecord[]>): void {
    let withdrawn = false;
    for (const [member, batch] of batches) {
      if (this.#stopped || !this.#members.includes(member)) {
        withdrawn = true;
        for (const { seq } of batch) {
          if (this.#stopped) member.unsettled.delete(seq);
          // Kept at 0 too: `#delivered` may already be past it on file.
          this.#attempts.set(seq, this.#attempts.get(seq)! - 1);
        }
        continue;
      }
      this.counts.delivered += batch.length;
      this.#deliver(member.info, this.#stream.pattern, batch);
    }
    if (withdrawn) this.#dirty = true;
    this.#checkSettled();
  }

  /** What the file keeps. */
  #state(): AckState {
    const attempts: Array<[number, number]> = [];
    for (const [seq, deliveries] of this.#attempts) {
      // One delivery is implied by `delivered`, which is past it.
      if (deliveries !== 1) attempts.push([seq, deliveries]);
    }
    return {
      floor: this.#floor,
      acked: [...this.#acked],
      delivered: this.#delivered,
      attempts,
    };
  }

  /**
   * Saves the state; resolves once a save that began after this call is
   * written (saves asked for while one is written make one more).
   */
  #save(): Promise<void> {
    if (this.#queued !== undefined) return this.#queued;
    if (this.#saving === undefined) return this.#saving = this.#write();
    return this.#queued = this.#saving.then(() => {
      this.#queued = undefined;
      return this.#saving = this.#write();
    });
  }

  #write(): Promise<void> {
    this.#dirty = false;
    const written: Promise<void> = this.#file.save(this.#state()).catch(
      (error) => {
        this.stop();
        this.#stream.failed(error);
      },
    ).finally(() => {
      if (this.#saving === written) this.#saving = undefined;
    });
    return written;
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
    while (this.#saving !== undefined || this.#queued !== undefined) {
      await (this.#queued ?? this.#saving);
    }
    await this.#file.close();
  }
}
