import { checkDuration } from "../_util/duration.ts";
import { settlesWithin } from "../_util/time.ts";
import { type CommonSettings, poolConfig } from "../run_options.ts";
import { isPattern, matchesQueue } from "../queue_name.ts";
import { ServiceErrorEvent } from "../error_event.ts";
import { StateError, TimeoutError } from "../errors.ts";
import { consoleSink, type LogSink } from "../logger.ts";
import { Primary } from "../primary/primary.ts";
import type { RunReport } from "../run_report.ts";
import { Service, type ServiceEntry, ServiceStatus } from "../service.ts";
import type {
  PublishOptions,
  RequestOptions,
  ServiceContext,
  Topology,
} from "../service_context.ts";
import { InThreadPool } from "./in_thread_pool.ts";
import { Inbox, type Received, type TakeOptions } from "./inbox.ts";
import { trackBed } from "./unstopped.ts";
import type { TestBed, TestBedOptions, TestReport } from "./types.ts";

/**
 * The pool of the test bed's own service, declared before the others (so it
 * stops last); a pool of the test cannot have this name.
 *
 * @example What the bed publishes comes from pool `test`, service `test`
 * ```ts
 * import { startServices, TEST_POOL, TEST_SERVICE } from "@magic/foundation/testing";
 * import assert from "node:assert/strict";
 *
 * await using bed = await startServices({ pools: { app: [] }, watch: ["q://echo"] });
 * await bed.publish("q://echo", "hi");
 * const { meta } = await bed.next("q://echo");
 * assert.deepEqual(meta.from, { pool: TEST_POOL, service: TEST_SERVICE });
 * ```
 */
export const TEST_POOL = "test";
/**
 * The name of the test bed's own service: `meta.from.service` of what the
 * bed publishes.
 *
 * @example A service that answers only the test
 * ```ts
 * import { Service, type ServiceContext } from "@magic/foundation";
 * import { startServices, TEST_SERVICE } from "@magic/foundation/testing";
 * import assert from "node:assert/strict";
 *
 * class Admin extends Service {
 *   override async initialize(ctx: ServiceContext): Promise<void> {
 *     await ctx.subscribe("q://admin", (_data, meta) =>
 *       ctx.publish(meta.replyTo!, meta.from.service === TEST_SERVICE));
 *   }
 * }
 *
 * await using bed = await startServices({ pools: { app: [new Admin("admin")] } });
 * assert.equal(await bed.request("q://admin", {}), true);
 * ```
 */
export const TEST_SERVICE = "test";

/** The bed's own service: its context is how the test talks to the bus. */
class BedService extends Service {
  #bed: RunningBed;
  #watch: readonly string[];
  constructor(bed: RunningBed, watch: readonly string[]) {
    super(TEST_SERVICE);
    this.#bed = bed;
    this.#watch = watch;
  }

  override async initialize(ctx: ServiceContext): Promise<void> {
    await this.#bed.attach(ctx, this.#watch);
  }
}

/** The running test bed (see {@linkcode TestBed}). */
export class RunningBed implements TestBed {
  #primary: Primary;
  #events = new EventTarget();
  #running: Promise<RunReport>;
  #ctx: ServiceContext | undefined;
  #pools: Record<string, readonly ServiceEntry[]>;
  /** `"attached"` once the bed's service subscribed; else what it threw. */
  #attached: unknown = undefined;
  #inboxes: Inbox[] = [];
  #errors: ServiceErrorEvent[] = [];
  #timeout: number;
  #stopping: Promise<TestReport> | undefined;
  #stoppedByTest = false;
  #sink: LogSink;
  /** Where an unclean stop is logged (nowhere at level `silent`). */
  #problemSink: LogSink;
  /** Ends the check that the test stops the bed (see `unstopped.ts`). */
  #untrack: () => void;

  constructor(
    options: TestBedOptions,
    names: readonly string[],
    watch: readonly string[],
    timeout: number,
    settings: CommonSettings,
  ) {
    this.#timeout = timeout;
    this.#sink = options.logSink ?? consoleSink;
    this.#problemSink = settings.logLevel === "silent" ? () => {} : this.#sink;
    const pools: Record<string, readonly ServiceEntry[]> = {
      [TEST_POOL]: [new BedService(this, watch)],
    };
    for (const name of names) pools[name] = options.pools[name]!;
    this.#pools = pools;
    this.#events.addEventListener("error", (event) => {
      if (event instanceof ServiceErrorEvent) this.#errors.push(event);
    });
    this.#primary = new Primary(this.#events, pools, {
      launch: (pool) => new InThreadPool(pool, pools[pool]!),
      workerData: undefined,
      transport: settings.transport,
      signals: false,
      terminateTimeout: settings.terminateTimeout,
      stallThreshold: 60_000,
      startTimeout: settings.startTimeout,
      sink: this.#sink,
      config: poolConfig(settings),
    });
    this.#running = this.#primary.run();
    this.#untrack = trackBed(names, () => this.#stop());
  }

  /** Waits for the start barrier (every `initialize()` done). */
  async started(timeout: number): Promise<void> {
    if (!await settlesWithin(this.#primary.ready.promise, timeout)) {
      // Same thread: the services' statuses can be read directly.
      const waiting = Object.entries(this.#pools).flatMap(([pool, entries]) =>
        entries.filter((entry): entry is Service =>
          entry instanceof Service &&
          entry.status === ServiceStatus.uninitialized
        ).map((service) => `${pool}/${service.name}`)
      );
      const which = waiting.length === 0
        ? ""
        : ` (still in initialize(): ${waiting.join(", ")})`;
      await this.#stop();
      throw new TimeoutError(
        `Cannot start services: initialize() did not finish within ${timeout} ms in every pool${which}${this.#context()}`,
      );
    }
    if (this.#attached !== "attached") {
      await this.#stop();
      throw new StateError(
        "Cannot start services: the test bed's own service could not subscribe",
        { cause: this.#attached },
      );
    }
  }

  /** Called by the bed's service in `initialize()`. */
  async attach(ctx: ServiceContext, watch: readonly string[]): Promise<void> {
    try {
      for (const queue of watch) await this.#subscribe(ctx, queue);
      this.#ctx = ctx;
      this.#attached = "attached";
    } catch (error) {
      this.#attached = error;
      throw error;
    }
  }

  get context(): ServiceContext {
    return this.#live("use the context");
  }

  get errors(): readonly ServiceErrorEvent[] {
    return this.#errors;
  }

  async publish(
    queue: string,
    data: unknown,
    options?: PublishOptions,
  ): Promise<void> {
    return await this.#live(`publish on "${queue}"`).publish(
      queue,
      data,
      options,
    );
  }

  async request<T = unknown>(
    queue: string,
    data: unknown,
    options: RequestOptions = {},
  ): Promise<T> {
    return await this.#live(`request on "${queue}"`).request<T>(queue, data, {
      timeout: this.#timeout,
      ...options,
    });
  }

  async watch(queue: string): Promise<void> {
    const ctx = this.#live(`watch "${queue}"`);
    if (this.#inboxes.some((inbox) => inbox.pattern === queue)) return;
    await this.#subscribe(ctx, queue);
  }

  async next<T = unknown>(
    queue: string,
    options: TakeOptions<T> = {},
  ): Promise<Received<T>> {
    const [message] = await this.take<T>(queue, 1, options);
    return message!;
  }

  async take<T = unknown>(
    queue: string,
    count: number,
    options: TakeOptions<T> = {},
  ): Promise<Received<T>[]> {
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(
        `Cannot take from "${queue}": count must be an integer >= 1, got ${count}`,
      );
    }
    const timeout = checkDuration(
      `Cannot take from "${queue}"`,
      "timeout",
      options.timeout ?? this.#timeout,
    );
    const inbox = this.#inboxFor(queue, "take from");
    const where = (options.where ?? (() => true)) as (m: Received) => boolean;
    return await inbox.take(
      queue,
      count,
      timeout,
      where,
      () => this.#context(),
    ) as Received<T>[];
  }

  seen<T = unknown>(queue: string): Received<T>[] {
    const inbox = this.#inboxFor(queue, "read");
    return (queue === inbox.pattern
      ? inbox.seen
      : inbox.seen.filter((m) => m.meta.queue === queue)) as Received<T>[];
  }

  /** Every pool's subscriptions (the bed's own under pool `test`), as `ctx.topology()`. */
  topology(): Promise<Topology> {
    return this.#primary.topology();
  }

  stop(): Promise<TestReport> {
    this.#stoppedByTest = true;
    return this.#stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const checked = !this.#stoppedByTest;
    const report = await this.#stop();
    if (checked) assertClean(report, this.#problemSink);
  }

  #stop(): Promise<TestReport> {
    return this.#stopping ??= (async () => {
      this.#untrack();
      this.#primary.requestStop("the test bed was stopped");
      const report = await this.#running;
      for (const inbox of this.#inboxes) inbox.close();
      return { ...report, errors: [...this.#errors] };
    })();
  }

  async #subscribe(ctx: ServiceContext, queue: string): Promise<void> {
    const inbox = new Inbox(queue);
    await ctx.subscribe(queue, (data, meta) => {
      inbox.push({ data, meta });
    });
    this.#inboxes.push(inbox);
  }

  #inboxFor(queue: string, verb: string): Inbox {
    const inbox = this.#inboxes.find((i) => i.pattern === queue) ??
      this.#inboxes.find((i) => coveredBy(i.pattern, queue));
    if (inbox === undefined) {
      throw new TypeError(
        `Cannot ${verb} "${queue}": the test bed does not watch it; pass it in startServices({ watch }) or await bed.watch() before it is published`,
      );
    }
    return inbox;
  }

  #live(what: string): ServiceContext {
    if (this.#stopping !== undefined || this.#ctx === undefined) {
      throw new StateError(`Cannot ${what}: the test bed has stopped`);
    }
    return this.#ctx;
  }

  /** What went wrong meanwhile, for a deadline's message. */
  #context(): string {
    if (this.#errors.length === 0) return "";
    const lines = this.#errors.slice(-3).map((e) => e.message);
    return `; errors meanwhile: ${lines.join("; ")}`;
  }
}

/** Whether a watch on `pattern` receives every message on `queue`. */
function coveredBy(pattern: string, queue: string): boolean {
  // A concrete queue is covered when the pattern matches it; a pattern is
  // covered only by itself (checked by the caller).
  return !isPattern(queue) && matchesQueue(pattern, queue);
}

/**
 * Throws when a report is not clean. The problems are also logged: when the
 * test's body threw too, Deno shows only "An error was suppressed during
 * disposal", with neither message.
 */
function assertClean(report: TestReport, sink: LogSink): void {
  const problems: string[] = [];
  for (const f of report.failures) {
    // A phase's failure names its pool and service; a pool's death does not.
    problems.push(
      f.phase === undefined
        ? `${f.pool}/${f.service}: ${f.message}`
        : f.message,
    );
  }
  for (const e of report.errors) {
    if (e.phase === "handler" || e.phase === "uncaught") {
      problems.push(e.message);
    }
  }
  for (const u of report.undelivered) {
    problems.push(
      `${u.count} messages on "${u.queue}" for pool "${u.pool}" were never handled`,
    );
  }
  if (problems.length === 0) return;
  const message = `Cannot stop the test bed cleanly: ${
    problems.join("; ")
  } (call bed.stop() to read the report instead)`;
  sink({ level: "error", pool: TEST_POOL, message, time: Date.now() });
  throw new Error(message);
}
