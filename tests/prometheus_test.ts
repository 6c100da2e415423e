/**
 * The Prometheus rendering of a metrics snapshot: the format's rules, checked
 * here line by line, and by `promtool check metrics` where it is installed.
 */
import assert from "node:assert/strict";
import type { MetricsSnapshot, SubscriptionMetrics } from "@magic/foundation";
import { renderPrometheus } from "@magic/foundation/metrics";
import { escapeLabelValue } from "../src/metrics/exposition.ts";
import { promtool } from "./fixtures/promtool.ts";

function subscription(
  overrides: Partial<SubscriptionMetrics> = {},
): SubscriptionMetrics {
  return {
    pool: "app",
    service: "orders",
    queue: "q://orders/*",
    routed: 10,
    delivered: 9,
    handled: 9,
    buffered: 1,
    handlerErrors: 2,
    stuck: false,
    handlerSeconds: {
      bounds: [0.001, 0.01, 1],
      cumulative: [5, 8, 9],
      count: 9,
      sum: 0.25,
    },
    ...overrides,
  };
}

function snapshot(
  subscriptions: SubscriptionMetrics[] = [subscription()],
): MetricsSnapshot {
  return {
    takenAt: 0,
    subscriptions,
    services: [
      { pool: "app", service: "orders", status: "running", restarts: 3 },
    ],
    pools: [{ pool: "app", restarts: 1, stalls: 2, stalled: false }],
    publishers: [
      {
        pool: "web",
        service: "api",
        published: 9,
        patterns: [
          { queue: "q://orders/*", published: 7 },
          { queue: "q://audit/>", published: 4 },
        ],
      },
      // The same service again (two pools' parts): added up.
      {
        pool: "web",
        service: "api",
        published: 6,
        patterns: [{ queue: "q://orders/*", published: 5 }],
      },
    ],
  };
}

/** The format's rules, as a test can check them without promtool. */
function checkFormat(text: string): void {
  assert.ok(text.endsWith("\n"), "ends with a line feed");
  const typed = new Map<string, string>();
  const helped = new Set<string>();
  const seen = new Set<string>();
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment !== null) {
      const [, what, name, rest] = comment;
      const set = what === "HELP" ? helped : new Set(typed.keys());
      assert.ok(!set.has(name!), `one ${what} for ${name}`);
      if (what === "HELP") helped.add(name!);
      else {
        assert.match(rest!, /^(counter|gauge|histogram)$/);
        typed.set(name!, rest!);
      }
      continue;
    }
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\} (\S+)$/
        .exec(line);
    assert.ok(sample !== null, `a valid sample line: ${line}`);
    const [, name, labels, value] = sample;
    assert.ok(!Number.isNaN(Number(value)) || value === "+Inf", line);
    const family = [...typed.keys()].find((f) =>
      name === f ||
      (typed.get(f) === "histogram" &&
        [`${f}_bucket`, `${f}_sum`, `${f}_count`].includes(name!))
    );
    assert.ok(family !== undefined, `${name} comes after its TYPE line`);
    assert.ok(family.startsWith("magic_foundation_"), family);
    if (typed.get(family) === "counter") assert.ok(family.endsWith("_total"));
    assert.ok(!seen.has(`${name}{${labels}}`), `one series ${name}{${labels}}`);
    seen.add(`${name}{${labels}}`);
  }
}

Deno.test("renderPrometheus() writes HELP and TYPE once per family, prefixed, one series per label set", () => {
  const text = renderPrometheus(snapshot());
  checkFormat(text);
  for (
    const [name, type] of [
      ["routed_total", "counter"],
      ["delivered_total", "counter"],
      ["handled_total", "counter"],
      ["published_total", "counter"],
      ["published_to_pattern_total", "counter"],
      ["buffered", "gauge"],
      ["stuck", "gauge"],
      ["handler_errors_total", "counter"],
      ["handler_duration_seconds", "histogram"],
      ["service_status", "gauge"],
      ["service_restarts_total", "counter"],
      ["pool_restarts_total", "counter"],
      ["pool_stalls_total", "counter"],
      ["pool_stalled", "gauge"],
    ]
  ) {
    assert.ok(text.includes(`# HELP magic_foundation_${name} `), name);
    assert.ok(
      text.includes(`# TYPE magic_foundation_${name} ${type}\n`),
      name,
    );
  }
  const labels = 'queue="q://orders/*",pool="app",service="orders"';
  for (
    const line of [
      `magic_foundation_routed_total{${labels}} 10`,
      `magic_foundation_delivered_total{${labels}} 9`,
      `magic_foundation_handled_total{${labels}} 9`,
      `magic_foundation_buffered{${labels}} 1`,
      `magic_foundation_stuck{${labels}} 0`,
      `magic_foundation_handler_errors_total{${labels}} 2`,
      'magic_foundation_service_restarts_total{pool="app",service="orders"} 3',
      'magic_foundation_service_status{pool="app",service="orders",status="running"} 1',
      'magic_foundation_service_status{pool="app",service="orders",status="error"} 0',
      'magic_foundation_pool_restarts_total{pool="app"} 1',
      'magic_foundation_pool_stalls_total{pool="app"} 2',
      'magic_foundation_pool_stalled{pool="app"} 0',
      // By the publisher, the same labels added up.
      'magic_foundation_published_total{pool="web",service="api"} 15',
      'magic_foundation_published_to_pattern_total{queue="q://orders/*",pool="web",service="api"} 12',
      'magic_foundation_published_to_pattern_total{queue="q://audit/>",pool="web",service="api"} 4',
    ]
  ) {
    assert.ok(text.includes(`${line}\n`), line);
  }
});

Deno.test("renderPrometheus() writes a histogram as cumulative buckets ending at +Inf, then _sum and _count", () => {
  const text = renderPrometheus(snapshot());
  const lines = text.split("\n").filter((l) =>
    l.startsWith("magic_foundation_handler_duration_seconds")
  );
  const labels = 'queue="q://orders/*",pool="app",service="orders"';
  assert.deepEqual(lines, [
    `magic_foundation_handler_duration_seconds_bucket{${labels},le="0.001"} 5`,
    `magic_foundation_handler_duration_seconds_bucket{${labels},le="0.01"} 8`,
    `magic_foundation_handler_duration_seconds_bucket{${labels},le="1"} 9`,
    `magic_foundation_handler_duration_seconds_bucket{${labels},le="+Inf"} 9`,
    `magic_foundation_handler_duration_seconds_sum{${labels}} 0.25`,
    `magic_foundation_handler_duration_seconds_count{${labels}} 9`,
  ]);
});

Deno.test("renderPrometheus() escapes label values and adds up subscriptions with the same labels", () => {
  const odd = 'q://a"b\\c';
  const text = renderPrometheus(snapshot([
    subscription({ service: "line\nbreak", queue: odd }),
    subscription(),
    subscription({ group: "workers" }),
    subscription({ stuck: true }),
  ]));
  checkFormat(text);
  assert.ok(text.includes(
    'magic_foundation_routed_total{queue="q://a\\"b\\\\c",pool="app",service="line\\nbreak"} 10\n',
  ));
  assert.ok(text.includes(
    'magic_foundation_routed_total{queue="q://orders/*",pool="app",service="orders"} 20\n',
  ));
  assert.ok(text.includes(
    'magic_foundation_routed_total{queue="q://orders/*",pool="app",service="orders",group="workers"} 10\n',
  ));
  assert.ok(
    text.includes(
      'magic_foundation_stuck{queue="q://orders/*",pool="app",service="orders"} 1\n',
    ),
    "stuck when one of them is",
  );
  assert.ok(text.includes(
    'magic_foundation_handler_duration_seconds_bucket{queue="q://orders/*",pool="app",service="orders",le="0.01"} 16\n',
  ));
  assert.equal(escapeLabelValue("plain"), "plain");
});

Deno.test("renderPrometheus() output passes promtool check metrics", async (t) => {
  const text = renderPrometheus(snapshot([
    subscription(),
    subscription({ queue: 'x://"quoted"\\', group: "g" }),
  ]));
  const result = await promtool(text);
  if ("skipped" in result) {
    await t.step({
      name: `skipped: ${result.skipped}`,
      ignore: true,
      fn: () => {},
    });
    return;
  }
  assert.equal(result.problems, "");
});

Deno.test("renderPrometheus() labels a WebSocketService's control queue by its pattern, not its random id", () => {
  const control = (id: string): string => `ws://control/WebSocketService/${id}`;
  const text = renderPrometheus({
    ...snapshot([
      subscription({ queue: control("2d5a3f02-de38-4023-9a52-a493cdaeec9d") }),
      subscription({ queue: control("7f0e2c11-0b8a-4c4e-8a37-1f6f3c1d2e4b") }),
    ]),
    publishers: [{
      pool: "chat",
      service: "lobby",
      published: 2,
      patterns: [{ queue: control("2d5a3f02"), published: 2 }],
    }],
  });
  checkFormat(text);
  assert.ok(!/ws:\/\/control\/WebSocketService\/[^*]/.test(text), text);
  assert.ok(text.includes(
    'magic_foundation_routed_total{queue="ws://control/WebSocketService/*",pool="app",service="orders"} 20\n',
  ));
  assert.ok(text.includes(
    'magic_foundation_published_to_pattern_total{queue="ws://control/WebSocketService/*",pool="chat",service="lobby"} 2\n',
  ));
});

Deno.test("renderPrometheus() writes magic_foundation_dropped_total per pool and queue", () => {
  const text = renderPrometheus({
    ...snapshot(),
    dropped: [{ pool: "db", queue: "q://orders", count: 12 }],
  });
  assert.match(text, /^# TYPE magic_foundation_dropped_total counter$/m);
  assert.match(
    text,
    /^magic_foundation_dropped_total\{pool="db",queue="q:\/\/orders"\} 12$/m,
  );
});
