/**
 * What a run leaves pending on its durable queues (`RunReport.durable`):
 * merged from several sources (the subscriptions of a pool, the pools of a
 * process joined to NATS), and logged at the end of the run.
 *
 * @module
 */
import type { Logger } from "../logger.ts";
import type { DurablePending } from "../run_report.ts";

/**
 * Adds `entries` to `into`, one entry per (stream, consumer): their counts
 * added up, `pending` the last one's (the latest figure: pools report as
 * they stop, the last to stop last).
 *
 * @example Two members of one group
 * ```ts
 * import { mergePending } from "./pending_report.ts";
 * import assert from "node:assert/strict";
 *
 * const entry = {
 *   stream: "q://jobs/>",
 *   consumer: "g_workers_q_jobs_all-1a2b3c4d",
 *   delivered: 3,
 *   acknowledged: 3,
 *   redelivered: 0,
 *   deadLettered: 0,
 * };
 * const report = [{ ...entry, pending: 5 }];
 * mergePending(report, [{ ...entry, pending: 2 }]);
 * assert.deepEqual(report, [{ ...entry, pending: 2, delivered: 6, acknowledged: 6 }]);
 * ```
 */
export function mergePending(
  into: DurablePending[],
  entries: readonly DurablePending[],
): void {
  for (const entry of entries) {
    const same = into.find((e) =>
      e.stream === entry.stream && e.consumer === entry.consumer
    );
    if (same === undefined) {
      into.push({ ...entry });
      continue;
    }
    same.pending = entry.pending;
    same.delivered += entry.delivered;
    same.acknowledged += entry.acknowledged;
    same.redelivered += entry.redelivered;
    same.deadLettered += entry.deadLettered;
  }
}

/** Logs each consumer that left messages pending. */
export function logPending(
  report: readonly DurablePending[],
  log: Logger,
): void {
  for (const entry of report) {
    if (entry.pending > 0) {
      log.info(
        `Durable queue "${entry.stream}": ${entry.pending} messages left pending for ${entry.consumer}; they are delivered after the next start`,
      );
    }
  }
}
