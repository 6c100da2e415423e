/**
 * When `Outbound.publish` makes its publisher wait, and when it does not: a
 * publish that needs no wait settles at once, without an async function
 * (issue 23); one that meets a full buffer or a link that says wait holds
 * its publisher until there is room, and messages keep their order; errors
 * are rejections, never throws.
 */
import assert from "node:assert/strict";
import { MetaFactory } from "../src/bus/meta.ts";
import { Outbound, type OutboundParts } from "../src/bus/outbound.ts";
import { Requests } from "../src/bus/requests.ts";
import { Routes } from "../src/bus/routes.ts";
import type { LocalSubscription } from "../src/bus/subscription.ts";
import { Scheduler } from "../src/scheduler.ts";
import type { Transport } from "../src/transport/transport.ts";
import { HeldTransport, testSubscription } from "./_bus_parts.ts";

/** Whether `promise` has settled once the microtasks queued now have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => done = true, () => done = true);
  // Two macrotasks: every microtask a settled promise needs has run by then.
  for (let i = 0; i < 2; i++) {
    await new Promise<void>((resolve) => {
      const { port1, port2 } = new MessageChannel();
      port1.onmessage = () => {
        port1.close();
        resolve();
      };
      port2.postMessage(0);
      port2.close();
    });
  }
  return done;
}

function parts(
  transport: Transport,
  routes: Routes,
  scheduler: Scheduler,
): OutboundParts {
  return {
    index: 0,
    routes,
    requests: new Requests(0, 1),
    metas: new MetaFactory(["a", "b"]),
    transport,
    scheduler,
  };
}

/** Routes where pool 1 subscribes to `queue` (subscription number 1). */
function toPoolOne(queue: string): Routes {
  const routes = new Routes(0);
  routes.applyTable([
    { id: 1, poolIndex: 1, pool: "b", service: "S", queue, group: undefined },
  ], []);
  return routes;
}

Deno.test("Outbound.publish holds its publisher while the link says wait, and lets it go when the link has room", async () => {
  const transport = new HeldTransport();
  const scheduler = new Scheduler();
  const outbound = new Outbound(
    parts(transport, toPoolOne("q://a"), scheduler),
  );
  try {
    assert.equal(await settled(outbound.publish("P", "q://a", 1)), true);
    transport.closeGate();
    const held = outbound.publish("P", "q://a", 2);
    assert.equal(await settled(held), false, "held while the link is full");
    transport.open();
    await held;
    assert.deepEqual(transport.sent.map((s) => s.message.data), [1, 2]);
  } finally {
    scheduler.close();
  }
});

Deno.test("Outbound.publish rejects, and never throws, when the data cannot be copied, for another pool and for this one", async () => {
  const transport = new HeldTransport();
  const scheduler = new Scheduler();
  const routes = toPoolOne("q://a");
  const outbound = new Outbound(parts(transport, routes, scheduler));
  const subscription = localSubscription(scheduler, "q://here", 10, () => {});
  routes.add(subscription);
  try {
    // A transport that throws structuredClone's error, as the real ones do.
    transport.send = () => {
      throw new DOMException("cannot clone", "DataCloneError");
    };
    let call: Promise<void> | undefined;
    assert.doesNotThrow(() => call = outbound.publish("P", "q://a", 1));
    await assert.rejects(call!, { name: "DataCloneError" });
    assert.doesNotThrow(() =>
      call = outbound.publish("P", "q://here", () => {})
    );
    await assert.rejects(call!, { name: "DataCloneError" });
    assert.equal(subscription.size, 0, "nothing delivered");
  } finally {
    subscription.close();
    scheduler.close();
  }
});

Deno.test("Outbound.publish holds its publisher while a subscription of its pool is full; the messages keep their order", async () => {
  const transport = new HeldTransport();
  const scheduler = new Scheduler();
  const routes = new Routes(0);
  const outbound = new Outbound(parts(transport, routes, scheduler));
  const got: number[] = [];
  let release: (() => void) | undefined;
  // A handler that waits for the test on its first message: the buffer of
  // 2 behind it fills.
  const subscription = localSubscription(
    scheduler,
    "q://here",
    2,
    (data) => {
      got.push(data as number);
      if (data !== 0) return;
      return new Promise<void>((resolve) => release = resolve);
    },
  );
  routes.add(subscription);
  try {
    const published: Promise<void>[] = [];
    for (let i = 0; i < 3; i++) {
      published.push(outbound.publish("P", "q://here", i));
      assert.equal(await settled(published[i]!), true, `message ${i}`);
    }
    // 0 is in its handler, 1 and 2 fill the buffer: 3 waits.
    const held = outbound.publish("P", "q://here", 3);
    assert.equal(await settled(held), false, "held while the buffer is full");
    release!();
    await held;
    await subscription.whenIdle();
    assert.deepEqual(got, [0, 1, 2, 3]);
  } finally {
    subscription.close();
    scheduler.close();
  }
});

function localSubscription(
  scheduler: Scheduler,
  queue: string,
  capacity: number,
  handler: (data: unknown) => void | Promise<void>,
): LocalSubscription {
  return testSubscription(scheduler, { queue, capacity }, handler);
}
