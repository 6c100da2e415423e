/**
 * The log-file service: appends what is published on `log://<path>` to the
 * file at `<path>`, one JSON line per message.
 *
 * @module
 */

import { Service } from "../service.ts";
import type { Logger, MessageMeta, ServiceContext } from "../types.ts";
import { LogFile } from "./file.ts";
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
  /** Lines lost because a write failed (disk full, file removed, …); each failure is logged. */
  failed: number;
}

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
 *   `<path>` becomes `<path>.1` (`.1` becomes `.2`, …, up to `keep`); no
 *   line is ever split or lost, and a line longer than `maxBytes` goes alone
 *   into a fresh file.
 *
 * Permissions: read and write for `path` (and, with rotation, for its
 * rotated files).
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
  /** The write in flight, if any. */
  #writing: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #turnEndQueued = false;
  /** The interval ran out while a write was in flight. */
  #due = false;
  #closed = false;
  #late = 0;
  #failedStreak = 0;
  readonly #rejections: Rejections;
  readonly #stats: LogFileStats = {
    lines: 0,
    bytes: 0,
    writes: 0,
    rejected: 0, // counted by #rejections
    rotations: 0,
    failed: 0,
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
  }

  /**
   * What the service has done so far: a copy, read in the service's own
   * pool. The rejection count also shows in `topology()` (see
   * {@linkcode rejectedLogQueue}).
   */
  get stats(): LogFileStats {
    return { ...this.#stats, rejected: this.#rejections.total };
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
    this.#rejections.open();
    const { maxBytes, keep, fsync } = this.#options;
    this.#file = await LogFile.open(this.path, { maxBytes, keep, fsync });
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
   * Writes every line still waiting, closes the file and logs the last
   * rejection summary.
   *
   * @param _ctx The service's context.
   */
  override async terminate(_ctx: ServiceContext): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#writing !== undefined || this.#pending.length > 0) {
      await this.#flush();
    }
    this.#rejections.close();
    const file = this.#file;
    this.#file = undefined;
    await file?.close();
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

  /**
   * Starts writing the pending lines unless a write is in flight; resolves
   * when the write in flight (this one or the earlier one) is done. Never
   * rejects: a failed write is counted and logged.
   */
  #flush(): Promise<void> {
    if (this.#writing !== undefined) return this.#writing;
    if (this.#pending.length === 0) return Promise.resolve();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due = false;
    const lines = this.#pending;
    this.#pending = [];
    this.#pendingSize = 0;
    this.#writing = this.#write(lines).finally(() => {
      this.#writing = undefined;
      if (this.#due || this.#pendingSize >= this.#options.bufferBytes) {
        void this.#flush();
      }
    });
    return this.#writing;
  }

  async #write(lines: string[]): Promise<void> {
    const file = this.#file!;
    const bytes = encoder.encode(lines.join("\n") + "\n");
    const before = file.rotations;
    try {
      await file.append(bytes);
      this.#stats.lines += lines.length;
      this.#stats.bytes += bytes.length;
      this.#stats.writes++;
      this.#failedStreak = 0;
    } catch (error) {
      // Lines written before a failure inside a rotation are counted as
      // lost too: the count errs on the side of caution.
      this.#stats.failed += lines.length;
      if (this.#failedStreak++ === 0) {
        this.#log.error(
          `Cannot write to log file "${this.path}": ${
            describe(error)
          }; ${lines.length} lines lost (further failures are counted in stats.failed until a write succeeds)`,
        );
      }
    } finally {
      this.#stats.rotations += file.rotations - before;
    }
  }

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
