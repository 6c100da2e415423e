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

import { utf8Length } from "./counters.ts";

/** A frame as the service sends it: text, or bytes. */
export type HistoryFrame = string | Uint8Array;

/** One message of a stream, with its offset. */
export interface HistoryEntry {
  offset: number;
  frame: HistoryFrame;
}

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
   * @returns Its offset, or `undefined` when nobody retains the stream.
   */
  append(stream: string, frame: HistoryFrame): number | undefined;
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
  /** Released: its entries in the store's queue are stale. */
  gone: boolean;
  retained: number;
  entries: Array<HistoryEntry & { bytes: number; at: number }>;
  /** Index of the first live entry (entries before it were trimmed). */
  head: number;
  bytes: number;
  /** Offset of the newest entry dropped by the limits. */
  dropped: number;
}

/** A {@linkcode HistoryStore} in memory, bounded per stream. */
export class MemoryHistory implements HistoryStore {
  readonly #streams = new Map<string, Stream>();
  readonly #limits: HistoryLimits;
  readonly #now: () => number;
  /** Every entry in offset order, by stream (some already trimmed). */
  #all: Array<{ stream: Stream; offset: number }> = [];
  #allHead = 0;
  #last = 0;
  #messages = 0;
  #bytes = 0;

  /**
   * @param limits The bounds of each stream.
   * @param now The clock, in ms (a test may pass its own).
   */
  constructor(limits: HistoryLimits, now: () => number = performance.now) {
    this.#limits = limits;
    this.#now = () => now.call(performance);
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
      entries: [],
      head: 0,
      bytes: 0,
      dropped: 0,
    });
  }

  release(stream: string): void {
    const known = this.#streams.get(stream);
    if (known === undefined || --known.retained > 0) return;
    this.#messages -= known.entries.length - known.head;
    this.#bytes -= known.bytes;
    known.gone = true;
    this.#streams.delete(stream);
  }

  has(stream: string): boolean {
    return this.#streams.has(stream);
  }

  append(stream: string, frame: HistoryFrame): number | undefined {
    const known = this.#streams.get(stream);
    if (known === undefined) return undefined;
    const bytes = typeof frame === "string"
      ? utf8Length(frame)
      : frame.byteLength;
    const at = this.#now();
    const offset = ++this.#last;
    known.entries.push({ offset, frame, bytes, at });
    known.bytes += bytes;
    this.#all.push({ stream: known, offset });
    this.#messages++;
    this.#bytes += bytes;
    this.#trim(known, at);
    this.#trimTotal();
    return offset;
  }

  read(cursors: readonly StreamCursor[]): HistoryEntry[] | "trimmed" {
    const now = this.#now();
    const out: HistoryEntry[] = [];
    for (const { stream, after } of cursors) {
      const known = this.#streams.get(stream);
      if (known === undefined) continue;
      this.#trim(known, now);
      if (known.dropped > after) return "trimmed";
      const { entries } = known;
      // Entries are in offset order: find the first one after `after`.
      let low = known.head, high = entries.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (entries[middle]!.offset <= after) low = middle + 1;
        else high = middle;
      }
      for (let i = low; i < entries.length; i++) {
        const { offset, frame } = entries[i]!;
        out.push({ offset, frame });
      }
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

  #trim(stream: Stream, now: number): void {
    const { maxMessages, maxBytes, maxAge } = this.#limits;
    while (stream.head < stream.entries.length) {
      const count = stream.entries.length - stream.head;
      const oldest = stream.entries[stream.head]!;
      if (
        count <= maxMessages && stream.bytes <= maxBytes &&
        now - oldest.at <= maxAge
      ) break;
      this.#dropHead(stream);
    }
  }

  /** Drops the oldest messages of all until the total fits. */
  #trimTotal(): void {
    const all = this.#all;
    const { maxTotalBytes } = this.#limits;
    while (this.#bytes + this.#messages * ENTRY_COST > maxTotalBytes) {
      const { stream, offset } = all[this.#allHead++]!;
      // Stale: released, or trimmed by its stream's own limits.
      if (stream.gone || offset <= stream.dropped) continue;
      // The oldest live message of all is the head of its stream.
      this.#dropHead(stream);
    }
    // Keep the queue about as long as what is live.
    if (all.length - this.#allHead > 2 * this.#messages + 64) {
      this.#all = all.slice(this.#allHead).filter(({ stream, offset }) =>
        !stream.gone && offset > stream.dropped
      );
      this.#allHead = 0;
    } else if (this.#allHead > 64 && this.#allHead * 2 > all.length) {
      this.#all = all.slice(this.#allHead);
      this.#allHead = 0;
    }
  }

  #dropHead(stream: Stream): void {
    const oldest = stream.entries[stream.head++]!;
    stream.bytes -= oldest.bytes;
    stream.dropped = oldest.offset;
    this.#messages--;
    this.#bytes -= oldest.bytes;
    // Compact once the dropped part is the larger half.
    if (stream.head > 64 && stream.head * 2 > stream.entries.length) {
      stream.entries = stream.entries.slice(stream.head);
      stream.head = 0;
    }
  }
}
