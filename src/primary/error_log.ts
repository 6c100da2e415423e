import type { ServiceErrorEvent } from "../error_event.ts";
import type { LogRecord, LogSink } from "../logger.ts";

/**
 * How many errors of one kind are logged in full (with their stacks) per
 * interval. A kind is a pool, service, phase, queue and error name.
 */
const ERROR_LOG_BURST = 5;
/**
 * The interval, in ms: past the burst, errors of a kind are counted, and one
 * summary line per interval (and one at stop) gives their count.
 */
const ERROR_LOG_INTERVAL = 10_000;

/** What one kind of error did in the current interval. */
interface KindCount {
  logged: number;
  suppressed: number;
  /** The line of the last error of the kind that was not logged. */
  last: LogRecord;
}

/**
 * Decides which error lines reach the log: the first `burst` of each kind
 * of error per interval, with their stacks, then a summary line per kind at
 * the end of the interval with the count of the others. Measured before it
 * (issue 20): 100,000 throwing handler calls wrote 400,260 lines (28 MB).
 *
 * It only thins the log: every error is still an `error` event of `Main`
 * and counted in the metrics before it gets here.
 */
export class ErrorLog {
  readonly #sink: LogSink;
  readonly #burst: number;
  readonly #interval: number;
  #kinds = new Map<string, KindCount>();
  #since = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    sink: LogSink,
    burst: number = ERROR_LOG_BURST,
    interval: number = ERROR_LOG_INTERVAL,
  ) {
    this.#sink = sink;
    this.#burst = burst;
    this.#interval = interval;
  }

  /** Logs `line`, the default action of `event`, unless its kind is past the burst. */
  write(event: ServiceErrorEvent, line: LogRecord): void {
    if (this.#closed) {
      this.#sink(line);
      return;
    }
    if (this.#timer === undefined) {
      this.#since = Date.now();
      this.#timer = setTimeout(() => this.flush(), this.#interval);
    }
    const key = kindOf(event);
    let kind = this.#kinds.get(key);
    if (kind === undefined) {
      kind = { logged: 0, suppressed: 0, last: line };
      this.#kinds.set(key, kind);
    }
    if (kind.logged < this.#burst) {
      kind.logged++;
      this.#sink(kind.logged === this.#burst ? this.#withNote(line) : line);
      return;
    }
    kind.suppressed++;
    kind.last = line;
  }

  /** Ends the interval: logs each kind's summary line, and starts afresh. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const seconds = ((Date.now() - this.#since) / 1000).toFixed(1);
    for (const { suppressed, last } of this.#kinds.values()) {
      if (suppressed === 0) continue;
      this.#sink({
        ...last,
        message:
          `${suppressed} more errors like this one were not logged in the last ${seconds} s: ${
            firstLine(last.message)
          }`,
        time: Date.now(),
      });
    }
    this.#kinds.clear();
  }

  /** Logs the summaries due; later lines are logged as they come. */
  close(): void {
    this.flush();
    this.#closed = true;
  }

  /** `line` with a note, before its stack, that the next ones are counted. */
  #withNote(line: LogRecord): LogRecord {
    const first = firstLine(line.message);
    const note = ` [${this.#burst} errors like this one within ${
      this.#interval / 1000
    } s: the next ones are counted and summarised]`;
    return {
      ...line,
      message: `${first}${note}${line.message.slice(first.length)}`,
    };
  }
}

/** The kind of an error: where it happened and its name. */
function kindOf(event: ServiceErrorEvent): string {
  const cause = event.error.cause;
  const name = cause instanceof Error ? cause.name : typeof cause;
  return JSON.stringify([
    event.pool,
    event.service,
    event.phase,
    event.queue ?? "",
    name,
  ]);
}

/** The text before the first line break (the stack follows it). */
function firstLine(text: string): string {
  const end = text.indexOf("\n");
  return end === -1 ? text : text.slice(0, end);
}
