/**
 * The hook by which a service adds to the program's metrics: a service
 * with a method under {@linkcode SERVICE_METRICS} returns entries for the
 * sections of `MetricsSnapshot` it fills in (the WebSocket service: one in
 * `websockets`). Its pool calls the hook of each of its services for every
 * snapshot, and the primary merges the sections of all pools; neither
 * needs to know the services that fill them.
 *
 * @module
 */
import type { MetricsSnapshot } from "./metrics_snapshot.ts";

/**
 * The sections of `MetricsSnapshot` that services fill in, by name:
 * `websockets`, one entry per `WebSocketService`.
 */
export type ContributedMetrics = Required<Pick<MetricsSnapshot, "websockets">>;

/**
 * The key of the method a service offers to add to the program's metrics
 * (internal: the pool runtime looks for it on every service). The method
 * returns the service's entries by section.
 */
export const SERVICE_METRICS: unique symbol = Symbol.for(
  "magic-foundation.serviceMetrics",
) as never;

/** Every section, empty: a snapshot has each, even when no service fills it. */
export function emptyContributions(): ContributedMetrics {
  return { websockets: [] };
}

/**
 * Adds `from`'s entries to `into`, section by section.
 *
 * @example Merge two pools' sections
 * ```ts
 * import { addContributions, emptyContributions } from "./service_metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const ws = {
 *   pool: "web",
 *   service: "ws",
 *   connections: 1,
 *   framesIn: 0,
 *   framesOut: 0,
 *   bytesIn: 0,
 *   bytesOut: 0,
 *   closes: {},
 * };
 * const all = emptyContributions();
 * addContributions(all, { websockets: [ws] });
 * addContributions(all, {});
 * assert.deepEqual(all, { websockets: [ws] });
 * ```
 */
export function addContributions(
  into: ContributedMetrics,
  from: Partial<ContributedMetrics>,
): void {
  for (const section of Object.keys(into) as Array<keyof ContributedMetrics>) {
    const entries = from[section];
    if (entries !== undefined) into[section].push(...entries);
  }
}

/** What `services` add to the metrics, by section (each present). */
export function collectContributions(
  services: Iterable<object>,
): ContributedMetrics {
  const all = emptyContributions();
  for (const service of services) {
    const hook = (service as Record<symbol, unknown>)[SERVICE_METRICS];
    if (typeof hook === "function") {
      addContributions(
        all,
        hook.call(service) as Partial<ContributedMetrics>,
      );
    }
  }
  return all;
}
