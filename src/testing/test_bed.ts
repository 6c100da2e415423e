import { checkDuration } from "../_util/duration.ts";
import { isPattern, matchesQueue } from "../bus/queue_name.ts";
import { ServiceErrorEvent } from "../error_event.ts";
import { StateError, TimeoutError } from "../errors.ts";
import { consoleSink, type LogSink, resolveLogLevel } from "../logger.ts";
import { validatePools } from "../main.ts";
import { Primary, type RunReport } from "../primary/primary.ts";
import { Service, type ServiceEntry } from "../service.ts";
import type { TransportKind } from "../transport/transport.ts";
import type {
  LogLevel,
  LogRecord,
  PublishOptions,
  RequestOptions,
  ServiceContext,
  Topology,
} from "../types.ts";
import { InThreadPool } from "./in_thread_pool.ts";
import { Inbox, type Received, type TakeOptions } from "./inbox.ts";

/** The pool of the test bed's own service, declared before the others. */
export const TEST_POOL = "test";
/** The name of the test bed's own service: `meta.from` of what the bed publishes. */
export const TEST_SERVICE = "test";

/** Options of {@linkcode startServices}. */
export interface TestBedOptions {
  /** The pools to run, as `main.servicePools`: pool name → services (or factories). */
  pools: Record<string, readonly ServiceEntry[]>;
  /**
   * Queues (names or patterns) the bed subscribes to before any service's
   * `run()` starts, so nothing published on them is missed. More can be
   * added later with {@linkcode TestBed.watch}.
   */
  watch?: readonly string[];
  /** How long `next`, `take` and `request` wait by default, in ms. Default 2000. */
  timeout?: number;
  /** What carries messages between the pools: `"ports"` (default) or `"broadcast"`. */
  transport?: TransportKind;
  /** The default buffer of a subscription, in messages. Default 1024. */
  bufferSize?: number;
  /** The longest a `terminate()` may take, in ms. Default 2000. */
  terminateTimeout?: number;
  /** How long a subscription may wait without a handler starting before it is logged as stuck, in ms. Default 5000. */
  stuckThreshold?: number;
  /** How long every `initialize()` together may take, in ms. Default 10 000. */
  startTimeout?: number;
  /** The log level. Default `"warn"`: a passing test prints nothing. */
  logLevel?: LogLevel;
  /** Where log lines go. Default: the console. */
  logSink?: (record: LogRecord) => void;
}

/** What {@linkcode TestBed.stop} resolves with: `main.run()`'s report, plus the errors seen. */
export interface TestReport extends RunReport {
  /**
   * Every `error` event of the run (a phase that failed, a handler that
   * threw, an error that escaped a pool), in order.
   */
  errors: ServiceErrorEvent[];
}

/**
 * Runs `options.pools` in the test's own thread, on the real bus, and
 * resolves once every service's `initialize()` is done and `run()` may
 * start (the start barrier of `main.run()`).
 *
 * Each pool gets its own runtime, bus and scheduler, as in a worker, and the
 * pools talk over the real transport (a `MessageChannel` per pair of pools,
 * in one thread); the subscription table, the start barrier and the ordered
 * stop are those of `main.run()`. The bed itself is a service, `test`, in a
 * pool `test` declared first (so it stops last and sees what services
 * publish while they stop).
 *
 * @param options The pools, the queues to watch, and run options.
 * @returns The running test bed; `await using` stops it at the end of the scope.
 * @throws {TypeError} When a pool or an option is malformed, or a pool is named `test`.
 * @throws {RangeError} When a duration or `bufferSize` is out of range.
 * @throws {TimeoutError} When the services are not initialized within `startTimeout`.
 *
 * @example Test a consumer that answers on the WebSocket outbound queue
 * ```ts
 * import { Service, type ServiceContext } from "@magic/foundation";
 * import { startServices } from "@magic/foundation/testing";
 * import assert from "node:assert/strict";
 *
 * class Consumer extends Service {
 *   override async initialize(ctx: ServiceContext): Promise<void> {
 *     await ctx.subscribe<string>("ws://inbound/client", async (data) => {
 *       const req = JSON.parse(data);
 *       await ctx.publish(
 *         "ws://outbound/client",
 *         JSON.stringify({ status: "OK", timestamp: req.timestamp }),
 *       );
 *     });
 *   }
 * }
 *
 * await using bed = await startServices({
 *   pools: { app: [new Consumer("Consumer")] },
 *   watch: ["ws://outbound/client"],
 * });
 * await bed.publish("ws://inbound/client", JSON.stringify({ timestamp: 42 }));
 * const answer = await bed.next<string>("ws://outbound/client");
 * assert.deepEqual(JSON.parse(answer.data), { status: "OK", timestamp: 42 });
 * assert.deepEqual(answer.meta.from, { pool: "app", service: "Consumer" });
 * ```
 */
export async function startServices(options: TestBedOptions): Promise<TestBed> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot start services: options must be an object");
  }
  const names = validatePools(options.pools, "Cannot start services");
  if (names.includes(TEST_POOL)) {
    throw new TypeError(
      `Cannot start services: pool "${TEST_POOL}" is the test bed's own; name yours otherwise`,
    );
  }
  const where = "Cannot start services";
  const duration = (
    name: string,
    value: number | undefined,
    fallback: number,
  ) => checkDuration(where, name, value ?? fallback);
  const timeout = duration("timeout", options.timeout, 2000);
  const terminateTimeout = duration(
    "terminateTimeout",
    options.terminateTimeout,
    2000,
  );
  const startTimeout = duration("startTimeout", options.startTimeout, 10_000);
  const stuckThreshold = duration(
    "stuckThreshold",
    options.stuckThreshold,
    5000,
  );
  const bufferSize = options.bufferSize ?? 1024;
  if (!Number.isInteger(bufferSize) || bufferSize < 1) {
    throw new RangeError(
      `${where}: bufferSize must be an integer >= 1, got ${bufferSize}`,
    );
  }
  const transport = options.transport ?? "ports";
  if (transport !== "ports" && transport !== "broadcast") {
    throw new TypeError(
      `${where}: transport must be "ports" or "broadcast", got ${
        JSON.stringify(transport)
      }`,
    );
  }
  const watch = [...(options.watch ?? [])];
  const bed = new TestBed(options, names, watch, timeout, {
    transport,
    terminateTimeout,
    startTimeout,
    stuckThreshold,
    bufferSize,
    logLevel: resolveLogLevel(options.logLevel ?? "warn"),
  });
  await bed.started(startTimeout);
  return bed;
}

interface Settings {
  transport: TransportKind;
  terminateTimeout: number;
  startTimeout: number;
  stuckThreshold: number;
  bufferSize: number;
  logLevel: LogLevel;
}

/** The bed's own service: its context is how the test talks to the bus. */
class BedService extends Service {
  #bed: TestBed;
  #watch: readonly string[];
  constructor(bed: TestBed, watch: readonly string[]) {
    super(TEST_SERVICE);
    this.#bed = bed;
    this.#watch = watch;
  }

  override async initialize(ctx: ServiceContext): Promise<void> {
    await this.#bed.attach(ctx, this.#watch);
  }
}

/**
 * Services running in the test's thread, as {@linkcode startServices}
 * returns them: publish into queues, await what the services publish, and
 * stop with `await using` (which fails when the run was not clean).
 *
 * @example Request/reply and what the bed saw
 * ```ts
 * import { Service, type ServiceContext } from "@magic/foundation";
 * import { startServices } from "@magic/foundation/testing";
 * import assert from "node:assert/strict";
 *
 * class Adder extends Service {
 *   override async initialize(ctx: ServiceContext): Promise<void> {
 *     await ctx.subscribe<{ a: number; b: number }>("q://add", (data, meta) =>
 *       ctx.publish(meta.replyTo!, data.a + data.b));
 *   }
 * }
 *
 * await using bed = await startServices({ pools: { math: [new Adder("adder")] } });
 * assert.equal(await bed.request<number>("q://add", { a: 1, b: 2 }), 3);
 * const topology = await bed.topology();
 * assert.deepEqual(Object.keys(topology["q://add"]!), ["math"]);
 * ```
 */
export class TestBed implements AsyncDisposable {
  #primary: Primary;
  #events = new EventTarget();
  #running: Promise<RunReport>;
  #ctx: ServiceContext | undefined;
  #inboxes: Inbox[] = [];
  #errors: ServiceErrorEvent[] = [];
  #timeout: number;
  #stopping: Promise<TestReport> | undefined;
  #stoppedByTest = false;
  #sink: LogSink;
  /** Where an unclean stop is logged (nowhere at level `silent`). */
  #problemSink: LogSink;

  /** Use {@linkcode startServices}. */
  constructor(
    options: TestBedOptions,
    names: readonly string[],
    watch: readonly string[],
    timeout: number,
    settings: Settings,
  ) {
    this.#timeout = timeout;
    this.#sink = options.logSink ?? consoleSink;
    this.#problemSink = settings.logLevel === "silent" ? () => {} : this.#sink;
    const pools: Record<string, readonly ServiceEntry[]> = {
      [TEST_POOL]: [new BedService(this, watch)],
    };
    for (const name of names) pools[name] = options.pools[name]!;
    this.#events.addEventListener("error", (event) => {
      if (event instanceof ServiceErrorEvent) this.#errors.push(event);
    });
    this.#primary = new Primary(this.#events, Object.keys(pools), {
      launch: (pool) => new InThreadPool(pool, pools[pool]!),
      workerData: undefined,
      transport: settings.transport,
      signals: false,
      terminateTimeout: settings.terminateTimeout,
      stallThreshold: 60_000,
      startTimeout: settings.startTimeout,
      sink: this.#sink,
      config: {
        logLevel: settings.logLevel,
        terminateTimeout: settings.terminateTimeout,
        bufferSize: settings.bufferSize,
        stuckThreshold: settings.stuckThreshold,
        runId: crypto.randomUUID(),
      },
    });
    this.#running = this.#primary.run();
  }

  /** @internal Waits for the start barrier (every `initialize()` done). */
  async started(timeout: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), timeout);
    });
    const outcome = await Promise.race([this.#primary.ready.promise, late]);
    clearTimeout(timer);
    if (outcome === "late" || this.#ctx === undefined) {
      await this.#stop();
      throw new TimeoutError(
        `Cannot start services: initialize() did not finish within ${timeout} ms in every pool${this.#context()}`,
      );
    }
  }

  /** @internal Called by the bed's service in `initialize()`. */
  async attach(ctx: ServiceContext, watch: readonly string[]): Promise<void> {
    this.#ctx = ctx;
    for (const queue of watch) await this.#subscribe(queue);
  }

  /**
   * The bed's own service context (pool `test`, service `test`), for what
   * the bed does not wrap: `subscribe` with your own handler, `unsubscribe`,
   * `dumpQueueTree`, …
   */
  get context(): ServiceContext {
    return this.#live("use the context");
  }

  /** Every `error` event so far (failed phases, handlers that threw). */
  get errors(): readonly ServiceErrorEvent[] {
    return this.#errors;
  }

  /**
   * Publishes `data` on `queue` as the service `test` of pool `test`;
   * resolves when the bus accepted it (it waits while a subscriber is full,
   * as any publisher does).
   *
   * @param queue A concrete queue name (or a `meta.replyTo` to answer).
   * @param data The data; copied as the bus copies it.
   * @param options `headers` and `replyTo`, as `ctx.publish` takes them.
   */
  publish(
    queue: string,
    data: unknown,
    options?: PublishOptions,
  ): Promise<void> {
    return this.#live(`publish on "${queue}"`).publish(queue, data, options);
  }

  /**
   * Publishes with a `replyTo` and resolves with the first answer.
   *
   * @param queue The queue a responder subscribes to.
   * @param data The request.
   * @param options `timeout` (default the bed's) and `headers`.
   * @throws {TimeoutError} When no answer comes in time.
   * @throws {NoRespondersError} When no subscription matches `queue`.
   */
  request<T = unknown>(
    queue: string,
    data: unknown,
    options: RequestOptions = {},
  ): Promise<T> {
    return this.#live(`request on "${queue}"`).request<T>(queue, data, {
      timeout: this.#timeout,
      ...options,
    });
  }

  /**
   * Subscribes the bed to `queue` (a name or a pattern) now; resolves once
   * every pool knows, so whatever is published from then on is kept for
   * `next` and `take`. Watching a queue twice is allowed (once is kept).
   *
   * @param queue The queue name or pattern.
   */
  async watch(queue: string): Promise<void> {
    this.#live(`watch "${queue}"`);
    if (this.#inboxes.some((inbox) => inbox.pattern === queue)) return;
    await this.#subscribe(queue);
  }

  /**
   * The next message on `queue` that no `next` or `take` took yet, oldest
   * first: one the bed already received, or the next to arrive. `queue` is a
   * watched queue or pattern, or a concrete queue one of them covers.
   *
   * @param queue The queue to take from.
   * @param options `timeout` (default the bed's) and a `where` filter.
   * @throws {TypeError} When no watch covers `queue`.
   * @throws {TimeoutError} When nothing comes in time; the message names the
   * queue and what the bed saw on it.
   */
  async next<T = unknown>(
    queue: string,
    options: TakeOptions<T> = {},
  ): Promise<Received<T>> {
    const [message] = await this.take<T>(queue, 1, options);
    return message!;
  }

  /**
   * The next `count` messages on `queue`, as {@linkcode TestBed.next} takes
   * them one by one; all or none (on a timeout none is taken).
   *
   * @param queue The queue to take from.
   * @param count How many.
   * @param options `timeout` (default the bed's) and a `where` filter.
   * @throws {TypeError} When no watch covers `queue`.
   * @throws {TimeoutError} When fewer arrive in time.
   */
  take<T = unknown>(
    queue: string,
    count: number,
    options: TakeOptions<T> = {},
  ): Promise<Received<T>[]> {
    if (!Number.isInteger(count) || count < 1) {
      return Promise.reject(
        new RangeError(
          `Cannot take from "${queue}": count must be an integer >= 1, got ${count}`,
        ),
      );
    }
    const timeout = checkDuration(
      `Cannot take from "${queue}"`,
      "timeout",
      options.timeout ?? this.#timeout,
    );
    const inbox = this.#inboxFor(queue, "take from");
    const where = (options.where ?? (() => true)) as (m: Received) => boolean;
    return inbox.take(
      queue,
      count,
      timeout,
      where,
      () => this.#context(),
    ) as Promise<Received<T>[]>;
  }

  /**
   * Every message received on `queue` so far (taken or not), in order.
   *
   * @param queue A watched queue or pattern, or a concrete queue one covers.
   * @throws {TypeError} When no watch covers `queue`.
   */
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

  /**
   * Stops every service as `main.run()` does (pools in reverse order,
   * pending messages delivered first) and resolves with the report. Waiting
   * `next`/`take` calls fail. Calling it again returns the same report.
   */
  stop(): Promise<TestReport> {
    this.#stoppedByTest = true;
    return this.#stop();
  }

  /**
   * Stops the bed (as {@linkcode TestBed.stop}). Unless the test called
   * `stop()` itself (and so reads the report), it throws when the run was
   * not clean: a service failed, a handler threw, or a message was left
   * undelivered.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    const checked = !this.#stoppedByTest;
    const report = await this.#stop();
    if (checked) assertClean(report, this.#problemSink);
  }

  #stop(): Promise<TestReport> {
    return this.#stopping ??= (async () => {
      this.#primary.requestStop("the test bed was stopped");
      const report = await this.#running;
      for (const inbox of this.#inboxes) inbox.close();
      return { ...report, errors: [...this.#errors] };
    })();
  }

  async #subscribe(queue: string): Promise<void> {
    const inbox = new Inbox(queue);
    await this.#ctx!.subscribe(queue, (data, meta) => {
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
