/**
 * Options of the log-file service, their defaults and their validation, and
 * the names of its queues.
 *
 * @module
 */

import type { ServiceOptions } from "../service.ts";

/**
 * How a {@linkcode LogFileService} writes its file. Only `path` is required.
 *
 * @example Rotate at 10 MiB, keep 3 old files, sync every write
 * ```ts
 * import { LogFileService } from "@magic/foundation/log-file";
 * import assert from "node:assert/strict";
 *
 * const service = new LogFileService({
 *   path: "logs/app.jsonl",
 *   flushInterval: 1000,
 *   maxBytes: 10 * 1024 * 1024,
 *   keep: 3,
 *   fsync: true,
 * });
 * assert.equal(service.name, "LogFileService:logs/app.jsonl");
 * ```
 */
export interface LogFileServiceOptions extends ServiceOptions {
  /**
   * The file to append to, relative to the working directory or absolute. The
   * service listens on `log://` followed by this exact string.
   */
  path: string;
  /**
   * Lines wait at most this long, in ms, before they are written. Default
   * 5,000, as the Python original's `flush_interval_sec=5.0`.
   */
  flushInterval?: number;
  /**
   * Once this many bytes wait, they are written at the end of the turn
   * without waiting for the interval; while a write is in flight and this
   * many more wait, the service takes no more messages (publishers wait).
   * Default 1 MiB.
   */
  bufferBytes?: number;
  /**
   * While writes fail (a full disk, …), at most about this many bytes of
   * lines wait in memory for the next attempt; a line arriving past it is
   * dropped and counted (`stats.dropped`), and the count fails the run at
   * `terminate()`. Default 16 MiB.
   */
  backlogBytes?: number;
  /** Call `fsync` (`FsFile.syncData()`) after each write. Default `false`. */
  fsync?: boolean;
  /**
   * Rotate before a write would make the file larger than this many bytes.
   * Default: never rotate.
   */
  maxBytes?: number;
  /** How many rotated files to keep (`<path>.1` is the newest). Default 5. */
  keep?: number;
}

/** {@linkcode LogFileServiceOptions} with defaults filled in and checked. */
export interface ResolvedLogFileOptions {
  path: string;
  flushInterval: number;
  bufferBytes: number;
  backlogBytes: number;
  fsync: boolean;
  maxBytes: number;
  keep: number;
  service: ServiceOptions;
}

/** The longest timer delay `setTimeout` honours (2^31 − 1 ms). */
const MAX_DELAY = 2 ** 31 - 1;
/** The bus's longest queue name. */
const MAX_QUEUE_LENGTH = 1024;
const LOG_SCHEME = "log://";
const REJECTED_SCHEME = "log-rejected://";
const WHITE_SPACE_OR_CONTROL = /[\s\p{Cc}]/u;

/**
 * The queue a {@linkcode LogFileService} for `path` listens on:
 * `log://<path>`.
 *
 * @param path The file path, exactly as given to the service.
 * @returns `"log://" + path`.
 *
 * @example Publish a line for `app.jsonl`
 * ```ts
 * import { logQueue } from "@magic/foundation/log-file";
 * import assert from "node:assert/strict";
 *
 * assert.equal(logQueue("app.jsonl"), "log://app.jsonl");
 * assert.equal(logQueue("/var/log/app.jsonl"), "log:///var/log/app.jsonl");
 * ```
 */
export function logQueue(path: string): string {
  return LOG_SCHEME + path;
}

/**
 * Where a {@linkcode LogFileService} for `path` republishes what it could
 * not write (data JSON cannot carry): `log-rejected://<path>`, with
 * `meta.headers` `queue`, `pool`, `service` (the original publisher) and
 * `reason`. The service's own subscription there counts them, so the count
 * is that subscription's `delivered` in `topology()`.
 *
 * @param path The file path, exactly as given to the service.
 * @returns `"log-rejected://" + path`.
 *
 * @example The dead-letter queue of `app.jsonl`
 * ```ts
 * import { rejectedLogQueue } from "@magic/foundation/log-file";
 * import assert from "node:assert/strict";
 *
 * assert.equal(rejectedLogQueue("app.jsonl"), "log-rejected://app.jsonl");
 * ```
 */
export function rejectedLogQueue(path: string): string {
  return REJECTED_SCHEME + path;
}

/** Checks `options` and fills in the defaults. */
export function resolveLogFileOptions(
  options: LogFileServiceOptions,
): ResolvedLogFileOptions {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot create LogFileService: options must be an object with a path, got ${
        describeValue(options)
      }`,
    );
  }
  const path = checkPath(options.path);
  const {
    flushInterval = 5000,
    bufferBytes = 1024 * 1024,
    backlogBytes = 16 * 1024 * 1024,
    fsync = false,
    maxBytes = Infinity,
    keep = 5,
  } = options;
  if (typeof flushInterval !== "number" || !(flushInterval > 0)) {
    throw new RangeError(
      `Cannot create LogFileService: flushInterval must be a number > 0, got ${
        describeValue(flushInterval)
      }`,
    );
  }
  if (flushInterval > MAX_DELAY) {
    throw new RangeError(
      `Cannot create LogFileService: flushInterval must be at most ${MAX_DELAY} ms (setTimeout's limit), got ${flushInterval}`,
    );
  }
  checkInteger("bufferBytes", bufferBytes, 1);
  checkInteger("backlogBytes", backlogBytes, 1);
  if (maxBytes !== Infinity) checkInteger("maxBytes", maxBytes, 1);
  checkInteger("keep", keep, 0);
  if (typeof fsync !== "boolean") {
    throw new TypeError(
      `Cannot create LogFileService: fsync must be a boolean, got ${
        describeValue(fsync)
      }`,
    );
  }
  const service: ServiceOptions = {};
  for (
    const key of [
      "restart",
      "maxRestarts",
      "restartWindow",
      "backoffInitial",
      "backoffMax",
    ] as const
  ) {
    if (options[key] !== undefined) {
      (service as Record<string, unknown>)[key] = options[key];
    }
  }
  return {
    path,
    flushInterval,
    bufferBytes,
    backlogBytes,
    fsync,
    maxBytes,
    keep,
    service,
  };
}

function checkPath(path: unknown): string {
  if (typeof path !== "string" || path === "") {
    throw new TypeError(
      `Cannot create LogFileService: path must be a non-empty string, got ${
        describeValue(path)
      }`,
    );
  }
  if (WHITE_SPACE_OR_CONTROL.test(path)) {
    throw new TypeError(
      `Cannot create LogFileService: path "${path}" has white space or control characters, which a queue name cannot hold`,
    );
  }
  if (path.split("/").some((segment) => segment === "*" || segment === ">")) {
    throw new TypeError(
      `Cannot create LogFileService: path "${path}" has a "*" or ">" segment, which would make its queue a pattern`,
    );
  }
  if (REJECTED_SCHEME.length + path.length > MAX_QUEUE_LENGTH) {
    throw new RangeError(
      `Cannot create LogFileService: path must have at most ${
        MAX_QUEUE_LENGTH - REJECTED_SCHEME.length
      } characters, got ${path.length}`,
    );
  }
  return path;
}

function checkInteger(name: string, value: unknown, min: number): void {
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new RangeError(
      `Cannot create LogFileService: ${name} must be an integer >= ${min}, got ${
        describeValue(value)
      }`,
    );
  }
}

function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  return String(value);
}
