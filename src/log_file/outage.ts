/**
 * The log-file service's account of writes that fail: the backoff between
 * attempts, the lines dropped, and a few log lines an outage (never one per
 * attempt or per line).
 *
 * @module
 */

import type { Logger } from "../logger.ts";

/** The first retry after a failed write, in ms; each next one waits twice as long. */
export const RETRY_FIRST = 50;
/** The longest wait between two attempts while writes fail, in ms. */
export const RETRY_MAX = 5000;

/**
 * Tracks one log file's write outages: from the first failed attempt to the
 * next write that works.
 *
 * @example A full disk, lines dropped, room again: three log lines
 * ```ts
 * import { Outage } from "./outage.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const record = (line: string) => lines.push(line);
 * const log = { debug: record, info: record, warn: record, error: record };
 * const outage = new Outage("app.jsonl", 1024, () => log);
 * assert.equal(outage.failed("No space left on device", 10), 50);
 * assert.equal(outage.failed("No space left on device", 10), 100);
 * outage.drop(3);
 * outage.drop(4);
 * outage.recovered();
 * assert.equal(outage.failing, false);
 * assert.equal(outage.dropped, 7);
 * assert.equal(lines.length, 3);
 * assert.match(lines[2]!, /again after 2 failed attempts; 7 lines were dropped/);
 * ```
 */
export class Outage {
  /** Lines dropped in all (across outages). */
  dropped = 0;
  /** What the last outage's first failure said. */
  reason = "";

  readonly #path: string;
  readonly #backlogBytes: number;
  readonly #log: () => Logger;
  /** The wait before the next attempt; 0 when writes work. */
  #delay = 0;
  #attempts = 0;
  #droppedNow = 0;

  constructor(path: string, backlogBytes: number, log: () => Logger) {
    this.#path = path;
    this.#backlogBytes = backlogBytes;
    this.#log = log;
  }

  /** Whether the last attempt failed. */
  get failing(): boolean {
    return this.#delay > 0;
  }

  /**
   * Counts a failed attempt that kept `kept` lines; logs the first of an
   * outage.
   *
   * @returns How long to wait before the next attempt, in ms.
   */
  failed(reason: string, kept: number): number {
    if (this.#delay === 0) {
      this.#attempts = 0;
      this.#droppedNow = 0;
      this.reason = reason;
      this.#log().error(
        `Cannot write to log file "${this.#path}": ${reason}; keeping the ${kept} lines not written in memory and retrying (at most ${this.#backlogBytes} bytes wait; lines past that are dropped and counted in stats.dropped)`,
      );
    }
    this.#attempts++;
    this.#delay = Math.min(RETRY_MAX, 2 * this.#delay || RETRY_FIRST);
    return this.#delay;
  }

  /** A write worked again: logs what the outage cost. */
  recovered(): void {
    if (this.#delay === 0) return;
    this.#delay = 0;
    const attempts = this.#attempts;
    this.#log().warn(
      `Writing to log file "${this.#path}" again after ${attempts} failed ${
        attempts === 1 ? "attempt" : "attempts"
      }${
        this.#droppedNow > 0
          ? `; ${this.#droppedNow} lines were dropped meanwhile (${this.dropped} in all)`
          : "; no line was lost"
      }`,
    );
  }

  /** Counts `count` lines that will never be written; logs the first of an outage. */
  drop(count: number): void {
    if (count === 0) return;
    if (this.#droppedNow === 0 && this.#delay > 0) {
      this.#log().error(
        `Cannot keep more lines for log file "${this.#path}": ${this.#backlogBytes} bytes wait while writes fail; dropping the lines that arrive until a write works (counted in stats.dropped)`,
      );
    }
    this.dropped += count;
    this.#droppedNow += count;
  }

  /** Counts `count` lines given up at the stop, which reports them itself. */
  abandon(count: number): void {
    this.dropped += count;
    this.#droppedNow += count;
  }

  /** Forgets the current outage (after a restart), keeping the totals. */
  reset(): void {
    this.#delay = 0;
  }
}
