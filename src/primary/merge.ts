/**
 * The whole program's metrics and topology, merged from the parts each
 * pool answers with.
 *
 * @module
 */
import type { PoolMetricsPart } from "../pool/protocol.ts";
import type {
  DroppedMetrics,
  DurableMetrics,
  LinkMetrics,
  MetricsSnapshot,
  PublisherMetrics,
} from "../metrics_snapshot.ts";
import type { Topology } from "../service_context.ts";
import { addContributions, emptyContributions } from "../service_metrics.ts";
import type { PoolHandle } from "./pool_handle.ts";

/**
 * One snapshot of the program: the pools as the primary sees them, and
 * every part a pool answered with (a stalled pool's is missing).
 */
export function mergeMetrics(
  pools: readonly PoolHandle[],
  parts: readonly PoolMetricsPart[],
): MetricsSnapshot {
  const contributed = emptyContributions();
  const links: LinkMetrics[] = [];
  const publishers: PublisherMetrics[] = [];
  const dropped: DroppedMetrics[] = [];
  const durable: DurableMetrics[] = [];
  const snapshot: MetricsSnapshot = {
    takenAt: Date.now(),
    subscriptions: [],
    services: [],
    ...contributed,
    links,
    publishers,
    dropped,
    durable,
    pools: pools.map((pool) => ({
      pool: pool.name,
      restarts: Math.max(0, pool.incarnation - 1),
      stalls: pool.stalls,
      stalled: pool.stalledSince !== 0,
    })),
  };
  for (const part of parts) {
    snapshot.subscriptions.push(...part.subscriptions);
    snapshot.services.push(...part.services);
    addContributions(contributed, part.contributed);
    links.push(...part.links);
    publishers.push(...part.publishers);
    dropped.push(...part.dropped);
    durable.push(...part.durable);
  }
  return snapshot;
}

/** Merges the topology parts of several pools. */
export function mergeTopology(parts: readonly Topology[]): Topology {
  const merged: Topology = {};
  for (const part of parts) {
    for (const [queue, pools] of Object.entries(part)) {
      const target = merged[queue] ??= {};
      for (const [pool, entries] of Object.entries(pools)) {
        (target[pool] ??= []).push(...entries);
      }
    }
  }
  return merged;
}
