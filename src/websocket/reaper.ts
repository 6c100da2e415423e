/**
 * Drops the connections of one WebSocketService that are overdue: a close
 * that did not finish within `closeTimeout`, or unsent bytes above
 * `maxBufferedAmount` for `slowClientTimeout`. A client that never reads
 * never receives the close frame, so without this its connection would stay
 * counted (and its slot taken) for as long as the client keeps it open.
 *
 * @module
 */

import { CloseCode, type Connection } from "./connection.ts";
import { settlesWithin } from "../_util/time.ts";

/** How often at most a line about dropped connections is logged, in ms. */
export const DROP_LOG_INTERVAL = 10_000;

/** What the reaper needs from its service. */
export interface ReaperSettings {
  closeTimeout: number;
  slowClientTimeout: number;
  /** The connections to check. */
  connections: () => Iterable<Connection>;
  /** Logs a warning. */
  warn: (message: string) => void;
}

/** Checks connections on a timer, drops the overdue ones and logs a count. */
export class Reaper {
  readonly #settings: ReaperSettings;
  readonly #timer: ReturnType<typeof setInterval>;
  /** Dropped sockets whose peer has not gone away yet. */
  readonly #lingering = new Set<Promise<void>>();
  #closing = 0;
  #slow = 0;
  #lastLog = -Infinity;

  /** Starts checking, every quarter of the shorter deadline (25 ms to 1 s). */
  constructor(settings: ReaperSettings) {
    this.#settings = settings;
    const { closeTimeout, slowClientTimeout } = settings;
    const period = Math.min(
      1000,
      Math.max(25, Math.min(closeTimeout, slowClientTimeout) / 4),
    );
    this.#timer = setInterval(() => this.sweep(performance.now()), period);
  }

  /** Dropped sockets that Deno still holds (until their peer goes away). */
  get lingering(): number {
    return this.#lingering.size;
  }

  /** Drops every overdue connection; logs at most once per interval. */
  sweep(now: number): void {
    const { closeTimeout, slowClientTimeout } = this.#settings;
    for (const connection of this.#settings.connections()) {
      const why = connection.overdue(now, closeTimeout, slowClientTimeout);
      if (why === undefined) continue;
      if (why === "closing") {
        this.#closing++;
        connection.drop(1006, "Did not finish closing");
      } else {
        this.#slow++;
        connection.drop(CloseCode.policyViolation, "Slow client");
      }
      const released = connection.released.then(() => {
        this.#lingering.delete(released);
      });
      this.#lingering.add(released);
    }
    if (
      this.#closing + this.#slow > 0 && now - this.#lastLog >= DROP_LOG_INTERVAL
    ) {
      this.#lastLog = now;
      this.#log();
    }
  }

  /**
   * Stops checking; resolves once every dropped socket was released, or
   * after `ms`.
   */
  async stop(ms: number): Promise<void> {
    clearInterval(this.#timer);
    if (this.#closing + this.#slow > 0) this.#log();
    if (this.#lingering.size === 0) return;
    await settlesWithin(Promise.all(this.#lingering), ms);
  }

  #log(): void {
    const { closeTimeout, slowClientTimeout } = this.#settings;
    const parts = [];
    if (this.#closing > 0) {
      parts.push(
        `${this.#closing} did not finish closing within ${closeTimeout} ms`,
      );
    }
    if (this.#slow > 0) {
      parts.push(
        `${this.#slow} kept more than maxBufferedAmount unsent for ${slowClientTimeout} ms`,
      );
    }
    this.#settings.warn(
      `Dropped ${this.#closing + this.#slow} WebSocket connection(s): ${
        parts.join(", ")
      }; ${this.#lingering.size} socket(s) stay open until their clients go away`,
    );
    this.#closing = 0;
    this.#slow = 0;
  }
}
