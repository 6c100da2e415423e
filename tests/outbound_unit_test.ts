/**
 * The sending side of a pool's bus in one thread, its transport a recorder:
 * what it hands over for the pools of a group's members.
 */
import assert from "node:assert/strict";
import { MetaFactory } from "../src/bus/meta.ts";
import { Outbound } from "../src/bus/outbound.ts";
import { Requests } from "../src/bus/requests.ts";
import { Routes } from "../src/bus/routes.ts";
import { Scheduler } from "../src/scheduler.ts";
import { encodeBatch } from "../src/transport/codec.ts";
import { HeldTransport } from "./_bus_parts.ts";

Deno.test("messages to one member of a group in another pool share its address and audience, so they travel as one run", async () => {
  const routes = new Routes(0);
  // Group "w" on q://jobs has one member, in pool 1; "v" has one in pool 2.
  routes.applyTable([
    {
      id: 4,
      poolIndex: 1,
      pool: "b",
      service: "W",
      queue: "q://jobs",
      group: "w",
    },
    {
      id: 5,
      poolIndex: 2,
      pool: "c",
      service: "V",
      queue: "q://both",
      group: "v",
    },
    {
      id: 7,
      poolIndex: 1,
      pool: "b",
      service: "W",
      queue: "q://both",
      group: "w",
    },
  ], []);
  const transport = new HeldTransport();
  const scheduler = new Scheduler();
  const outbound = new Outbound({
    index: 0,
    routes,
    requests: new Requests(0, 1),
    metas: new MetaFactory(["a", "b", "c"]),
    transport,
    scheduler,
  });
  try {
    for (let i = 0; i < 100; i++) {
      await outbound.publish("P", "q://jobs", { i });
    }
    const toMember = transport.sent.map((s) => s.message);
    assert.equal(toMember.length, 100);
    for (const { to, message } of transport.sent) {
      assert.equal(to, transport.sent[0]!.to, "one audience array");
      assert.equal(message.to, toMember[0]!.to, "one address");
    }
    assert.deepEqual(transport.sent[0]!.to, [1]);
    assert.deepEqual(toMember[0]!.to!.subscriptions[1], [4]);
    assert.equal(toMember[0]!.to!.subscriptions[0], undefined);
    // Runs split only where the millisecond changes, not at every message.
    const milliseconds = new Set(toMember.map((m) => m.publishedAt)).size;
    assert.equal(encodeBatch(toMember).runs.length, 3 * milliseconds);

    // Two groups picked at once: one message, each pool's member named.
    transport.sent.length = 0;
    await outbound.publish("P", "q://both", 1);
    assert.equal(transport.sent.length, 1);
    const { to, message } = transport.sent[0]!;
    assert.deepEqual(to, [1, 2]);
    assert.deepEqual(message.to!.subscriptions[1], [7]);
    assert.deepEqual(message.to!.subscriptions[2], [5]);
  } finally {
    scheduler.close();
  }
});
