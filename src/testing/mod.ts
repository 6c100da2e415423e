/**
 * Test your services without workers: {@linkcode startServices} runs the
 * services of one or more pools in the test's own thread, over the real bus
 * (each pool its own bus and scheduler, the pools joined by the real
 * transport, the subscription table and the start barrier of `main.run()`),
 * lets the test publish into queues and await, with a deadline, what the
 * services publish, and stops everything with `await using`.
 *
 * @example A complete test of the WebSocket guide's consumer (docs/websocket.md)
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
 * Deno.test("Consumer answers each frame with its timestamp", async () => {
 *   await using bed = await startServices({
 *     pools: { app: [new Consumer("Consumer")] },
 *     watch: ["ws://outbound/client"],
 *   });
 *   await bed.publish("ws://inbound/client", JSON.stringify({ timestamp: 7 }));
 *   const { data } = await bed.next<string>("ws://outbound/client");
 *   assert.deepEqual(JSON.parse(data), { status: "OK", timestamp: 7 });
 * });
 * ```
 *
 * @module
 */
export { startServices, TEST_POOL, TEST_SERVICE } from "./test_bed.ts";
export type { TestBed, TestBedOptions, TestReport } from "./types.ts";
export type { Received, TakeOptions } from "./inbox.ts";
