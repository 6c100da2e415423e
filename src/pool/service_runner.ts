import { errorMessage } from "../_util/error_text.ts";
import {
  type LifecyclePhase,
  serializeError,
  ServiceError,
  TimeoutError,
} from "../errors.ts";
import { type Service, ServiceStatus } from "../service.ts";
import type { Logger } from "../logger.ts";
import type { ServiceContext } from "../service_context.ts";
import type { ServiceReport } from "./protocol.ts";
import { abortableDelay, withTimeout } from "../_util/time.ts";
import { RestartBudget } from "../restart_budget.ts";

/** What a runner needs from its pool. */
export interface RunnerHost {
  readonly pool: string;
  /** Aborted when stopping begins. */
  readonly signal: AbortSignal;
  /** Whether the program has passed the start barrier. */
  readonly started: boolean;
  readonly terminateTimeout: number;
  statusChanged(runner: ServiceRunner): void;
  /** Drops the service's subscriptions (before a restart). */
  dropSubscriptions(service: string): Promise<void>;
  /** Reports a failure to the primary, which dispatches and logs it. */
  failed(service: string, phase: LifecyclePhase, error: unknown): void;
}

/**
 * Drives one service through its lifecycle and its restart policy:
 * `initialize → (barrier) → run`, restarts with exponential backoff while the
 * policy and the restart budget allow, and a bounded `terminate` at stop.
 */
export class ServiceRunner {
  readonly service: Service;
  readonly ctx: ServiceContext;
  readonly log: Logger;
  #host: RunnerHost;
  #initialized = false;
  #everInitialized = false;
  #budget = new RestartBudget();
  /** Times the service was restarted, since the worker started. */
  restarts = 0;
  #running: Promise<void> | undefined;
  #initializing: Promise<void> | undefined;
  /** When the pending `initialize()` began, or 0 when none is pending. */
  #initializeSince = 0;
  /** Whether the pending `initialize()` was already reported as slow. */
  #initializeReported = false;

  constructor(host: RunnerHost, service: Service, ctx: ServiceContext) {
    this.#host = host;
    this.service = service;
    this.ctx = ctx;
    this.log = ctx.log;
  }

  /** Whether `initialize` has succeeded for the current attempt. */
  get initialized(): boolean {
    return this.#initialized;
  }

  /** The runner's report for the primary. */
  report(): ServiceReport {
    const { service } = this;
    return {
      name: service.name,
      status: service.status,
      error: service.error === undefined
        ? undefined
        : serializeError(service.error),
      phase: service.error instanceof ServiceError
        ? service.error.phase as LifecyclePhase
        : undefined,
      ...service.options,
    };
  }

  /** Runs `initialize`; settles when it succeeded or failed (never throws). */
  initialize(): Promise<void> {
    this.#initializing = this.#initialize();
    return this.#initializing;
  }

  /**
   * How long the pending `initialize()` has run, when that is `after` ms or
   * more and was not reported yet; else `undefined`. Each attempt is
   * reported once.
   */
  slowInitialize(after: number): number | undefined {
    if (this.#initializeSince === 0 || this.#initializeReported) {
      return undefined;
    }
    const elapsed = Date.now() - this.#initializeSince;
    if (elapsed < after) return undefined;
    this.#initializeReported = true;
    return elapsed;
  }

  /** Starts `run` (after the barrier), when `initialize` succeeded. */
  start(): void {
    if (
      this.#initialized && this.service.status === ServiceStatus.initialized
    ) {
      this.#running = this.#run();
    }
  }

  /** Marks the service as stopping: `status` becomes `terminated` so run loops end. */
  beginStop(): void {
    const status = this.service.status;
    if (
      status === ServiceStatus.running || status === ServiceStatus.initialized
    ) {
      this.#set(ServiceStatus.terminated);
    }
  }

  /** Waits for `run` to return, at most `timeout` ms. */
  async settle(timeout: number): Promise<void> {
    const pending = [this.#initializing, this.#running].filter((p) =>
      p !== undefined
    );
    if (pending.length === 0) return;
    try {
      await withTimeout(Promise.all(pending), timeout);
    } catch {
      if (this.#initializeSince !== 0) {
        this.#fail(
          "initialize",
          new TimeoutError(
            `initialize() did not finish within ${timeout} ms of the stop`,
          ),
        );
        return;
      }
      this.log.warn(
        `run() did not return within ${timeout} ms of the stop; terminating anyway`,
      );
    }
  }

  /** Runs `terminate`, bounded by the terminate timeout. */
  async terminate(): Promise<void> {
    if (!this.#everInitialized) return;
    const timeout = this.#host.terminateTimeout;
    try {
      await withTimeout(
        Promise.resolve().then(() => this.service.terminate(this.ctx)),
        timeout,
        () =>
          new TimeoutError(
            `terminate() of "${this.service.name}" did not finish within ${timeout} ms`,
          ),
      );
      if (this.service.status !== ServiceStatus.error) {
        this.#set(ServiceStatus.terminated);
      }
    } catch (error) {
      this.#fail("terminate", error);
    }
  }

  async #initialize(): Promise<void> {
    this.#initialized = false;
    this.#initializeSince = Date.now();
    this.#initializeReported = false;
    try {
      await this.service.initialize(this.ctx);
      this.#initializeSince = 0;
      if (this.#host.signal.aborted) return;
      this.#initialized = true;
      this.#everInitialized = true;
      this.#set(ServiceStatus.initialized);
      if (this.#host.started) this.start();
    } catch (error) {
      this.#initializeSince = 0;
      if (this.service.status === ServiceStatus.error) return; // timed out at stop
      this.#everInitialized = true;
      this.#fail("initialize", error);
      this.#maybeRestart("failed");
    }
  }

  async #run(): Promise<void> {
    this.#set(ServiceStatus.running);
    try {
      await this.service.run(this.ctx);
      if (
        this.service.options.restart === "always" && !this.#host.signal.aborted
      ) {
        this.log.info("run() returned; restarting (policy always)");
        this.#maybeRestart("ended");
      }
    } catch (error) {
      if (
        this.#host.signal.aborted &&
        this.service.status !== ServiceStatus.running
      ) {
        this.#fail("run", error);
        return;
      }
      this.#fail("run", error);
      this.#maybeRestart("failed");
    }
  }

  /** Restarts the service after its `run()` failed or ended, as its policy says. */
  #maybeRestart(how: "failed" | "ended"): void {
    const options = this.service.options;
    if (this.#host.signal.aborted) return;
    if (options.restart === "never") return;
    if (options.restart === "on-failure" && how === "ended") return;
    const delay = this.#budget.take(options);
    if (delay === undefined) {
      this.log.error(
        `Gave up restarting after ${this.#budget.used} restarts within ${options.restartWindow} ms; the service stays in error`,
      );
      return;
    }
    this.restarts++;
    this.log.info(
      `Restarting in ${delay} ms (restart ${this.#budget.used} of ${options.maxRestarts})`,
    );
    this.#running = this.#restart(delay);
  }

  async #restart(delay: number): Promise<void> {
    await abortableDelay(delay, this.#host.signal);
    if (this.#host.signal.aborted) return;
    if (this.#initialized) {
      try {
        await withTimeout(
          Promise.resolve().then(() => this.service.terminate(this.ctx)),
          this.#host.terminateTimeout,
        );
      } catch (error) {
        this.log.warn(
          `terminate() before restart failed: ${errorMessage(error)}`,
        );
      }
    }
    await this.#host.dropSubscriptions(this.service.name);
    this.service.error = undefined;
    this.#set(ServiceStatus.uninitialized);
    await this.initialize();
  }

  #fail(phase: LifecyclePhase, error: unknown): void {
    const failure = new ServiceError(
      this.#host.pool,
      this.service.name,
      phase,
      error,
    );
    this.service.error = failure;
    this.#initialized = false;
    this.#set(ServiceStatus.error);
    this.#host.failed(this.service.name, phase, error);
  }

  #set(status: ServiceStatus): void {
    if (this.service.status === status) return;
    this.service.status = status;
    this.#host.statusChanged(this);
  }
}
