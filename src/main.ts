import { errorMessage } from "./_util/error_text.ts";
import { checkHandlerTiming } from "./bus/counters.ts";
import { StateError } from "./errors.ts";
import { consoleSink, resolveLogLevel } from "./logger.ts";
import { readEnv } from "./_util/env.ts";
import { boot, isPoolWorker, POOL_WORKER_HASH } from "./pool/boot.ts";
import { runWorker } from "./pool/worker_main.ts";
import { workerScope } from "./pool/worker_scope.ts";
import { TRANSPORT_KINDS, type TransportKind } from "./transport/transport.ts";
import {
  type NatsOptions,
  type NatsSettings,
  resolveNats,
} from "./nats/options.ts";
import {
  Primary,
  type PrimarySettings,
  type RunReport,
  type StatusChange,
} from "./primary/primary.ts";
import type { ServiceErrorEvent } from "./error_event.ts";
import { Service, type ServiceEntry } from "./service.ts";
import { checkDuration } from "./_util/duration.ts";
import type {
  HandlerTiming,
  LogLevel,
  LogRecord,
  MetricsSnapshot,
  Topology,
} from "./types.ts";

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
  /**
   * Joins the program to every other program on the same NATS server and
   * namespace: the same queues across processes and machines (see the
   * README's "Several processes"). Default: `MAGIC_FOUNDATION_NATS`
   * (comma-separated servers), else none (nothing about NATS is loaded).
   */
  nats?: NatsOptions;
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

/**
 * The events of {@linkcode Main}, for `addEventListener`: `status` whenever a
 * service changes status, `error` for every failure (see
 * {@linkcode ServiceErrorEvent}).
 */
export interface MainEventMap {
  /** A service changed status. */
  status: CustomEvent<StatusChange>;
  /** A service failed, a handler threw, or an error escaped a pool. */
  error: ServiceErrorEvent;
}

/** The pools of a program: pool name → its services (or factories). */
export type ServicePools = Record<string, ServiceEntry[]>;

let singleton: Main | undefined;

/**
 * The program: its pools, and the runner that starts one Web Worker per pool
 * and stops them all on SIGINT/SIGTERM or `stop()`. Events (see
 * {@linkcode MainEventMap}): `status` (`CustomEvent<StatusChange>`) whenever
 * a service changes status, and `error` ({@linkcode ServiceErrorEvent}) for
 * every failure, handler throw and uncaught error in a pool; by default an
 * `error` is logged (a listener may `preventDefault()` that).
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
   * Listens to `status` or `error` events, typed (no cast needed), or to any
   * other event type.
   *
   * @param type `"status"`, `"error"` or another event type.
   * @param listener Called with the event.
   * @param options The usual listener options.
   *
   * @example Watch statuses and failures
   * ```ts
   * import { Main } from "@magic/foundation";
   * import assert from "node:assert/strict";
   *
   * const main = new Main();
   * const seen: string[] = [];
   * main.addEventListener("status", (event) => seen.push(event.detail.status));
   * main.addEventListener("error", (event) => seen.push(event.phase));
   * main.dispatchEvent(
   *   new CustomEvent("status", {
   *     detail: { pool: "p", service: "s", status: "running" },
   *   }),
   * );
   * assert.deepEqual(seen, ["running"]);
   * ```
   */
  override addEventListener<K extends keyof MainEventMap>(
    type: K,
    listener: (this: Main, event: MainEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /**
   * Listens to any other event type, untyped (as `EventTarget` does).
   *
   * @param type The event type.
   * @param listener Called with the event.
   * @param options The usual listener options.
   *
   * @example Listen to an event of your own
   * ```ts
   * import { Main } from "@magic/foundation";
   * import assert from "node:assert/strict";
   *
   * const main = new Main();
   * let pinged = false;
   * main.addEventListener("ping", () => pinged = true);
   * main.dispatchEvent(new Event("ping"));
   * assert.equal(pinged, true);
   * ```
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
  }

  /**
   * Removes a listener added with {@linkcode Main.addEventListener}.
   *
   * @param type The event type it was added for.
   * @param listener The listener.
   * @param options The usual listener options.
   *
   * @example Stop listening to errors
   * ```ts
   * import { Main } from "@magic/foundation";
   *
   * const main = new Main();
   * const onError = (): void => {};
   * main.addEventListener("error", onError);
   * main.removeEventListener("error", onError);
   * ```
   */
  override removeEventListener<K extends keyof MainEventMap>(
    type: K,
    listener: (this: Main, event: MainEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  /**
   * Removes a listener of any other event type.
   *
   * @param type The event type it was added for.
   * @param listener The listener.
   * @param options The usual listener options.
   *
   * @example Stop listening to an event of your own
   * ```ts
   * import { Main } from "@magic/foundation";
   *
   * const main = new Main();
   * const onPing = (): void => {};
   * main.addEventListener("ping", onPing);
   * main.removeEventListener("ping", onPing);
   * ```
   */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
  }

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
   * @throws {StateError} When already running.
   * @throws {TypeError} When a pool or an option is malformed: no pool, a
   * pool name that is an integer (`"1"`), two services of a pool with the
   * same name, an entry that is not a service or a factory.
   * @throws {RangeError} When an option is out of range, e.g. a duration of
   * 2^31 ms or more (a timer cannot wait that long) or a `bufferSize` that is
   * not an integer >= 1.
   */
  async run(options: RunOptions = {}): Promise<RunReport> {
    if (!Main.isPrimary) {
      await runWorker(() => this.servicePools);
      return { failures: [], undelivered: [] };
    }
    if (this.#running) {
      throw new StateError("Cannot run: main.run() is already running");
    }
    validatePools(this.servicePools);
    const settings = resolveOptions(options);
    this.#running = true;
    const primary = new Primary(this, this.servicePools, settings);
    this.#primary = primary;
    try {
      const report = await primary.run();
      primary.endIfUnstoppable();
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
   * One snapshot of the whole program's counters (every pool's
   * subscriptions and services, and the pools themselves), from the main
   * thread, as `ctx.metrics()` gives it to a service.
   *
   * @example Delivered messages per queue pattern
   * ```ts ignore
   * const snapshot = await Main.instance().metrics();
   * for (const s of snapshot.subscriptions) {
   *   console.log(s.queue, s.service, s.delivered);
   * }
   * ```
   *
   * @returns The snapshot.
   * @throws {StateError} When the program is not running, or in a worker.
   */
  metrics(): Promise<MetricsSnapshot> {
    if (this.#primary === undefined || !this.#running) {
      return Promise.reject(
        new StateError("Cannot read the metrics: the program is not running"),
      );
    }
    return this.#primary.metrics();
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

/**
 * Checks the pools' shape; returns their names in declaration order.
 * `where` starts each error message.
 */
export function validatePools(pools: unknown, where = "Cannot run"): string[] {
  if (typeof pools !== "object" || pools === null) {
    throw new TypeError(
      `${where}: servicePools must be an object of pool name → services`,
    );
  }
  const entries = Object.entries(pools);
  if (entries.length === 0) {
    throw new TypeError(`${where}: servicePools declares no pool`);
  }
  return entries.map(([name, services]) => {
    if (name.trim() === "") {
      throw new TypeError(`${where}: a pool name is empty`);
    }
    if (isArrayIndex(name)) {
      throw new TypeError(
        `${where}: pool name "${name}" is an integer, and JavaScript lists integer keys before the others, which would change the start and stop order; use a name such as "p${name}"`,
      );
    }
    if (!Array.isArray(services)) {
      throw new TypeError(
        `${where}: pool "${name}" must be an array of services`,
      );
    }
    const names = new Set<string>();
    for (const service of services) {
      if (!(service instanceof Service) && typeof service !== "function") {
        throw new TypeError(
          `${where}: pool "${name}" holds ${
            String(service)
          }, not a Service or a function returning one`,
        );
      }
      if (service instanceof Service) {
        if (names.has(service.name)) {
          throw new TypeError(
            `${where}: pool "${name}" has two services named "${service.name}"`,
          );
        }
        names.add(service.name);
      }
    }
    return name;
  });
}

/**
 * Whether `key` is a property name that JavaScript orders before the others
 * (an array index: `"0"`, `"42"`, not `"01"` or `"-1"`).
 */
function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9][0-9]*)$/.test(key) && Number(key) < 2 ** 32 - 1;
}

function resolveOptions(options: RunOptions): PrimarySettings {
  const moduleSpecifier = options.module ?? Deno.mainModule;
  if (moduleSpecifier === undefined) {
    throw new StateError(
      "Cannot run: there is no main module; pass options.module",
    );
  }
  const logLevel = resolveLogLevel(options.logLevel);
  checkOptionTypes(options);
  const number = (
    name: string,
    value: number | undefined,
    fallback: number,
  ): number => checkDuration("Cannot run", name, value ?? fallback);
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
          errorMessage(error)
        }`,
        { cause: error },
      );
    }
  }
  const module = new URL(String(moduleSpecifier));
  module.hash = POOL_WORKER_HASH;
  return {
    launch: (pool) => new Worker(module, { type: "module", name: pool }),
    workerData,
    transport: resolveTransport(options.transport),
    remote: remoteOf(resolveNats(options.nats)),
    signals: options.signals ?? true,
    terminateTimeout,
    stallThreshold: number("stallThreshold", options.stallThreshold, 1000),
    startTimeout: number("startTimeout", options.startTimeout, 60_000),
    sink: options.logSink ?? consoleSink,
    config: {
      logLevel,
      terminateTimeout,
      bufferSize: checkBufferSize(options.bufferSize ?? 1024),
      stuckThreshold: number("stuckThreshold", options.stuckThreshold, 5000),
      handlerTiming: checkHandlerTiming("Cannot run", options.handlerTiming),
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
function checkBufferSize(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot run: bufferSize must be an integer >= 1, got ${String(value)}`,
    );
  }
  return value;
}

export type {
  RunReport,
  ServiceFailure,
  StatusChange,
} from "./primary/primary.ts";

/** The carrier between processes of a run joined to NATS. */
function remoteOf(
  settings: NatsSettings | undefined,
): { kind: "nats"; settings: NatsSettings } | undefined {
  return settings === undefined ? undefined : { kind: "nats", settings };
}
