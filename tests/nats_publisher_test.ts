/**
 * What a pool's NATS publisher hands the client (`src/nats/publisher.ts`),
 * against a stub connection: small JSON payloads share a slab with the
 * publisher's first line in place and the right mark, and what went out is
 * confirmed by a flush that no lone message waits for.
 */
import assert from "node:assert/strict";
import type { Msg } from "../src/nats/client.ts";
import type { NatsLink } from "../src/nats/connection.ts";
import { fromOf, readMessage } from "../src/nats/arrival.ts";
import { NatsPublisher } from "../src/nats/publisher.ts";
import { ReplySubjects } from "../src/nats/replies.ts";
import { Scheduler } from "../src/scheduler.ts";
import type { Logger } from "../src/logger.ts";

/** A publisher on a stub connection that records what it is given. */
function publisherOnStub(): {
  publisher: NatsPublisher;
  scheduler: Scheduler;
  published: Uint8Array[];
  flushes: () => number;
} {
  const published: Uint8Array[] = [];
  let flushes = 0;
  const connection = {
    info: { max_payload: 1024 * 1024 },
    publish(_subject: string, payload: Uint8Array): void {
      published.push(payload);
    },
    flush(): Promise<void> {
      flushes++;
      return Promise.resolve();
    },
  };
  const link = { up: true, connection } as unknown as NatsLink;
  const scheduler = new Scheduler();
  const quiet = (): void => {};
  const log = {
    debug: quiet,
    info: quiet,
    warn: quiet,
    error: quiet,
  } as unknown as Logger;
  const publisher = new NatsPublisher({
    link,
    pool: "web",
    exports: [],
    namespace: "mf",
    processId: "p1",
    replies: new ReplySubjects("mf", "p1", 0, 0),
    scheduler,
    log,
  });
  return { publisher, scheduler, published, flushes: () => flushes };
}

function send(
  publisher: NatsPublisher,
  data: unknown,
  handled: "none" | "plain" | "all",
): void {
  const encoded = publisher.encode({
    queue: "q://orders",
    data,
    service: "Api",
    publishedAt: 0,
    size: 0,
  });
  assert.equal(publisher.send(encoded, handled), undefined);
}

/** The publisher and data a subscriber reads from `payload`. */
function read(payload: Uint8Array): { handled?: string; data: unknown } {
  const msg = { data: payload, headers: undefined } as unknown as Msg;
  const { from, payload: rest } = fromOf(msg);
  return { handled: from?.handled, data: readMessage(msg, rest).data };
}

Deno.test("NatsPublisher writes small JSON payloads into one buffer, each with the publisher's line and its own mark", async () => {
  const { publisher, scheduler, published } = publisherOnStub();
  try {
    send(publisher, { id: 1, text: "é" }, "none");
    send(publisher, { id: 2 }, "plain");
    send(publisher, [3], "all");
    await scheduler.yield();
    assert.equal(published.length, 3);
    assert.deepEqual(published.map(read), [
      { handled: "none", data: { id: 1, text: "é" } },
      { handled: "plain", data: { id: 2 } },
      { handled: "all", data: [3] },
    ]);
    // One buffer for the three, not two per message.
    assert.equal(new Set(published.map((p) => p.buffer)).size, 1);
  } finally {
    publisher.abandon();
    scheduler.close();
  }
});

Deno.test("NatsPublisher sends a lone message without a flush of its own; the flush goes once the pool waits for it", async () => {
  const { publisher, scheduler, published, flushes } = publisherOnStub();
  try {
    send(publisher, { id: 1 }, "none");
    // The turn's task has run (it is ordered before this yield).
    await scheduler.yield();
    assert.equal(published.length, 1);
    assert.equal(flushes(), 0);
    // A drain asks whether NATS is busy: the confirming flush goes now.
    assert.equal(publisher.busy(), true);
    assert.equal(flushes(), 1);
    await Promise.resolve();
    assert.equal(publisher.busy(), false);
  } finally {
    publisher.abandon();
    scheduler.close();
  }
});
