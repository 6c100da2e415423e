/**
 * The outages of the remote carrier (NATS), as the primary logs them: one
 * line when the first of the pools' connections goes down, one when the
 * last is back, and a refusal for good (credentials, TLS) ends the run.
 *
 * @module
 */
import {
  deserializeError,
  type SerializedError,
  ServiceError,
} from "../errors.ts";
import { ServiceErrorEvent } from "../error_event.ts";
import type { RemoteStatus } from "../transport/remote.ts";
import type { Logger } from "../logger.ts";
import type { ServiceFailure } from "../run_report.ts";
import type { ErrorEvents } from "./error_events.ts";

/** The pools' connections to other processes, as one outage log. */
export class RemoteOutages {
  /** NATS refused a pool's connection for good: the run ends with these. */
  readonly refusals: ServiceFailure[] = [];
  readonly #log: Logger;
  readonly #errors: ErrorEvents;
  readonly #requestStop: (reason: string) => void;
  /** The pools' NATS connections that are down: `<pool>/<link>`. */
  #down = new Set<string>();
  #downSince = 0;

  constructor(
    log: Logger,
    errors: ErrorEvents,
    requestStop: (reason: string) => void,
  ) {
    this.#log = log;
    this.#errors = errors;
    this.#requestStop = requestStop;
  }

  /**
   * Logs a NATS outage once for the whole process (however many pools and
   * connections see it) and its end once, when every connection is back.
   */
  status(pool: string, change: RemoteStatus): void {
    if (change.refused !== undefined) {
      this.#refused(pool, change.refused);
      return;
    }
    const key = `${pool}/${change.link}`;
    if (!change.up) {
      if (this.#down.has(key)) return;
      if (this.#down.size === 0) {
        this.#downSince = Date.now();
        this.#log.warn(
          `NATS: ${change.detail} (pool "${pool}"); reconnecting. What this program publishes meanwhile is held and sent in order once it is back; what others publish meanwhile does not reach it`,
        );
      }
      this.#down.add(key);
      return;
    }
    if (!this.#down.delete(key) || this.#down.size > 0) return;
    const seconds = ((Date.now() - this.#downSince) / 1000).toFixed(1);
    this.#log.info(
      `NATS: connected again to ${change.detail} after ${seconds} s`,
    );
  }

  /** Pool `pool` died: its connections are gone with it, not down. */
  poolGone(pool: string): void {
    for (const key of this.#down) {
      if (key.startsWith(`${pool}/`)) this.#down.delete(key);
    }
  }

  /**
   * NATS refused a pool's connection (credentials, TLS): no retry or restart
   * cures that, so the run ends, and its report names the error (once,
   * however many pools met it).
   */
  #refused(pool: string, refusal: SerializedError): void {
    const message = `${refusal.name}: ${refusal.message}`;
    if (this.refusals.some((failure) => failure.message === message)) {
      return;
    }
    this.refusals.push({ pool, service: "*", message });
    const error = new ServiceError(
      pool,
      "*",
      "uncaught",
      deserializeError(refusal),
    );
    this.#errors.emit(new ServiceErrorEvent(error), {
      level: "error",
      pool,
      message: `${message}; stopping`,
      time: Date.now(),
    });
    this.#requestStop(`NATS refused the connection of pool "${pool}"`);
  }
}
