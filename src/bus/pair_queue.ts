/**
 * A first-in first-out queue of pairs (a message's data and its meta) kept
 * side by side in one ring that grows by doubling: no object per entry, and
 * no garbage once the ring has reached its working size.
 *
 * @example Queue pairs, read the first, drop it
 * ```ts
 * import { PairQueue } from "./pair_queue.ts";
 * import assert from "node:assert/strict";
 *
 * const queue = new PairQueue<string, number>();
 * queue.push("a", 1);
 * queue.push("b", 2);
 * assert.equal(queue.firstA(), "a");
 * queue.shift();
 * assert.deepEqual([queue.firstA(), queue.firstB(), queue.length], ["b", 2, 1]);
 * ```
 */
export class PairQueue<A, B> {
  /** Pairs at slots `2i` and `2i + 1` (mod the ring's size), from `#head`. */
  #slots: unknown[] = emptySlots(16);
  #head = 0;
  #length = 0;

  /** Pairs in the queue. */
  get length(): number {
    return this.#length;
  }

  /** Adds a pair at the end. */
  push(a: A, b: B): void {
    if (2 * this.#length === this.#slots.length) this.#grow();
    const mask = this.#slots.length - 1;
    const at = (this.#head + 2 * this.#length) & mask;
    this.#slots[at] = a;
    this.#slots[at + 1] = b;
    this.#length++;
  }

  /** The first pair's first part; only when `length > 0`. */
  firstA(): A {
    return this.#slots[this.#head] as A;
  }

  /** The first pair's second part; only when `length > 0`. */
  firstB(): B {
    return this.#slots[this.#head + 1] as B;
  }

  /** Drops the first pair (it is no longer referenced). */
  shift(): void {
    if (this.#length === 0) return;
    this.#slots[this.#head] = this.#slots[this.#head + 1] = undefined;
    this.#head = (this.#head + 2) & (this.#slots.length - 1);
    if (--this.#length === 0) this.#head = 0;
  }

  /** Removes every pair and returns them in order. */
  drain(): Array<[A, B]> {
    const pairs: Array<[A, B]> = [];
    while (this.#length > 0) {
      pairs.push([this.firstA(), this.firstB()]);
      this.shift();
    }
    return pairs;
  }

  #grow(): void {
    const slots = emptySlots(2 * this.#slots.length);
    const mask = this.#slots.length - 1;
    for (let i = 0; i < 2 * this.#length; i++) {
      slots[i] = this.#slots[(this.#head + i) & mask];
    }
    this.#slots = slots;
    this.#head = 0;
  }
}

/** An array of `size` `undefined`s, filled in order so that V8 keeps it packed. */
function emptySlots(size: number): unknown[] {
  const slots: unknown[] = [];
  for (let i = 0; i < size; i++) slots.push(undefined);
  return slots;
}
