import type { Scheduler } from "../scheduler.ts";
import { approximateSize } from "../_util/size.ts";
import { snapshot } from "../_util/snapshot.ts";
import { CreditGate, type SharedCredits } from "./broadcast_credits.ts";
import {
  countRuns,
  decodeBatch,
  encodeBatch,
  type EncodedBatch,
} from "./codec.ts";
import { Outbox } from "./outbox.ts";
import {
  fromShared,
  SHARED_VALUE_MIN_SIZE,
  type SharedValue,
  toShared,
} from "./shared_values.ts";
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
  parts: Part[];
}

/** Messages for the pools in `to`. */
interface Part {
  to: readonly number[];
  batch: EncodedBatch;
  /** Large data moved to shared memory: `[position in batch.data, value, …]`. */
  shared?: Array<number | SharedValue>;
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
    // The data as it is now (the channel serializes it later, in a batch).
    const data = snapshot(message.data);
    const copy = { ...message, data, size: approximateSize(data) };
    if (this.#closed) {
      for (const peer of to) this.#unsent.add(peer, message.queue, 1);
      return undefined;
    }
    this.#outbox.push({ message: copy, to });
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
    const parts = partsByAudience(items, start, end);
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
      const { shared } = part;
      for (let i = 0; shared !== undefined && i < shared.length; i += 2) {
        data[shared[i] as number] = fromShared(shared[i + 1] as SharedValue);
      }
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

/**
 * Splits messages into parts by audience, as few as keep each pool's own
 * messages in order: a message joins the last part for its audience when no
 * member of that audience was sent anything in another part since (the
 * members of a group, served in turn, get one part each, not one per
 * message).
 */
function partsByAudience(
  items: readonly Addressed[],
  start: number,
  end: number,
): Part[] {
  const open: Array<{ to: readonly number[]; messages: WireMessage[] }> = [];
  /** Per pool, the part it was last sent a message in. */
  const lastPart = new Map<number, number>();
  let current = -1;
  for (let i = start; i < end; i++) {
    const { message, to } = items[i]!;
    if (
      current < 0 || (to !== open[current]!.to &&
        !sameMembers(to, open[current]!.to))
    ) {
      current = open.findLastIndex((part) => sameMembers(to, part.to));
      if (current >= 0 && to.some((pool) => lastPart.get(pool) !== current)) {
        current = -1;
      }
      if (current < 0) {
        current = open.push({ to, messages: [] }) - 1;
        for (const pool of to) lastPart.set(pool, current);
      }
    }
    open[current]!.messages.push(message);
  }
  return open.map(({ to, messages }) => encodePart(to, messages));
}

/**
 * Encodes a part; large strings and bytes go in shared memory beside it, so
 * that pools outside `to` skip their bytes (see `shared_values.ts`).
 */
function encodePart(to: readonly number[], messages: WireMessage[]): Part {
  const part: Part = { to, batch: encodeBatch(messages) };
  for (let i = 0; i < messages.length; i++) {
    if (messages[i]!.size < SHARED_VALUE_MIN_SIZE) continue;
    const value = toShared(messages[i]!.data);
    if (value === undefined) continue;
    part.batch.data[i] = undefined;
    (part.shared ??= []).push(i, value);
  }
  return part;
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
