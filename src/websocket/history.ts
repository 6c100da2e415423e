/**
 * The history behind session recovery: what the service sent on each
 * stream (a path's `ws://outbound/<path>`, a room's `ws://room/<name>`, a
 * connection's reply queue), each message with an offset that grows across
 * all the streams of one store, so the messages of several streams merge in
 * the order they were sent.
 *
 * {@linkcode HistoryStore} is the seam: {@linkcode MemoryHistory} keeps the
 * history in the WebSocketService's pool; a store on JetStream (one stream,
 * the queues as subjects, limits retention with the recovery window as max
 * age, the stream sequence as offset) can take its place.
 *
 * @module
 */

import { frameBytes } from "./counters.ts";
import {
  AppendOrder,
  type HistoryEntry,
  type HistoryFrame,
  HistoryRing,
} from "./history_ring.ts";

/** Where a reader resumes one stream: after `after` (exclusive). */
export interface StreamCursor {
  stream: string;
  after: number;
}

/** The bounds of one stream's history; past one, the oldest entries go. */
export interface HistoryLimits {
  /** Most messages kept per stream. */
  maxMessages: number;
  /** Most payload bytes kept per stream. */
  maxBytes: number;
  /** Oldest message kept, in ms. */
  maxAge: number;
  /**
   * Most bytes kept in all, each message counted as its payload plus
   * {@linkcode ENTRY_COST} for its bookkeeping; past it the oldest messages
   * go, whatever their stream.
   */
  maxTotalBytes: number;
}

/** What a store holds now (for metrics and tests). */
export interface HistoryStats {
  streams: number;
  messages: number;
  bytes: number;
}

/** What a session needs of a history: where it is, and what it follows. */
export interface HistoryCursor {
  /** The offset of the last message appended (0 before the first). */
  readonly last: number;
  /**
   * Keeps the history of `stream` from now on (counted: each `retain` needs
   * a `release`).
   */
  retain(stream: string): void;
  /** Ends one `retain`; the last one frees the stream's history. */
  release(stream: string): void;
}

/**
 * Records what is sent on the streams someone may come back for, and gives
 * it back in offset order.
 */
export interface HistoryStore extends HistoryCursor {
  /** Whether `stream` is retained. */
  has(stream: string): boolean;
  /**
   * Records `frame` on `stream` if the stream is retained.
   *
   * @param bytes The frame's size in bytes (UTF-8 for text), when the
   * caller has it already.
   * @returns Its offset, or `undefined` when nobody retains the stream.
   */
  append(
    stream: string,
    frame: HistoryFrame,
    bytes?: number,
  ): number | undefined;
  /**
   * The messages of every cursor's stream after its offset, merged in
   * offset order; `"trimmed"` when one of them was dropped by the limits.
   */
  read(cursors: readonly StreamCursor[]): HistoryEntry[] | "trimmed";
  /** What the store holds now. */
  stats(): HistoryStats;
}

/** What one message costs besides its payload, about, in bytes. */
export const ENTRY_COST = 64;

interface Stream {
  /** Released: its entries in the store's order are stale. */
  gone: boolean;
  retained: number;
  ring: HistoryRing;
  /** Offset of the newest entry dropped by the limits. */
  dropped: number;
}

/**
 * A {@linkcode HistoryStore} in memory, bounded per stream. Each stream's
 * messages sit in a ring of at most `maxMessages` (see `history_ring.ts`):
 * an append stores the frame, its offset, size and time, and allocates
 * nothing once the ring has grown.
 *
 * Age is kept without reading the clock per message: the store reads it
 * every `maxAge / 8` (its sweep, which also drops what aged) and stamps
 * each message with that time, so a message may be stamped up to a sweep
 * period early; it goes once its stamp is more than `maxAge` plus a sweep
 * period old (never before `maxAge`, at most two periods after). A read
 * checks the age of what it reads with the clock. {@linkcode
 * MemoryHistory.close} stops the sweeps.
 */
export class MemoryHistory implements HistoryStore, Disposable {
  readonly #streams = new Map<string, Stream>();
  readonly #limits: HistoryLimits;
  readonly #now: () => number;
  /** Every entry in offset order, by stream (some already dropped). */
  readonly #order = new AppendOrder<Stream>();
  /** How often the clock is read and aged messages go, in ms. */
  readonly #period: number;
  readonly #sweeps: ReturnType<typeof setInterval>;
  /** The clock at the last sweep: what appends are stamped with. */
  #clock: number;
  #last = 0;
  #messages = 0;
  #bytes = 0;

  /**
   * @param limits The bounds of each stream.
   * @param now The clock, in ms (a test may pass its own and call
   * {@linkcode MemoryHistory.sweep} when it moves it).
   */
  constructor(limits: HistoryLimits, now: () => number = performance.now) {
    this.#limits = limits;
    this.#now = () => now.call(performance);
    this.#clock = this.#now();
    this.#period = Math.min(Math.max(limits.maxAge / 8, 1), 2 ** 31 - 1);
    this.#sweeps = setInterval(() => this.sweep(), this.#period);
  }

  /** Reads the clock and drops every stream's messages that aged. */
  sweep(): void {
    const now = this.#clock = this.#now();
    for (const stream of this.#streams.values()) this.#trimAge(stream, now);
  }

  /** Stops the sweeps (the store still works; aged messages go on reads). */
  close(): void {
    clearInterval(this.#sweeps);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  get last(): number {
    return this.#last;
  }

  retain(stream: string): void {
    const known = this.#streams.get(stream);
    if (known !== undefined) {
      known.retained++;
      return;
    }
    this.#streams.set(stream, {
      gone: false,
      retained: 1,
      ring: new HistoryRing(this.#limits.maxMessages),
      dropped: 0,
    });
  }

  release(stream: string): void {
    const known = this.#streams.get(stream);
    if (known === undefined || --known.retained > 0) return;
    this.#messages -= known.ring.count;
    this.#bytes -= known.ring.bytes;
    known.gone = true;
    this.#streams.delete(stream);
  }

  has(stream: string): boolean {
    return this.#streams.has(stream);
  }

  append(
    stream: string,
    frame: HistoryFrame,
    bytes: number = frameBytes(frame),
  ): number | undefined {
    const known = this.#streams.get(stream);
    if (known === undefined) return undefined;
    const offset = ++this.#last;
    const { ring } = known;
    if (ring.full) this.#dropOldest(known);
    ring.push(offset, frame, bytes, this.#clock);
    this.#order.push(known, offset);
    this.#messages++;
    this.#bytes += bytes;
    while (ring.bytes > this.#limits.maxBytes) this.#dropOldest(known);
    this.#trimTotal();
    return offset;
  }

  read(cursors: readonly StreamCursor[]): HistoryEntry[] | "trimmed" {
    const now = this.#now();
    const out: HistoryEntry[] = [];
    for (const { stream, after } of cursors) {
      const known = this.#streams.get(stream);
      if (known === undefined) continue;
      this.#trimAge(known, now);
      if (known.dropped > after) return "trimmed";
      out.push(...known.ring.after(after));
    }
    return cursors.length > 1 ? out.sort((a, b) => a.offset - b.offset) : out;
  }

  stats(): HistoryStats {
    return {
      streams: this.#streams.size,
      messages: this.#messages,
      bytes: this.#bytes,
    };
  }

  /** Drops a stream's messages stamped more than maxAge and a period before `now`. */
  #trimAge(stream: Stream, now: number): void {
    const oldest = now - this.#limits.maxAge - this.#period;
    const { ring } = stream;
    while (ring.count > 0 && ring.oldestTime < oldest) {
      this.#dropOldest(stream);
    }
  }

  /** Drops the oldest messages of all until the total fits. */
  #trimTotal(): void {
    const order = this.#order;
    const { maxTotalBytes } = this.#limits;
    while (this.#bytes + this.#messages * ENTRY_COST > maxTotalBytes) {
      const stream = order.oldestOwner!;
      const offset = order.oldestOffset;
      order.dropOldest();
      // Stale: released, or dropped by its stream's own limits.
      if (stream.gone || offset <= stream.dropped) continue;
      // The oldest live message of all is the oldest of its stream.
      this.#dropOldest(stream);
    }
    // Keep the order about as long as what is live.
    if (order.size > 2 * this.#messages + 64) {
      order.sweep((stream, offset) => !stream.gone && offset > stream.dropped);
    }
  }

  #dropOldest(stream: Stream): void {
    stream.dropped = stream.ring.oldestOffset;
    const size = stream.ring.dropOldest();
    this.#messages--;
    this.#bytes -= size;
  }
}
