import { checkDuration } from "../_util/duration.ts";
import { validateQueueName } from "../queue_name.ts";
import { resolveCommonSettings } from "../run_options.ts";
import { validatePools } from "../service_pools.ts";
import { RunningBed, TEST_POOL } from "./running_bed.ts";
import type { TestBed, TestBedOptions } from "./types.ts";

export { TEST_POOL, TEST_SERVICE } from "./running_bed.ts";
export type { TestBed, TestBedOptions, TestReport } from "./types.ts";

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
 * A bed started in a `Deno.test` must be stopped before the test ends
 * (`await using`, or `await bed.stop()`): otherwise it is stopped then and
 * the test fails with a `StateError` saying so.
 *
 * @param options The pools, the queues to watch, and run options.
 * @returns The running test bed; `await using` stops it at the end of the scope.
 * @throws {TypeError} When a pool or an option is malformed, or a pool is named `test`.
 * @throws {QueueNameError} When a queue to watch is malformed.
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
  const timeout = checkDuration(where, "timeout", options.timeout ?? 2000);
  const settings = resolveCommonSettings(where, options, {
    terminateTimeout: 2000,
    startTimeout: 10_000,
    logLevel: "warn",
    transportFromEnv: false,
  });
  const watch = [...(options.watch ?? [])];
  for (const queue of watch) validateQueueName(queue, "subscribe");
  const bed = new RunningBed(options, names, watch, timeout, settings);
  await bed.started(settings.startTimeout);
  return bed;
}
