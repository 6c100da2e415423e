/**
 * The counters of durable subscriptions (issue 22): a pool's
 * `DurableClient` counts each delivery and how it was settled, and
 * `renderPrometheus` writes them as `durable_*` families.
 */
import assert from "node:assert/strict";
import type { DurableCarrier } from "../src/durable/carrier.ts";
import { DurableClient } from "../src/durable/client.ts";
import type {
  ConsumerBacklog,
  DeliveredMessage,
  OutgoingMessage,
  Settlement,
} from "../src/durable/protocol.ts";
import { renderPrometheus } from "../src/metrics/prometheus.ts";
import type { DurableMetrics } from "../src/metrics_snapshot.ts";
import type { Topology } from "../src/service_context.ts";
import { natsSkipReason } from "./_nats.ts";
import { type Backend, BACKENDS, setUp } from "./_durable.ts";
import { findChromium, launchChromium, pageUntil } from "./_chromium.ts";
import { freePort } from "./fixtures/websocket_helpers.ts";

/** A carrier that stores nothing: it records what the client says. */
class FakeCarrier implements DurableCarrier {
  published: OutgoingMessage[] = [];
  deliver = new Map<string, (messages: DeliveredMessage[]) => void>();
  #settled: Array<(settlement: Settlement) => void> = [];

  publish(message: OutgoingMessage): Promise<void> {
    this.published.push(message);
    return Promise.resolve();
  }
  consume(
    member: { subscription: string },
    deliver: (messages: DeliveredMessage[]) => void,
  ): Promise<void> {
    this.deliver.set(member.subscription, deliver);
    return Promise.resolve();
  }
  settle(_subscription: string, settlements: Settlement[]): void {
    for (const settlement of settlements) this.#settled.shift()?.(settlement);
  }
  /** Delivers `attempt` of message `seq` and resolves with its settlement. */
  attempt(
    subscription: string,
    seq: number,
    attempt: number,
  ): Promise<Settlement> {
    const { promise, resolve } = Promise.withResolvers<Settlement>();
    this.#settled.push(resolve);
    this.deliver.get(subscription)!([{
      stream: "q://jobs/>",
      seq,
      attempt,
      queue: `q://jobs/${seq}`,
      pool: "producer",
      service: "Publisher",
      publishedAt: 0,
      data: { seq },
    }]);
    return promise;
  }
  /** What `backlog()` answers. */
  pending = new Map<string, number>();
  backlog(subscriptions: readonly string[]): Promise<ConsumerBacklog[]> {
    return Promise.resolve(
      subscriptions.filter((s) => this.pending.has(s)).map((subscription) => ({
        subscription,
        stream: "q://jobs/>",
        consumer: "group+q%3A%2F%2Fjobs%2F%3E+g",
        pending: this.pending.get(subscription)!,
      })),
    );
  }
  cancel(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function client(carrier: FakeCarrier): DurableClient {
  return new DurableClient({
    streams: ["q://jobs/>"],
    policy: { maxDeliver: 3, backoff: [0] },
    carrier,
    pool: "workers",
    poolIndex: 1,
    handlerFailed: () => {},
  });
}

const OPTIONS = { group: "g", concurrency: 1, capacity: 8 };

Deno.test("Durable metrics: a handler that throws once counts one redelivery, then one acknowledgement", async () => {
  const carrier = new FakeCarrier();
  const durable = client(carrier);
  await durable.subscribe("s1", "Worker", "q://jobs/>", (_, meta) => {
    if (meta.delivery!.attempt === 1) throw new Error("boom");
  }, OPTIONS);
  assert.equal((await carrier.attempt("s1", 1, 1)).outcome, "retry");
  assert.equal((await carrier.attempt("s1", 1, 2)).outcome, "ack");
  assert.deepEqual(await durable.metrics(), [{
    pool: "workers",
    service: "Worker",
    queue: "q://jobs/>",
    group: "g",
    delivered: 2,
    acknowledged: 1,
    redelivered: 1,
    deadLettered: 0,
    inFlight: 0,
  }]);
  durable.close();
});

Deno.test("Durable metrics: a handler that always throws counts its retries and one dead letter", async () => {
  const carrier = new FakeCarrier();
  const durable = client(carrier);
  await durable.subscribe("s1", "Worker", "q://jobs/>", () => {
    throw new Error("boom");
  }, { ...OPTIONS, group: undefined });
  for (const attempt of [1, 2]) {
    assert.equal((await carrier.attempt("s1", 7, attempt)).outcome, "retry");
  }
  assert.equal(
    (await carrier.attempt("s1", 7, 3)).outcome,
    "dead-lettered",
  );
  assert.equal(carrier.published[0]!.queue, "dlq://q/jobs/7");
  assert.deepEqual(await durable.metrics(), [{
    pool: "workers",
    service: "Worker",
    queue: "q://jobs/>",
    delivered: 3,
    acknowledged: 0,
    redelivered: 2,
    deadLettered: 1,
    inFlight: 0,
  }]);
  durable.close();
});

Deno.test("Durable metrics: a running handler counts in flight until it is settled", async () => {
  const carrier = new FakeCarrier();
  const durable = client(carrier);
  const started = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  await durable.subscribe("s1", "Worker", "q://jobs/>", async () => {
    started.resolve();
    await release.promise;
  }, OPTIONS);
  const settled = carrier.attempt("s1", 1, 1);
  await started.promise;
  assert.equal((await durable.metrics())[0]!.inFlight, 1);
  assert.equal((await durable.metrics())[0]!.acknowledged, 0);
  release.resolve();
  await settled;
  assert.equal((await durable.metrics())[0]!.inFlight, 0);
  assert.equal((await durable.metrics())[0]!.acknowledged, 1);
  durable.close();
});

Deno.test("Durable metrics: pending is the carrier's backlog of the subscription's consumer, left out when it cannot tell", async () => {
  const carrier = new FakeCarrier();
  const durable = client(carrier);
  await durable.subscribe("s1", "Worker", "q://jobs/>", () => {}, OPTIONS);
  await durable.subscribe("s2", "Worker", "q://jobs/a", () => {}, OPTIONS);
  carrier.pending.set("s1", 12);
  const [s1, s2] = await durable.metrics();
  assert.equal(s1!.pending, 12);
  assert.equal("pending" in s2!, false);
  durable.close();
});

Deno.test("Durable metrics: topology lists durable subscriptions, marked durable", async () => {
  const carrier = new FakeCarrier();
  const durable = client(carrier);
  await durable.subscribe("s1", "Worker", "q://jobs/>", () => {}, OPTIONS);
  await carrier.attempt("s1", 1, 1);
  const topology: Topology = { "q://jobs/>": { workers: [] } };
  durable.addTopology(topology);
  assert.deepEqual(topology, {
    "q://jobs/>": {
      workers: [{
        service: "Worker",
        group: "g",
        buffered: 0,
        highWater: 1,
        delivered: 1,
        durable: true,
      }],
    },
  });
  durable.close();
});

const NATS_SKIP = await natsSkipReason();

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `Durable metrics (${backend}): main's metrics and topology show a durable subscription's counts`,
    ignore: backend === "JetStream" && NATS_SKIP !== undefined,
    fn: () => observed(backend),
  });
}

async function observed(backend: Backend): Promise<void> {
  await using setup = await setUp(backend);
  const child = setup.start(["observed"]);
  const observed = (l: string): boolean => l.startsWith("OBSERVED ");
  await child.waitFor(observed);
  child.process.kill("SIGTERM");
  assert.equal((await child.exit()).code, 0, child.lines.join("\n"));
  const line = child.lines.find(observed)!;
  const { durable, topology } = JSON.parse(line.slice("OBSERVED ".length));
  assert.deepEqual(durable, [{
    pool: "workers",
    service: "Worker",
    queue: "q://jobs/>",
    group: "g",
    delivered: 2,
    acknowledged: 1,
    redelivered: 1,
    deadLettered: 0,
    inFlight: 0,
    pending: 0,
  }, {
    pool: "workers",
    service: "Worker",
    queue: "dlq://q/jobs/>",
    delivered: 0,
    acknowledged: 0,
    redelivered: 0,
    deadLettered: 0,
    inFlight: 0,
    pending: 0,
  }]);
  assert.deepEqual(topology, {
    workers: [{
      service: "Worker",
      group: "g",
      buffered: 0,
      highWater: 1,
      delivered: 2,
      durable: true,
    }],
  });
}

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `Durable metrics (${backend}): pending is every stored job while the consumer is held, and 0 once all are handled`,
    ignore: backend === "JetStream" && NATS_SKIP !== undefined,
    fn: () => backlog(backend),
  });
}

async function backlog(backend: Backend): Promise<void> {
  await using setup = await setUp(backend);
  const child = setup.start(["backlog", "20"]);
  const drained = (l: string): boolean => l.startsWith("DRAINED ");
  await child.waitFor(drained);
  child.process.kill("SIGTERM");
  assert.equal((await child.exit()).code, 0, child.lines.join("\n"));
  const entries = (word: string): DurableMetrics[] =>
    JSON.parse(
      child.lines.find((l) => l.startsWith(word + " "))!.slice(word.length),
    );
  // 20 stored, none acknowledged: up to 8 (bufferSize) delivered and held
  // by now, the rest not yet delivered.
  const [held] = entries("PENDING");
  assert.equal(held!.pending, 20, child.lines.join("\n"));
  assert.equal(held!.acknowledged, 0);
  const [done] = entries("DRAINED");
  assert.equal(done!.pending, 0, child.lines.join("\n"));
  assert.equal(done!.acknowledged, 20);
}

Deno.test("Durable metrics: Prometheus has one durable_* series per durable subscription", () => {
  const text = renderPrometheus({
    takenAt: 0,
    subscriptions: [],
    services: [],
    pools: [],
    durable: [{
      pool: "workers",
      service: "Worker",
      queue: "q://jobs/>",
      group: "g",
      delivered: 5,
      acknowledged: 3,
      redelivered: 1,
      deadLettered: 1,
      inFlight: 0,
      pending: 4,
    }, {
      // A second member of the same consumer: the same pending, not added.
      pool: "workers",
      service: "Worker",
      queue: "q://jobs/>",
      group: "g",
      delivered: 0,
      acknowledged: 0,
      redelivered: 0,
      deadLettered: 0,
      inFlight: 0,
      pending: 4,
    }],
  });
  const labels =
    '{queue="q://jobs/>",pool="workers",service="Worker",group="g"}';
  for (
    const [name, value] of [
      ["durable_delivered_total", 5],
      ["durable_acknowledged_total", 3],
      ["durable_redelivered_total", 1],
      ["durable_dead_lettered_total", 1],
      ["durable_in_flight", 0],
      ["durable_pending", 4],
    ] as const
  ) {
    assert.ok(
      text.includes(`magic_foundation_${name}${labels} ${value}\n`),
      text,
    );
  }
  for (const gauge of ["in_flight", "pending"]) {
    assert.ok(
      text.includes(`# TYPE magic_foundation_durable_${gauge} gauge\n`),
      text,
    );
  }
});

Deno.test({
  name: "Durable metrics (local): the live page shows a durable queue's counts",
  ignore: findChromium() === undefined,
  async fn(): Promise<void> {
    await using setup = await setUp("local");
    const port = freePort();
    const child = setup.start(["observed", String(port)]);
    await child.waitFor((l) => l.startsWith("OBSERVED "));
    {
      await using browser = await launchChromium(findChromium()!);
      const page = await browser.open(`http://127.0.0.1:${port}/`);
      await page.evaluate(pageUntil(
        `document.querySelector('[data-pool="workers"] [data-durable="q://jobs/>"]')`,
      ));
      const counts = await page.evaluate<string[]>(
        `(() => { const d = document.querySelector('[data-pool="workers"] [data-durable="q://jobs/>"]').dataset;
          return [d.acknowledged, d.redelivered, d.deadLettered, d.pending]; })()`,
      );
      assert.deepEqual(counts, ["1", "1", "0", "0"]);
    }
    child.process.kill("SIGTERM");
    assert.equal((await child.exit()).code, 0, child.lines.join("\n"));
  },
});
