/**
 * Metrics: exact counts after a known workload, the handler-time histogram,
 * one series per pattern, and the pools' and services' counters.
 */
import assert from "node:assert/strict";
import {
  type MetricsSnapshot,
  type PublisherMetrics,
  Service,
  type ServiceContext,
  type SubscriptionMetrics,
  type TransportKind,
} from "@magic/foundation";
import {
  MetricsService,
  type MetricsServiceOptions,
} from "@magic/foundation/metrics";
import { joinRoom, WebSocketService } from "@magic/foundation/websocket";
import { startServices } from "@magic/foundation/testing";
import { promtool } from "./fixtures/promtool.ts";
import {
  deadline,
  freePort,
  TestClient,
} from "./fixtures/websocket_helpers.ts";
import { start, statusesOf, testEachTransport } from "./_helpers.ts";
import {
  MESSAGES as WORKLOAD,
  metricsFixture,
} from "./fixtures/metrics_scenarios.ts";

const MESSAGES = 1234;
/** Concrete queues the messages are spread over; both patterns match each. */
const QUEUES = 7;

/** Counts what it handles; throws on every 100th message it is given. */
class Counter extends Service {
  readonly done = Promise.withResolvers<void>();
  #seen = 0;
  constructor(name: string, readonly pattern: string) {
    super(name);
  }
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe<number>(this.pattern, (n) => {
      if (++this.#seen === MESSAGES) this.done.resolve();
      if (n % 100 === 0) throw new Error(`message ${n} refused`);
    });
  }
}

/** Publishes the workload from `run()`, over `QUEUES` concrete queues. */
class Producer extends Service {
  override async run(ctx: ServiceContext): Promise<void> {
    for (let n = 0; n < MESSAGES; n++) {
      await ctx.publish(`q://orders/${n % QUEUES}`, n);
    }
  }
}

function only(
  subscriptions: SubscriptionMetrics[],
  queue: string,
): SubscriptionMetrics {
  const found = subscriptions.filter((s) => s.queue === queue);
  assert.equal(found.length, 1, `one series for ${queue}`);
  return found[0]!;
}

for (const transport of ["ports", "broadcast"] as TransportKind[]) {
  Deno.test(`ctx.metrics() counts 1,234 published and 2,468 delivered to two subscriptions [${transport}]`, async () => {
    const star = new Counter("star", "q://orders/*");
    const rest = new Counter("rest", "q://orders/>");
    const bed = await startServices({
      // A small buffer: messages from the other pool also wait behind it.
      pools: { a: [star, new Producer("producer")], b: [rest] },
      bufferSize: 16,
      transport,
      handlerTiming: "every",
      logSink: () => {},
    });
    try {
      await Promise.all([star.done.promise, rest.done.promise]);
      const snapshot = await bed.context.metrics();
      const errors = Math.ceil(MESSAGES / 100);
      // Local deliveries (pool a) and deliveries from another pool (b).
      for (
        const [queue, pool, service] of [
          ["q://orders/*", "a", "star"],
          ["q://orders/>", "b", "rest"],
        ]
      ) {
        const s = only(snapshot.subscriptions, queue!);
        assert.equal(s.pool, pool);
        assert.equal(s.service, service);
        assert.equal(s.routed, MESSAGES);
        assert.equal(s.delivered, MESSAGES);
        assert.equal(s.handled, MESSAGES);
        assert.equal(s.buffered, 0);
        assert.equal(s.handlerErrors, errors);
        const h = s.handlerSeconds;
        assert.equal(h.count, MESSAGES, "one observation per delivery");
        assert.equal(h.bounds.length, h.cumulative.length);
        for (let i = 1; i < h.cumulative.length; i++) {
          assert.ok(h.bounds[i]! > h.bounds[i - 1]!, "bounds ascending");
          assert.ok(h.cumulative[i]! >= h.cumulative[i - 1]!, "cumulative");
        }
        assert.ok(h.cumulative.at(-1)! <= h.count);
        assert.ok(h.sum > 0 && h.sum < 60);
      }
      const delivered = snapshot.subscriptions
        .filter((s) => s.queue.startsWith("q://orders/"))
        .reduce((sum, s) => sum + s.delivered, 0);
      assert.equal(delivered, 2 * MESSAGES);
      // Who published where: one counter per pattern reached, however many
      // concrete queues the messages went to.
      const producer = snapshot.publishers!.filter((p) => p.pool !== "test");
      assert.deepEqual(
        producer.map((p) => [p.pool, p.service, p.published]),
        [["a", "producer", MESSAGES]],
      );
      assert.deepEqual(
        producer[0]!.patterns.map((to) => [to.queue, to.published]).sort(),
        [["q://orders/*", MESSAGES], ["q://orders/>", MESSAGES]],
      );
      // Both carriers report the link that carried the messages to pool b.
      const link = snapshot.links!.find((l) =>
        l.pool === "a" && l.peer === "b"
      );
      assert.ok(link !== undefined, `the link a → b [${transport}]`);
      assert.deepEqual(
        snapshot.services.filter((s) => s.pool !== "test").map((s) => [
          s.pool,
          s.service,
          s.restarts,
        ]).sort(),
        [["a", "producer", 0], ["a", "star", 0], ["b", "rest", 0]],
      );
      assert.deepEqual(
        snapshot.pools.map((p) => [p.pool, p.restarts, p.stalls]).sort(),
        [["a", 0, 0], ["b", 0, 0], ["test", 0, 0]],
      );
    } finally {
      const report = await bed.stop();
      assert.equal(report.errors.length, 2 * Math.ceil(MESSAGES / 100));
    }
  });
}

Deno.test("MetricsService serves GET /metrics: one series per pattern, exact counts, valid for promtool", async () => {
  const star = new Counter("star", "q://orders/*");
  const rest = new Counter("rest", "q://orders/>");
  const metrics = new MetricsService({ port: 0 });
  const bed = await startServices({
    pools: { a: [star, new Producer("producer")], b: [rest], ops: [metrics] },
    handlerTiming: "every",
    logSink: () => {},
  });
  try {
    await Promise.all([star.done.promise, rest.done.promise]);
    const base = `http://127.0.0.1:${metrics.addr!.port}`;
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(
      response.headers.get("content-type"),
      "text/plain; version=0.0.4; charset=utf-8",
    );
    const text = await response.text();
    const samples = (name: string, queue: string): string[] =>
      text.split("\n").filter((line) =>
        line.startsWith(`magic_foundation_${name}{queue="${queue}",`)
      );
    // However many concrete queues matched, one series per pattern.
    assert.deepEqual(samples("routed_total", "q://orders/*"), [
      `magic_foundation_routed_total{queue="q://orders/*",pool="a",service="star"} ${MESSAGES}`,
    ]);
    assert.deepEqual(samples("published_to_pattern_total", "q://orders/>"), [
      `magic_foundation_published_to_pattern_total{queue="q://orders/>",pool="a",service="producer"} ${MESSAGES}`,
    ]);
    assert.deepEqual(samples("delivered_total", "q://orders/>"), [
      `magic_foundation_delivered_total{queue="q://orders/>",pool="b",service="rest"} ${MESSAGES}`,
    ]);
    assert.deepEqual(
      samples("handler_duration_seconds_count", "q://orders/*"),
      [
        `magic_foundation_handler_duration_seconds_count{queue="q://orders/*",pool="a",service="star"} ${MESSAGES}`,
      ],
    );
    assert.ok(!text.includes("q://orders/0"), "no concrete queue as a label");
    for (
      const name of [
        "magic_foundation_buffered{",
        "magic_foundation_handler_errors_total{",
        "magic_foundation_service_restarts_total{",
        "magic_foundation_pool_stalls_total{",
      ]
    ) {
      assert.ok(text.includes(name), name);
    }
    const result = await promtool(text);
    if ("problems" in result) assert.equal(result.problems, "");

    const json = await fetch(`${base}/metrics.json`);
    assert.equal(json.headers.get("content-type"), "application/json");
    const snapshot = await json.json() as MetricsSnapshot;
    assert.deepEqual(snapshot.pools.map((p) => p.pool).sort(), [
      "a",
      "b",
      "ops",
      "test",
    ]);
    assert.equal(
      only(snapshot.subscriptions, "q://orders/*").delivered,
      MESSAGES,
    );
    const link = snapshot.links!.find((l) => l.pool === "a" && l.peer === "b");
    assert.ok(link !== undefined, "the link from pool a to pool b");
    assert.equal(typeof link.publisherWaits, "number");
    assert.match(
      text,
      /^magic_foundation_link_window_waits_total\{pool="a",peer="b"\} \d+$/m,
    );
    const page = await fetch(`${base}/`);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    const html = await page.text();
    assert.ok(html.includes('fetch("metrics.json"'), "the page reads the JSON");
    assert.ok(!/\bsrc=|\bhref=/.test(html), "the page loads nothing else");

    const missing = await fetch(`${base}/nothing`);
    await missing.body?.cancel();
    assert.equal(missing.status, 404);
    const posted = await fetch(`${base}/metrics`, { method: "POST" });
    await posted.body?.cancel();
    assert.equal(posted.status, 405);
  } finally {
    await bed.stop();
  }
  assert.equal(metrics.addr, undefined, "the server stopped");
});

Deno.test("MetricsService refuses a port in use with AddrInUse naming it", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen(): void {} },
    () => new Response(),
  );
  const metrics = new MetricsService({ port: server.addr.port });
  const quiet = (): void => {};
  const ctx = {
    log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
  } as unknown as ServiceContext;
  assert.throws(() => metrics.initialize(ctx), {
    name: "AddrInUse",
    message:
      `Cannot start MetricsService "MetricsService": 127.0.0.1:${server.addr.port} is already in use`,
  });
});

Deno.test("handlerTiming: sampled (default) times one handler call in 32, off times none", async () => {
  for (const timing of ["sampled", "off"] as const) {
    const star = new Counter("star", "q://orders/*");
    const bed = await startServices({
      pools: { a: [star, new Producer("producer")] },
      handlerTiming: timing === "sampled" ? undefined : timing,
      logSink: () => {},
    });
    try {
      await star.done.promise;
      const s = only(
        (await bed.context.metrics()).subscriptions,
        "q://orders/*",
      );
      assert.equal(s.delivered, MESSAGES);
      const { count, cumulative } = s.handlerSeconds;
      if (timing === "off") {
        assert.equal(count, 0);
      } else {
        // Calls 1, 33, 65, …: one in 32, the first included.
        assert.equal(count, Math.ceil(MESSAGES / 32));
      }
      assert.ok(cumulative.at(-1)! <= count);
    } finally {
      await bed.stop();
    }
  }
  await assert.rejects(
    startServices({
      pools: { a: [new Producer("producer")] },
      handlerTiming: "always" as "every",
    }),
    {
      name: "TypeError",
      message:
        'Cannot start services: handlerTiming must be "sampled", "every" or "off", got "always"',
    },
  );
});

testEachTransport(
  "main.metrics() on real workers: exact counts, a service restart, a pool stall",
  async () => {
    const program = start(
      metricsFixture,
      "workload",
      // Blocked three times the threshold: one stall, whatever the load.
      { blockMs: 1200 },
      { stallThreshold: 400, handlerTiming: "every" },
    );
    try {
      await program.waitForReport("received", () => true, 2);
      await program.waitForReport("unblocked");
      await program.waitUntil(() =>
        statusesOf(program.statuses, "c", "flaky").filter((s) =>
          s === "running"
        ).length >= 2
      );
      const snapshot = await program.main.metrics();
      // The log as it was when the snapshot was taken (a stall is counted
      // and warned in the same call).
      const logs = program.logs.slice();
      for (
        const [queue, pool, service] of [
          ["q://orders/*", "a", "star"],
          ["q://orders/>", "b", "rest"],
        ] as const
      ) {
        const s = only(snapshot.subscriptions, queue);
        assert.deepEqual(
          [
            s.pool,
            s.service,
            s.routed,
            s.delivered,
            s.handled,
            s.handlerErrors,
          ],
          [pool, service, WORKLOAD, WORKLOAD, WORKLOAD, 0],
        );
        assert.equal(s.handlerSeconds.count, WORKLOAD);
      }
      const flaky = snapshot.services.find((s) => s.service === "flaky");
      assert.deepEqual(flaky, {
        pool: "c",
        service: "flaky",
        status: "running",
        restarts: 1,
      });
      // Pool d blocked its loop once: one stall, counted and warned once.
      // Any other pool may also miss its heartbeats past the threshold on a
      // busy machine (tests run in parallel): for those, only that each
      // stall is counted once and warned once.
      const warned = (pool: string): number =>
        logs.filter((r) =>
          r.level === "warn" &&
          r.message.startsWith(`Pool "${pool}" is stalled`)
        ).length;
      const d = snapshot.pools.find((p) => p.pool === "d");
      assert.equal(d?.stalls, 1, "pool d stalled once");
      assert.equal(warned("d"), 1, "pool d flagged as stalled once");
      assert.deepEqual(
        snapshot.pools.map((p) => [p.pool, p.restarts, p.stalls]),
        snapshot.pools.map((p) => [p.pool, 0, warned(p.pool)]),
      );
      assert.deepEqual(snapshot.pools.map((p) => p.pool).sort(), [
        "a",
        "b",
        "c",
        "d",
      ]);
    } finally {
      await program.stop();
    }
    await assert.rejects(program.main.metrics(), {
      name: "StateError",
      message: "Cannot read the metrics: the program is not running",
    });
  },
);

Deno.test("ctx.metrics() counts what waits for a busy handler as buffered, and what it took as delivered", async () => {
  const release = Promise.withResolvers<void>();
  class Slow extends Service {
    override async initialize(ctx: ServiceContext): Promise<void> {
      await ctx.subscribe("q://slow", () => release.promise);
    }
  }
  await using bed = await startServices({ pools: { a: [new Slow("slow")] } });
  for (let n = 0; n < 5; n++) await bed.publish("q://slow", n);
  let s = only((await bed.context.metrics()).subscriptions, "q://slow");
  for (let i = 0; i < 100 && s.routed < 5; i++) {
    // The messages cross from the bed's pool; the snapshot request follows them.
    s = only((await bed.context.metrics()).subscriptions, "q://slow");
  }
  assert.deepEqual([s.routed, s.delivered, s.handled, s.buffered], [
    5,
    1,
    0,
    4,
  ]);
  release.resolve();
});

Deno.test("ctx.metrics() drops a pattern's counters with its last subscription: per-session queues leave no series", async () => {
  await using bed = await startServices({ pools: { a: [] } });
  const ctx = bed.context;
  const queues = (snapshot: MetricsSnapshot): string[] =>
    snapshot.subscriptions.map((s) => s.queue).filter((q) =>
      q.startsWith("q://session/")
    ).sort();
  const first = await ctx.subscribe("q://session/1", () => {});
  const again = await ctx.subscribe("q://session/1", () => {});
  const other = await ctx.subscribe("q://session/2", () => {});
  assert.deepEqual(queues(await ctx.metrics()), [
    "q://session/1",
    "q://session/2",
  ]);
  await first.unsubscribe();
  assert.deepEqual(queues(await ctx.metrics()), [
    "q://session/1",
    "q://session/2",
  ], "one subscription to q://session/1 is left");
  await again.unsubscribe();
  await other.unsubscribe();
  assert.deepEqual(queues(await ctx.metrics()), []);
});

Deno.test("ctx.metrics() counts publishers per pattern reached: not replies, not unrouted messages, and drops a pattern with its last subscription", async () => {
  await using bed = await startServices({ pools: { a: [] } });
  const ctx = bed.context;
  const test = (snapshot: MetricsSnapshot): PublisherMetrics =>
    snapshot.publishers!.find((p) => p.service === "test")!;
  const sent = (snapshot: MetricsSnapshot): Array<[string, number]> =>
    test(snapshot).patterns.map((p): [string, number] => [
      p.queue,
      p.published,
    ]).sort();
  const session = await ctx.subscribe("q://session/1", () => {});
  const all = await ctx.subscribe("q://session/*", () => {});
  for (let n = 0; n < 5; n++) await ctx.publish("q://session/1", n);
  await ctx.publish("q://session/2", 0);
  await ctx.publish("q://nobody", 0);
  // The pattern's last subscription goes, and its counter with it; then a
  // request: its reply goes to a per-request queue, which counts nowhere.
  await all.unsubscribe();
  const responder = await ctx.subscribe(
    "q://session/*",
    (n: number, meta) => ctx.publish(meta.replyTo!, n + 1),
  );
  assert.equal(await ctx.request<number>("q://session/3", 41), 42);
  assert.deepEqual(sent(await ctx.metrics()), [
    ["q://session/*", 1],
    ["q://session/1", 5],
  ], "q://session/* counts again from zero");
  await session.unsubscribe();
  assert.deepEqual(sent(await ctx.metrics()), [["q://session/*", 1]]);
  await responder.unsubscribe();
  const after = await ctx.metrics();
  assert.deepEqual(sent(after), []);
  // In all, every message: 5 + 1 + 1 unrouted, the request and its reply.
  assert.equal(test(after).published, 9);
});

Deno.test("ctx.metrics() flags a subscription stuck as its pool judges it (stuckThreshold), and clears the flag once it is handled", async () => {
  const release = Promise.withResolvers<void>();
  const handled = Promise.withResolvers<void>();
  const warned = Promise.withResolvers<void>();
  let count = 0;
  class Slow extends Service {
    override async initialize(ctx: ServiceContext): Promise<void> {
      await ctx.subscribe("q://slow", async () => {
        await release.promise;
        if (++count === 5) handled.resolve();
      });
      await ctx.subscribe("q://fast", () => {});
    }
  }
  await using bed = await startServices({
    pools: { a: [new Slow("slow")] },
    stuckThreshold: 100,
    logSink: (record) => {
      if (record.message.startsWith("Subscriber slow on")) warned.resolve();
    },
  });
  for (let n = 0; n < 5; n++) await bed.publish("q://slow", n);
  await bed.publish("q://fast", 0);
  await deadline(warned.promise, "the pool's stuck warning");
  const snapshot = await bed.context.metrics();
  const slow = only(snapshot.subscriptions, "q://slow");
  assert.deepEqual([slow.stuck, slow.delivered, slow.buffered], [true, 1, 4]);
  assert.equal(only(snapshot.subscriptions, "q://fast").stuck, false);
  release.resolve();
  await deadline(handled.promise, "the 5 messages handled");
  const after = only((await bed.context.metrics()).subscriptions, "q://slow");
  assert.deepEqual([after.stuck, after.delivered, after.buffered], [
    false,
    5,
    0,
  ]);
});

/** The lines of the `magic_foundation_<name>` series that carry every one of `labels`. */
function seriesOf(text: string, name: string, labels: string[] = []): string[] {
  return text.split("\n").filter((line) =>
    line.startsWith(`magic_foundation_${name}{`) &&
    labels.every((label) => line.includes(label))
  );
}

/** The sum of the values of those series. */
function sumOf(text: string, name: string, labels: string[] = []): number {
  return seriesOf(text, name, labels).reduce(
    (sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)),
    0,
  );
}

async function scrape(
  metrics: MetricsService,
  headers: HeadersInit = {},
): Promise<string> {
  const response = await fetch(
    `http://127.0.0.1:${metrics.addr!.port}/metrics`,
    { headers },
  );
  assert.equal(response.status, 200);
  return await response.text();
}

Deno.test("GET /metrics: published_total counts each publish once and routed_total once per subscription, for a fan-out to 3 subscribers", async () => {
  const subscribers = [
    new Counter("one", "q://orders/*"),
    new Counter("two", "q://orders/>"),
    new Counter("three", "q://orders/*"),
  ];
  const metrics = new MetricsService({ port: 0 });
  const bed = await startServices({
    pools: {
      a: [subscribers[0]!, new Producer("producer")],
      b: [subscribers[1]!],
      c: [subscribers[2]!],
      ops: [metrics],
    },
    logSink: () => {},
  });
  try {
    await Promise.all(subscribers.map((s) => s.done.promise));
    const text = await scrape(metrics);
    // What a Prometheus user sums: one per message the producer published.
    assert.deepEqual(
      seriesOf(text, "published_total", ['service="producer"']),
      [
        `magic_foundation_published_total{pool="a",service="producer"} ${MESSAGES}`,
      ],
    );
    assert.equal(
      sumOf(text, "published_total", ['pool="a"']),
      MESSAGES,
      "sum(published_total) is the number of messages published",
    );
    // One per subscription each message was routed to.
    assert.equal(
      sumOf(text, "routed_total", ['queue="q://orders/']),
      3 * MESSAGES,
    );
    // One per pattern each message reached (two patterns).
    assert.equal(
      sumOf(text, "published_to_pattern_total", ['service="producer"']),
      2 * MESSAGES,
    );
  } finally {
    await bed.stop();
  }
});

Deno.test("GET /metrics: handled_total counts every handler call exactly while the duration histogram samples one in 32", async () => {
  const star = new Counter("star", "q://orders/*");
  const metrics = new MetricsService({ port: 0 });
  const bed = await startServices({
    pools: { a: [star, new Producer("producer")], ops: [metrics] },
    logSink: () => {},
  });
  try {
    await star.done.promise;
    const text = await scrape(metrics);
    const labels = ['queue="q://orders/*"', 'service="star"'];
    assert.equal(sumOf(text, "handled_total", labels), MESSAGES);
    assert.equal(sumOf(text, "delivered_total", labels), MESSAGES);
    assert.equal(
      sumOf(text, "handler_errors_total", labels),
      Math.ceil(MESSAGES / 100),
    );
    assert.equal(
      sumOf(text, "handler_duration_seconds_count", labels),
      Math.ceil(MESSAGES / 32),
      "the histogram counts the timed calls only",
    );
    const result = await promtool(text);
    if ("problems" in result) assert.equal(result.problems, "");
  } finally {
    await bed.stop();
  }
});

/** Joins every connection that sends a frame to the room `lobby`. */
class Lobby extends Service {
  readonly joined = Promise.withResolvers<void>();
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe("ws://inbound/>", async (_data, meta) => {
      await joinRoom(ctx, meta, "lobby");
      this.joined.resolve();
    });
  }
}

Deno.test("GET /metrics: no random id in any label, and the same series after a WebSocketService restarts", async () => {
  const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
  const runs: string[][] = [];
  for (let run = 0; run < 2; run++) {
    const metrics = new MetricsService({ port: 0 });
    const ws = new WebSocketService({
      hostname: "127.0.0.1",
      port: freePort(),
    });
    const lobby = new Lobby("lobby");
    const bed = await startServices({
      pools: { web: [ws], chat: [lobby], ops: [metrics] },
      logSink: () => {},
    });
    let client: TestClient | undefined;
    try {
      client = await TestClient.open(`ws://127.0.0.1:${ws.addr!.port}/chat`);
      client.send("hello");
      await deadline(lobby.joined.promise, "the connection joined the lobby");
      const text = await scrape(metrics);
      const withId = text.split("\n").filter((line) => uuid.test(line));
      assert.deepEqual(withId, [], "no series labelled with a random id");
      assert.ok(
        text.includes('queue="ws://control/WebSocketService/*"'),
        "the control queue, under its pattern",
      );
      // The series (name and labels, not values) of the program's own pools.
      runs.push(
        text.split("\n").filter((l) => l !== "" && !l.startsWith("#"))
          .map((l) => l.slice(0, l.lastIndexOf(" ")))
          .filter((l) => !l.includes('pool="test"'))
          .sort(),
      );
    } finally {
      await client?.close();
      await bed.stop();
    }
  }
  assert.deepEqual(runs[1], runs[0]);
});

Deno.test("MetricsService with a bearer token or basic auth: 401 with WWW-Authenticate without the right credentials, 200 with them", async () => {
  const quiet = (): void => {};
  const empty: MetricsSnapshot = {
    takenAt: 0,
    subscriptions: [],
    services: [],
    pools: [],
  };
  const ctx = {
    log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    metrics: () => Promise.resolve(empty),
  } as unknown as ServiceContext;
  const basic = (user: string, password: string): string =>
    `Basic ${btoa(`${user}:${password}`)}`;
  const cases: Array<{
    options: MetricsServiceOptions;
    challenge: RegExp;
    refused: Array<string | undefined>;
    accepted: string;
  }> = [{
    options: { port: 0, bearerToken: "s3cret-token" },
    challenge: /^Bearer realm="metrics"$/,
    refused: [
      undefined,
      "Bearer wrong",
      "Bearer s3cret-token-and-more",
      "Bearer s3cret-toke",
      basic("s3cret-token", ""),
    ],
    accepted: "Bearer s3cret-token",
  }, {
    options: { port: 0, basicAuth: { username: "prom", password: "p:ss" } },
    challenge: /^Basic realm="metrics", charset="UTF-8"$/,
    refused: [
      undefined,
      basic("prom", "wrong"),
      basic("other", "p:ss"),
      "Basic !!!",
      "Bearer p:ss",
    ],
    accepted: basic("prom", "p:ss"),
  }];
  for (const { options, challenge, refused, accepted } of cases) {
    const metrics = new MetricsService(options);
    metrics.initialize(ctx);
    try {
      const base = `http://127.0.0.1:${metrics.addr!.port}`;
      for (const path of ["/metrics", "/metrics.json", "/"]) {
        for (const authorization of refused) {
          const response = await fetch(`${base}${path}`, {
            headers: authorization === undefined ? {} : { authorization },
          });
          await response.body?.cancel();
          assert.equal(response.status, 401, `${path} with ${authorization}`);
          assert.match(response.headers.get("www-authenticate")!, challenge);
        }
        const response = await fetch(`${base}${path}`, {
          headers: { authorization: accepted },
        });
        await response.body?.cancel();
        assert.equal(response.status, 200, `${path} with ${accepted}`);
      }
    } finally {
      await metrics.terminate(ctx);
    }
  }
  assert.throws(() => new MetricsService({ bearerToken: "" }), {
    name: "TypeError",
    message:
      'Cannot create MetricsService "MetricsService": bearerToken must be a non-empty string',
  });
  assert.throws(
    () =>
      new MetricsService({
        bearerToken: "t",
        basicAuth: { username: "u", password: "p" },
      }),
    {
      name: "TypeError",
      message:
        'Cannot create MetricsService "MetricsService": give bearerToken or basicAuth, not both',
    },
  );
  assert.throws(
    () => new MetricsService({ basicAuth: { username: "a:b", password: "p" } }),
    {
      name: "TypeError",
      message:
        'Cannot create MetricsService "MetricsService": basicAuth.username must be a non-empty string without ":"',
    },
  );
});

/** The `prometheus` server's path, or `undefined` when it is not installed. */
function findPrometheus(): string | undefined {
  try {
    return Deno.statSync("/usr/bin/prometheus").isFile
      ? "/usr/bin/prometheus"
      : undefined;
  } catch {
    return undefined;
  }
}

Deno.test("A real Prometheus scrapes MetricsService with its bearer token and reads the exact counts; without the token, the target is down with 401", async (t) => {
  const prometheus = findPrometheus();
  if (prometheus === undefined) {
    await t.step({
      name: "skipped: prometheus is not installed (apt-get install prometheus)",
      ignore: true,
      fn: () => {},
    });
    return;
  }
  const token = "a-token-for-the-test";
  const star = new Counter("star", "q://orders/*");
  const metrics = new MetricsService({ port: 0, bearerToken: token });
  const bed = await startServices({
    pools: { a: [star, new Producer("producer")], ops: [metrics] },
    logSink: () => {},
  });
  // Between Prometheus and the service: tells the test when each job's
  // scrape arrives (a scrape follows the previous one's ingestion).
  const scrapes = { token: 0, none: 0 };
  let scraped = Promise.withResolvers<void>();
  await using proxy = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen(): void {} },
    async (request) => {
      const url = new URL(request.url);
      scrapes[url.searchParams.get("job") === "none" ? "none" : "token"]++;
      scraped.resolve();
      scraped = Promise.withResolvers<void>();
      return await fetch(
        `http://127.0.0.1:${metrics.addr!.port}/metrics`,
        { headers: request.headers },
      );
    },
  );
  const folder = await Deno.makeTempDir({ prefix: "mf-prometheus-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${folder}/prometheus.yml`,
    `global: { scrape_interval: 1s, scrape_timeout: 900ms }
scrape_configs:
  - job_name: token
    authorization: { credentials: "${token}" }
    static_configs: [{ targets: ["127.0.0.1:${proxy.addr.port}"] }]
  - job_name: none
    params: { job: [none] }
    static_configs: [{ targets: ["127.0.0.1:${proxy.addr.port}"] }]
`,
  );
  const child = new Deno.Command(prometheus, {
    args: [
      `--config.file=${folder}/prometheus.yml`,
      `--storage.tsdb.path=${folder}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = new Response(child.stderr).text();
  const api = async <T>(path: string): Promise<T | undefined> => {
    try {
      const response = await fetch(`http://127.0.0.1:${port}${path}`);
      if (!response.ok) {
        await response.body?.cancel();
        return undefined;
      }
      return (await response.json() as { data: T }).data;
    } catch {
      return undefined; // not listening yet
    }
  };
  /** Checks `done()` after each scrape, until it holds. */
  const afterScrapes = async (
    what: string,
    done: () => Promise<boolean>,
  ): Promise<void> => {
    while (!await done()) await deadline(scraped.promise, what, 15_000);
  };
  try {
    await star.done.promise;
    await afterScrapes(
      "Prometheus to read the exact count",
      async () => {
        const result = await api<
          {
            result: Array<
              { metric: Record<string, string>; value: [number, string] }
            >;
          }
        >(
          `/api/v1/query?query=${
            encodeURIComponent(
              'magic_foundation_published_total{job="token",service="producer"}',
            )
          }`,
        );
        return result?.result[0]?.value[1] === String(MESSAGES);
      },
    );
    await afterScrapes(
      "the target without the token to be down with 401",
      async () => {
        const targets = await api<
          {
            activeTargets: Array<
              { labels: { job: string }; health: string; lastError: string }
            >;
          }
        >("/api/v1/targets");
        const none = targets?.activeTargets.find((t) =>
          t.labels.job === "none"
        );
        const good = targets?.activeTargets.find((t) =>
          t.labels.job === "token"
        );
        return none?.health === "down" && /401/.test(none.lastError) &&
          good?.health === "up";
      },
    );
    assert.ok(scrapes.token >= 1 && scrapes.none >= 1, JSON.stringify(scrapes));
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    const text = await log;
    if (!status.success && status.signal !== "SIGTERM") {
      // deno-lint-ignore no-console
      console.error(text);
    }
    await Deno.remove(folder, { recursive: true });
    await bed.stop();
  }
});
