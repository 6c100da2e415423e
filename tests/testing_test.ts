/**
 * The `./testing` export: services run in the test's thread on the real bus.
 */
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import {
  NoRespondersError,
  Service,
  type ServiceContext,
  ServiceStatus,
  type TransportKind,
} from "@magic/foundation";
import { startServices } from "@magic/foundation/testing";
import { WINDOW } from "../src/transport/port_link.ts";
import { BATCH_MESSAGES } from "../src/transport/outbox.ts";

/** Republishes each message of `q://in` on `q://out`, with its pool. */
class Relay extends Service {
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe<number>(
      "q://in",
      (n) =>
        ctx.publish("q://out", { n, pool: ctx.pool, service: ctx.service }),
    );
  }
}

for (const transport of ["ports", "broadcast"] as TransportKind[]) {
  Deno.test(`startServices() fans a message out to every pool [${transport}]`, async () => {
    await using bed = await startServices({
      pools: { a: [new Relay("ra")], b: [new Relay("rb")] },
      watch: ["q://out"],
      transport,
    });
    for (let n = 0; n < 3; n++) await bed.publish("q://in", n);
    const got = await bed.take<{ n: number; pool: string }>("q://out", 6);
    for (const pool of ["a", "b"]) {
      assert.deepEqual(
        got.filter((m) => m.data.pool === pool).map((m) => m.data.n),
        [0, 1, 2],
        `pool ${pool} got each message once, in order`,
      );
    }
    assert.deepEqual(got.map((m) => m.meta.from.pool).sort(), [
      "a",
      "a",
      "a",
      "b",
      "b",
      "b",
    ]);
    assert.deepEqual(bed.seen("q://out").length, 6, "and nothing more");
  });
}

Deno.test("startServices() subscribes before run(): nothing published there is missed", async () => {
  class Greeter extends Service {
    override async run(ctx: ServiceContext): Promise<void> {
      await ctx.publish("q://hello", "first thing in run()");
    }
  }
  await using bed = await startServices({
    pools: { app: [new Greeter("greeter")] },
    watch: ["q://hello"],
  });
  const { data, meta } = await bed.next("q://hello");
  assert.equal(data, "first thing in run()");
  assert.deepEqual(meta.from, { pool: "app", service: "greeter" });
});

Deno.test("startServices() splits a group between pools, each message once", async () => {
  class Worker extends Service {
    override async initialize(ctx: ServiceContext): Promise<void> {
      await ctx.subscribe<number>(
        "q://jobs",
        (n) => ctx.publish("q://done", { n, pool: ctx.pool }),
        { group: "workers" },
      );
    }
  }
  await using bed = await startServices({
    pools: { w1: [new Worker("w")], w2: [new Worker("w")] },
    watch: ["q://done"],
  });
  for (let n = 0; n < 20; n++) await bed.publish("q://jobs", n);
  const done = await bed.take<{ n: number; pool: string }>("q://done", 20);
  assert.deepEqual(
    done.map((m) => m.data.n).sort((x, y) => x - y),
    Array.from({ length: 20 }, (_, n) => n),
  );
  const perPool = Map.groupBy(done, (m) => m.data.pool);
  assert.equal(perPool.get("w1")?.length, 10, "round robin");
  assert.equal(perPool.get("w2")?.length, 10, "round robin");
  await assert.rejects(
    bed.next("q://done", { timeout: 100 }),
    { name: "TimeoutError" },
    "no message handled twice",
  );
});

Deno.test("TestBed.request() gets a service's reply; a service's request gets the test's", async () => {
  class Adder extends Service {
    override async initialize(ctx: ServiceContext): Promise<void> {
      await ctx.subscribe<{ a: number; b: number }>(
        "q://add",
        (data, meta) => ctx.publish(meta.replyTo!, data.a + data.b),
      );
    }
  }
  class Asker extends Service {
    override async run(ctx: ServiceContext): Promise<void> {
      const answer = await ctx.request("q://ask", "what time is it?");
      await ctx.publish("q://answered", answer);
    }
  }
  await using bed = await startServices({
    pools: { math: [new Adder("adder")], app: [new Asker("asker")] },
    watch: ["q://ask", "q://answered"],
  });
  assert.equal(await bed.request<number>("q://add", { a: 2, b: 3 }), 5);
  await assert.rejects(bed.request("q://nobody", 1), NoRespondersError);
  const question = await bed.next("q://ask");
  assert.equal(question.data, "what time is it?");
  assert.deepEqual(question.meta.from, { pool: "app", service: "asker" });
  await bed.publish(question.meta.replyTo!, "noon");
  assert.equal((await bed.next("q://answered")).data, "noon");
});

/** Publishes `total` numbers on `q://flow` as fast as the bus takes them. */
class Producer extends Service {
  sent = 0;
  constructor(readonly total: number) {
    super("producer");
  }
  override async run(ctx: ServiceContext): Promise<void> {
    for (let i = 0; i < this.total; i++) {
      await ctx.publish("q://flow", i);
      this.sent++;
    }
  }
}

/** Handles `q://flow` only while its gate is open; records what it got. */
class Gated extends Service {
  got: number[] = [];
  first = Promise.withResolvers<void>();
  #gate = Promise.withResolvers<void>();
  all = Promise.withResolvers<void>();
  constructor(readonly total: number) {
    super("gated");
  }
  open(): void {
    this.#gate.resolve();
  }
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe<number>("q://flow", async (i) => {
      this.first.resolve();
      await this.#gate.promise;
      this.got.push(i);
      if (this.got.length === this.total) this.all.resolve();
    }, { bufferSize: 4 });
  }
}

Deno.test("a full subscriber blocks a publisher in another pool until it catches up", async () => {
  const total = 200_000;
  const producer = new Producer(total);
  const gated = new Gated(total);
  await using bed = await startServices({
    pools: { slow: [gated], fast: [producer] },
    timeout: 20_000,
  });
  await gated.first.promise;
  // Not synchronisation: time for the producer to overrun if it could. It
  // shares this thread, so a count that stays put for 200 ms means blocked.
  let blockedAt = -1;
  for (let tries = 0; tries < 50 && producer.sent !== blockedAt; tries++) {
    blockedAt = producer.sent;
    await delay(200);
  }
  assert.equal(producer.sent, blockedAt, "the producer makes no progress");
  assert.ok(blockedAt < total, `the producer finished: ${blockedAt}`);
  assert.ok(
    blockedAt <= (WINDOW + 2) * BATCH_MESSAGES + 5,
    `blocked after ${blockedAt} of ${total}`,
  );
  const entry = (await bed.topology())["q://flow"]!["slow"]![0]!;
  assert.equal(entry.buffered, 4, "the subscription is full");
  assert.equal(entry.highWater, 4, "and never held more");
  gated.open();
  const timer = new AbortController();
  await Promise.race([
    gated.all.promise,
    delay(20_000, undefined, timer).then(() =>
      assert.fail(`got ${gated.got.length}`)
    ),
  ]).finally(() => timer.abort());
  assert.equal(producer.sent, total);
  assert.ok(gated.got.every((n, i) => n === i), "in order, none lost");
});

Deno.test("TestBed.next() fails at its deadline naming the queue and what came", async () => {
  class Failing extends Service {
    override async initialize(ctx: ServiceContext): Promise<void> {
      await ctx.subscribe("q://poison", () => {
        throw new Error("poisoned");
      });
    }
  }
  const bed = await startServices({
    pools: { app: [new Failing("eater"), new Relay("relay")] },
    watch: ["q://out"],
    logLevel: "silent",
  });
  try {
    await assert.rejects(bed.next("q://out", { timeout: 50 }), {
      name: "TimeoutError",
      message:
        'Timed out after 50 ms waiting for a message on "q://out": nothing arrived on it',
    });
    await bed.publish("q://in", 1);
    await bed.publish("q://poison", "x");
    await bed.next("q://out", { where: (m) => m.meta.queue === "q://out" });
    await bed.publish("q://in", 2);
    await assert.rejects(
      bed.take("q://out", 3, { timeout: 200 }),
      (error: Error) => {
        assert.equal(error.name, "TimeoutError");
        assert.match(
          error.message,
          /^Timed out after 200 ms waiting for 3 messages on "q:\/\/out", got 1: 2 arrived on it, 1 not taken: q:\/\/out \{"n":2,"pool":"app","service":"relay"\}; errors meanwhile: .*poisoned/,
        );
        return true;
      },
    );
    // The failed take gave its message back.
    assert.equal((await bed.next<{ n: number }>("q://out")).data.n, 2);
    assert.throws(() => bed.seen("q://elsewhere"), {
      name: "TypeError",
      message:
        'Cannot read "q://elsewhere": the test bed does not watch it; pass it in startServices({ watch }) or await bed.watch() before it is published',
    });
  } finally {
    const report = await bed.stop();
    assert.deepEqual(report.failures, []);
    assert.equal(report.errors.length, 1);
    assert.equal(report.errors[0]!.phase, "handler");
    assert.equal(report.errors[0]!.queue, "q://poison");
  }
});

Deno.test("await using fails on an unclean run; stop() returns the report", async () => {
  class Broken extends Service {
    override run(): void {
      throw new Error("broken run");
    }
  }
  const broken = new Broken("broken");
  await assert.rejects(
    (async () => {
      await using _bed = await startServices({
        pools: { app: [broken] },
        logLevel: "silent",
      });
    })(),
    {
      message:
        'Cannot stop the test bed cleanly: Service "broken" in pool "app" failed in run(): broken run (call bed.stop() to read the report instead)',
    },
  );
  assert.equal(broken.status, ServiceStatus.error);

  const bed = await startServices({
    pools: { app: [new Broken("broken")] },
    logLevel: "silent",
  });
  const report = await bed.stop();
  assert.deepEqual(report.failures.map((f) => [f.service, f.phase]), [[
    "broken",
    "run",
  ]]);
  assert.deepEqual(await bed.stop(), report, "stop() again: the same report");
  await bed[Symbol.asyncDispose](); // the test read the report: no throw
  await assert.rejects(bed.publish("q://in", 1), {
    name: "StateError",
    message: 'Cannot publish on "q://in": the test bed has stopped',
  });
});

Deno.test("startServices() runs initialize, run and terminate in order, and leaves nothing open", async () => {
  const steps: string[] = [];
  class Traced extends Service {
    override async initialize(ctx: ServiceContext): Promise<void> {
      steps.push(`${this.name} initialize`);
      await ctx.subscribe("q://tick", () => {});
    }
    override async run(ctx: ServiceContext): Promise<void> {
      steps.push(`${this.name} run`);
      await ctx.sleep(60_000); // returns at once when the stop begins
    }
    override terminate(): void {
      steps.push(`${this.name} terminate`);
    }
  }
  // Sanitizers (deno.json) fail this test if a port, timer or channel of
  // the bed, its pools, buses, schedulers or transport stays open.
  {
    await using bed = await startServices({
      pools: { p1: [new Traced("s1")], p2: [new Traced("s2")] },
    });
    const topology = await bed.topology();
    assert.deepEqual(Object.keys(topology["q://tick"]!).sort(), ["p1", "p2"]);
    assert.deepEqual(steps.slice(0, 2).sort(), [
      "s1 initialize",
      "s2 initialize",
    ]);
  }
  assert.deepEqual(steps.slice(4), ["s2 terminate", "s1 terminate"]);
});

Deno.test("startServices() fails at startTimeout naming the service still in initialize()", async () => {
  class Slow extends Service {
    override async initialize(ctx: ServiceContext): Promise<void> {
      // Returns only when the stop begins.
      await new Promise((resolve) =>
        ctx.signal.addEventListener("abort", resolve, { once: true })
      );
    }
  }
  await assert.rejects(
    startServices({
      pools: { fast: [new Relay("relay")], slow: [new Slow("sloth")] },
      startTimeout: 100,
      logLevel: "silent",
    }),
    {
      name: "TimeoutError",
      message:
        "Cannot start services: initialize() did not finish within 100 ms in every pool (still in initialize(): slow/sloth)",
    },
  );
});

Deno.test("startServices() refuses bad pools and options before anything starts", async () => {
  await assert.rejects(startServices({ pools: {} }), {
    name: "TypeError",
    message: "Cannot start services: servicePools declares no pool",
  });
  await assert.rejects(startServices({ pools: { test: [] } }), {
    name: "TypeError",
    message:
      'Cannot start services: pool "test" is the test bed\'s own; name yours otherwise',
  });
  await assert.rejects(
    startServices({ pools: { a: [] }, timeout: -1 }),
    {
      name: "RangeError",
      message:
        "Cannot start services: timeout must be a number > 0 and <= 2147483647 (about 24.8 days), got -1",
    },
  );
  await assert.rejects(
    startServices({ pools: { a: [] }, watch: ["q://a b"] }),
    { name: "QueueNameError" },
  );
});
