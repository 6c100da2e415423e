/**
 * The cooperative scheduler of a pool. Service code and message handlers
 * interleave on the worker's event loop; deliveries run in slices of bounded
 * length, and at the end of a slice everything yields with a macrotask, so
 * timers, sockets and incoming channel messages get their turn.
 *
 * A macrotask yield is a `MessageChannel` ping (about 4 µs here); a
 * microtask yield would never let a message in, and `setTimeout(0)` costs
 * about 2 ms.
 */
export class Scheduler {
  /** Deliveries allowed before a slice must yield. */
  readonly sliceDeliveries: number;
  /** Milliseconds allowed before a slice must yield. */
  readonly sliceMillis: number;
  /** Two channels, used in turn (see `#ping`). */
  #channels: MessageChannel[] = [];
  #turn = 0;
  #waiters: Array<() => void> = [];
  #tasks: Array<() => void> = [];
  #pinged = false;
  #count = 0;
  #sliceStart = 0;

  constructor(sliceDeliveries = 1000, sliceMillis = 8) {
    this.sliceDeliveries = sliceDeliveries;
    this.sliceMillis = sliceMillis;
  }

  /**
   * Counts one delivery. Returns `true` when the current slice is used up and
   * the caller should `await scheduler.yield()`.
   */
  tick(): boolean {
    if (this.#count === 0) this.#sliceStart = performance.now();
    this.#count++;
    if (this.#count >= this.sliceDeliveries) return true;
    if ((this.#count & 63) === 0) {
      return performance.now() - this.#sliceStart >= this.sliceMillis;
    }
    return false;
  }

  /** Resolves on the next macrotask; the slice starts anew then. */
  yield(): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push(resolve);
    this.#ping();
    return promise;
  }

  /** Runs `task` on the next macrotask (coalesced with other yields). */
  defer(task: () => void): void {
    this.#tasks.push(task);
    this.#ping();
  }

  /** Releases the channel; pending yields resolve at once. */
  close(): void {
    for (const channel of this.#channels) {
      channel.port1.close();
      channel.port2.close();
    }
    this.#channels = [];
    this.#drain();
  }

  #ping(): void {
    if (this.#pinged) return;
    this.#pinged = true;
    if (this.#channels.length === 0) {
      for (let i = 0; i < 2; i++) {
        const channel = new MessageChannel();
        channel.port1.onmessage = () => this.#drain();
        this.#channels.push(channel);
      }
    }
    // Alternate: after a dispatch, Deno's port re-arms its receive a
    // microtask later and takes a ping already sent from the chain its handler
    // resumed as a microtask, not on the next turn.
    this.#channels[this.#turn++ & 1]!.port2.postMessage(0);
  }

  #drain(): void {
    this.#pinged = false;
    this.#count = 0;
    const tasks = this.#tasks;
    const waiters = this.#waiters;
    this.#tasks = [];
    this.#waiters = [];
    for (const task of tasks) task();
    for (const resolve of waiters) resolve();
  }
}
