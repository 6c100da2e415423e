import { StateError } from "./errors.ts";
import { consoleSink, resolveLogLevel } from "./logger.ts";
import { readEnv } from "./_util/env.ts";
import { boot, isPoolWorker } from "./pool/boot.ts";
import { runWorker } from "./pool/worker_main.ts";
import { workerScope } from "./pool/worker_scope.ts";
import { TRANSPORT_KINDS, type TransportKind } from "./transport/transport.ts";
import {
  Primary,
  type PrimarySettings,
  type RunReport,
} from "./primary/primary.ts";
import { Service, type ServiceEntry } from "./service.ts";
import type { LogLevel, LogRecord, Topology } from "./types.ts";

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
   * every batch; see the README). Default: `MAGIC_FOUNDATION_TRANSPORT`,
   * else `"ports"`.
   */
  transport?: TransportKind;
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
  /** The default buffer of a subscription, in messages. Default 1024. */
  bufferSize?: number;
  /** The log level. Default: `MAGIC_FOUNDATION_LOG`, else `info`. */
  logLevel?: LogLevel;
  /** Where log lines go. Default: the console, one formatted line each. */
  logSink?: (record: LogRecord) => void;
}

/** The pools of a program: pool name → its services (or factories). */
export type ServicePools = Record<string, ServiceEntry[]>;

let singleton: Main | undefined;

/**
 * The program: its pools, and the runner that starts one Web Worker per pool
 * and stops them all on SIGINT/SIGTERM or `stop()`. Events: `status`
 * (`CustomEvent<StatusChange>`) whenever a service changes status.
 *
 * Workers re-execute the program's main module, as `node:cluster` does: in a
 * worker the same `if (import.meta.main)` block runs, and `main.run()` starts
 * only that worker's pool. Guard other top-level side effects with
 * {@linkcode Main.isPrimary}.
 *
 * @example Two pools
 * ```ts ignore
 * import { Main, Service, type ServiceContext } from "@magic/foundation";
 *
 * class Hello extends Service {
 *   override run(ctx: ServiceContext): void {
 *     ctx.log.info("hello");
 *   }
 * }
 *
 * if (import.meta.main) {
 *   const main = Main.instance();
 *   main.servicePools = { a: [new Hello("a")], b: [() => new Hello("b")] };
 *   await main.run();
 * }
 * ```
 */
export class Main extends EventTarget {
  /** Pool name → services (or factories, built only in the pool's worker). */
  servicePools: ServicePools = {};
  #primary: Primary | undefined;
  #running = false;

  /**
   * The program's one `Main`.
   *
   * @example
   * ```ts
   * import { Main } from "@magic/foundation";
   * import assert from "node:assert/strict";
   *
   * assert.equal(Main.instance(), Main.instance());
   * ```
   */
  static instance(): Main {
    return singleton ??= new Main();
  }

  /**
   * `true` in the main thread, `false` in a pool's worker.
   *
   * @example
   * ```ts
   * import { Main } from "@magic/foundation";
   * import assert from "node:assert/strict";
   *
   * assert.equal(Main.isPrimary, true);
   * ```
   */
  static get isPrimary(): boolean {
    return !isPoolWorker();
  }

  /**
   * The pool this worker runs, or `undefined` in the main thread.
   *
   * @example
   * ```ts
   * import { Main } from "@magic/foundation";
   * import assert from "node:assert/strict";
   *
   * assert.equal(Main.poolName, undefined);
   * ```
   */
  static get poolName(): string | undefined {
    return boot?.pool;
  }

  /**
   * The `workerData` of the run (in a worker), available while the main
   * module is evaluated; `undefined` in the main thread.
   *
   * @example
   * ```ts
   * import { Main } from "@magic/foundation";
   * import assert from "node:assert/strict";
   *
   * assert.equal(Main.workerData, undefined);
   * ```
   */
  static get workerData(): unknown {
    return boot?.workerData;
  }

  /**
   * Resolves once every pool has initialized and started `run()`.
   *
   * @throws {StateError} When the program is not running.
   */
  get ready(): Promise<void> {
    if (this.#primary === undefined) {
      return Promise.reject(
        new StateError("Cannot wait for ready: main.run() has not been called"),
      );
    }
    return this.#primary.ready.promise;
  }

  /**
   * Runs the program. In the main thread: starts one worker per pool and
   * resolves with a report once everything has stopped. In a pool's worker:
   * runs that pool.
   *
   * @param options How to run; see {@linkcode RunOptions}.
   * @returns The services that ended in `error`.
   * @throws {StateError} When already running or no pool is declared.
   * @throws {TypeError} When a pool or an option is malformed.
   */
  async run(options: RunOptions = {}): Promise<RunReport> {
    if (!Main.isPrimary) {
      await runWorker(() => this.servicePools);
      return { failures: [], undelivered: [] };
    }
    if (this.#running) {
      throw new StateError("Cannot run: main.run() is already running");
    }
    const pools = validatePools(this.servicePools);
    const settings = resolveOptions(options);
    this.#running = true;
    const primary = new Primary(this, pools, settings);
    this.#primary = primary;
    try {
      const report = await primary.run();
      const failed = report.failures.length > 0 ||
        report.undelivered.length > 0;
      if (failed && options.setExitCode !== false) {
        Deno.exitCode = 1;
      }
      return report;
    } finally {
      this.#running = false;
    }
  }

  /**
   * Every pool's subscriptions with their buffer levels, from the main
   * thread (as `ctx.topology()` gives them to a service).
   *
   * @throws {StateError} When the program is not running, or in a worker.
   */
  topology(): Promise<Topology> {
    if (this.#primary === undefined || !this.#running) {
      return Promise.reject(
        new StateError("Cannot read the topology: the program is not running"),
      );
    }
    return this.#primary.topology();
  }

  /**
   * Stops the program: from the main thread, or from any pool (it asks the
   * main thread). Resolves once the stop has been asked for; `run()`
   * resolves when it is complete.
   *
   * @example
   * ```ts ignore
   * await Main.instance().stop();
   * ```
   */
  stop(): Promise<void> {
    if (!Main.isPrimary) {
      workerScope().postMessage({ mf: 1, kind: "stop-all" });
      return Promise.resolve();
    }
    this.#primary?.requestStop("main.stop() was called");
    return Promise.resolve();
  }
}

/** Checks the pools' shape; returns their names in declaration order. */
function validatePools(pools: unknown): string[] {
  if (typeof pools !== "object" || pools === null) {
    throw new TypeError(
      "Cannot run: servicePools must be an object of pool name → services",
    );
  }
  const entries = Object.entries(pools);
  if (entries.length === 0) {
    throw new StateError("Cannot run: servicePools declares no pool");
  }
  return entries.map(([name, services]) => {
    if (name.trim() === "") {
      throw new TypeError("Cannot run: a pool name is empty");
    }
    if (!Array.isArray(services)) {
      throw new TypeError(
        `Cannot run: pool "${name}" must be an array of services`,
      );
    }
    for (const service of services) {
      if (!(service instanceof Service) && typeof service !== "function") {
        throw new TypeError(
          `Cannot run: pool "${name}" holds ${
            String(service)
          }, not a Service or a function returning one`,
        );
      }
    }
    return name;
  });
}

function resolveOptions(options: RunOptions): PrimarySettings {
  const moduleSpecifier = options.module ?? Deno.mainModule;
  if (moduleSpecifier === undefined) {
    throw new StateError(
      "Cannot run: there is no main module; pass options.module",
    );
  }
  const logLevel = resolveLogLevel(options.logLevel);
  const number = (
    name: string,
    value: number | undefined,
    fallback: number,
  ): number => {
    const result = value ?? fallback;
    if (!Number.isFinite(result) || result <= 0) {
      throw new RangeError(
        `Cannot run: ${name} must be a number > 0, got ${result}`,
      );
    }
    return result;
  };
  const terminateTimeout = number(
    "terminateTimeout",
    options.terminateTimeout,
    5000,
  );
  let workerData: unknown = undefined;
  if (options.workerData !== undefined) {
    try {
      workerData = structuredClone(options.workerData);
    } catch (error) {
      throw new TypeError(
        `Cannot run: workerData must be a value structuredClone can copy: ${
          error instanceof Error ? error.message : String(error)
        }`,
        { cause: error },
      );
    }
  }
  return {
    module: new URL(String(moduleSpecifier)),
    workerData,
    transport: resolveTransport(options.transport),
    signals: options.signals ?? true,
    terminateTimeout,
    stallThreshold: number("stallThreshold", options.stallThreshold, 1000),
    startTimeout: number("startTimeout", options.startTimeout, 60_000),
    sink: options.logSink ?? consoleSink,
    config: {
      logLevel,
      terminateTimeout,
      bufferSize: Math.floor(number("bufferSize", options.bufferSize, 1024)),
      stuckThreshold: number("stuckThreshold", options.stuckThreshold, 5000),
      runId: crypto.randomUUID(),
    },
  };
}

/** The transport from the option, else the environment, else `"ports"`. */
function resolveTransport(option: TransportKind | undefined): TransportKind {
  let source = "transport";
  let value: unknown = option;
  if (value === undefined) {
    source = "MAGIC_FOUNDATION_TRANSPORT";
    value = readEnv(source);
    if (value === undefined) return "ports";
  }
  if (!TRANSPORT_KINDS.includes(value as TransportKind)) {
    throw new TypeError(
      `Cannot run: ${source} must be one of ${
        TRANSPORT_KINDS.map((kind) => `"${kind}"`).join(", ")
      }, got ${JSON.stringify(value)}`,
    );
  }
  return value as TransportKind;
}

export type {
  RunReport,
  ServiceFailure,
  StatusChange,
} from "./primary/primary.ts";
