/**
 * The failures of a run, as its report lists them: services that ended in
 * `error`, pools that died before building their services or missed their
 * stop deadline, and connections the remote carrier refused.
 *
 * @module
 */
import type { ServiceFailure } from "../run_report.ts";
import type { PoolHandle } from "./pool_handle.ts";
import { unstoppableMessage } from "./stop_deadline.ts";

/** Every failure of the run: `refusals` first, then each pool's. */
export function failuresOf(
  pools: readonly PoolHandle[],
  refusals: readonly ServiceFailure[],
): ServiceFailure[] {
  const failures: ServiceFailure[] = [...refusals];
  for (const pool of pools) {
    if (pool.services.size === 0 && pool.deathReason !== undefined) {
      failures.push({
        pool: pool.name,
        service: "*",
        message:
          `the pool died before its services were built: ${pool.deathReason}`,
      });
    }
    if (pool.missedStop !== undefined) {
      failures.push({
        pool: pool.name,
        service: "*",
        message: unstoppableMessage(pool.missedStop),
      });
    }
    for (const report of pool.services.values()) {
      if (report.status === "error") {
        failures.push({
          pool: pool.name,
          service: report.name,
          phase: report.phase,
          message: report.error?.message ?? "unknown error",
        });
      }
    }
  }
  return failures;
}
