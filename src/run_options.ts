/**
 * The options of a run, and their resolution from the arguments and the
 * environment: one place for the checks and defaults that `main.run()` and
 * the test bed share ({@linkcode resolveCommonSettings}), and the rest of
 * `main.run()`'s ({@linkcode resolveRunOptions}).
 *
 * @module
 */
import { errorMessage } from "./_util/error_text.ts";
import { checkDuration } from "./_util/duration.ts";
import { readEnv } from "./_util/env.ts";
import { checkHandlerTiming } from "./bus/counters.ts";
import { StateError } from "./errors.ts";
import {
  consoleSink,
  type LogLevel,
  type LogRecord,
  resolveLogLevel,
} from "./logger.ts";
import {
  type NatsOptions,
  type NatsSettings,
  resolveNats,
} from "./nats/options.ts";
import { type DurableOptions, resolveDurable } from "./durable/options.ts";
import { POOL_WORKER_HASH } from "./pool/boot.ts";
import type { PrimarySettings } from "./primary/primary.ts";
import { TRANSPORT_KINDS, type TransportKind } from "./transport/kinds.ts";
import type { HandlerTiming } from "./metrics_snapshot.ts";

/** Options of {@linkcode Main.run}. All are optional. */
export interface RunOptions {
  /**
   * The module each pool's worker executes; it must declare the same pools
   * and call `main.run()` under `if (import.meta.main)`. Default: the
   * program's main module.
   */
  module?: string | URL;
  /**
   * Data for the workers, read there as `Main.workerData` (also while the
   * module is evaluated): any value `structuredClone` copies.
   */
  workerData?: unknown;
  /**
   * What carries messages between pools: `"ports"`, a MessagePort between
   * each pair of pools (the default, and the fastest measured), or
   * `"broadcast"`, one BroadcastChannel for the run (every pool wakes for
   * every batch; see docs/bus.md). Default: `MAGIC_FOUNDATION_TRANSPORT`,
   * else `"ports"`.
   */
  transport?: TransportKind;
  /**
   * Joins the program to every other program on the same NATS server and
   * namespace: the same queues across processes and machines (see the
   * docs/nats.md). Default: `MAGIC_FOUNDATION_NATS`
   * (comma-separated servers), else none (nothing about NATS is loaded).
   */
  nats?: NatsOptions;
  /**
   * Durable queues: these queues (names or patterns) are stored on a local
   * write-ahead log and delivered at least once, across crashes and
   * restarts (see docs/durable.md). Default:
   * `MAGIC_FOUNDATION_DURABLE` (comma-separated patterns) and
   * `MAGIC_FOUNDATION_DURABLE_DIR`, else none.
   */
  durable?: DurableOptions;
  /** Stop on SIGINT/SIGTERM (a second one exits at once). Default `true`. */
  signals?: boolean;
  /** Set `Deno.exitCode = 1` when a service ended in `error`. Default `true`. */
  setExitCode?: boolean;
  /** The longest a `terminate()` (and the stop of `run()`) may take, in ms. Default 5000. */
  terminateTimeout?: number;
  /** How long a pool's event loop may stay blocked before it is reported, in ms. Default 1000. */
  stallThreshold?: number;
  /** How long a subscription may go without starting a handler while messages wait for it before it is reported as stuck, in ms. Default 5000. */
  stuckThreshold?: number;
  /** How long a worker may take to call `main.run()`, in ms. Default 60 000. */
  startTimeout?: number;
  /**
   * Which handler calls are timed for the handler-time histogram
   * (`magic_foundation_handler_duration_seconds`): `"sampled"` (one call in 32), `"every"` or `"off"`; see
   * {@linkcode HandlerTiming}. Default `"sampled"`.
   */
  handlerTiming?: HandlerTiming;
  /** The default buffer of a subscription, in messages. Default 1024. */
  bufferSize?: number;
  /** The log level. Default: `MAGIC_FOUNDATION_LOG`, else `info`. */
  logLevel?: LogLevel;
  /** Where log lines go. Default: the console, one formatted line each. */
  logSink?: (record: LogRecord) => void;
}

/** What `main.run()` and the test bed resolve alike. */
export interface CommonSettings {
  transport: TransportKind;
  terminateTimeout: number;
  startTimeout: number;
  stuckThreshold: number;
  handlerTiming: HandlerTiming;
  bufferSize: number;
  logLevel: LogLevel;
}

/** The defaults that differ between `main.run()` and the test bed. */
export interface CommonDefaults {
  terminateTimeout: number;
  startTimeout: number;
  /** The log level when none is given (else `MAGIC_FOUNDATION_LOG`, else `info`). */
  logLevel?: LogLevel;
  /** Whether `MAGIC_FOUNDATION_TRANSPORT` is read when no transport is given. */
  transportFromEnv: boolean;
}

/**
 * Checks and completes the options that `main.run()` and the test bed
 * share; `where` starts each error message.
 *
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When a duration or `bufferSize` is out of range.
 */
export function resolveCommonSettings(
  where: string,
  options: Pick<RunOptions, keyof CommonSettings>,
  defaults: CommonDefaults,
): CommonSettings {
  const duration = (
    name: string,
    value: number | undefined,
    fallback: number,
  ): number => checkDuration(where, name, value ?? fallback);
  return {
    transport: resolveTransport(where, options.transport, defaults),
    terminateTimeout: duration(
      "terminateTimeout",
      options.terminateTimeout,
      defaults.terminateTimeout,
    ),
    startTimeout: duration(
      "startTimeout",
      options.startTimeout,
      defaults.startTimeout,
    ),
    stuckThreshold: duration("stuckThreshold", options.stuckThreshold, 5000),
    handlerTiming: checkHandlerTiming(where, options.handlerTiming),
    bufferSize: checkBufferSize(where, options.bufferSize ?? 1024),
    logLevel: resolveLogLevel(options.logLevel ?? defaults.logLevel),
  };
}

/**
 * Checks `main.run()`'s options and completes them from the environment
 * and the defaults.
 *
 * @throws {StateError} When there is no main module and no `module`.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When an option is out of range.
 */
export function resolveRunOptions(options: RunOptions): PrimarySettings {
  const where = "Cannot run";
  checkOptionTypes(options);
  const moduleSpecifier = options.module ?? Deno.mainModule;
  if (moduleSpecifier === undefined) {
    throw new StateError(
      `${where}: there is no main module; pass options.module`,
    );
  }
  const common = resolveCommonSettings(where, options, {
    terminateTimeout: 5000,
    startTimeout: 60_000,
    transportFromEnv: true,
  });
  let workerData: unknown = undefined;
  if (options.workerData !== undefined) {
    try {
      workerData = structuredClone(options.workerData);
    } catch (error) {
      throw new TypeError(
        `${where}: workerData must be a value structuredClone can copy: ${
          errorMessage(error)
        }`,
        { cause: error },
      );
    }
  }
  const nats = resolveNats(options.nats);
  const durable = resolveDurable(options.durable);
  const module = new URL(String(moduleSpecifier));
  module.hash = POOL_WORKER_HASH;
  const config = poolConfig(common);
  return {
    launch: (pool) => new Worker(module, { type: "module", name: pool }),
    workerData,
    transport: common.transport,
    remote: remoteOf(nats),
    durable,
    signals: options.signals ?? true,
    terminateTimeout: common.terminateTimeout,
    stallThreshold: checkDuration(
      where,
      "stallThreshold",
      options.stallThreshold ?? 1000,
    ),
    startTimeout: common.startTimeout,
    sink: options.logSink ?? consoleSink,
    config: durable === undefined ? config : {
      ...config,
      durable: {
        streams: durable.streams,
        groupOnly: durable.groupOnly,
        maxDeliver: durable.maxDeliver,
        backoff: durable.backoff,
      },
    },
  };
}

/** What each pool gets of the common settings, with a new run id. */
export function poolConfig(common: CommonSettings): PrimarySettings["config"] {
  return {
    logLevel: common.logLevel,
    terminateTimeout: common.terminateTimeout,
    bufferSize: common.bufferSize,
    stuckThreshold: common.stuckThreshold,
    handlerTiming: common.handlerTiming,
    runId: crypto.randomUUID(),
  };
}

/** The transport from the option, else (for a run) the environment, else `"ports"`. */
function resolveTransport(
  where: string,
  option: TransportKind | undefined,
  defaults: CommonDefaults,
): TransportKind {
  let source = "transport";
  let value: unknown = option;
  if (value === undefined) {
    if (!defaults.transportFromEnv) return "ports";
    source = "MAGIC_FOUNDATION_TRANSPORT";
    value = readEnv(source);
    if (value === undefined) return "ports";
  }
  if (!TRANSPORT_KINDS.includes(value as TransportKind)) {
    throw new TypeError(
      `${where}: ${source} must be one of ${
        TRANSPORT_KINDS.map((kind) => `"${kind}"`).join(", ")
      }, got ${JSON.stringify(value)}`,
    );
  }
  return value as TransportKind;
}

/** The checks of the options that are not durations. */
function checkOptionTypes(options: RunOptions): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot run: options must be an object");
  }
  for (const key of ["signals", "setExitCode"] as const) {
    const value = options[key];
    if (value !== undefined && typeof value !== "boolean") {
      throw new TypeError(
        `Cannot run: ${key} must be a boolean, got ${typeof value}`,
      );
    }
  }
  if (options.logSink !== undefined && typeof options.logSink !== "function") {
    throw new TypeError("Cannot run: logSink must be a function");
  }
  const module = options.module;
  if (
    module !== undefined && typeof module !== "string" &&
    !(module instanceof URL)
  ) {
    throw new TypeError("Cannot run: module must be a string or a URL");
  }
}

/** `bufferSize`, checked as `subscribe()` checks it. */
function checkBufferSize(where: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `${where}: bufferSize must be an integer >= 1, got ${String(value)}`,
    );
  }
  return value;
}

/** The carrier between processes of a run joined to NATS. */
function remoteOf(
  settings: NatsSettings | undefined,
): { kind: "nats"; settings: NatsSettings } | undefined {
  return settings === undefined ? undefined : { kind: "nats", settings };
}
