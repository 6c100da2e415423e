import { StateError } from "./errors.ts";
import { boot, isPoolWorker } from "./pool/boot.ts";
import { runWorker } from "./pool/worker_main.ts";
import { workerScope } from "./pool/worker_scope.ts";
import { Primary } from "./primary/primary.ts";
import type { RunReport, StatusChange } from "./run_report.ts";
import type { ServiceErrorEvent } from "./error_event.ts";
import { resolveRunOptions, type RunOptions } from "./run_options.ts";
import { type ServicePools, validatePools } from "./service_pools.ts";
import type { MetricsSnapshot } from "./metrics_snapshot.ts";
import type { Topology } from "./service_context.ts";

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
   * The program's one `Main`, as the Python original's `Main.instance()`:
   * what a program's services and its main module share. `new Main()` makes
   * another one, which a program never needs; it is there for a tool or a
   * test that runs several programs, one after the other or side by side,
   * in one process (each with its own pools and events), where a shared
   * instance would carry one's listeners and pools into the next.
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
    const settings = resolveRunOptions(options);
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

export type { RunOptions } from "./run_options.ts";
export type { ServicePools } from "./service_pools.ts";
