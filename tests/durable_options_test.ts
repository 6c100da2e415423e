/** The `durable` option, its environment variables, and which subscriptions are durable. */
import assert from "node:assert/strict";
import { resolveDurable } from "../src/durable/options.ts";
import { DurableClient } from "../src/durable/client.ts";
import { type DurableCarrier, LocalCarrier } from "../src/durable/carrier.ts";
import { resolveRunOptions } from "../src/run_options.ts";

Deno.test("resolveDurable() applies defaults and adds each pattern's dlq:// stream", () => {
  assert.deepEqual(resolveDurable({ queues: ["q://jobs/>", "ws://in"] }), {
    streams: ["q://jobs/>", "ws://in", "dlq://q/jobs/>", "dlq://ws/in"],
    groupOnly: [],
    directory: ".magic-foundation/durable",
    maxDeliver: 5,
    backoff: [100, 1000, 5000],
    dedupeWindow: 120_000,
    ackWait: 30_000,
    segmentBytes: 8 * 1024 * 1024,
  });
  assert.deepEqual(
    resolveDurable({ queues: ["q://a"], backoff: 50 })?.backoff,
    [50],
  );
});

Deno.test("resolveDurable() refuses bad values with clear messages", () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ queues: [] }, /durable.queues must name at least one queue/],
    [{ queues: ["jobs"] }, /Invalid queue name "jobs"/],
    [
      { queues: ["q://a/>", "q://*/b"] },
      /"q:\/\/a\/>" and "q:\/\/\*\/b" overlap/,
    ],
    [{ queues: ["reply://x"] }, /reply:\/\/ is for request\/reply/],
    [
      { queues: ["q://a"], maxDeliver: 0 },
      /maxDeliver must be an integer >= 1, got 0/,
    ],
    [
      { queues: ["q://a"], backoff: [] },
      /backoff must be a duration or a non-empty array/,
    ],
    [
      { queues: ["q://a"], backoff: [-1] },
      /durable.backoff\[0\] must be a number >= 0/,
    ],
    [
      { queues: ["q://a"], directory: "" },
      /directory must be a non-empty string/,
    ],
    [
      { queues: ["q://a"], segmentBytes: 0.5 },
      /segmentBytes must be an integer >= 1/,
    ],
    ["q://a", /durable must be an object/],
  ];
  for (const [options, message] of cases) {
    assert.throws(
      () => resolveDurable(options as Parameters<typeof resolveDurable>[0]),
      { message },
      JSON.stringify(options),
    );
  }
});

Deno.test("resolveDurable() reads MAGIC_FOUNDATION_DURABLE and MAGIC_FOUNDATION_DURABLE_DIR", () => {
  const saved = ["MAGIC_FOUNDATION_DURABLE", "MAGIC_FOUNDATION_DURABLE_DIR"]
    .map((name) => [name, Deno.env.get(name)] as const);
  try {
    Deno.env.delete("MAGIC_FOUNDATION_DURABLE");
    assert.equal(resolveDurable(undefined), undefined);
    Deno.env.set("MAGIC_FOUNDATION_DURABLE", " q://jobs/> , q://mail ");
    Deno.env.set("MAGIC_FOUNDATION_DURABLE_DIR", "/var/lib/app");
    const settings = resolveDurable(undefined);
    assert.deepEqual(settings?.streams.slice(0, 2), ["q://jobs/>", "q://mail"]);
    assert.equal(settings?.directory, "/var/lib/app");
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
});

Deno.test("resolveRunOptions() takes durable queues joined to NATS: JetStream keeps them, not the local log", () => {
  const settings = resolveRunOptions({
    module: import.meta.url,
    nats: { servers: "127.0.0.1:4222" },
    durable: { queues: ["q://jobs/>"], groupOnly: ["q://jobs/>"] },
  });
  assert.equal(settings.remote?.kind, "nats");
  assert.deepEqual(settings.durable?.groupOnly, ["q://jobs/>"]);
  assert.deepEqual(settings.config.durable?.groupOnly, ["q://jobs/>"]);
});

Deno.test("durable.groupOnly: a pattern not among the queues is refused, a subscription without a group too", async () => {
  assert.throws(
    () => resolveDurable({ queues: ["q://a"], groupOnly: ["q://b"] }),
    { message: /durable.groupOnly "q:\/\/b" is not one of durable.queues/ },
  );
  const carrier: DurableCarrier = {
    publish: () => Promise.resolve(),
    consume: () => Promise.resolve(),
    settle: () => {},
    backlog: () => Promise.resolve([]),
    cancel: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const client = new DurableClient({
    streams: ["q://jobs/>", "dlq://q/jobs/>"],
    groupOnly: ["q://jobs/>"],
    policy: { maxDeliver: 3, backoff: [1] },
    carrier,
    pool: "p",
    poolIndex: 0,
    handlerFailed: () => {},
  });
  const options = { group: undefined, concurrency: 1, capacity: 8 };
  await assert.rejects(
    client.subscribe("1", "S", "q://jobs/a", () => {}, options),
    { name: "QueueNameError", message: /for groups only/ },
  );
  const grouped = await client.subscribe("2", "S", "q://jobs/a", () => {}, {
    ...options,
    group: "g",
  });
  await grouped.unsubscribe();
  client.close();
});

Deno.test("DurableClient: a subscription inside a durable pattern is durable, one overlapping it is refused", () => {
  const carrier: DurableCarrier = {
    publish: () => Promise.resolve(),
    consume: () => Promise.resolve(),
    settle: () => {},
    backlog: () => Promise.resolve([]),
    cancel: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const client = new DurableClient({
    streams: ["q://jobs/>", "dlq://q/jobs/>"],
    policy: { maxDeliver: 3, backoff: [1] },
    carrier,
    pool: "p",
    poolIndex: 0,
    handlerFailed: () => {},
  });
  assert.equal(client.coversSubscription("q://jobs/a"), true);
  assert.equal(client.coversSubscription("q://jobs/*/x"), true);
  assert.equal(client.coversSubscription("dlq://q/jobs/>"), true);
  assert.equal(client.coversSubscription("q://other"), false);
  assert.throws(() => client.coversSubscription("q://>"), {
    name: "QueueNameError",
    message: /overlaps the durable queues "q:\/\/jobs\/>"/,
  });
  assert.equal(client.isDurable("q://jobs/a/b"), true);
  assert.equal(client.isDurable("q://jobsx"), false);
});

Deno.test("DurableClient: uncloneable data is refused with a DataCloneError naming the queue", () => {
  const client = new DurableClient({
    streams: ["q://jobs/>"],
    policy: { maxDeliver: 3, backoff: [1] },
    carrier: new LocalCarrier((message) => structuredClone(message)),
    pool: "p",
    poolIndex: 0,
    handlerFailed: () => {},
  });
  assert.throws(() => client.publish("S", "q://jobs/a", () => 1, {}), {
    name: "DataCloneError",
    message: /q:\/\/jobs\/a/,
  });
  assert.throws(() => client.publish("S", "q://jobs/a", 1, { id: "" }), {
    message: 'Cannot publish on "q://jobs/a": id must be a non-empty string',
  });
});
