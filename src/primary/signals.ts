/**
 * The stop signals (Ctrl-C, `SIGTERM`): the first asks for an ordered stop,
 * a second one exits at once. Only the main thread listens; a listener in a
 * worker would swallow Ctrl-C.
 *
 * @module
 */
import type { Logger } from "../logger.ts";

/** A stop signal repeated within this many ms is the same request, not "exit at once". */
const SIGNAL_REPEAT_MS = 250;

/** The primary's listeners for the stop signals. */
export class StopSignals {
  readonly #log: Logger;
  readonly #requestStop: (reason: string) => void;
  readonly #stopping: () => boolean;
  /** When the first stop signal arrived; a repeat soon after is the same request. */
  #firstSignalAt: number | undefined;
  #listeners: Array<[Deno.Signal, () => void]> = [];

  /**
   * @param requestStop Asks for the ordered stop.
   * @param stopping Whether the ordered stop has begun.
   */
  constructor(
    log: Logger,
    requestStop: (reason: string) => void,
    stopping: () => boolean,
  ) {
    this.#log = log;
    this.#requestStop = requestStop;
    this.#stopping = stopping;
  }

  /** Listens for `SIGINT` (and `SIGTERM`, but on Windows). */
  listen(): void {
    const signals: Deno.Signal[] = Deno.build.os === "windows"
      ? ["SIGINT"]
      : ["SIGINT", "SIGTERM"];
    for (const signal of signals) {
      let seen = false;
      const listener = (): void => {
        const now = Date.now();
        const first = this.#firstSignalAt;
        if (first !== undefined && now - first < SIGNAL_REPEAT_MS) {
          // GNU timeout and some process managers signal the process and
          // its group: two signals microseconds apart are one request.
          this.#log.debug(
            `${signal} again ${
              now - first
            } ms after the first: the same request`,
          );
          return;
        }
        this.#firstSignalAt ??= now;
        if (seen || this.#stopping()) {
          this.#log.warn(`${signal} again: exiting now`);
          Deno.exit(signal === "SIGINT" ? 130 : 143);
        }
        seen = true;
        this.#requestStop(
          `${signal} received (send it again to exit at once)`,
        );
      };
      Deno.addSignalListener(signal, listener);
      this.#listeners.push([signal, listener]);
    }
  }

  /** Removes the listeners. */
  close(): void {
    for (const [signal, listener] of this.#listeners) {
      Deno.removeSignalListener(signal, listener);
    }
    this.#listeners = [];
  }
}
