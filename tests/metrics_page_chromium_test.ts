/**
 * MetricsService's live page (`GET /`) in headless Chromium: it shows the
 * pools of a running program, and its numbers change as messages flow; its
 * layout keeps every arrow clear of the boxes, at two window sizes.
 * `SCREENSHOT_METRICS=docs/metrics-page.png` saves what it showed at
 * 1280×760, `SCREENSHOT_METRICS_NARROW=…` at 820×1000.
 */
import assert from "node:assert/strict";
import { Service, type ServiceContext } from "@magic/foundation";
import { MetricsService } from "@magic/foundation/metrics";
import { WebSocketService } from "@magic/foundation/websocket";
import { startServices } from "@magic/foundation/testing";
import {
  findChromium,
  launchChromium,
  type Page,
  pageUntil,
} from "./_chromium.ts";
import {
  deadline,
  freePort,
  TestClient,
} from "./fixtures/websocket_helpers.ts";

const chromium = findChromium();
if (chromium === undefined) {
  // deno-lint-ignore no-console
  console.warn(
    "Skipping the metrics page Chromium test: no chromium found (apt-get install chromium, or set CHROMIUM_BIN)",
  );
}

/** Publishes one order every 10 ms until the program stops. */
class Producer extends Service {
  override async run(ctx: ServiceContext): Promise<void> {
    for (let n = 0; !ctx.signal.aborted; n++) {
      await ctx.publish(`q://orders/${n % 3}`, n);
      await ctx.sleep(10);
    }
  }
}

/** Subscribes to `pattern` and does nothing with what it gets. */
class Consumer extends Service {
  constructor(name: string, readonly pattern: string) {
    super(name);
  }
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe(this.pattern, () => {});
  }
}

/** Subscribes to `pattern`; its handler never finishes before the stop. */
class Stuck extends Service {
  constructor(name: string, readonly pattern: string) {
    super(name);
  }
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe(
      this.pattern,
      () =>
        ctx.signal.aborted
          ? undefined
          : new Promise<void>((resolve) =>
            ctx.signal.addEventListener("abort", () => resolve(), {
              once: true,
            })
          ),
    );
  }
}

/**
 * Page script: resolves once `predicate` holds, checked at every change of
 * the document; rejects after 10 s with the page's text.
 */
function until(predicate: string): string {
  return pageUntil(
    predicate,
    `const row = (pool, queue) => document.querySelector(
      '[data-pool="' + pool + '"] tr[data-sub="' + queue + '"]');`,
  );
}

function delivered(page: Page, pool: string, queue: string): Promise<number> {
  return page.evaluate<number>(`Number(document.querySelector(
    '[data-pool="${pool}"] tr[data-sub="${queue}"]').dataset.delivered)`);
}

Deno.test({
  name:
    "MetricsService GET / in headless Chromium: shows the pools, services and patterns, and its numbers move as messages flow",
  ignore: chromium === undefined,
  async fn(): Promise<void> {
    const metrics = new MetricsService({ port: 0 });
    const warned = Promise.withResolvers<void>();
    const ws = new WebSocketService({
      hostname: "127.0.0.1",
      port: freePort(),
    });
    const bed = await startServices({
      pools: {
        orders: [new Producer("producer")],
        billing: [new Consumer("invoices", "q://orders/*")],
        audit: [new Consumer("log", "q://orders/>")],
        slow: [new Stuck("stuck", "q://orders/0")],
        web: [ws, new Consumer("chat", "ws://inbound/>")],
        ops: [metrics],
      },
      stuckThreshold: 300,
      logSink: (record) => {
        if (record.message.startsWith("Subscriber stuck on")) warned.resolve();
      },
    });
    let client: TestClient | undefined;
    try {
      client = await TestClient.open(`ws://127.0.0.1:${ws.addr!.port}/chat`);
      client.send("hello");
      const url = `http://127.0.0.1:${metrics.addr!.port}/`;
      await using browser = await launchChromium(chromium!);
      const page = await browser.open(url);
      assert.equal(
        await page.evaluate("document.title"),
        "magic-foundation metrics",
      );
      await page.evaluate(until(
        `["orders", "billing", "audit", "slow", "web", "ops"].every((p) =>
          document.querySelector('[data-pool="' + p + '"]'))`,
      ));
      // The pool judged its subscriber stuck (300 ms): the page shows it at
      // its next refresh, where judging by itself it would wait 5 s.
      await deadline(warned.promise, "the pool's stuck warning");
      await deadline(
        page.evaluate(until(
          `row("slow", "q://orders/0")?.dataset.stuck === "true"`,
        )),
        "the stuck flag on the page",
        2500,
      );
      assert.equal(
        await page.evaluate(
          `document.querySelector('[data-pool="billing"] tr[data-sub="q://orders/*"]').dataset.stuck`,
        ),
        "false",
      );
      const pools = await page.evaluate<string[]>(
        `[...document.querySelectorAll(".pool")].map((p) => p.dataset.pool)`,
      );
      assert.deepEqual(pools.sort(), [
        "audit",
        "billing",
        "ops",
        "orders",
        "slow",
        "test", // the test bed's own pool
        "web",
      ]);
      assert.equal(
        await page.evaluate(
          `document.querySelector('[data-pool="billing"] [data-service="invoices"] [data-status]').dataset.status`,
        ),
        "running",
      );
      const queues = await page.evaluate<string[]>(
        `[...document.querySelectorAll(".queue")].map((q) => q.dataset.queue)`,
      );
      for (const queue of ["q://orders/*", "q://orders/>", "ws://inbound/>"]) {
        assert.ok(queues.includes(queue), `${queue} in ${queues}`);
      }
      // One arrow per pattern and subscribing service (one table row each).
      const [arrows, rows] = await page.evaluate<[number, number]>(
        `[document.querySelectorAll("#lines path.sub").length,
          document.querySelectorAll("tr[data-sub]").length]`,
      );
      assert.ok(rows >= 3, `${rows} subscriptions shown`);
      assert.equal(arrows, rows);
      // And one from the producer to each pattern its orders reach (the
      // stuck subscriber's too): the picture reads producer →
      // q://orders/* → invoices.
      await page.evaluate(until(
        `document.querySelectorAll('#lines path.pub[data-service="orders/producer"]').length === 3`,
      ));
      const published = await page.evaluate<string[]>(
        `[...document.querySelectorAll('#lines path.pub')]
          .filter((p) => p.dataset.service === "orders/producer")
          .map((p) => p.dataset.queue).sort()`,
      );
      assert.deepEqual(published, [
        "q://orders/*",
        "q://orders/0",
        "q://orders/>",
      ]);
      const sends = (queue: string): string =>
        `Number(document.querySelector('[data-pool="orders"] [data-service="producer"] [data-pub="${queue}"]').dataset.sent)`;
      const sentBefore = await page.evaluate<number>(sends("q://orders/*"));
      assert.ok(sentBefore > 0, `${sentBefore} sent`);
      await page.evaluate(until(`${sends("q://orders/*")} > ${sentBefore}`));

      const first = await delivered(page, "billing", "q://orders/*");
      await page.evaluate(until(
        `Number(row("billing", "q://orders/*").dataset.delivered) > ${first} &&
         Number(row("billing", "q://orders/*").dataset.rate) > 0`,
      ));
      const second = await delivered(page, "billing", "q://orders/*");
      assert.ok(second > first, `${second} > ${first}`);
      // The WebSocket service's counters: one open connection, its frame.
      await page.evaluate(until(
        `document.querySelector('[data-ws="WebSocketService"]')?.dataset.connections === "1"`,
      ));
      const wsText = await page.evaluate<string>(
        `document.querySelector('[data-ws="WebSocketService"]').textContent`,
      );
      assert.match(
        wsText,
        /1 open · frames in 1 \/ out 0 · bytes in 5 \/ out 0/,
      );

      await browser.close();
    } finally {
      await client?.close();
      await bed.stop();
    }
  },
});

/** Subscribes to `pattern`; its handler throws on every message. */
class Failing extends Service {
  constructor(name: string, readonly pattern: string) {
    super(name);
  }
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe(this.pattern, () => {
      throw new Error("refused");
    });
  }
}

const LONG = "q://orders/with/a/pattern/long/enough/to/be/cut/off/before/>";

/**
 * Page script: what is wrong with the layout, as sentences (none: `[]`).
 * Every arrow's bounding box must keep clear of every box, touching only the
 * edges of its two ends (the pattern and the service's pool); every visible pattern shows its
 * whole name and carries it in `title`, as every subscription row does.
 */
const LAYOUT_PROBLEMS = `(() => {
  const problems = [];
  const visible = (e) => e.getClientRects().length > 0;
  const boxes = [...document.querySelectorAll(".queue, .pool")].filter(visible);
  const name = (box) => box.dataset.queue ?? box.dataset.pool;
  for (const path of document.querySelectorAll("#lines path")) {
    const r = path.getBoundingClientRect();
    // Its own ends too: an arrow touches their edges, never enters them.
    for (const box of boxes) {
      const b = box.getBoundingClientRect();
      const w = Math.min(r.right, b.right) - Math.max(r.left, b.left);
      const h = Math.min(r.bottom, b.bottom) - Math.max(r.top, b.top);
      if (w > 1 && h > 1) {
        problems.push("the arrow " + path.dataset.service + " / " + path.dataset.queue + " crosses " + name(box));
      }
    }
  }
  for (const q of document.querySelectorAll(".queue[data-queue]")) {
    if (!visible(q)) continue;
    if (q.title !== q.dataset.queue) problems.push("no full title on " + q.dataset.queue);
    if (q.scrollWidth > q.clientWidth + 1) problems.push(q.dataset.queue + " is cut off");
  }
  for (const row of document.querySelectorAll("tr[data-sub]")) {
    const cell = row.querySelector("td");
    if (!cell.title.startsWith(row.dataset.sub)) problems.push("no full title on the row " + row.dataset.sub);
  }
  return problems;
})()`;

/** A subscription row's class and text, as the page shows them. */
function rowLook(
  page: Page,
  pool: string,
  queue: string,
): Promise<{ className: string; text: string }> {
  return page.evaluate(`(() => {
    const row = document.querySelector('[data-pool="${pool}"] tr[data-sub="${queue}"]');
    return { className: row.className, text: row.textContent };
  })()`);
}

/** Waits for the page's next refresh after now. */
async function nextRefresh(page: Page): Promise<void> {
  const updates = await page.evaluate<string>(
    `document.getElementById("state").dataset.updates`,
  );
  await page.evaluate(until(
    `document.getElementById("state").dataset.updates !== "${updates}"`,
  ));
}

Deno.test({
  name:
    "MetricsService GET / in headless Chromium: no arrow crosses a box at two window sizes, full names on hover, internal queues behind a toggle, errors and stalls stand out",
  ignore: chromium === undefined,
  async fn(): Promise<void> {
    const metrics = new MetricsService({ port: 0 });
    const ws = new WebSocketService({
      hostname: "127.0.0.1",
      port: freePort(),
    });
    const warned = Promise.withResolvers<void>();
    const bed = await startServices({
      pools: {
        orders: [new Producer("producer")],
        billing: [new Consumer("invoices", "q://orders/*")],
        audit: [
          new Consumer("log", LONG),
          new Failing("strict", "q://orders/1"),
        ],
        slow: [new Stuck("stuck", "q://orders/0")],
        web: [ws, new Consumer("chat", "ws://inbound/>")],
        ops: [metrics],
      },
      stuckThreshold: 300,
      logSink: (record) => {
        if (record.message.startsWith("Subscriber stuck on")) warned.resolve();
      },
    });
    try {
      await using browser = await launchChromium(chromium!);
      const page = await browser.open(
        `http://127.0.0.1:${metrics.addr!.port}/`,
      );
      await deadline(warned.promise, "the pool's stuck warning");
      await page.evaluate(until(
        `Number(row("audit", "q://orders/1")?.dataset.errors) > 0 &&
         row("slow", "q://orders/0")?.dataset.stuck === "true" &&
         row("slow", "q://orders/0").classList.contains("backlog") &&
         row("audit", ${JSON.stringify(LONG)}) !== null`,
      ));
      // Errors, a stuck subscriber and its backlog stand out, in colour and
      // in words; a healthy row does not.
      const failing = await rowLook(page, "audit", "q://orders/1");
      assert.match(failing.className, /\berrors\b/);
      assert.match(failing.text, /\d+ errors/);
      const stuck = await rowLook(page, "slow", "q://orders/0");
      assert.match(stuck.className, /\bstuck\b/);
      assert.match(stuck.className, /\bbacklog\b/);
      assert.match(stuck.text, /stuck/);
      assert.match(stuck.text, /\d+ waiting/);
      const healthy = await rowLook(page, "billing", "q://orders/*");
      assert.doesNotMatch(
        healthy.className,
        /errors|stuck|backlog/,
        JSON.stringify(healthy),
      );
      // The WebSocketService's own queues are hidden, then shown on demand.
      const internal = `[...document.querySelectorAll(".queue[data-queue]")]
        .filter((q) => q.getClientRects().length > 0)
        .map((q) => q.dataset.queue)
        .filter((q) => /^ws:\\/\\/(connection|control|room)\\//.test(q))`;
      assert.deepEqual(await page.evaluate(internal), []);
      for (const [width, height] of [[1280, 760], [820, 1000]] as const) {
        await page.viewport(width, height);
        await nextRefresh(page);
        assert.deepEqual(
          await page.evaluate(LAYOUT_PROBLEMS),
          [],
          `at ${width}×${height}`,
        );
        const file = Deno.env.get(
          width === 1280 ? "SCREENSHOT_METRICS" : "SCREENSHOT_METRICS_NARROW",
        );
        if (file) await Deno.writeFile(file, await page.screenshot());
      }
      await page.evaluate(`document.getElementById("internal").click()`);
      await nextRefresh(page);
      const shown = await page.evaluate<string[]>(internal);
      assert.ok(shown.length >= 3, `internal queues shown: ${shown}`);
      assert.deepEqual(await page.evaluate(LAYOUT_PROBLEMS), [], "shown");
    } finally {
      await bed.stop();
    }
  },
});
