/**
 * Routing decided once: the publisher's pool picks the subscriptions (by
 * number) in every pool; a receiver looks them up and decides only where a
 * group member's message goes when that member has just left. Pools are the
 * bus's own parts in one thread (`tests/_bus_parts.ts`), so each test says
 * exactly when a table changes and when a message arrives.
 */
import assert from "node:assert/strict";
import { deliveryOf } from "../src/bus/routes.ts";
import { deliver, testPools } from "./_bus_parts.ts";

Deno.test("a subscription of another pool is reached only once the publisher's table has it", async () => {
  const [a, b] = testPools(["a", "b"]);
  try {
    const first = b!.subscribe("q://orders");
    a!.routes.applyTable([first.entry], []);
    // Pool b subscribes again; pool a's table does not have it yet.
    const second = b!.subscribe("q://orders");
    await a!.outbound.publish("P", "q://orders", 1);
    await deliver(a!, [b!]);
    assert.deepEqual(first.got.map((m) => m.data), [1]);
    assert.deepEqual(second.got.map((m) => m.data), []);

    a!.routes.applyTable([second.entry], []);
    await a!.outbound.publish("P", "q://orders", 2);
    await deliver(a!, [b!]);
    assert.deepEqual(first.got.map((m) => m.data), [1, 2]);
    assert.deepEqual(second.got.map((m) => m.data), [2]);
  } finally {
    a!.close();
    b!.close();
  }
});

Deno.test("a pattern subscription of another pool is reached only once the publisher's table has it", async () => {
  const [a, b] = testPools(["a", "b"]);
  try {
    const exact = b!.subscribe("q://orders/new");
    a!.routes.applyTable([exact.entry], []);
    const pattern = b!.subscribe("q://orders/*");
    await a!.outbound.publish("P", "q://orders/new", "x");
    await deliver(a!, [b!]);
    assert.equal(exact.got.length, 1);
    assert.equal(pattern.got.length, 0);
  } finally {
    a!.close();
    b!.close();
  }
});

Deno.test("a receiver delivers to the subscriptions the message names, one that has left gets nothing", async () => {
  const [a, b] = testPools(["a", "b"]);
  try {
    const kept = b!.subscribe("q://orders");
    const left = b!.subscribe("q://orders");
    a!.routes.applyTable([kept.entry, left.entry], []);
    await a!.outbound.publish("P", "q://orders", { n: 1 });
    const { to, message } = a!.transport.sent[0]!;
    assert.deepEqual(to, [1]);
    assert.deepEqual(message.to!.subscriptions[1], [
      kept.entry.id,
      left.entry.id,
    ]);
    b!.routes.remove(left.subscription);
    left.subscription.close();
    await deliver(a!, [b!]);
    assert.deepEqual(kept.got.map((m) => m.data), [{ n: 1 }]);
    assert.equal(kept.got[0]!.meta.from.pool, "a");
    assert.deepEqual(left.got, []);
    assert.deepEqual(b!.lost, []);
  } finally {
    a!.close();
    b!.close();
  }
});

Deno.test("a group message whose member has just left goes to another member, in its pool or another, from its publisher", async () => {
  const [a, b, c] = testPools(["a", "b", "c"]);
  try {
    const inB = b!.subscribe("q://jobs", "w");
    const alsoInB = b!.subscribe("q://jobs", "w");
    const inC = c!.subscribe("q://jobs", "w");
    const table = [inB.entry, alsoInB.entry, inC.entry];
    for (const pool of [a!, b!, c!]) pool.routes.applyTable(table, []);
    // Pool a picks in turn: b's first member, then b's second, then c's.
    await a!.outbound.publish("P", "q://jobs", 1);
    await a!.outbound.publish("P", "q://jobs", 2);
    // Both members in b leave before the messages arrive.
    for (const { subscription } of [inB, alsoInB]) {
      b!.routes.remove(subscription);
      subscription.close();
    }
    await deliver(a!, [b!]);
    // Pool b hands both on to the member left, in pool c.
    assert.deepEqual(b!.transport.sent.map((s) => s.to), [[2], [2]]);
    await deliver(b!, [c!]);
    assert.deepEqual(inC.got.map((m) => m.data), [1, 2]);
    assert.deepEqual(inC.got[0]!.meta.from, { pool: "a", service: "P" });
    assert.deepEqual(b!.lost, []);
  } finally {
    for (const pool of [a!, b!, c!]) pool.close();
  }
});

Deno.test("a group message whose member has just left goes to another member of that pool", async () => {
  const [a, b] = testPools(["a", "b"]);
  try {
    const leaving = b!.subscribe("q://jobs", "w");
    const staying = b!.subscribe("q://jobs", "w");
    const table = [leaving.entry, staying.entry];
    for (const pool of [a!, b!]) pool.routes.applyTable(table, []);
    await a!.outbound.publish("P", "q://jobs", "j");
    b!.routes.remove(leaving.subscription);
    leaving.subscription.close();
    await deliver(a!, [b!]);
    assert.deepEqual(staying.got.map((m) => m.data), ["j"]);
    assert.equal(staying.got[0]!.meta.from.pool, "a");
    assert.deepEqual(b!.transport.sent, []);
  } finally {
    a!.close();
    b!.close();
  }
});

Deno.test("a group message with no member left is counted lost", async () => {
  const [a, b] = testPools(["a", "b"]);
  try {
    const only = b!.subscribe("q://jobs", "w");
    for (const pool of [a!, b!]) pool.routes.applyTable([only.entry], []);
    await a!.outbound.publish("P", "q://jobs", "j");
    b!.routes.remove(only.subscription);
    only.subscription.close();
    await deliver(a!, [b!]);
    assert.deepEqual(b!.lost, ["q://jobs/w"]);
  } finally {
    a!.close();
    b!.close();
  }
});

Deno.test("a reply carries its request's address as a record, and settles the request", async () => {
  const [a, b] = testPools(["a", "b"]);
  try {
    const { replyTo, reply } = a!.requests.open("q://ask", 10_000);
    await b!.outbound.publish("R", replyTo, 42);
    const { to, message } = b!.transport.sent[0]!;
    assert.deepEqual(to, [0]);
    assert.deepEqual(message.reply, { index: 0, incarnation: 1, id: 1 });
    assert.equal(message.to, undefined);
    await deliver(b!, [a!]);
    assert.equal(await reply, 42);
  } finally {
    a!.close();
    b!.close();
  }
});

Deno.test("Routes gives one frozen delivery per queue until the table changes", () => {
  const [a, b, c] = testPools(["a", "b", "c"]);
  try {
    const inB = b!.subscribe("q://*");
    const inC = c!.subscribe("q://x");
    const grouped = c!.subscribe("q://x", "g");
    a!.routes.applyTable([inB.entry, inC.entry, grouped.entry], []);
    const { plain } = a!.routes.route("q://x");
    assert.deepEqual(plain.pools, [1, 2]);
    assert.deepEqual(plain.address.subscriptions[1], [inB.entry.id]);
    assert.deepEqual(plain.address.subscriptions[2], [inC.entry.id]);
    assert.ok(Object.isFrozen(plain.address));
    assert.equal(a!.routes.route("q://x").plain, plain);

    a!.routes.applyTable([], [inC.entry.id]);
    const after = a!.routes.route("q://x").plain;
    assert.notEqual(after, plain);
    assert.deepEqual(after.pools, [1]);
    assert.deepEqual(a!.routes.route("q://y").plain.pools, [1]);
    assert.deepEqual(a!.routes.route("other://y").plain.pools, []);
  } finally {
    for (const pool of [a!, b!, c!]) pool.close();
  }
});

Deno.test("Routes remembers the group of this pool's departed members only", () => {
  const [a] = testPools(["a"]);
  try {
    const member = a!.subscribe("q://jobs", "w");
    const plain = a!.subscribe("q://jobs");
    assert.equal(a!.routes.departedGroup(member.entry.id), undefined);
    a!.routes.remove(member.subscription);
    a!.routes.remove(plain.subscription);
    assert.equal(a!.routes.subscription(member.entry.id), undefined);
    assert.equal(a!.routes.departedGroup(member.entry.id), "q://jobs\u0000w");
    assert.equal(a!.routes.departedGroup(plain.entry.id), undefined);
  } finally {
    a!.close();
  }
});

Deno.test("deliveryOf skips pools with no subscription and names the publisher when given", () => {
  const handedOn = deliveryOf([undefined, [], [3]], 0);
  assert.deepEqual(handedOn.pools, [2]);
  assert.equal(handedOn.address.publisher, 0);
  assert.equal(handedOn.address.subscriptions[1], undefined);
  assert.equal("publisher" in deliveryOf([[1]]).address, false);
});
