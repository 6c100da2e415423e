/**
 * The types of the test bed: its options, the running bed and its report.
 *
 * @module
 */
import type { ServiceErrorEvent } from "../error_event.ts";
import type { RunReport } from "../run_report.ts";
import type { ServiceEntry } from "../service.ts";
import type { TransportKind } from "../transport/kinds.ts";
import type { HandlerTiming } from "../metrics_snapshot.ts";
import type { LogLevel, LogRecord } from "../logger.ts";
import type {
  PublishOptions,
  RequestOptions,
  ServiceContext,
  Topology,
} from "../service_context.ts";
import type { Received, TakeOptions } from "./inbox.ts";

/**
 * Options of {@linkcode startServices}.
 *
 * @example Two pools on the broadcast transport, log lines kept by the test
 * ```ts
 * import { Service, type LogRecord, type ServiceContext } from "@magic/foundation";
 * import { startServices } from "@magic/foundation/testing";
 * import assert from "node:assert/strict";
 *
 * class Greeter extends Service {
 *   override run(ctx: ServiceContext): void {
 *     ctx.log.warn("hello from run()");
 *   }
 * }
 *
 * const lines: LogRecord[] = [];
 * {
 *   await using _bed = await startServices({
 *     pools: { a: [new Greeter("g1")], b: [new Greeter("g2")] },
 *     transport: "broadcast",
 *     logSink: (record) => lines.push(record),
 *   });
 * }
 * assert.deepEqual(
 *   lines.map((l) => `${l.pool}/${l.service}: ${l.message}`).sort(),
 *   ["a/g1: hello from run()", "b/g2: hello from run()"],
 * );
 * ```
 */
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
  /** Which handler calls are timed for `ctx.metrics()`, as `main.run()` takes it. Default `"sampled"`. */
  handlerTiming?: HandlerTiming;
  /** How long every `initialize()` together may take, in ms. Default 10 000. */
  startTimeout?: number;
  /** The log level. Default `"warn"`: a passing test prints nothing. */
  logLevel?: LogLevel;
  /** Where log lines go. Default: the console. */
  logSink?: (record: LogRecord) => void;
}

/**
 * What {@linkcode TestBed.stop} resolves with: `main.run()`'s report, plus
 * the errors seen.
 *
 * @example A handler that throws is an error event, not a failure
 * ```ts
 * import { Service, type ServiceContext } from "@magic/foundation";
 * import { startServices } from "@magic/foundation/testing";
 * import assert from "node:assert/strict";
 *
 * class Picky extends Service {
 *   override async initialize(ctx: ServiceContext): Promise<void> {
 *     await ctx.subscribe<number>("q://n", (n) => {
 *       if (n < 0) throw new RangeError(`negative: ${n}`);
 *     });
 *   }
 * }
 *
 * const bed = await startServices({
 *   pools: { app: [new Picky("picky")] },
 *   logLevel: "silent",
 * });
 * await bed.publish("q://n", -1);
 * const report = await bed.stop();
 * assert.deepEqual(report.failures, []);
 * assert.deepEqual(report.undelivered, []);
 * assert.equal(report.errors[0]?.phase, "handler");
 * assert.equal((report.errors[0]?.error.cause as Error).message, "negative: -1");
 * ```
 */
export interface TestReport extends RunReport {
  /**
   * Every `error` event of the run (a phase that failed, a handler that
   * threw, an error that escaped a pool), in order.
   */
  errors: ServiceErrorEvent[];
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
export interface TestBed extends AsyncDisposable {
  /**
   * The bed's own service context (pool `test`, service `test`), for what
   * the bed does not wrap: `subscribe` with your own handler, `unsubscribe`,
   * `dumpQueueTree`, …
   *
   * @throws {StateError} Once the bed has stopped.
   */
  readonly context: ServiceContext;
  /** Every `error` event so far (failed phases, handlers that threw), in order. */
  readonly errors: readonly ServiceErrorEvent[];
  /**
   * Publishes `data` on `queue` as the service `test` of pool `test`;
   * resolves when the bus accepted it (it waits while a subscriber is full,
   * as any publisher does).
   *
   * @param queue A concrete queue name (or a `meta.replyTo` to answer).
   * @param data The data; copied as the bus copies it.
   * @param options `headers` and `replyTo`, as `ctx.publish` takes them.
   * @returns Resolves once the bus accepted the message.
   * @throws {StateError} Once the bed has stopped.
   */
  publish(
    queue: string,
    data: unknown,
    options?: PublishOptions,
  ): Promise<void>;
  /**
   * Publishes with a `replyTo` and resolves with the first answer.
   *
   * @param queue The queue a responder subscribes to.
   * @param data The request.
   * @param options `timeout` (default the bed's) and `headers`.
   * @returns The answer.
   * @throws {TimeoutError} When no answer comes in time.
   * @throws {NoRespondersError} When no subscription matches `queue`.
   */
  request<T = unknown>(
    queue: string,
    data: unknown,
    options?: RequestOptions,
  ): Promise<T>;
  /**
   * Subscribes the bed to `queue` (a name or a pattern) now; resolves once
   * every pool knows, so whatever is published from then on is kept for
   * `next` and `take`. Watching a queue twice is allowed (once is kept).
   * Queues that services publish on from `run()` belong in
   * `startServices({ watch })` instead, which subscribes before any `run()`.
   *
   * @param queue The queue name or pattern.
   * @returns Resolves once the subscription is in force in every pool.
   * @throws {QueueNameError} When `queue` is malformed.
   */
  watch(queue: string): Promise<void>;
  /**
   * The next message on `queue` that no `next` or `take` took yet, oldest
   * first: one the bed already received, or the next to arrive. `queue` is a
   * watched queue or pattern, or a concrete queue one of them covers.
   *
   * @param queue The queue to take from.
   * @param options `timeout` (default the bed's) and a `where` filter.
   * @returns The message's data and meta.
   * @throws {TypeError} When no watch covers `queue`.
   * @throws {TimeoutError} When nothing comes in time; the message names the
   * queue, what the bed saw on it and the errors meanwhile.
   */
  next<T = unknown>(
    queue: string,
    options?: TakeOptions<T>,
  ): Promise<Received<T>>;
  /**
   * The next `count` messages on `queue`, as {@linkcode TestBed.next} takes
   * them; all or none (after a timeout, none is taken).
   *
   * @param queue The queue to take from.
   * @param count How many.
   * @param options `timeout` (default the bed's) and a `where` filter.
   * @returns The messages, oldest first.
   * @throws {TypeError} When no watch covers `queue`.
   * @throws {TimeoutError} When fewer arrive in time.
   */
  take<T = unknown>(
    queue: string,
    count: number,
    options?: TakeOptions<T>,
  ): Promise<Received<T>[]>;
  /**
   * Every message received on `queue` so far (taken or not), in order; also
   * after the stop.
   *
   * @param queue A watched queue or pattern, or a concrete queue one covers.
   * @returns The messages.
   * @throws {TypeError} When no watch covers `queue`.
   */
  seen<T = unknown>(queue: string): Received<T>[];
  /**
   * Every pool's subscriptions (the bed's own under pool `test`), as
   * `ctx.topology()` gives them.
   *
   * @returns Queue → pool → subscriptions.
   */
  topology(): Promise<Topology>;
  /**
   * Stops every service as `main.run()` does (pools in reverse order,
   * pending messages delivered first) and resolves with the report; waiting
   * `next`/`take` calls fail. Calling it again returns the same report.
   *
   * @returns `main.run()`'s report plus the `error` events.
   */
  stop(): Promise<TestReport>;
  /**
   * Stops the bed (as {@linkcode TestBed.stop}). Unless the test called
   * `stop()` itself (and so reads the report), it throws when the run was
   * not clean: a service failed, a handler threw, or a message was left
   * undelivered. The problems are also logged, since Deno shows only "An
   * error was suppressed during disposal" when the test's body threw too.
   */
  [Symbol.asyncDispose](): Promise<void>;
}
