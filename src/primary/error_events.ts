/**
 * Failures as `error` events of `Main`: each is dispatched, and unless a
 * listener prevents its default, logged (thinned by {@linkcode ErrorLog}).
 *
 * @module
 */
import { deserializeError, ServiceError } from "../errors.ts";
import { ServiceErrorEvent } from "../error_event.ts";
import type { LogLevel, LogRecord, LogSink } from "../logger.ts";
import type { FromPool } from "../pool/protocol.ts";
import { ErrorLog } from "./error_log.ts";

/** Dispatches the program's failures on `Main` and logs them. */
export class ErrorEvents {
  readonly #events: EventTarget;
  readonly #logLevel: LogLevel;
  /** Decides which error lines are logged (see `error_log.ts`). */
  readonly #errorLog: ErrorLog;

  constructor(events: EventTarget, sink: LogSink, logLevel: LogLevel) {
    this.#events = events;
    this.#logLevel = logLevel;
    this.#errorLog = new ErrorLog(sink);
  }

  /**
   * Dispatches a pool's failure as an `error` event of `Main`; its default
   * action logs it with the pool and the service.
   */
  fromPool(pool: string, message: Extract<FromPool, { kind: "error" }>): void {
    const cause = deserializeError(message.error);
    const error = new ServiceError(
      pool,
      message.service,
      message.phase,
      cause,
    );
    const queue = message.queue === undefined
      ? ""
      : ` (a message on "${message.queue}")`;
    const stack = cause.stack === undefined ? "" : `\n${cause.stack}`;
    this.emit(new ServiceErrorEvent(error, message.queue), {
      level: "error",
      pool,
      service: message.service === "*" ? undefined : message.service,
      message: `${error.message}${queue}${stack}`,
      time: Date.now(),
    });
  }

  /** Dispatches `event` on `Main`; unless a listener prevents it, logs `line`. */
  emit(event: ServiceErrorEvent, line: LogRecord): void {
    this.#events.dispatchEvent(event);
    if (event.defaultPrevented || this.#logLevel === "silent") return;
    this.#errorLog.write(event, line);
  }

  /** Writes the last summary lines (at stop). */
  close(): void {
    this.#errorLog.close();
  }
}
