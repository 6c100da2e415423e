/**
 * The entries of one history stream in a ring: parallel arrays (offset,
 * time, size, frame) that grow by doubling up to a fixed capacity, so an
 * append allocates nothing once the ring has grown and dropping the oldest
 * is an index step.
 *
 * @module
 */

/** A frame as the service sends it: text, or bytes. */
export type HistoryFrame = string | Uint8Array;

/** One message of a stream, with its offset. */
export interface HistoryEntry {
  offset: number;
  frame: HistoryFrame;
}

/** The first capacity of a ring (it doubles as needed). */
const FIRST_CAPACITY = 8;

/**
 * The messages of one stream, oldest first, at most `max`.
 *
 * @example
 * ```ts
 * import { HistoryRing } from "./history_ring.ts";
 * import assert from "node:assert/strict";
 *
 * const ring = new HistoryRing(2);
 * ring.push(1, "a", 1, 0);
 * ring.push(2, "b", 1, 0);
 * ring.dropOldest();
 * ring.push(3, "c", 1, 0);
 * assert.deepEqual(ring.after(1), [{ offset: 2, frame: "b" }, {
 *   offset: 3,
 *   frame: "c",
 * }]);
 * assert.equal(ring.bytes, 2);
 * ```
 */
export class HistoryRing {
  /** The most entries the ring holds. */
  readonly max: number;
  #offsets: Float64Array;
  #times: Float64Array;
  #sizes: Float64Array;
  #frames: Array<HistoryFrame | undefined>;
  #head = 0;
  #count = 0;
  /** Payload bytes of the entries held. */
  bytes = 0;

  /** @param max The most entries held (at least 1). */
  constructor(max: number) {
    this.max = max;
    const capacity = Math.min(FIRST_CAPACITY, max);
    this.#offsets = new Float64Array(capacity);
    this.#times = new Float64Array(capacity);
    this.#sizes = new Float64Array(capacity);
    this.#frames = new Array(capacity);
  }

  /** How many entries the ring holds. */
  get count(): number {
    return this.#count;
  }

  /** The offset of the oldest entry (`Infinity` when empty). */
  get oldestOffset(): number {
    return this.#count === 0 ? Infinity : this.#offsets[this.#head]!;
  }

  /** When the oldest entry was appended (`Infinity` when empty). */
  get oldestTime(): number {
    return this.#count === 0 ? Infinity : this.#times[this.#head]!;
  }

  /** Whether the ring holds `max` entries. */
  get full(): boolean {
    return this.#count === this.max;
  }

  /** Adds the newest entry; the caller drops the oldest first when full. */
  push(offset: number, frame: HistoryFrame, size: number, time: number): void {
    if (this.#count === this.#offsets.length) this.#grow();
    let slot = this.#head + this.#count;
    if (slot >= this.#offsets.length) slot -= this.#offsets.length;
    this.#offsets[slot] = offset;
    this.#times[slot] = time;
    this.#sizes[slot] = size;
    this.#frames[slot] = frame;
    this.#count++;
    this.bytes += size;
  }

  /**
   * Drops the oldest entry (read its offset first, if needed).
   *
   * @returns Its size.
   */
  dropOldest(): number {
    const head = this.#head;
    const size = this.#sizes[head]!;
    this.#frames[head] = undefined;
    this.#head = head + 1 === this.#offsets.length ? 0 : head + 1;
    this.#count--;
    this.bytes -= size;
    return size;
  }

  /** The entries with an offset above `after`, oldest first. */
  after(after: number): HistoryEntry[] {
    // Offsets grow: find the first one above `after`.
    let low = 0, high = this.#count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#offsets[this.#slot(middle)]! <= after) low = middle + 1;
      else high = middle;
    }
    const out: HistoryEntry[] = [];
    for (let i = low; i < this.#count; i++) {
      const slot = this.#slot(i);
      out.push({ offset: this.#offsets[slot]!, frame: this.#frames[slot]! });
    }
    return out;
  }

  #slot(index: number): number {
    const slot = this.#head + index;
    return slot >= this.#offsets.length ? slot - this.#offsets.length : slot;
  }

  /**
   * Doubles the capacity (up to `max`), the oldest entry first. Called when
   * full: the entries run from the head to the end, then wrap to the start.
   */
  #grow(): void {
    const capacity = Math.min(this.max, 2 * this.#offsets.length);
    const head = this.#head;
    this.#offsets = regrown(this.#offsets, capacity, head);
    this.#times = regrown(this.#times, capacity, head);
    this.#sizes = regrown(this.#sizes, capacity, head);
    const frames = this.#frames.slice(head);
    for (let i = 0; i < head; i++) frames.push(this.#frames[i]);
    frames.length = capacity;
    this.#frames = frames;
    this.#head = 0;
  }
}

/**
 * A full ring's typed array, copied in order (from `head` to the end, then
 * the start up to `head`) into a larger one: two block copies, no loop.
 */
function regrown(
  from: Float64Array,
  capacity: number,
  head: number,
): Float64Array<ArrayBuffer> {
  const to = new Float64Array(capacity);
  to.set(from.subarray(head));
  to.set(from.subarray(0, head), from.length - head);
  return to;
}

/**
 * Which stream each message went to, in offset order, with the stream's
 * entries dropped meanwhile left in place (`live` tells them apart) and
 * swept once they outnumber the live ones.
 *
 * @example
 * ```ts
 * import { AppendOrder } from "./history_ring.ts";
 * import assert from "node:assert/strict";
 *
 * const order = new AppendOrder<string>();
 * order.push("a", 1);
 * order.push("b", 2);
 * assert.equal(order.oldestOwner, "a");
 * order.dropOldest();
 * assert.equal(order.oldestOffset, 2);
 * assert.equal(order.size, 1);
 * ```
 */
export class AppendOrder<T> {
  #owners: Array<T | undefined> = new Array(FIRST_CAPACITY);
  #offsets = new Float64Array(FIRST_CAPACITY);
  #head = 0;
  #count = 0;

  /** How many entries it holds (live or not). */
  get size(): number {
    return this.#count;
  }

  /** Adds the newest message: its offset, and the stream it went to. */
  push(owner: T, offset: number): void {
    if (this.#count === this.#offsets.length) this.#grow();
    let slot = this.#head + this.#count;
    if (slot >= this.#offsets.length) slot -= this.#offsets.length;
    this.#owners[slot] = owner;
    this.#offsets[slot] = offset;
    this.#count++;
  }

  /** The stream of the oldest entry (`undefined` when empty). */
  get oldestOwner(): T | undefined {
    return this.#count === 0 ? undefined : this.#owners[this.#head];
  }

  /** The offset of the oldest entry (`Infinity` when empty). */
  get oldestOffset(): number {
    return this.#count === 0 ? Infinity : this.#offsets[this.#head]!;
  }

  /** Drops the oldest entry (none when empty). */
  dropOldest(): void {
    if (this.#count === 0) return;
    const head = this.#head;
    this.#owners[head] = undefined;
    this.#head = head + 1 === this.#offsets.length ? 0 : head + 1;
    this.#count--;
  }

  /** Keeps only the entries for which `live` holds, in order. */
  sweep(live: (owner: T, offset: number) => boolean): void {
    this.#resize(this.#offsets.length, live);
  }

  /** Doubles the capacity; called when full (see {@linkcode regrown}). */
  #grow(): void {
    const capacity = 2 * this.#offsets.length;
    const head = this.#head;
    const owners = this.#owners.slice(head);
    for (let i = 0; i < head; i++) owners.push(this.#owners[i]);
    owners.length = capacity;
    this.#owners = owners;
    this.#offsets = regrown(this.#offsets, capacity, head);
    this.#head = 0;
  }

  #resize(capacity: number, live: (owner: T, offset: number) => boolean): void {
    const owners = new Array<T | undefined>(capacity);
    const offsets = new Float64Array(capacity);
    let kept = 0;
    for (let i = 0; i < this.#count; i++) {
      let slot = this.#head + i;
      if (slot >= this.#offsets.length) slot -= this.#offsets.length;
      const owner = this.#owners[slot]!;
      const offset = this.#offsets[slot]!;
      if (!live(owner, offset)) continue;
      owners[kept] = owner;
      offsets[kept++] = offset;
    }
    this.#owners = owners;
    this.#offsets = offsets;
    this.#head = 0;
    this.#count = kept;
  }
}
