/**
 * What a run tells its caller: the report `main.run()` resolves with once
 * everything has stopped, and the `status` events of `Main` on the way.
 *
 * @module
 */
import type { LifecyclePhase } from "./errors.ts";
import type { ServiceStatus } from "./service.ts";

/**
 * What `main.run()` resolves with once everything has stopped.
 *
 * @example Exit with an error when a run went wrong
 * ```ts
 * import type { RunReport } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * function exitCode(report: RunReport): number {
 *   return report.failures.length + report.undelivered.length > 0 ? 1 : 0;
 * }
 *
 * assert.equal(exitCode({ failures: [], undelivered: [] }), 0);
 * assert.equal(
 *   exitCode({
 *     failures: [{ pool: "db", service: "store", message: "disk full" }],
 *     undelivered: [],
 *   }),
 *   1,
 * );
 * ```
 */
export interface RunReport {
  /** Services that ended in `error` (empty when all went well). */
  failures: ServiceFailure[];
  /**
   * Messages whose `publish` resolved but that were never handled (empty
   * when all went well); each is also logged, and makes the exit code 1.
   */
  undelivered: Undelivered[];
  /**
   * With durable queues: each consumer's counts, and what it left pending
   * (stored, not yet settled: delivered after the next start). On the local
   * log, every consumer the log knows; joined to NATS, those this process
   * used, as JetStream told each pool when it stopped.
   */
  durable?: DurablePending[];
}

/**
 * One service that ended in `error`, as `main.run()` reports it.
 *
 * @example Describe a failure
 * ```ts
 * import type { ServiceFailure } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const failure: ServiceFailure = {
 *   pool: "db",
 *   service: "store",
 *   phase: "run",
 *   message: "disk full",
 * };
 * assert.equal(
 *   `${failure.pool}/${failure.service} (${failure.phase}): ${failure.message}`,
 *   "db/store (run): disk full",
 * );
 * ```
 */
export interface ServiceFailure {
  /** The pool of the service. */
  pool: string;
  /** The service's name; `*` when the pool died before its services were built. */
  service: string;
  /** The phase that failed; absent when the service's pool died. */
  phase?: LifecyclePhase | undefined;
  /** What went wrong. */
  message: string;
}

/**
 * The detail of a `status` event of `Main`.
 *
 * @example Log every change of status
 * ```ts ignore
 * import { Main } from "@magic/foundation";
 *
 * const main = Main.instance();
 * main.addEventListener("status", (event) => {
 *   const { pool, service, status } = event.detail;
 *   console.log(`${pool}/${service}: ${status}`);
 * });
 * ```
 */
export interface StatusChange {
  /** The pool of the service. */
  pool: string;
  /** The service's name. */
  service: string;
  /** Its new status. */
  status: ServiceStatus;
  /** The error message, when the status is `error`. */
  error?: string | undefined;
}

/**
 * Messages whose `publish` resolved but that were never handled, as
 * `main.run()` reports them: they waited behind a handler that did not
 * finish by the stop deadline, never left the publishing pool because the
 * receiving pool took nothing more, or found no group member left.
 *
 * @example Count what was lost
 * ```ts
 * import type { Undelivered } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * const lost: Undelivered[] = [
 *   { pool: "db", service: "store", queue: "q://orders", count: 3, heldBy: "db" },
 *   { pool: "db", queue: "q://orders", count: 2, heldBy: "web" },
 * ];
 * assert.equal(lost.reduce((sum, u) => sum + u.count, 0), 5);
 * ```
 */
export interface Undelivered {
  /** The pool they were for. */
  pool: string;
  /** The subscribing service, when they waited in its subscription. */
  service?: string | undefined;
  /** The group, when no member of it was left to take them. */
  group?: string | undefined;
  /** The subscription's queue (pattern), or the concrete queue of messages that never left their pool. */
  queue: string;
  /** How many messages. */
  count: number;
  /** The pool that held them at the end: the subscriber's, or the publisher's when they were never sent. */
  heldBy: string;
  /**
   * Set on messages from another process that the pool dropped on arrival:
   * their subscription's buffer was full and so was the pool's arrival
   * bound (`nats.arrivalBytes`). `heldBy` is then `"nats"`.
   */
  dropped?: true | undefined;
}

/**
 * A durable consumer at the end of a run (`RunReport.durable`): what it left
 * pending, and its counts in the run.
 *
 * @example
 * ```ts
 * import type { DurablePending } from "@magic/foundation";
 *
 * function describe(entry: DurablePending): string {
 *   return `${entry.consumer}: ${entry.pending} pending`;
 * }
 * ```
 */
export interface DurablePending {
  /** The durable pattern (stream) it reads. */
  stream: string;
  /**
   * Its name: on the local log `group+<pattern>+<group>` or
   * `service+<pattern>+<service>` (parts URI-encoded); joined to NATS, the
   * JetStream consumer's (`g_<group>_…`, `s_<service>_…`).
   */
  consumer: string;
  /**
   * Messages stored and not yet acknowledged by it; delivered after the next
   * start. Joined to NATS, JetStream's `num_pending + num_ack_pending` when
   * the last of this process's pools using it stopped.
   */
  pending: number;
  /** Deliveries in the run (redeliveries included; joined to NATS, this process's). */
  delivered: number;
  /** Messages its handlers acknowledged. */
  acknowledged: number;
  /** Deliveries after a handler threw or its pool died. */
  redelivered: number;
  /** Messages moved to their `dlq://` queue. */
  deadLettered: number;
}
