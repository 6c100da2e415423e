/**
 * The log-file service's account of messages JSON cannot carry: counts by
 * kind, the first of each kind logged as an error, repeats summed up once
 * per interval (never one line per message in a flood).
 *
 * @module
 */

import type { Logger } from "../logger.ts";
import { rejectedLogQueue } from "./options.ts";

/** One kind of rejection: where from, and why. */
export interface RejectionKind {
  /** The queue the message was published on. */
  queue: string;
  /** The publishing pool. */
  pool: string;
  /** The publishing service. */
  service: string;
  /** What `JSON.stringify` said, on one line. */
  reason: string;
}

interface Count {
  kind: RejectionKind;
  total: number;
  sinceLastLog: number;
}

/**
 * Counts rejections of one log file and logs them sparingly.
 *
 * @example A flood of one kind makes two lines
 * ```ts
 * import { Rejections } from "./rejections.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const log = {
 *   debug: () => {},
 *   info: () => {},
 *   warn: () => {},
 *   error: (line: string) => lines.push(line),
 * };
 * const rejections = new Rejections("app.jsonl", 5000, () => log);
 * const kind = {
 *   queue: "log://app.jsonl",
 *   pool: "main",
 *   service: "Producer",
 *   reason: "TypeError: Do not know how to serialize a BigInt",
 * };
 * for (let i = 0; i < 1000; i++) rejections.count(kind);
 * rejections.close();
 * assert.equal(rejections.total, 1000);
 * assert.equal(lines.length, 2);
 * assert.match(lines[1]!, /^999 more messages on "log:\/\/app.jsonl" from main\/Producer/);
 * ```
 */
export class Rejections {
  /** Rejections counted so far, all kinds. */
  total = 0;

  readonly #path: string;
  readonly #interval: number;
  readonly #log: () => Logger;
  readonly #counts = new Map<string, Count>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * @param path The log file, for the messages.
   * @param interval The least time between two summaries, in ms.
   * @param log The logger (read at each line: it is set in `initialize()`).
   */
  constructor(path: string, interval: number, log: () => Logger) {
    this.#path = path;
    this.#interval = interval;
    this.#log = log;
  }

  /** Counts one rejection; logs it if it is the first of its kind. */
  count(kind: RejectionKind): void {
    this.total++;
    const key = JSON.stringify([
      kind.queue,
      kind.pool,
      kind.service,
      kind.reason,
    ]);
    const count = this.#counts.get(key);
    if (count === undefined) {
      this.#counts.set(key, { kind, total: 1, sinceLastLog: 0 });
      this.#log().error(
        `Cannot write a message on "${kind.queue}" from ${kind.pool}/${kind.service} to "${this.#path}": JSON cannot carry it (${kind.reason}); it was not written. Repeats are counted (the delivered count of "${
          rejectedLogQueue(this.#path)
        }" in topology()) and summed up every ${this.#interval} ms`,
      );
      return;
    }
    count.total++;
    count.sinceLastLog++;
    if (this.#timer === undefined && !this.#closed) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#summarize();
      }, this.#interval);
    }
  }

  /** Logs what is not summed up yet and stops the timer; counting goes on. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#summarize();
  }

  /** Counting may use the timer again (after a restart). */
  open(): void {
    this.#closed = false;
  }

  #summarize(): void {
    for (const count of this.#counts.values()) {
      if (count.sinceLastLog === 0) continue;
      const { queue, pool, service, reason } = count.kind;
      this.#log().error(
        `${count.sinceLastLog} more messages on "${queue}" from ${pool}/${service} were not written to "${this.#path}": JSON cannot carry them (${reason}); ${count.total} in all`,
      );
      count.sinceLastLog = 0;
    }
  }
}
