/**
 * Renders a {@linkcode MetricsSnapshot} in the Prometheus text exposition
 * format (version 0.0.4): a pure function, no I/O.
 */
import type {
  HistogramSnapshot,
  LinkMetrics,
  MetricsSnapshot,
  PublisherMetrics,
  SubscriptionMetrics,
  WebSocketMetrics,
} from "../types.ts";
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

/** The prefix of every metric name. */
const PREFIX = "magic_foundation_";

/** The statuses a service can be in, one `service_status` series each. */
const STATUSES = ["initialized", "running", "terminated", "error"] as const;

type Labels = Array<[string, string]>;

/**
 * Renders `snapshot` as Prometheus text: `HELP` and `TYPE` lines, one series
 * per subscription (labelled `queue` — the pattern subscribed to —, `pool`,
 * `service`, and `group` for a competing consumer), per publishing service
 * (`published_total`) and pattern it reached (`published_to_pattern_total`),
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
  const subscriptions = mergeSubscriptions(snapshot.subscriptions);
  const subscriptionFamily = (
    name: string,
    type: "counter" | "gauge",
    help: string,
    value: (s: SubscriptionMetrics) => number,
  ): void => {
    family(out, name, type, help);
    for (const s of subscriptions) {
      out.push(series(name, subscriptionLabels(s), value(s)));
    }
  };
  subscriptionFamily(
    "routed_total",
    "counter",
    "Messages routed to a subscription: a message counts once in every subscription it reached.",
    (s) => s.routed,
  );
  subscriptionFamily(
    "delivered_total",
    "counter",
    "Messages handed to a subscription's handler (calls started).",
    (s) => s.delivered,
  );
  subscriptionFamily(
    "handled_total",
    "counter",
    "Handler calls that finished, every one counted (exact, unlike the sampled handler_duration_seconds_count).",
    (s) => s.handled,
  );
  subscriptionFamily(
    "buffered",
    "gauge",
    "Messages waiting for a subscription's handler.",
    (s) => s.buffered,
  );
  subscriptionFamily(
    "stuck",
    "gauge",
    "1 while a subscription is stuck: messages wait and no handler call has started for stuckThreshold.",
    (s) => s.stuck ? 1 : 0,
  );
  subscriptionFamily(
    "handler_errors_total",
    "counter",
    "Handler calls that threw or rejected.",
    (s) => s.handlerErrors,
  );
  family(
    out,
    "handler_duration_seconds",
    "histogram",
    "Time of the timed handler calls, in seconds: one call in 32 by default (handlerTiming), so _count is the number of timed calls; handled_total counts them all.",
  );
  for (const s of subscriptions) {
    histogram(
      out,
      "handler_duration_seconds",
      subscriptionLabels(s),
      s.handlerSeconds,
    );
  }

  family(
    out,
    "service_status",
    "gauge",
    "1 for a service's current status, 0 for the others.",
  );
  for (const s of snapshot.services) {
    for (const status of STATUSES) {
      out.push(series("service_status", [
        ["pool", s.pool],
        ["service", s.service],
        ["status", status],
      ], s.status === status ? 1 : 0));
    }
  }
  family(
    out,
    "service_restarts_total",
    "counter",
    "Times a service was restarted in its pool's worker.",
  );
  for (const s of snapshot.services) {
    out.push(series("service_restarts_total", [
      ["pool", s.pool],
      ["service", s.service],
    ], s.restarts));
  }

  family(
    out,
    "pool_restarts_total",
    "counter",
    "Times a pool's worker died and was started again.",
  );
  for (const p of snapshot.pools) {
    out.push(series("pool_restarts_total", [["pool", p.pool]], p.restarts));
  }
  family(
    out,
    "pool_stalls_total",
    "counter",
    "Times a pool's event loop stopped turning beyond the stall threshold.",
  );
  for (const p of snapshot.pools) {
    out.push(series("pool_stalls_total", [["pool", p.pool]], p.stalls));
  }
  family(
    out,
    "pool_stalled",
    "gauge",
    "1 while a pool is stalled (its subscriptions are then missing).",
  );
  for (const p of snapshot.pools) {
    out.push(series("pool_stalled", [["pool", p.pool]], p.stalled ? 1 : 0));
  }
  renderPublishers(out, snapshot.publishers ?? []);
  family(
    out,
    "dropped_total",
    "counter",
    "Messages from other processes a pool dropped on arrival: their subscription's buffer and the pool's arrival bound were full.",
  );
  for (const d of snapshot.dropped ?? []) {
    out.push(
      series("dropped_total", [["pool", d.pool], ["queue", d.queue]], d.count),
    );
  }
  renderWebSockets(out, snapshot.websockets ?? []);
  renderLinks(out, snapshot.links ?? []);
  return out.join("");
}

/**
 * The `published_total` family (each service's messages, labelled `pool`
 * and `service`) and `published_to_pattern_total` (the same per pattern
 * reached, labelled `queue` too).
 */
function renderPublishers(
  out: string[],
  publishers: readonly PublisherMetrics[],
): void {
  const totals = new Map<string, [string, string, number]>();
  const byPattern = new Map<string, [string, string, string, number]>();
  for (const p of publishers) {
    const key = JSON.stringify([p.pool, p.service]);
    const total = totals.get(key);
    if (total === undefined) totals.set(key, [p.pool, p.service, p.published]);
    else total[2] += p.published;
    for (const to of p.patterns) {
      const queue = queueLabel(to.queue);
      const key = JSON.stringify([queue, p.pool, p.service]);
      const seen = byPattern.get(key);
      if (seen === undefined) {
        byPattern.set(key, [queue, p.pool, p.service, to.published]);
      } else seen[3] += to.published;
    }
  }
  family(
    out,
    "published_total",
    "counter",
    "Messages a service published (replies included), once each, whether a subscription took them or not.",
  );
  for (const [pool, service, published] of totals.values()) {
    out.push(series("published_total", [
      ["pool", pool],
      ["service", service],
    ], published));
  }
  family(
    out,
    "published_to_pattern_total",
    "counter",
    "Messages a service published that reached a pattern's subscriptions: once per pattern reached (labelled by the publisher).",
  );
  for (const [queue, pool, service, published] of byPattern.values()) {
    out.push(series("published_to_pattern_total", [
      ["queue", queue],
      ["pool", pool],
      ["service", service],
    ], published));
  }
}

/** The `link_*` families, one series per sending and receiving pool. */
function renderLinks(out: string[], links: readonly LinkMetrics[]): void {
  const merged = new Map<string, LinkMetrics>();
  for (const l of links) {
    const key = JSON.stringify([l.pool, l.peer]);
    const seen = merged.get(key);
    if (seen === undefined) merged.set(key, { ...l });
    else {
      seen.publisherWaits += l.publisherWaits;
      seen.windowWaits += l.windowWaits;
    }
  }
  const all = [...merged.values()];
  const labels = (l: LinkMetrics): Labels => [["pool", l.pool], [
    "peer",
    l.peer,
  ]];
  family(
    out,
    "link_publisher_waits_total",
    "counter",
    "Times a publisher waited because the link to a pool was full.",
  );
  for (const l of all) {
    out.push(
      series("link_publisher_waits_total", labels(l), l.publisherWaits),
    );
  }
  family(
    out,
    "link_window_waits_total",
    "counter",
    "Times a batch waited for the receiving pool's acknowledgements.",
  );
  for (const l of all) {
    out.push(series("link_window_waits_total", labels(l), l.windowWaits));
  }
}

/** The `websocket_*` families, one series per service (and direction, code). */
function renderWebSockets(
  out: string[],
  websockets: readonly WebSocketMetrics[],
): void {
  const merged = new Map<string, WebSocketMetrics>();
  for (const w of websockets) {
    const key = JSON.stringify([w.pool, w.service]);
    const seen = merged.get(key);
    if (seen === undefined) {
      merged.set(key, { ...w, closes: { ...w.closes } });
      continue;
    }
    seen.connections += w.connections;
    seen.framesIn += w.framesIn;
    seen.framesOut += w.framesOut;
    seen.bytesIn += w.bytesIn;
    seen.bytesOut += w.bytesOut;
    for (const [code, count] of Object.entries(w.closes)) {
      seen.closes[code] = (seen.closes[code] ?? 0) + count;
    }
  }
  const all = [...merged.values()];
  const labels = (w: WebSocketMetrics): Labels => [
    ["pool", w.pool],
    ["service", w.service],
  ];
  family(
    out,
    "websocket_connections",
    "gauge",
    "WebSocket connections open now.",
  );
  for (const w of all) {
    out.push(series("websocket_connections", labels(w), w.connections));
  }
  const inOut = (
    name: string,
    help: string,
    count: (w: WebSocketMetrics, direction: "in" | "out") => number,
  ): void => {
    family(out, name, "counter", help);
    for (const w of all) {
      for (const direction of ["in", "out"] as const) {
        out.push(
          series(
            name,
            [...labels(w), ["direction", direction]],
            count(w, direction),
          ),
        );
      }
    }
  };
  inOut(
    "websocket_frames_total",
    "WebSocket data frames received (in) and sent (out).",
    (w, direction) => direction === "in" ? w.framesIn : w.framesOut,
  );
  inOut(
    "websocket_bytes_total",
    "WebSocket payload bytes received (in) and sent (out).",
    (w, direction) => direction === "in" ? w.bytesIn : w.bytesOut,
  );
  family(
    out,
    "websocket_closes_total",
    "counter",
    "WebSocket connections closed, by close code.",
  );
  for (const w of all) {
    for (const [code, count] of Object.entries(w.closes)) {
      out.push(
        series("websocket_closes_total", [...labels(w), ["code", code]], count),
      );
    }
  }
}

function family(
  out: string[],
  name: string,
  type: "counter" | "gauge" | "histogram",
  help: string,
): void {
  out.push(`# HELP ${PREFIX}${name} ${escapeHelp(help)}\n`);
  out.push(`# TYPE ${PREFIX}${name} ${type}\n`);
}

function histogram(
  out: string[],
  name: string,
  labels: Labels,
  h: HistogramSnapshot,
): void {
  for (let i = 0; i < h.bounds.length; i++) {
    out.push(
      series(
        `${name}_bucket`,
        [...labels, ["le", formatNumber(h.bounds[i]!)]],
        h.cumulative[i]!,
      ),
    );
  }
  out.push(series(`${name}_bucket`, [...labels, ["le", "+Inf"]], h.count));
  out.push(series(`${name}_sum`, labels, h.sum));
  out.push(series(`${name}_count`, labels, h.count));
}

function subscriptionLabels(s: SubscriptionMetrics): Labels {
  const labels: Labels = [
    ["queue", queueLabel(s.queue)],
    ["pool", s.pool],
    ["service", s.service],
  ];
  if (s.group !== undefined) labels.push(["group", s.group]);
  return labels;
}

function series(name: string, labels: Labels, value: number): string {
  const text = labels.map(([key, v]) => `${key}="${escapeLabelValue(v)}"`)
    .join(",");
  return `${PREFIX}${name}{${text}} ${formatNumber(value)}\n`;
}

/**
 * A label value as the format wants it: backslash, double quote and line
 * feed escaped.
 *
 * @example Escaping
 * ```ts
 * import { escapeLabelValue } from "@magic/foundation/metrics";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
 * ```
 *
 * @param value The raw value.
 * @returns The escaped value, to put between double quotes.
 */
export function escapeLabelValue(value: string): string {
  return value.replace(
    /[\\"\n]/g,
    (c) => c === "\\" ? "\\\\" : c === '"' ? '\\"' : "\\n",
  );
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\\" ? "\\\\" : "\\n");
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** Adds up the subscriptions that would make the same series. */
function mergeSubscriptions(
  subscriptions: readonly SubscriptionMetrics[],
): SubscriptionMetrics[] {
  const merged = new Map<string, SubscriptionMetrics>();
  for (const s of subscriptions) {
    const key = JSON.stringify(subscriptionLabels(s));
    const seen = merged.get(key);
    if (seen === undefined) {
      merged.set(key, {
        ...s,
        handlerSeconds: {
          ...s.handlerSeconds,
          bounds: [...s.handlerSeconds.bounds],
          cumulative: [...s.handlerSeconds.cumulative],
        },
      });
      continue;
    }
    seen.routed += s.routed;
    seen.delivered += s.delivered;
    seen.handled += s.handled;
    seen.buffered += s.buffered;
    seen.handlerErrors += s.handlerErrors;
    seen.stuck ||= s.stuck;
    const h = seen.handlerSeconds;
    h.count += s.handlerSeconds.count;
    h.sum += s.handlerSeconds.sum;
    for (let i = 0; i < h.cumulative.length; i++) {
      h.cumulative[i]! += s.handlerSeconds.cumulative[i] ?? 0;
    }
  }
  return [...merged.values()];
}
