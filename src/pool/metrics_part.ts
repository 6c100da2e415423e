/**
 * One pool's part of a metrics snapshot: its bus's counters, its services,
 * what they contribute through the generic hook, and its links' waits.
 *
 * @module
 */
import type { PoolBus } from "../bus/bus.ts";
import type { DurableClient } from "../durable/client.ts";
import { collectContributions } from "../service_metrics.ts";
import type { Transport } from "../transport/transport.ts";
import type { PoolMetricsPart } from "./protocol.ts";
import type { ServiceRunner } from "./service_runner.ts";

/** What a pool's metrics part is gathered from. */
export interface MetricsSources {
  pool: string;
  bus: PoolBus;
  runners: readonly ServiceRunner[];
  transport: Transport;
  /** The program's pool names, by index (a link names its peer). */
  poolNames: readonly string[];
  /** The pool's durable queues, when there are. */
  durable: DurableClient | undefined;
}

/**
 * Gathers one pool's part of a metrics snapshot. With durable queues it
 * waits for their carrier's backlog (the broker's answer, or JetStream's
 * consumer info, at most a second); the rest is taken after, at once.
 */
export async function metricsPart(
  sources: MetricsSources,
): Promise<PoolMetricsPart> {
  const { pool, bus, runners, transport, poolNames, durable } = sources;
  const durableMetrics = await durable?.metrics() ?? [];
  return {
    subscriptions: bus.metrics(),
    publishers: bus.publisherMetrics(),
    dropped: bus.droppedMetrics(),
    durable: durableMetrics,
    services: runners.map((runner) => ({
      pool,
      service: runner.service.name,
      status: runner.service.status,
      restarts: runner.restarts,
    })),
    contributed: collectContributions(runners.map((runner) => runner.service)),
    links: (transport.linkWaits?.() ?? []).map((w) => ({
      pool,
      peer: poolNames[w.to] ?? String(w.to),
      publisherWaits: w.publisherWaits,
      windowWaits: w.windowWaits,
    })),
  };
}
