/**
 * The log-file service of magic-foundation, the Python original's
 * `LoggingService`: services publish on `log://<path>`, and the service,
 * in a pool of its own, appends each message to the file at `<path>` as one
 * JSON line. Writes are batched (every `flushInterval`, and at `terminate()`),
 * nothing acknowledged is lost at a graceful stop, and the file can rotate at
 * a size limit.
 *
 * @example The original's `dump_to_file` example
 * ```ts ignore
 * import {
 *   Main,
 *   Service,
 *   type ServiceContext,
 *   ServiceStatus,
 * } from "@magic/foundation";
 * import { LogFileService, logQueue } from "@magic/foundation/log-file";
 *
 * class Producer extends Service {
 *   override async run(ctx: ServiceContext): Promise<void> {
 *     let index = 0;
 *     while (this.status === ServiceStatus.running) {
 *       await ctx.publish(logQueue("dump.jsonl"), { index: index++ });
 *       await ctx.sleep(100);
 *     }
 *   }
 * }
 *
 * if (import.meta.main) {
 *   const main = Main.instance();
 *   // The log's pool first: pools stop in reverse order, so it stops last
 *   // and writes everything the producers published.
 *   main.servicePools = {
 *     background: [() => new LogFileService({ path: "dump.jsonl" })],
 *     main: [() => new Producer("Producer")],
 *   };
 *   await main.run();
 * }
 * ```
 *
 * @module
 */

export { LogFileService, type LogFileStats } from "./service.ts";
export {
  type LogFileServiceOptions,
  logQueue,
  rejectedLogQueue,
} from "./options.ts";
