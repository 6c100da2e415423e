/**
 * What happens when a pool's worker misses its stop deadline. Deno's
 * `worker.terminate()` cannot stop an isolate spinning in a synchronous
 * loop: its thread goes on at 100% and keeps the process alive. So the
 * primary reports the pool as a failure, lets `main.run()` resolve with the
 * report, and then ends the process itself with exit code 1.
 *
 * @module
 */

import type { Logger } from "../logger.ts";

/** How long after `main.run()` resolved the process is ended, in ms. */
export const EXIT_GRACE_MS = 200;

/**
 * The failure message of a pool whose worker missed its stop deadline.
 *
 * @example The failure message
 * ```ts
 * import { unstoppableMessage } from "./stop_deadline.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(unstoppableMessage(4000), /did not stop within 4000 ms/);
 * ```
 */
export function unstoppableMessage(deadline: number): string {
  return `its worker did not stop within ${deadline} ms (an endless synchronous loop?); the process is ended with exit code 1`;
}

/**
 * Ends the process with code 1 because the workers of `pools` could not be
 * stopped: logs one line now, sets `Deno.exitCode`, and calls `Deno.exit(1)`
 * {@linkcode EXIT_GRACE_MS} later, so the caller of `main.run()` gets the
 * report first (and can log it). The timer does not keep the process alive:
 * should the workers end after all, the process exits on its own.
 *
 * @example End the process after the report
 * ```ts ignore
 * endProcessAfterReport(["busy"], log);
 * ```
 */
export function endProcessAfterReport(
  pools: readonly string[],
  log: Logger,
): void {
  const names = pools.map((name) => `"${name}"`).join(", ");
  log.error(
    `Pool ${names} could not be stopped (Deno cannot terminate a worker that spins); exiting with code 1 in ${EXIT_GRACE_MS} ms`,
  );
  Deno.exitCode = 1;
  const timer = setTimeout(() => Deno.exit(1), EXIT_GRACE_MS);
  Deno.unrefTimer(timer);
}
