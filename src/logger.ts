/**
 * Logging: the levels, the record a custom sink receives, the logger every
 * service gets, and the sink of the primary that writes them out.
 *
 * @module
 */
import { readEnv } from "./_util/env.ts";

/** Log levels, quietest last. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** One log line, as handed to a custom log sink. */
export interface LogRecord {
  /** The level of the line. */
  level: Exclude<LogLevel, "silent">;
  /** The pool the line comes from; absent for the primary. */
  pool?: string | undefined;
  /** The service the line comes from, when there is one. */
  service?: string | undefined;
  /** The text of the line. */
  message: string;
  /** When the line was written, in ms since the epoch. */
  time: number;
}

/** Writes log lines prefixed with the pool and the service. */
export interface Logger {
  /** Writes a line at `debug` level (hidden by default). */
  debug(message: string): void;
  /** Writes a line at `info` level. */
  info(message: string): void;
  /** Writes a line at `warn` level. */
  warn(message: string): void;
  /** Writes a line at `error` level. */
  error(message: string): void;
}

/** Where log records go: the primary's sink writes them out. */
export type LogSink = (record: LogRecord) => void;

const RANK: Record<LogLevel, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
  silent: 100,
};

/** The name of the environment variable that sets the log level. */
const LOG_LEVEL_ENV = "MAGIC_FOUNDATION_LOG";

/** Whether `value` is a {@linkcode LogLevel}. */
function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === "string" && Object.hasOwn(RANK, value);
}

/**
 * The level to use: the option if given, else `MAGIC_FOUNDATION_LOG` when it
 * may be read without a permission prompt, else `info`.
 */
export function resolveLogLevel(option: LogLevel | undefined): LogLevel {
  if (option !== undefined) {
    if (!isLogLevel(option)) {
      throw new TypeError(
        `Invalid log level "${option}": expected debug, info, warn, error or silent`,
      );
    }
    return option;
  }
  const value = readEnv(LOG_LEVEL_ENV)?.toLowerCase();
  return isLogLevel(value) ? value : "info";
}

/** Whether a record at `level` passes the threshold `threshold`. */
function enabled(level: LogLevel, threshold: LogLevel): boolean {
  return RANK[level] >= RANK[threshold];
}

/** Formats a record as one line: time, level, `[pool/service]`, message. */
function formatRecord(record: LogRecord): string {
  const where = record.pool === undefined
    ? "[main]"
    : record.service === undefined
    ? `[${record.pool}]`
    : `[${record.pool}/${record.service}]`;
  const time = new Date(record.time).toISOString();
  return `${time} ${
    record.level.toUpperCase().padEnd(5)
  } ${where} ${record.message}`;
}

/** The default sink: `info`/`debug` to stdout, `warn`/`error` to stderr. */
export function consoleSink(record: LogRecord): void {
  const line = formatRecord(record);
  // deno-lint-ignore no-console
  if (record.level === "error") console.error(line);
  // deno-lint-ignore no-console
  else if (record.level === "warn") console.warn(line);
  // deno-lint-ignore no-console
  else console.log(line);
}

/**
 * A {@linkcode Logger} that stamps `pool` and `service` on each record and
 * drops records below `threshold` before they are built.
 */
export function createLogger(
  sink: LogSink,
  threshold: LogLevel,
  pool?: string,
  service?: string,
): Logger {
  const write = (level: LogRecord["level"], message: string): void => {
    if (!enabled(level, threshold)) return;
    sink({ level, pool, service, message, time: Date.now() });
  };
  return {
    debug: (message) => write("debug", message),
    info: (message) => write("info", message),
    warn: (message) => write("warn", message),
    error: (message) => write("error", message),
  };
}
