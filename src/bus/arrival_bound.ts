/**
 * The bound on what a pool keeps from other processes beyond its
 * subscriptions' buffers, and the messages it dropped past it.
 *
 * A carrier between processes cannot pause its sender (core NATS), so a
 * message for a full subscription waits behind the buffer while the pool's
 * bytes waiting so stay within the bound; past it the message is dropped,
 * counted per queue, and logged at most once a second.
 *
 * @module
 */
import type { Logger } from "../logger.ts";
import type { Hold } from "./batch_hold.ts";

/** How often, at most, the dropped messages are logged. */
const WARN_EVERY_MS = 1000;

/** A pool's arrival bound and its dropped messages. */
export class ArrivalBound {
  /** The bytes waiting beyond the buffers. */
  held = 0;
  readonly limit: number;
  #pool: string;
  #log: Logger;
  /** Dropped messages per queue, since the start. */
  #dropped = new Map<string, number>();
  /** Dropped per queue since the last warning. */
  #unreported = new Map<string, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastWarning = -Infinity;

  /**
   * @param limit The bound, in bytes.
   * @param pool The pool's name, for the warning.
   * @param log Where the warning goes.
   */
  constructor(limit: number, pool: string, log: Logger) {
    this.limit = limit;
    this.#pool = pool;
    this.#log = log;
  }

  /**
   * A hold on `bytes` for a message that waits behind a buffer, or
   * `undefined` when they do not fit (the message is then to be dropped).
   */
  hold(bytes: number): Hold | undefined {
    if (this.held + bytes > this.limit) return undefined;
    return {
      take: () => {
        this.held += bytes;
      },
      release: () => {
        this.held -= bytes;
      },
    };
  }

  /** Counts a message dropped on `queue`; the warning follows (throttled). */
  drop(queue: string): void {
    this.#dropped.set(queue, (this.#dropped.get(queue) ?? 0) + 1);
    this.#unreported.set(queue, (this.#unreported.get(queue) ?? 0) + 1);
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#lastWarning + WARN_EVERY_MS - Date.now());
    this.#timer = setTimeout(() => this.#warn(), wait);
  }

  /** The dropped messages per queue, since the start. */
  dropped(): Array<{ queue: string; count: number }> {
    return [...this.#dropped].map(([queue, count]) => ({ queue, count }));
  }

  /** Logs what was not logged yet and stops the timer. */
  close(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#warn();
  }

  #warn(): void {
    this.#timer = undefined;
    this.#lastWarning = Date.now();
    const counts = [...this.#unreported].map(([queue, count]) =>
      `${count} on "${queue}"`
    ).join(", ");
    this.#unreported.clear();
    this.#log.warn(
      `Pool "${this.#pool}" dropped messages from other processes: ${counts} (their subscriptions' buffers were full and so was the arrival bound of ${this.limit} bytes; nats.arrivalBytes raises it)`,
    );
  }
}
