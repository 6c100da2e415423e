import type { Scheduler } from "../scheduler.ts";
import { CreditGate, type SharedCredits } from "./broadcast_credits.ts";
import {
  countRuns,
  decodeBatch,
  encodeBatch,
  type EncodedBatch,
} from "./codec.ts";
import { Outbox } from "./outbox.ts";
import { UnsentTally } from "./unsent.ts";
import type {
  LinkWaits,
  ReceivedBatch,
  Transport,
  TransportUpdate,
  UnsentCount,
  WireMessage,
} from "./transport.ts";

/** A message and the pools it is for. */
interface Addressed {
  message: WireMessage;
  to: readonly number[];
}

/** One channel message: consecutive messages with one audience form a part. */
interface ChannelMessage {
  /** The sending pool's index. */
  sender: number;
  /** Every live receiver counted for the credits: `[index, tag, …]`. */
  counted: number[];
  /** The parts, each for the pools in its `to`. */
  parts: Array<{ to: readonly number[]; batch: EncodedBatch }>;
}

/** How often a sender waiting for credits looks again, in ms. */
const CREDIT_POLL_MS = 250;
/** How often a flush looks whether every batch was acknowledged, in ms. */
const FLUSH_POLL_MS = 5;
/** How long a closing pool waits for what was sent to it, in ms. */
const CLOSE_WAIT_MS = 1000;

/**
 * The lossless BroadcastChannel carrier: one channel per run, one channel
 * message per batch, and credits in shared memory so that Deno's
 * process-wide ring of 256 entries never overflows (see
 * `broadcast_credits.ts`).
 *
 * Every pool with the channel open wakes for every channel message, whatever
 * it holds, so each batch costs a credit towards every live pool: a blocked
 * pool holds back every sender once their credits towards it are used up.
 * Pools that are not in a part's audience skip decoding it.
 */
export class BroadcastTransport implements Transport {
  #channel: BroadcastChannel;
  #gate: CreditGate;
  #outbox: Outbox<Addressed>;
  #unsent = new UnsentTally();
  #handler: (batch: ReceivedBatch) => void = () => {};
  #closed = false;
  /** The waits per receiving pool, once a batch counted it. */
  #waits: Array<LinkWaits | undefined> = [];
  /** Receivers whose credits the current window wait is for (each counted once). */
  #waitingFor = new Set<number>();

  /**
   * @param name The channel's name (one per run).
   * @param credits The shared credit counters.
   * @param index This pool's index.
   * @param incarnation This pool's incarnation (credits are per incarnation).
   * @param scheduler The pool's scheduler.
   */
  constructor(
    name: string,
    credits: SharedCredits,
    index: number,
    incarnation: number,
    scheduler: Scheduler,
  ) {
    this.#gate = new CreditGate(credits, index, incarnation);
    this.#outbox = new Outbox<Addressed>(
      {
        trySend: (items, start, end) => this.#trySend(items, start, end),
        idle: () => this.#gate.outbound() === 0,
        whenWritable: () => this.#gate.whenCredits(CREDIT_POLL_MS),
      },
      scheduler,
      (item) => item.message.size,
    );
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (event: MessageEvent<ChannelMessage>) =>
      this.#receive(event.data);
    this.#gate.join();
  }

  send(to: readonly number[], message: WireMessage): Promise<void> | undefined {
    if (to.length === 0) return undefined;
    if (this.#closed) {
      for (const peer of to) this.#unsent.add(peer, message.queue, 1);
      return undefined;
    }
    this.#outbox.push({ message, to });
    if (!this.#outbox.full) return undefined;
    // The wait is for the receivers without credits (a blocked pool holds
    // back every sender), or for the message's own when the outbox merely
    // filled within one turn.
    const blocking = this.#gate.exhausted();
    for (const peer of blocking.length > 0 ? blocking : to) {
      this.#link(peer).publisherWaits++;
    }
    return this.#outbox.whenSpace();
  }

  linkWaits(): LinkWaits[] {
    return this.#waits.filter((w) => w !== undefined).map((w) => ({ ...w }));
  }

  #link(peer: number): LinkWaits {
    return this.#waits[peer] ??= {
      to: peer,
      publisherWaits: 0,
      windowWaits: 0,
    };
  }

  async flush(): Promise<void> {
    await this.#outbox.flush();
    while (!this.#closed && this.#gate.outbound() > 0) {
      // Credits wake waiters only at half the window: look again often.
      await this.#gate.whenReleased(FLUSH_POLL_MS);
    }
  }

  busy(): boolean {
    return this.#outbox.size > 0 || this.#gate.outbound() > 0;
  }

  held(): number {
    return this.#gate.inbound();
  }

  onReceive(handler: (batch: ReceivedBatch) => void): void {
    this.#handler = handler;
  }

  update(_change: TransportUpdate): void {
    // Peers come and go through the shared credits.
  }

  async close(): Promise<UnsentCount[]> {
    if (this.#closed) return [];
    this.#closed = true;
    for (const { message, to } of this.#outbox.close()) {
      for (const peer of to) this.#unsent.add(peer, message.queue, 1);
    }
    // No sender counts this pool any more; what they sent it before is
    // received (and counted as unsent, see `#receive`) before the channel
    // closes, so none of it is lost silently.
    this.#gate.stopReceiving();
    const deadline = Date.now() + CLOSE_WAIT_MS;
    while (this.#gate.inbound() > 0 && Date.now() < deadline) {
      await this.#gate.whenReleased(FLUSH_POLL_MS);
    }
    this.#gate.leave();
    this.#channel.close();
    return this.#unsent.take();
  }

  #trySend(items: readonly Addressed[], start: number, end: number): boolean {
    if (this.#closed) return true;
    const counted = this.#gate.tryAcquire();
    if (counted === undefined) {
      // One window wait per receiver per wait, however often the outbox
      // looks again (every CREDIT_POLL_MS).
      for (const peer of this.#gate.exhausted()) {
        if (this.#waitingFor.has(peer)) continue;
        this.#waitingFor.add(peer);
        this.#link(peer).windowWaits++;
      }
      return false;
    }
    if (this.#waitingFor.size > 0) this.#waitingFor.clear();
    for (let i = 0; i < counted.length; i += 2) this.#link(counted[i]!);
    // Messages for a pool that is no longer live are counted, not lost.
    let checked: readonly number[] | undefined;
    let allLive = true;
    for (let i = start; i < end; i++) {
      const { message, to } = items[i]!;
      if (to !== checked) {
        checked = to;
        allLive = to.every((peer) => isCounted(counted, peer));
      }
      if (allLive) continue;
      for (const peer of to) {
        if (!isCounted(counted, peer)) {
          this.#unsent.add(peer, message.queue, 1);
        }
      }
    }
    if (counted.length === 0) return true;
    const parts: ChannelMessage["parts"] = [];
    const messages: WireMessage[] = [];
    let to = items[start]!.to;
    for (let i = start; i < end; i++) {
      const item = items[i]!;
      if (item.to !== to && !sameMembers(item.to, to)) {
        parts.push({ to, batch: encodeBatch(messages) });
        messages.length = 0;
        to = item.to;
      }
      messages.push(item.message);
    }
    parts.push({ to, batch: encodeBatch(messages) });
    const message: ChannelMessage = {
      sender: this.#gate.index,
      counted,
      parts,
    };
    this.#channel.postMessage(message);
    return true;
  }

  #receive(message: ChannelMessage): void {
    const { index } = this.#gate;
    const { counted, sender } = message;
    let tag = 0;
    for (let i = 0; i < counted.length; i += 2) {
      if (counted[i] === index) {
        tag = counted[i + 1]!;
        break;
      }
    }
    if (tag === 0 || tag !== this.#gate.tag) return;
    const mine = message.parts.filter((part) => part.to.includes(index));
    if (this.#closed) {
      for (const { batch } of mine) {
        countRuns(batch, (queue, n) => this.#unsent.add(index, queue, n));
      }
      this.#gate.release(sender, tag);
      return;
    }
    // One credit per channel message: it goes back when every part
    // addressed to this pool is routed (at once when none is).
    let waiting = mine.length + 1;
    const ack = (): void => {
      if (--waiting === 0) this.#gate.release(sender, tag);
    };
    for (const part of mine) {
      const { data, runs } = decodeBatch(part.batch);
      let acked = false;
      this.#handler({
        sender,
        data,
        runs,
        ack: () => {
          if (acked) return;
          acked = true;
          ack();
        },
      });
    }
    ack();
  }
}

function isCounted(counted: readonly number[], pool: number): boolean {
  for (let i = 0; i < counted.length; i += 2) {
    if (counted[i] === pool) return true;
  }
  return false;
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
