/**
 * Renders a {@linkcode MetricsSnapshot} in the Prometheus text exposition
 * format (version 0.0.4): a pure function, no I/O.
 */
import type {
  DurableMetrics,
  MetricsSnapshot,
  SubscriptionMetrics,
} from "../metrics_snapshot.ts";
import type { WebSocketMetrics } from "../websocket/metrics.ts";
import {
  type FamilyRows,
  type Labels,
  type Merge,
  writeFamily,
  writeHistograms,
} from "./exposition.ts";
import { queueLabel } from "./queue_label.ts";

/**
 * The `Content-Type` of the Prometheus text exposition format.
 *
 * @example Serving a rendered snapshot yourself
 * ```ts
 * import {
 *   PROMETHEUS_CONTENT_TYPE,
 *   renderPrometheus,
 * } from "@magic/foundation/metrics";
 * import assert from "node:assert/strict";
 *
 * const empty = { takenAt: 0, subscriptions: [], services: [], pools: [] };
 * const response = new Response(renderPrometheus(empty), {
 *   headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
 * });
 * assert.match(response.headers.get("content-type")!, /version=0\.0\.4/);
 * ```
 */
export const PROMETHEUS_CONTENT_TYPE =
  "text/plain; version=0.0.4; charset=utf-8";

/** The statuses a service can be in, one `service_status` series each. */
const STATUSES = ["initialized", "running", "terminated", "error"] as const;

/** One family of the table: its series, read from a snapshot. */
interface Family {
  name: string;
  type: "counter" | "gauge";
  help: string;
  merge?: Merge;
  rows(snapshot: MetricsSnapshot): Iterable<readonly [Labels, number]>;
}

/** Series of `items`, each labelled by `labels` with the value `value`. */
function* each<T>(
  items: readonly T[] | undefined,
  labels: (item: T) => Labels,
  value: (item: T) => number,
): Iterable<readonly [Labels, number]> {
  for (const item of items ?? []) yield [labels(item), value(item)];
}

function subscriptionLabels(s: SubscriptionMetrics | DurableMetrics): Labels {
  const labels: Array<[string, string]> = [
    ["queue", queueLabel(s.queue)],
    ["pool", s.pool],
    ["service", s.service],
  ];
  if (s.group !== undefined) labels.push(["group", s.group]);
  return labels;
}

/** A family with one series per subscription. */
function perSubscription(
  name: string,
  type: "counter" | "gauge",
  help: string,
  value: (s: SubscriptionMetrics) => number,
  merge?: Merge,
): Family {
  return {
    name,
    type,
    help,
    merge,
    rows: (snapshot) => each(snapshot.subscriptions, subscriptionLabels, value),
  };
}

/** A `durable_*` family with one series per durable subscription. */
function perDurable(
  name: string,
  type: "counter" | "gauge",
  help: string,
  value: (d: DurableMetrics) => number | undefined,
  merge?: Merge,
): Family {
  return {
    name,
    type,
    help,
    merge,
    rows: (snapshot) =>
      each(
        snapshot.durable?.filter((d) => value(d) !== undefined),
        subscriptionLabels,
        (d) => value(d)!,
      ),
  };
}

const byPool = (p: { pool: string }): Labels => [["pool", p.pool]];
const byService = (s: { pool: string; service: string }): Labels => [
  ["pool", s.pool],
  ["service", s.service],
];

/** A `websocket_*` family with one series per direction. */
function perDirection(
  name: string,
  help: string,
  count: (w: WebSocketMetrics, direction: "in" | "out") => number,
): Family {
  return {
    name,
    type: "counter",
    help,
    *rows(snapshot): Iterable<readonly [Labels, number]> {
      for (const w of snapshot.websockets ?? []) {
        for (const direction of ["in", "out"] as const) {
          yield [
            [...byService(w), ["direction", direction]],
            count(w, direction),
          ];
        }
      }
    },
  };
}

/** Every counter and gauge family, in the order they are written. */
const FAMILIES: readonly Family[] = [
  perSubscription(
    "routed_total",
    "counter",
    "Messages routed to a subscription: a message counts once in every subscription it reached.",
    (s) => s.routed,
  ),
  perSubscription(
    "delivered_total",
    "counter",
    "Messages handed to a subscription's handler (calls started).",
    (s) => s.delivered,
  ),
  perSubscription(
    "handled_total",
    "counter",
    "Handler calls that finished, every one counted (exact, unlike the sampled handler_duration_seconds_count).",
    (s) => s.handled,
  ),
  perSubscription(
    "buffered",
    "gauge",
    "Messages waiting for a subscription's handler.",
    (s) => s.buffered,
  ),
  perSubscription(
    "stuck",
    "gauge",
    "1 while a subscription is stuck: messages wait and no handler call has started for stuckThreshold.",
    (s) => s.stuck ? 1 : 0,
    "max",
  ),
  perSubscription(
    "handler_errors_total",
    "counter",
    "Handler calls that threw or rejected.",
    (s) => s.handlerErrors,
  ),
];

/** The families written after the handler-duration histogram. */
const LATER_FAMILIES: readonly Family[] = [
  {
    name: "service_status",
    type: "gauge",
    help: "1 for a service's current status, 0 for the others.",
    *rows(snapshot): Iterable<readonly [Labels, number]> {
      for (const s of snapshot.services) {
        for (const status of STATUSES) {
          yield [
            [...byService(s), ["status", status]],
            s.status === status ? 1 : 0,
          ];
        }
      }
    },
  },
  {
    name: "service_restarts_total",
    type: "counter",
    help: "Times a service was restarted in its pool's worker.",
    rows: (snapshot) => each(snapshot.services, byService, (s) => s.restarts),
  },
  {
    name: "pool_restarts_total",
    type: "counter",
    help: "Times a pool's worker died and was started again.",
    rows: (snapshot) => each(snapshot.pools, byPool, (p) => p.restarts),
  },
  {
    name: "pool_stalls_total",
    type: "counter",
    help:
      "Times a pool's event loop stopped turning beyond the stall threshold.",
    rows: (snapshot) => each(snapshot.pools, byPool, (p) => p.stalls),
  },
  {
    name: "pool_stalled",
    type: "gauge",
    help: "1 while a pool is stalled (its subscriptions are then missing).",
    rows: (snapshot) => each(snapshot.pools, byPool, (p) => p.stalled ? 1 : 0),
  },
  {
    name: "published_total",
    type: "counter",
    help:
      "Messages a service published (replies included), once each, whether a subscription took them or not.",
    rows: (snapshot) =>
      each(snapshot.publishers, byService, (p) => p.published),
  },
  {
    name: "published_to_pattern_total",
    type: "counter",
    help:
      "Messages a service published that reached a pattern's subscriptions: once per pattern reached (labelled by the publisher).",
    *rows(snapshot): Iterable<readonly [Labels, number]> {
      for (const p of snapshot.publishers ?? []) {
        for (const to of p.patterns) {
          yield [
            [["queue", queueLabel(to.queue)], ...byService(p)],
            to.published,
          ];
        }
      }
    },
  },
  {
    name: "dropped_total",
    type: "counter",
    help:
      "Messages from other processes a pool dropped on arrival: their subscription's buffer and the pool's arrival bound were full.",
    rows: (snapshot) =>
      each(snapshot.dropped, (d) => [["pool", d.pool], ["queue", d.queue]], (
        d,
      ) => d.count),
  },
  perDurable(
    "durable_delivered_total",
    "counter",
    "Deliveries of a durable queue handed to a subscription's handler (a redelivery counts again).",
    (d) => d.delivered,
  ),
  perDurable(
    "durable_acknowledged_total",
    "counter",
    "Deliveries of a durable queue whose handler resolved (acknowledged).",
    (d) => d.acknowledged,
  ),
  perDurable(
    "durable_redelivered_total",
    "counter",
    "Deliveries of a durable queue whose handler threw, sent back for another attempt.",
    (d) => d.redelivered,
  ),
  perDurable(
    "durable_dead_lettered_total",
    "counter",
    "Deliveries of a durable queue whose handler threw at the last attempt, moved to dlq://.",
    (d) => d.deadLettered,
  ),
  perDurable(
    "durable_in_flight",
    "gauge",
    "Deliveries of a durable queue a pool holds unsettled now (running or waiting for the handler).",
    (d) => d.inFlight,
  ),
  perDurable(
    "durable_pending",
    "gauge",
    "Messages of a durable queue stored and not yet acknowledged by the subscription's consumer (the consumer's figure: the same on every member of a group).",
    (d) => d.pending,
    // Two subscriptions with the same labels share their consumer.
    "max",
  ),
  {
    name: "websocket_connections",
    type: "gauge",
    help: "WebSocket connections open now.",
    rows: (snapshot) =>
      each(snapshot.websockets, byService, (w) => w.connections),
  },
  perDirection(
    "websocket_frames_total",
    "WebSocket data frames received (in) and sent (out).",
    (w, direction) => direction === "in" ? w.framesIn : w.framesOut,
  ),
  perDirection(
    "websocket_bytes_total",
    "WebSocket payload bytes received (in) and sent (out).",
    (w, direction) => direction === "in" ? w.bytesIn : w.bytesOut,
  ),
  {
    name: "websocket_closes_total",
    type: "counter",
    help: "WebSocket connections closed, by close code.",
    *rows(snapshot): Iterable<readonly [Labels, number]> {
      for (const w of snapshot.websockets ?? []) {
        for (const [code, count] of Object.entries(w.closes)) {
          yield [[...byService(w), ["code", code]], count];
        }
      }
    },
  },
  {
    name: "link_publisher_waits_total",
    type: "counter",
    help: "Times a publisher waited because the link to a pool was full.",
    rows: (snapshot) =>
      each(
        snapshot.links,
        (l) => [["pool", l.pool], ["peer", l.peer]],
        (l) => l.publisherWaits,
      ),
  },
  {
    name: "link_window_waits_total",
    type: "counter",
    help: "Times a batch waited for the receiving pool's acknowledgements.",
    rows: (snapshot) =>
      each(
        snapshot.links,
        (l) => [["pool", l.pool], ["peer", l.peer]],
        (l) => l.windowWaits,
      ),
  },
];

/**
 * Renders `snapshot` as Prometheus text: `HELP` and `TYPE` lines, one series
 * per subscription (labelled `queue` — the pattern subscribed to —, `pool`,
 * `service`, and `group` for a competing consumer), per publishing service
 * (`published_total`) and pattern it reached (`published_to_pattern_total`),
 * per durable subscription (`durable_*`, labelled like a subscription),
 * per service and per pool, per WebSocketService (`websocket_*`, labelled
 * `pool` and `service`); histograms with cumulative `_bucket{le=…}` series
 * ending at `+Inf`, `_sum` and `_count`. A WebSocketService's control queue
 * (`ws://control/<service>/<random id>`) is labelled
 * `ws://control/<service>/*`, so a restart makes no new series. Series with
 * the same labels are added up.
 *
 * @example Two subscriptions' counters
 * ```ts
 * import { renderPrometheus } from "@magic/foundation/metrics";
 * import assert from "node:assert/strict";
 *
 * const text = renderPrometheus({
 *   takenAt: 0,
 *   subscriptions: [{
 *     pool: "app",
 *     service: "orders",
 *     queue: "q://orders/*",
 *     routed: 3,
 *     delivered: 2,
 *     handled: 2,
 *     buffered: 1,
 *     handlerErrors: 0,
 *     stuck: false,
 *     handlerSeconds: { bounds: [0.001, 1], cumulative: [1, 2], count: 2, sum: 0.5 },
 *   }],
 *   services: [{ pool: "app", service: "orders", status: "running", restarts: 0 }],
 *   pools: [{ pool: "app", restarts: 0, stalls: 0, stalled: false }],
 * });
 * assert.ok(text.includes(
 *   'magic_foundation_routed_total{queue="q://orders/*",pool="app",service="orders"} 3\n',
 * ));
 * assert.ok(text.includes(
 *   'magic_foundation_handler_duration_seconds_bucket{queue="q://orders/*",pool="app",service="orders",le="+Inf"} 2\n',
 * ));
 * ```
 *
 * @param snapshot What `main.metrics()` or `ctx.metrics()` returned.
 * @returns The exposition, ending with a newline.
 */
export function renderPrometheus(snapshot: MetricsSnapshot): string {
  const out: string[] = [];
  const write = (family: Family): void =>
    writeFamily(out, { ...family, rows: family.rows(snapshot) } as FamilyRows);
  FAMILIES.forEach(write);
  writeHistograms(out, {
    name: "handler_duration_seconds",
    help:
      "Time of the timed handler calls, in seconds: one call in 32 by default (handlerTiming), so _count is the number of timed calls; handled_total counts them all.",
    rows: snapshot.subscriptions.map((s) =>
      [subscriptionLabels(s), s.handlerSeconds] as const
    ),
  });
  LATER_FAMILIES.forEach(write);
  return out.join("");
}
