/**
 * Flow control for the BroadcastChannel carrier, in shared memory.
 *
 * Deno's BroadcastChannel keeps one ring of 256 entries for the whole
 * process, and a receiver that falls more than 256 entries behind silently
 * loses the oldest. So each sending pool may have at most `credits` batches
 * outstanding towards each other pool; a receiver gives a credit back once
 * every message of the batch is in its subscriptions' buffers (see
 * `BatchHold` in `subscription.ts`). `credits × (pools − 1)`
 * stays at or under {@linkcode RING_BUDGET}, half the ring, leaving room for
 * a sender's own messages that its receiver has not skipped yet.
 *
 * Each cell `pending[sender * pools + receiver]` holds the receiver's
 * incarnation in its high 16 bits and the count in its low 16 bits, so a
 * receiver that died and came back never inherits its predecessor's counts.
 */

/** Channel messages the bus may have outstanding per receiver. */
const RING_BUDGET = 128;

/** The shared credit counters of one run, handed to every pool. */
export interface SharedCredits {
  /** Number of pools. */
  pools: number;
  /** Batches a sender may have outstanding towards one receiver. */
  credits: number;
  /** Per pool: its live incarnation (low 15 bits), 0 when not receiving. */
  live: Int32Array;
  /** Per (sender, receiver): incarnation << 16 | outstanding batches. */
  pending: Int32Array;
  /** Word 0 is bumped and notified whenever credits come back. */
  notify: Int32Array;
}

/** Allocates the shared counters for `pools` pools. */
export function createSharedCredits(pools: number): SharedCredits {
  const cells = pools * pools;
  const buffer = new SharedArrayBuffer(4 * (pools + cells + 2));
  let offset = 0;
  const live = new Int32Array(buffer, offset, pools);
  offset += 4 * pools;
  const pending = new Int32Array(buffer, offset, cells);
  offset += 4 * cells;
  const notify = new Int32Array(buffer, offset, 2);
  return {
    pools,
    credits: Math.max(1, Math.floor(RING_BUDGET / Math.max(1, pools - 1))),
    live,
    pending,
    notify,
  };
}

/** The 15-bit tag stored for an incarnation (never 0). */
function incarnationTag(incarnation: number): number {
  return ((incarnation - 1) % 0x7fff) + 1;
}

/** Wakes every sender waiting for credits. */
function notifyCredits(state: SharedCredits): void {
  Atomics.add(state.notify, 0, 1);
  Atomics.notify(state.notify, 0);
}

/**
 * Marks pool `index` as not receiving and forgets what was outstanding
 * towards it. The primary calls this when a worker dies; a pool calls it when
 * it closes its channel.
 */
export function leave(state: SharedCredits, index: number): void {
  Atomics.store(state.live, index, 0);
  for (let sender = 0; sender < state.pools; sender++) {
    Atomics.store(state.pending, sender * state.pools + index, 0);
  }
  notifyCredits(state);
}

/** One pool's side of the credits. */
export class CreditGate {
  readonly state: SharedCredits;
  readonly index: number;
  readonly tag: number;

  constructor(state: SharedCredits, index: number, incarnation: number) {
    this.state = state;
    this.index = index;
    this.tag = incarnationTag(incarnation);
  }

  /** Starts receiving: call after the channel is open. */
  join(): void {
    const { state, index, tag } = this;
    for (let sender = 0; sender < state.pools; sender++) {
      Atomics.store(state.pending, sender * state.pools + index, tag << 16);
    }
    Atomics.store(state.live, index, tag);
    notifyCredits(state);
  }

  /**
   * Stops being counted by senders, and keeps the counts of what they sent
   * before: `inbound()` then tells what is still on its way.
   */
  stopReceiving(): void {
    Atomics.store(this.state.live, this.index, 0);
    notifyCredits(this.state);
  }

  /** Stops receiving. */
  leave(): void {
    leave(this.state, this.index);
  }

  /**
   * Takes one credit towards every live receiver. Returns the receivers as
   * `[index, tag, index, tag, …]`, an empty array when no other pool
   * receives, or `undefined` when some receiver has no credit left.
   */
  tryAcquire(): number[] | undefined {
    const { state, index } = this;
    const { pools, pending, live, credits } = state;
    const row = index * pools;
    for (let receiver = 0; receiver < pools; receiver++) {
      if (receiver === index) continue;
      const tag = Atomics.load(live, receiver);
      if (tag === 0) continue;
      const cell = Atomics.load(pending, row + receiver);
      if (cell >>> 16 === tag && (cell & 0xffff) >= credits) return undefined;
    }
    const targets: number[] = [];
    for (let receiver = 0; receiver < pools; receiver++) {
      if (receiver === index) continue;
      const tag = Atomics.load(live, receiver);
      if (tag === 0) continue;
      for (;;) {
        const cell = Atomics.load(pending, row + receiver);
        if (cell >>> 16 !== tag) break;
        if (
          Atomics.compareExchange(pending, row + receiver, cell, cell + 1) ===
            cell
        ) {
          targets.push(receiver, tag);
          break;
        }
      }
    }
    return targets;
  }

  /**
   * Gives back the credit of a batch from `sender` that named this pool with
   * `tag`. Waiting senders are woken when half the credits towards this pool
   * are free again, not at every credit: one wake-up then sends many batches.
   */
  release(sender: number, tag: number): void {
    if (tag !== this.tag) return;
    const { state, index } = this;
    const slot = sender * state.pools + index;
    let left: number;
    for (;;) {
      const cell = Atomics.load(state.pending, slot);
      if (cell >>> 16 !== tag || (cell & 0xffff) === 0) return;
      if (
        Atomics.compareExchange(state.pending, slot, cell, cell - 1) === cell
      ) {
        left = (cell & 0xffff) - 1;
        break;
      }
    }
    if (left === state.credits >> 1) notifyCredits(state);
  }

  /** Batches this pool sent to live receivers that they have not acknowledged. */
  outbound(): number {
    const { state, index } = this;
    const row = index * state.pools;
    let count = 0;
    for (let receiver = 0; receiver < state.pools; receiver++) {
      if (receiver === index) continue;
      const tag = Atomics.load(state.live, receiver);
      if (tag === 0) continue;
      const cell = Atomics.load(state.pending, row + receiver);
      if (cell >>> 16 === tag) count += cell & 0xffff;
    }
    return count;
  }

  /** Batches sent to this pool (this incarnation) that it has not given back. */
  inbound(): number {
    const { state, index, tag } = this;
    let count = 0;
    for (let sender = 0; sender < state.pools; sender++) {
      const cell = Atomics.load(state.pending, sender * state.pools + index);
      if (cell >>> 16 === tag) count += cell & 0xffff;
    }
    return count;
  }

  /** Resolves when credits may have come back, or after `timeout` ms. */
  async whenCredits(timeout: number): Promise<void> {
    const epoch = Atomics.load(this.state.notify, 0);
    if (this.tryPeek()) return;
    const result = Atomics.waitAsync(this.state.notify, 0, epoch, timeout);
    if (result.async) await result.value;
  }

  /** Resolves when credits were given back anywhere, or after `timeout` ms. */
  async whenReleased(timeout: number): Promise<void> {
    const epoch = Atomics.load(this.state.notify, 0);
    const result = Atomics.waitAsync(this.state.notify, 0, epoch, timeout);
    if (result.async) await result.value;
  }

  /**
   * The live receivers towards which this pool has no credit left (those
   * that make `tryAcquire` fail). Allocates: call it when waiting, not per
   * message.
   */
  exhausted(): number[] {
    const { state, index } = this;
    const row = index * state.pools;
    const out: number[] = [];
    for (let receiver = 0; receiver < state.pools; receiver++) {
      if (receiver === index) continue;
      const tag = Atomics.load(state.live, receiver);
      if (tag === 0) continue;
      const cell = Atomics.load(state.pending, row + receiver);
      if (cell >>> 16 === tag && (cell & 0xffff) >= state.credits) {
        out.push(receiver);
      }
    }
    return out;
  }

  /** Whether `tryAcquire` would succeed now, without taking anything. */
  tryPeek(): boolean {
    const { state, index } = this;
    const row = index * state.pools;
    for (let receiver = 0; receiver < state.pools; receiver++) {
      if (receiver === index) continue;
      const tag = Atomics.load(state.live, receiver);
      if (tag === 0) continue;
      const cell = Atomics.load(state.pending, row + receiver);
      if (cell >>> 16 === tag && (cell & 0xffff) >= state.credits) return false;
    }
    return true;
  }
}
