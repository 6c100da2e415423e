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
import { quietLog } from "./_quiet_log.ts";

/** A scheduler that counts the end-of-turn tasks it is given. */
class CountingScheduler extends Scheduler {
  deferred = 0;
  override defer(task: () => void): void {
    this.deferred++;
    super.defer(task);
  }
}

/**
 * A publisher on a stub connection that records what it is given; `clock`
 * is its time in ms (it spaces lone messages).
 */
function publisherOnStub(clock = { now: 0 }): {
  publisher: NatsPublisher;
  scheduler: CountingScheduler;
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
  const scheduler = new CountingScheduler();
  const publisher = new NatsPublisher({
    link,
    pool: "web",
    exports: [],
    namespace: "mf",
    processId: "p1",
    replies: new ReplySubjects("mf", "p1", 0, 0),
    scheduler,
    log: quietLog,
    now: () => clock.now,
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

Deno.test("NatsPublisher sends a lone message at once with no turn of its own; the next one close behind waits for the turn's write", async () => {
  const clock = { now: 1000 };
  const { publisher, scheduler, published } = publisherOnStub(clock);
  try {
    send(publisher, { id: 1 }, "none");
    assert.equal(published.length, 1);
    assert.equal(scheduler.deferred, 0);
    // Close behind (a publishing loop): they go together at the turn's end.
    send(publisher, { id: 2 }, "none");
    send(publisher, { id: 3 }, "none");
    assert.equal(published.length, 1);
    assert.equal(scheduler.deferred, 1);
    await scheduler.yield();
    assert.deepEqual(published.map((p) => read(p).data), [
      { id: 1 },
      { id: 2 },
      { id: 3 },
    ]);
    // Later, alone again: at once, still no turn of its own.
    clock.now += 1;
    send(publisher, { id: 4 }, "none");
    assert.equal(published.length, 4);
    assert.equal(scheduler.deferred, 1);
    // What went out alone is still confirmed when the pool waits for it.
    assert.equal(publisher.busy(), true);
    await Promise.resolve();
    assert.equal(publisher.busy(), false);
  } finally {
    publisher.abandon();
    scheduler.close();
  }
});

/**
 * A publisher on a stub link whose state the test sets, recording in order
 * what the connection is given: `publish <id>` and `flush`.
 */
function publisherOnLink(up: boolean): {
  publisher: NatsPublisher;
  scheduler: Scheduler;
  events: string[];
  connect: () => void;
  disconnect: () => void;
} {
  const events: string[] = [];
  const connection = {
    info: { max_payload: 1024 * 1024 },
    publish(_subject: string, payload: Uint8Array): void {
      const { data } = read(payload) as { data: { id: number } };
      events.push(`publish ${data.id}`);
    },
    flush(): Promise<void> {
      events.push("flush");
      return Promise.resolve();
    },
  };
  let waiters: Array<() => void> = [];
  const link = {
    up,
    connection,
    whenUp(): Promise<void> {
      if (link.up) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    async flush(): Promise<boolean> {
      await connection.flush();
      return true;
    },
  };
  const scheduler = new Scheduler();
  const publisher = new NatsPublisher({
    link: link as unknown as NatsLink,
    pool: "web",
    exports: [],
    namespace: "mf",
    processId: "p1",
    replies: new ReplySubjects("mf", "p1", 0, 0),
    scheduler,
    log: quietLog,
  });
  return {
    publisher,
    scheduler,
    events,
    // As the carrier does on the link's `up` event.
    connect: () => {
      link.up = true;
      publisher.up();
      const woken = waiters;
      waiters = [];
      for (const resolve of woken) resolve();
    },
    // As the carrier does on the link's `down` event.
    disconnect: () => {
      link.up = false;
      publisher.down();
    },
  };
}

/**
 * What `settle` may call confirmed: each message handed to the connection
 * before a flush. The rest must still be reported by `abandon`.
 */
function confirmedBeforeFlush(events: readonly string[]): number {
  const lastFlush = events.lastIndexOf("flush");
  return events.slice(0, lastFlush).filter((e) => e.startsWith("publish"))
    .length;
}

Deno.test("NatsPublisher.settle confirms a message queued during a disconnect only once it was written before the flush", async () => {
  const { publisher, scheduler, events, connect, disconnect } = publisherOnLink(
    false,
  );
  try {
    send(publisher, { id: 1 }, "none");
    const settled = publisher.settle(Date.now() + 60_000);
    connect();
    await settled;
    // The connection is lost again before the pool's next turn.
    disconnect();
    const unsent = publisher.abandon();
    const reported = unsent.reduce((sum, { count }) => sum + count, 0);
    // Each message reached the server before a flush, or is reported.
    assert.equal(confirmedBeforeFlush(events) + reported, 1, events.join());
  } finally {
    publisher.abandon();
    await scheduler.yield();
    scheduler.close();
  }
});

Deno.test("NatsPublisher.settle confirms a turn's later messages only once they were written before the flush", async () => {
  const { publisher, scheduler, events, disconnect } = publisherOnLink(true);
  try {
    // The first goes at once, the second waits for the turn's write.
    send(publisher, { id: 1 }, "none");
    send(publisher, { id: 2 }, "none");
    await publisher.settle(Date.now() + 60_000);
    disconnect();
    const unsent = publisher.abandon();
    const reported = unsent.reduce((sum, { count }) => sum + count, 0);
    assert.equal(confirmedBeforeFlush(events) + reported, 2, events.join());
    // The turn's write finds nothing left to write (and does not throw).
    await scheduler.yield();
    assert.deepEqual(events.filter((e) => e.startsWith("publish")), [
      "publish 1",
      "publish 2",
    ]);
  } finally {
    publisher.abandon();
    scheduler.close();
  }
});
