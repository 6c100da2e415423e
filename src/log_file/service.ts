/**
 * The log-file service: appends what is published on `log://<path>` to the
 * file at `<path>`, one JSON line per message.
 *
 * @module
 */

import { Service } from "../service.ts";
import type { Logger } from "../logger.ts";
import type { MessageMeta, ServiceContext } from "../service_context.ts";
import { errorMessage } from "../_util/error_text.ts";
import { LogFile, LogFileWriteError } from "./file.ts";
import { Outage, RETRY_FIRST } from "./outage.ts";
import { Rejections } from "./rejections.ts";
import {
  type LogFileServiceOptions,
  logQueue,
  rejectedLogQueue,
  type ResolvedLogFileOptions,
  resolveLogFileOptions,
} from "./options.ts";

/**
 * What a {@linkcode LogFileService} has done so far (see
 * {@linkcode LogFileService.stats}).
 */
export interface LogFileStats {
  /** Lines written to the file (across rotations). */
  lines: number;
  /** Bytes written to the file. */
  bytes: number;
  /** `write` batches: each holds whole turns of messages. */
  writes: number;
  /** Messages JSON cannot carry, not written (see {@linkcode rejectedLogQueue}). */
  rejected: number;
  /** Rotations done. */
  rotations: number;
  /** Rotations that failed (the file was written on, the rotation tried again later). */
  rotationErrors: number;
  /** Write attempts that failed (disk full, …); their lines were kept for the next attempt. */
  writeErrors: number;
  /**
   * Lines never written: those arriving while writes failed and
   * `backlogBytes` already waited, and those still unwritten at the end of
   * `terminate()`. Each outage is logged; a count above 0 makes
   * `terminate()` fail, so the program's report names it.
   */
  dropped: number;
}

/** How long `terminate()` goes on retrying before it drops what waits, in ms. */
const STOP_RETRIES = 1000;

const encoder = new TextEncoder();

/**
 * The Python original's `LoggingService`: appends each message published
 * on `log://<path>` to the file at `path` as one line,
 * `JSON.stringify(data)` + `\n`, UTF-8, creating the file. Named
 * `LogFileService:<path>`, as in the original.
 *
 * - **Batched**: lines wait in memory and are written every
 *   `flushInterval` (default 5 s), or at the end of the turn in which
 *   `bufferBytes` (1 MiB) of them piled up; what arrives in one turn is
 *   never split between writes (except by a rotation). With `fsync: true`
 *   each write is followed by `syncData()`.
 * - **Nothing acknowledged is lost at a graceful stop**: the framework hands
 *   every message published before the stop to the service before its
 *   `terminate()`, which writes them all. Declare the service's pool
 *   *before* the pools that log to it, so that it stops after them.
 * - **Data JSON cannot carry** (a `BigInt`, a cycle, `undefined`) is not
 *   written: it is republished on `log-rejected://<path>` (see
 *   {@linkcode rejectedLogQueue}), where the service counts it: the first of
 *   each kind (queue, publisher, reason) is logged as an error, repeats are
 *   summed up once per `flushInterval`, and the count is the `delivered` of
 *   the service's subscription to that queue in `topology()`. The service
 *   keeps running.
 * - **A file that cannot be opened** (permission, missing folder) fails
 *   `initialize()`, which puts the service in `error` with a message naming
 *   the path.
 * - **Rotation** (`maxBytes`): before a write would make the file larger,
 *   `<path>` becomes `<path>.1` (`.1` becomes `.2`, …, up to `keep`; only
 *   the rotated files that exist are renamed); no line is ever split or
 *   lost, and a line longer than `maxBytes` goes alone into a fresh file. A
 *   rotation that fails (a rename refused) is logged and counted
 *   (`stats.rotationErrors`); the service writes on to the same file and
 *   tries again once it has grown by another `maxBytes`.
 * - **A write that fails** (a full disk, …) never leaves part of a line:
 *   the file is truncated back to its last whole line. What was not written
 *   waits in memory, in order, and is retried after 50 ms, then twice as
 *   long each time up to 5 s. At most `backlogBytes` (16 MiB) wait; lines
 *   arriving past that are dropped and counted (`stats.dropped`), one log
 *   line an outage. `terminate()` retries for about 1 s more, drops what is
 *   still unwritten, and fails with `Cannot write <n> lines to log file …`
 *   when any line was dropped: the run's report names it and the program
 *   exits with code 1.
 *
 * Permissions: read and write for `path` (and, with rotation, for its
 * folder, which a rotation lists).
 *
 * @example The original's `dump_to_file` example
 * ```ts ignore
 * import {
 *   Main,
 *   Service,
 *   type ServiceContext,
 *   ServiceStatus,
 * } from "@magic/foundation";
 * import { LogFileService, logQueue } from "@magic/foundation/log-file";
 *
 * class Producer extends Service {
 *   override async run(ctx: ServiceContext): Promise<void> {
 *     let index = 0;
 *     while (this.status === ServiceStatus.running) {
 *       await ctx.publish(logQueue("dump.jsonl"), { index: index++ });
 *       await ctx.sleep(100);
 *     }
 *   }
 * }
 *
 * if (import.meta.main) {
 *   const main = Main.instance();
 *   main.servicePools = {
 *     background: [() => new LogFileService({ path: "dump.jsonl" })],
 *     main: [() => new Producer("Producer")],
 *   };
 *   await main.run();
 * }
 * ```
 *
 * @example Options are checked when the service is created
 * ```ts
 * import { LogFileService } from "@magic/foundation/log-file";
 * import assert from "node:assert/strict";
 *
 * const service = new LogFileService({ path: "app.jsonl" });
 * assert.equal(service.name, "LogFileService:app.jsonl");
 * assert.equal(service.queue, "log://app.jsonl");
 * assert.throws(() => new LogFileService({ path: "" }), TypeError);
 * assert.throws(
 *   () => new LogFileService({ path: "app.jsonl", flushInterval: -1 }),
 *   {
 *     name: "RangeError",
 *     message:
 *       "Cannot create LogFileService: flushInterval must be a number > 0, got -1",
 *   },
 * );
 * ```
 */
export class LogFileService extends Service {
  /** The file's path, exactly as given. */
  readonly path: string;
  /** The queue the service listens on: `log://<path>`. */
  readonly queue: string;
  /** Where messages JSON cannot carry go: `log-rejected://<path>`. */
  readonly rejectedQueue: string;

  readonly #options: ResolvedLogFileOptions;
  #ctx: ServiceContext | undefined;
  #file: LogFile | undefined;
  /** Lines waiting to be written, without their `\n`. */
  #pending: string[] = [];
  /** UTF-16 length of the pending lines plus their newlines (≈ bytes for ASCII). */
  #pendingSize = 0;
  /** The write in flight, if any, and its size in bytes. */
  #writing: Promise<void> | undefined;
  #writingBytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #turnEndQueued = false;
  /** The interval ran out while a write was in flight. */
  #due = false;
  #closed = false;
  #late = 0;
  /** Whole lines a failed write left, encoded: written before `#pending`. */
  #backlog: Uint8Array | undefined;
  #backlogLines = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #outage: Outage;
  /** Failed rotations since the last one that worked. */
  #rotationStreak = 0;
  readonly #rejections: Rejections;
  readonly #stats: LogFileStats = {
    lines: 0,
    bytes: 0,
    writes: 0,
    rejected: 0, // counted by #rejections
    rotations: 0,
    rotationErrors: 0,
    writeErrors: 0,
    dropped: 0, // counted by #outage
  };

  /**
   * Creates the service; the file is opened in `initialize()`.
   *
   * @param options See {@linkcode LogFileServiceOptions}.
   * @throws {TypeError} When `path` is not a non-empty string that can be a queue name, or an option has the wrong type.
   * @throws {RangeError} When a number is out of range.
   */
  constructor(options: LogFileServiceOptions) {
    const resolved = resolveLogFileOptions(options);
    super(`LogFileService:${resolved.path}`, resolved.service);
    this.#options = resolved;
    this.path = resolved.path;
    this.queue = logQueue(resolved.path);
    this.rejectedQueue = rejectedLogQueue(resolved.path);
    this.#rejections = new Rejections(
      resolved.path,
      resolved.flushInterval,
      () => this.#log,
    );
    this.#outage = new Outage(
      resolved.path,
      resolved.backlogBytes,
      () => this.#log,
    );
  }

  /**
   * What the service has done so far: a copy, read in the service's own
   * pool. The rejection count also shows in `topology()` (see
   * {@linkcode rejectedLogQueue}).
   */
  get stats(): LogFileStats {
    return {
      ...this.#stats,
      rejected: this.#rejections.total,
      dropped: this.#outage.dropped,
    };
  }

  /**
   * Opens the file (creating it) and subscribes to `log://<path>` and
   * `log-rejected://<path>`.
   *
   * @param ctx The service's context.
   * @throws {Error} When the file cannot be opened; the message names the path.
   */
  override async initialize(ctx: ServiceContext): Promise<void> {
    this.#ctx = ctx;
    // Fresh state: after a restart, initialize() runs again on this object.
    this.#closed = false;
    this.#late = 0;
    this.#outage.reset();
    this.#rotationStreak = 0;
    this.#rejections.open();
    const { maxBytes, keep, fsync } = this.#options;
    this.#file = await LogFile.open(this.path, {
      maxBytes,
      keep,
      fsync,
      onRotationError: this.#onRotationError,
    });
    try {
      await ctx.subscribe(this.queue, this.#onMessage);
      await ctx.subscribe(this.rejectedQueue, this.#onRejected);
    } catch (error) {
      const file = this.#file;
      this.#file = undefined;
      await file.close();
      throw error;
    }
  }

  /** Nothing to do: the service works in its message handlers. */
  override run(): void {}

  /**
   * Writes every line still waiting (retrying for about 1 s while writes
   * fail), closes the file and logs the last rejection summary.
   *
   * @param _ctx The service's context.
   * @throws {Error} When lines were dropped during the run or now
   * (`Cannot write <n> lines to log file "<path>": …`), after closing the file.
   */
  override async terminate(_ctx: ServiceContext): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    let waited = 0;
    for (let delay = RETRY_FIRST; !await this.#drain(); delay *= 2) {
      if (waited + delay > STOP_RETRIES) {
        this.#outage.abandon(this.#backlogLines + this.#pending.length);
        this.#backlog = undefined;
        this.#backlogLines = 0;
        this.#pending = [];
        this.#pendingSize = 0;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      waited += delay;
    }
    this.#rejections.close();
    const file = this.#file;
    this.#file = undefined;
    await file?.close();
    const { dropped, reason } = this.#outage;
    if (dropped > 0) {
      throw new Error(
        `Cannot write ${dropped} lines to log file "${this.path}": they were dropped while writes failed (${reason}); stats.dropped counts them`,
      );
    }
  }

  /**
   * Writes until nothing waits (true) or an attempt fails (false), ignoring
   * the retry timer.
   */
  async #drain(): Promise<boolean> {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    while (this.#writing !== undefined || this.#waiting()) {
      if (this.#writing !== undefined) {
        await this.#writing;
        continue;
      }
      const failed = this.#stats.writeErrors;
      await this.#flush();
      if (this.#stats.writeErrors > failed) return false;
    }
    return true;
  }

  // ---- lines -------------------------------------------------------------

  #onMessage = (data: unknown, meta: MessageMeta): void | Promise<void> => {
    let line: string | undefined;
    try {
      line = JSON.stringify(data);
    } catch (error) {
      return this.#reject(data, meta, describe(error));
    }
    if (line === undefined) {
      return this.#reject(data, meta, `${typeof data} is not JSON`);
    }
    if (this.#file === undefined) {
      this.#lateMessage();
      return;
    }
    if (
      this.#outage.failing &&
      this.#waitingBytes() >= this.#options.backlogBytes
    ) {
      this.#outage.drop(1);
      return;
    }
    this.#pending.push(line);
    this.#pendingSize += line.length + 1;
    if (this.#timer === undefined && !this.#closed) {
      this.#timer = setTimeout(this.#onTimer, this.#options.flushInterval);
    }
    if (this.#pendingSize < this.#options.bufferBytes) return;
    // Backpressure: with a write in flight and a full buffer waiting, take
    // no more until that write is done (publishers then wait on the bus).
    if (this.#writing !== undefined) return this.#writing;
    if (!this.#turnEndQueued) {
      // The subscription hands over what it holds synchronously, so a
      // microtask runs once the turn's messages are all pending.
      this.#turnEndQueued = true;
      queueMicrotask(this.#onTurnEnd);
    }
  };

  #onTurnEnd = (): void => {
    this.#turnEndQueued = false;
    void this.#flush();
  };

  #onTimer = (): void => {
    this.#timer = undefined;
    // With a write in flight, #flush() cannot start one: #due makes the
    // end of that write start it.
    this.#due = true;
    void this.#flush();
  };

  #onRetry = (): void => {
    this.#retryTimer = undefined;
    void this.#flush();
  };

  #waiting(): boolean {
    return this.#backlog !== undefined || this.#pending.length > 0;
  }

  /** About how many bytes wait in memory, the write in flight included. */
  #waitingBytes(): number {
    return this.#writingBytes + (this.#backlog?.length ?? 0) +
      this.#pendingSize;
  }

  /**
   * Starts writing what waits (the backlog, then the pending lines) unless
   * a write is in flight or a retry is due later; resolves when the write in
   * flight (this one or the earlier one) is done. Never rejects: a failed
   * write is counted, logged and retried.
   */
  #flush(): Promise<void> {
    if (this.#writing !== undefined) return this.#writing;
    if (this.#retryTimer !== undefined || !this.#waiting()) {
      return Promise.resolve();
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due = false;
    let bytes = this.#backlog ?? new Uint8Array();
    const count = this.#backlogLines + this.#pending.length;
    if (this.#pending.length > 0) {
      const fresh = encoder.encode(this.#pending.join("\n") + "\n");
      bytes = this.#backlog === undefined ? fresh : concat(bytes, fresh);
    }
    this.#backlog = undefined;
    this.#backlogLines = 0;
    this.#pending = [];
    this.#pendingSize = 0;
    this.#writingBytes = bytes.length;
    this.#writing = this.#write(bytes, count).finally(() => {
      this.#writing = undefined;
      this.#writingBytes = 0;
      if (this.#due || this.#pendingSize >= this.#options.bufferBytes) {
        void this.#flush();
      }
    });
    return this.#writing;
  }

  /** Writes `count` lines; keeps what a failure left for the next attempt. */
  async #write(bytes: Uint8Array, count: number): Promise<void> {
    const file = this.#file!;
    const before = file.rotations;
    try {
      await file.append(bytes);
      this.#wrote(bytes.length, count);
      this.#outage.recovered();
    } catch (error) {
      const written = error instanceof LogFileWriteError ? error.written : 0;
      const lines = countLines(bytes, written);
      this.#wrote(written, lines);
      this.#backlog = written < bytes.length
        ? bytes.subarray(written)
        : undefined;
      this.#backlogLines = count - lines;
      this.#stats.writeErrors++;
      const cause = error instanceof LogFileWriteError ? error.cause : error;
      const delay = this.#outage.failed(errorMessage(cause), count - lines);
      if (!this.#closed) {
        this.#retryTimer = setTimeout(this.#onRetry, delay);
      }
    } finally {
      this.#stats.rotations += file.rotations - before;
    }
    if (file.rotations > before && this.#rotationStreak > 0) {
      this.#log.info(
        `Rotated log file "${this.path}" again after ${this.#rotationStreak} failed rotations`,
      );
      this.#rotationStreak = 0;
    }
  }

  #wrote(bytes: number, lines: number): void {
    if (lines === 0) return;
    this.#stats.lines += lines;
    this.#stats.bytes += bytes;
    this.#stats.writes++;
  }

  #onRotationError = (error: Error): void => {
    this.#stats.rotationErrors++;
    if (this.#rotationStreak++ === 0) {
      this.#log.error(
        `${error.message}; writing on to it, trying again once it grows by maxBytes (further failures are counted in stats.rotationErrors until a rotation works)`,
      );
    }
  };

  #lateMessage(): void {
    if (this.#late++ === 0) {
      this.#log.warn(
        `A message on "${this.queue}" arrived after the file was closed and was not written: declare the pool of ${this.name} before the pools that log to it, so that it stops after them`,
      );
    }
  }

  // ---- rejections --------------------------------------------------------

  async #reject(
    data: unknown,
    meta: MessageMeta,
    reason: string,
  ): Promise<void> {
    try {
      await this.#ctx!.publish(this.rejectedQueue, data, {
        headers: {
          queue: meta.queue,
          pool: meta.from.pool,
          service: meta.from.service,
          reason,
        },
      });
    } catch (error) {
      // Cannot happen while the pool runs (the data came through the bus),
      // but a rejection must never go unseen.
      const { pool, service } = meta.from;
      this.#rejections.count({ queue: meta.queue, pool, service, reason });
      this.#log.error(
        `Cannot republish a rejected message on "${this.rejectedQueue}": ${
          describe(error)
        }`,
      );
    }
  }

  #onRejected = (_data: unknown, meta: MessageMeta): void => {
    const headers = meta.headers ?? {};
    this.#rejections.count({
      queue: headers.queue ?? meta.queue,
      pool: headers.pool ?? meta.from.pool,
      service: headers.service ?? meta.from.service,
      reason: headers.reason ?? "unknown reason",
    });
  };

  get #log(): Logger {
    return this.#ctx!.log;
  }
}

/** `Name: message` on one line (V8's cycle message spans several). */
function describe(error: unknown): string {
  const text = error instanceof Error
    ? `${error.name}: ${error.message}`
    : String(error);
  return text.replace(/\s+/g, " ");
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  return both;
}

/** The number of `\n` in the first `end` bytes. */
function countLines(bytes: Uint8Array, end: number): number {
  let count = 0;
  for (
    let i = bytes.indexOf(0x0a);
    i !== -1 && i < end;
    i = bytes.indexOf(0x0a, i + 1)
  ) {
    count++;
  }
  return count;
}
