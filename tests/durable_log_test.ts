/**
 * Unit tests of the durable queues' local log: records and checksums,
 * segments, group commit, consumer positions, compaction and dedupe.
 */
import assert from "node:assert/strict";
import { serialize } from "node:v8";
import { frame, scan } from "../src/durable/record.ts";
import { StreamLog } from "../src/durable/stream_log.ts";
import { AckFile, type AckState } from "../src/durable/ack_file.ts";
import { consumerName, Stream } from "../src/durable/stream.ts";
import { LocalBroker } from "../src/durable/broker.ts";
import { LocalCarrier } from "../src/durable/carrier.ts";
import { unpackRecords } from "../src/durable/packed_records.ts";
import type {
  BrokerToPool,
  ConsumerMember,
  DeliveredMessage,
  EncodedMessage,
  OutgoingMessage,
  PoolToBroker,
} from "../src/durable/protocol.ts";
import { decodeMessage, encodeOutgoing } from "../src/durable/message.ts";
import { quietLog } from "./_quiet_log.ts";

function outgoing(data: unknown, queue = "q://jobs/a"): OutgoingMessage {
  return { queue, pool: "p", service: "S", publishedAt: 1, data };
}

/** A message as its pool encodes it for the broker. */
function message(
  data: unknown,
  queue = "q://jobs/a",
  id?: string,
): EncodedMessage {
  return encodeOutgoing({ ...outgoing(data, queue), id });
}

/** A record body, for the log itself. */
function body(data: unknown): Uint8Array {
  return message(data).body;
}

/** The data of read records. */
function dataOf(records: Array<{ body: Uint8Array }>): unknown[] {
  return records.map((r) => decodeMessage(r.body).data);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "durable_log_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const OPTIONS = { segmentBytes: 1 << 20, recentWindow: 60_000 };

Deno.test("scan() stops at a cut header, a cut body and a wrong checksum", () => {
  const one = frame(new Uint8Array([1, 2, 3]));
  const two = frame(new Uint8Array([4, 5]));
  const both = new Uint8Array([...one, ...two]);
  assert.equal(scan(both).records.length, 2);
  assert.equal(scan(both).torn, undefined);
  const header = scan(both.subarray(0, one.length + 5));
  assert.deepEqual([header.records.length, header.end], [1, one.length]);
  assert.match(header.torn!, /header is cut short/);
  const body = scan(both.subarray(0, both.length - 1));
  assert.match(body.torn!, /body is cut short/);
  const corrupt = both.slice();
  corrupt[corrupt.length - 1] = corrupt.at(-1)! ^ 0xff;
  const wrong = scan(corrupt);
  assert.deepEqual([wrong.records.length, wrong.end], [1, one.length]);
  assert.match(wrong.torn!, /checksum is wrong/);
});

Deno.test("StreamLog stores, reads back after a reopen and rolls segments", async () => {
  await withDir(async (dir) => {
    const log = await StreamLog.open(dir, { ...OPTIONS, segmentBytes: 300 });
    for (let i = 0; i < 20; i++) await log.append([body({ i })], Date.now());
    assert.ok(log.segmentCount > 3, `${log.segmentCount} segments`);
    await log.close();
    const again = await StreamLog.open(dir, { ...OPTIONS, segmentBytes: 300 });
    assert.deepEqual(again.cut, []);
    assert.equal(again.nextSeq, 21);
    const read = await again.read(1, 100);
    assert.deepEqual(dataOf(read), [...Array(20)].map((_, i) => ({ i })));
    assert.deepEqual(
      read.map((m) => m.seq),
      [...Array(20)].map((_, i) => i + 1),
    );
    assert.deepEqual((await again.read(7, 3)).map((m) => m.seq), [7, 8, 9]);
    await again.close();
  });
});

Deno.test("StreamLog syncs concurrent appends together", async () => {
  await withDir(async (dir) => {
    const log = await StreamLog.open(dir, OPTIONS);
    await Promise.all(
      [...Array(100)].map((_, i) => log.append([body(i)], Date.now())),
    );
    // The appends of one turn share one write and sync.
    assert.equal(log.syncs, 1);
    // Those made while a sync runs share the next one.
    const first = log.append([body("a")], Date.now());
    await Promise.resolve(); // The sync of "a" alone has begun.
    await Promise.all([...Array(10)].map(() => log.append([body("b")], 0)));
    await first;
    assert.equal(log.syncs, 3);
    await log.close();
  });
});

Deno.test("StreamLog cuts a torn last record when it opens, and reports it", async () => {
  await withDir(async (dir) => {
    const log = await StreamLog.open(dir, OPTIONS);
    for (let i = 0; i < 5; i++) await log.append([body(`m${i}`)], Date.now());
    await log.close();
    const [file] = [...Deno.readDirSync(dir)].filter((e) =>
      e.name.endsWith(".seg")
    );
    const path = `${dir}/${file!.name}`;
    const size = Deno.statSync(path).size;
    Deno.truncateSync(path, size - 3);
    const again = await StreamLog.open(dir, OPTIONS);
    assert.equal(again.cut.length, 1);
    assert.equal(again.cut[0]!.file, path);
    assert.match(again.cut[0]!.reason, /cut short/);
    assert.deepEqual(dataOf(await again.read(1, 10)), [
      "m0",
      "m1",
      "m2",
      "m3",
    ]);
    // The next append takes the place of the cut record.
    await again.append([body("m4 again")], Date.now());
    assert.deepEqual(dataOf(await again.read(5, 1)), ["m4 again"]);
    await again.close();
    const third = await StreamLog.open(dir, OPTIONS);
    assert.deepEqual(third.cut, []);
    assert.equal(third.nextSeq, 6);
    await third.close();
  });
});

Deno.test("AckFile keeps the last whole state; a torn save falls back to the one before", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/c.ack`;
    const file = await AckFile.open(path);
    const before: AckState = {
      floor: 3,
      acked: [],
      delivered: 3,
      attempts: [],
    };
    const last: AckState = {
      floor: 4,
      acked: [6, 9],
      delivered: 11,
      attempts: [[5, 2], [7, 3]],
    };
    await file.save(before);
    await file.save(last);
    await file.close();
    assert.deepEqual((await reopen(path)).loaded, last);
    Deno.truncateSync(path, Deno.statSync(path).size - 1);
    assert.deepEqual((await reopen(path)).loaded, before);
  });
});

Deno.test("AckFile reads a record of the first version ([floor, ...acked]) as nothing delivered", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/c.ack`;
    await Deno.writeFile(
      path,
      frame(new Uint8Array(new Float64Array([4, 6, 9]).buffer)),
    );
    assert.deepEqual((await reopen(path)).loaded, {
      floor: 4,
      acked: [6, 9],
      delivered: 4,
      attempts: [],
    });
  });
});

async function reopen(path: string): Promise<AckFile> {
  const file = await AckFile.open(path);
  await file.close();
  return file;
}

/** A stream whose deliveries are recorded. */
async function openStream(
  dir: string,
  options: { segmentBytes?: number; dedupeWindow?: number } = {},
): Promise<
  {
    stream: Stream;
    delivered: DeliveredMessage[];
    next(n: number): Promise<void>;
  }
> {
  const delivered: DeliveredMessage[] = [];
  const waiters: Array<() => void> = [];
  const stream = await Stream.open("q://jobs/>", {
    directory: dir,
    segmentBytes: options.segmentBytes ?? 1 << 20,
    dedupeWindow: options.dedupeWindow ?? 60_000,
    deliver: (_member, pattern, records) => {
      for (const { seq, attempt, body } of records) {
        const stored = decodeMessage(body);
        delivered.push({ ...stored, stream: pattern, seq, attempt });
      }
      for (const wake of waiters.splice(0)) wake();
    },
    failed: (error) => {
      throw error;
    },
  });
  const next = async (n: number): Promise<void> => {
    while (delivered.length < n) {
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.push(resolve);
      await promise;
    }
  };
  return { stream, delivered, next };
}

const MEMBER: ConsumerMember = {
  subscription: "0.1.0",
  pool: 0,
  service: "Worker",
  queue: "q://jobs/>",
  group: "g",
  capacity: 4,
};

Deno.test("A consumer delivers at most capacity unsettled, and resumes after its last settlement", async () => {
  await withDir(async (dir) => {
    const first = await openStream(dir);
    for (let i = 1; i <= 10; i++) {
      await first.stream.publish(message(i));
    }
    const name = consumerName(MEMBER.queue, MEMBER.group, MEMBER.service);
    const consumer = await first.stream.consumer(name, MEMBER.queue);
    consumer.join(MEMBER);
    await first.next(4);
    assert.deepEqual(first.delivered.map((m) => m.data), [1, 2, 3, 4]);
    consumer.settle(MEMBER.subscription, [
      { seq: 1, outcome: "ack" },
      { seq: 3, outcome: "ack" },
    ]);
    await first.next(6);
    assert.deepEqual(first.delivered.map((m) => m.data), [1, 2, 3, 4, 5, 6]);
    assert.equal(consumer.floor, 2);
    await first.stream.close();

    // Reopened: 2, 4, 5, 6 were never settled; 3 was.
    const second = await openStream(dir);
    const again = await second.stream.consumer(name, MEMBER.queue);
    assert.equal(again.pending, 10 - 2);
    again.join(MEMBER);
    await second.next(4);
    assert.deepEqual(second.delivered.map((m) => m.data), [2, 4, 5, 6]);
    // Each was delivered once before the reopen.
    assert.deepEqual(second.delivered.map((m) => m.attempt), [2, 2, 2, 2]);
    await second.stream.close();
  });
});

Deno.test("A consumer reopened goes on counting attempts: a message delivered 3 times comes back as attempt 4, one never delivered as 1", async () => {
  await withDir(async (dir) => {
    const first = await openStream(dir);
    await first.stream.publish(message("x"));
    const consumer = await first.stream.consumer("c", "q://jobs/>");
    consumer.join({ ...MEMBER, capacity: 1 });
    for (let n = 1; n <= 3; n++) {
      await first.next(n);
      if (n < 3) {
        consumer.settle(MEMBER.subscription, [{
          seq: 1,
          outcome: "retry",
          delay: 0,
        }]);
      }
    }
    await first.stream.publish(message("y"));
    await first.stream.close();

    const second = await openStream(dir);
    const again = await second.stream.consumer("c", "q://jobs/>");
    again.join(MEMBER);
    await second.next(2);
    assert.deepEqual(second.delivered.map((m) => [m.data, m.attempt]), [
      ["x", 4],
      ["y", 1],
    ]);
    await second.stream.close();
  });
});

Deno.test("A consumer redelivers a retried message with the next attempt, and a departed member's at once", async () => {
  await withDir(async (dir) => {
    const { stream, delivered, next } = await openStream(dir);
    await stream.publish(message("x"));
    const consumer = await stream.consumer("c", "q://jobs/>");
    consumer.join(MEMBER);
    await next(1);
    consumer.settle(MEMBER.subscription, [{
      seq: 1,
      outcome: "retry",
      delay: 0,
    }]);
    await next(2);
    assert.deepEqual(delivered.map((m) => m.attempt), [1, 2]);
    consumer.leave(() => true);
    consumer.join({ ...MEMBER, subscription: "1.1.0", pool: 1 });
    await next(3);
    assert.deepEqual(delivered.map((m) => [m.seq, m.attempt]), [
      [1, 1],
      [1, 2],
      [1, 3],
    ]);
    assert.equal(consumer.counts.redelivered, 2);
    consumer.settle("1.1.0", [{ seq: 1, outcome: "dead-lettered" }]);
    assert.equal(consumer.counts.deadLettered, 1);
    assert.equal(consumer.pending, 0);
    await stream.close();
  });
});

Deno.test("A consumer of a narrower pattern skips the stream's other queues", async () => {
  await withDir(async (dir) => {
    const { stream, delivered, next } = await openStream(dir);
    await stream.publish(message("a1", "q://jobs/a"));
    await stream.publish(message("b1", "q://jobs/b"));
    await stream.publish(message("a2", "q://jobs/a"));
    const consumer = await stream.consumer("only-a", "q://jobs/a");
    consumer.join({ ...MEMBER, queue: "q://jobs/a" });
    await next(2);
    assert.deepEqual(delivered.map((m) => m.data), ["a1", "a2"]);
    await stream.close();
  });
});

Deno.test("Segments are removed once every consumer is past them, not before", async () => {
  await withDir(async (dir) => {
    const { stream, delivered, next } = await openStream(dir, {
      segmentBytes: 200,
    });
    for (let i = 0; i < 12; i++) await stream.publish(message(i));
    const segments = stream.log.segmentCount;
    assert.ok(segments >= 4, `${segments} segments`);
    const fast = await stream.consumer("fast", "q://jobs/>");
    await stream.consumer("slow", "q://jobs/>");
    fast.join({ ...MEMBER, capacity: 100 });
    await next(12);
    fast.settle(
      MEMBER.subscription,
      delivered.map((m) => ({ seq: m.seq, outcome: "ack" as const })),
    );
    await stream.close();
    // The slow consumer (down) holds every segment.
    assert.equal(segmentFiles(dir).length, segments);

    const again = await openStream(dir, { segmentBytes: 200 });
    const slow = await again.stream.consumer("slow", "q://jobs/>");
    slow.join({ ...MEMBER, capacity: 100 });
    await again.next(12);
    slow.settle(
      MEMBER.subscription,
      again.delivered.map((m) => ({ seq: m.seq, outcome: "ack" as const })),
    );
    await again.stream.close();
    // Only the segment being written stays.
    assert.equal(segmentFiles(dir).length, 1);
  });
});

function segmentFiles(dir: string): string[] {
  const stream = [...Deno.readDirSync(dir)].find((e) => e.isDirectory)!.name;
  return [...Deno.readDirSync(`${dir}/${stream}`)].map((e) => e.name).filter((
    n,
  ) => n.endsWith(".seg"));
}

Deno.test("A publish id seen within the dedupe window is stored once, also after a reopen", async () => {
  await withDir(async (dir) => {
    const first = await openStream(dir);
    await Promise.all([
      first.stream.publish(message("one", "q://jobs/a", "order-1")),
      first.stream.publish(message("one again", "q://jobs/a", "order-1")),
    ]);
    await first.stream.publish(message("two", "q://jobs/a", "order-2"));
    assert.equal(first.stream.log.nextSeq, 3);
    assert.equal(first.stream.duplicates, 1);
    await first.stream.close();
    const second = await openStream(dir);
    await second.stream.publish(message("one, later", "q://jobs/a", "order-1"));
    assert.equal(second.stream.log.nextSeq, 3);
    await second.stream.close();
    const none = await openStream(dir, { dedupeWindow: 0 });
    await none.stream.publish(
      message("one, no window", "q://jobs/a", "order-1"),
    );
    assert.equal(none.stream.log.nextSeq, 4);
    await none.stream.close();
  });
});

Deno.test("A pool and the broker exchange one message per turn: concurrent publishes go together and are answered together, settlements of several subscriptions go together", async () => {
  await withDir(async (dir) => {
    const toBroker: PoolToBroker[] = [];
    const toPool: BrokerToPool[] = [];
    const broker = await LocalBroker.open(
      {
        streams: ["q://jobs/>"],
        groupOnly: [],
        directory: dir,
        maxDeliver: 3,
        backoff: [1],
        dedupeWindow: 60_000,
        ackWait: 30_000,
        segmentBytes: 1 << 20,
      },
      (_pool, message) => {
        toPool.push(structuredClone(message));
        carrier.receive(structuredClone(message));
      },
      quietLog,
    );
    const carrier = new LocalCarrier((message) => {
      toBroker.push(structuredClone(message));
      broker.receive(0, structuredClone(message));
    });
    const publishes = 64;
    await Promise.all(
      Array.from({ length: publishes }, (_, i) =>
        carrier.publish({
          queue: "q://jobs/a",
          pool: "p",
          service: "S",
          publishedAt: 1,
          data: i,
        })),
    );
    assert.equal(toBroker.length, 1, `${publishes} publishes`);
    // One append, one fdatasync, one answer.
    assert.equal(toPool.length, 1, `${publishes} answers`);

    const delivered = new Map<string, DeliveredMessage[]>();
    const arrived = Promise.withResolvers<void>();
    for (const subscription of ["s1", "s2"]) {
      delivered.set(subscription, []);
      await carrier.consume(
        { ...MEMBER, subscription, capacity: 4 },
        (messages) => {
          delivered.get(subscription)?.push(...messages);
          const all = [...delivered.values()].flat();
          if (all.length >= 8) arrived.resolve();
        },
      );
    }
    await arrived.promise;
    const before = toBroker.length;
    for (const [subscription, [first]] of delivered) {
      assert.ok(first !== undefined);
      carrier.settle(subscription, [{ seq: first.seq, outcome: "ack" }]);
    }
    await Promise.resolve();
    assert.equal(toBroker.length - before, 1);
    await carrier.close();
    await broker.close();
  });
});

/** A broker on `dir` whose messages to pool 0 go to `carrier`. */
function brokerFor(
  dir: string,
  toPool: (message: BrokerToPool) => void,
): Promise<LocalBroker> {
  return LocalBroker.open(
    {
      streams: ["q://jobs/>"],
      groupOnly: [],
      directory: dir,
      maxDeliver: 3,
      backoff: [1],
      dedupeWindow: 60_000,
      ackWait: 30_000,
      segmentBytes: 1 << 20,
    },
    (_pool, message) => toPool(structuredClone(message)),
    quietLog,
  );
}

Deno.test("The broker stores and delivers a pool's bytes as they are: the main thread never decodes the data", async () => {
  await withDir(async (dir) => {
    const delivered: Array<{ seq: number; body: Uint8Array }> = [];
    const arrived = Promise.withResolvers<void>();
    const broker = await brokerFor(dir, (message) => {
      const all = message.op === "batch" ? message.messages : [message];
      for (const each of all) {
        if (each.op === "deliver") {
          delivered.push(...unpackRecords(each.records));
        }
      }
      if (delivered.length > 0) arrived.resolve();
    });
    const { queue, body } = message("x");
    // Past the queue and id, bytes V8's deserializer refuses.
    const opaque = body.slice(0, body.length - 3);
    opaque.set([0xfe, 0xfe, 0xfe], opaque.length - 3);
    broker.receive(0, {
      op: "publish",
      request: 1,
      message: { queue, body: opaque },
    });
    broker.receive(0, {
      op: "subscribe",
      request: 2,
      member: MEMBER,
    });
    await arrived.promise;
    assert.equal(delivered[0]!.seq, 1);
    assert.deepEqual(
      delivered[0]!.body.subarray(17),
      opaque.subarray(17),
    );
    assert.throws(() => decodeMessage(delivered[0]!.body));
    broker.stopDelivering();
    await broker.close();
  });
});

Deno.test("A record of the first format (the whole message through V8's serializer) still reads, and its id still deduplicates", async () => {
  await withDir(async (dir) => {
    const stream = `${dir}/${encodeURIComponent("q://jobs/>")}`;
    await Deno.mkdir(stream);
    const old = {
      seq: 1,
      queue: "q://jobs/a",
      pool: "p",
      service: "S",
      publishedAt: 1,
      storedAt: Date.now(),
      id: "order-1",
      data: new Map([["k", 1]]),
    };
    await Deno.writeFile(
      `${stream}/00000000000000000001.seg`,
      frame(serialize(old)),
    );
    const { stream: opened, delivered, next } = await openStream(dir);
    await opened.publish(message("again", "q://jobs/a", "order-1"));
    assert.equal(opened.duplicates, 1);
    await opened.publish(message("new"));
    const consumer = await opened.consumer("only-a", "q://jobs/a");
    consumer.join({ ...MEMBER, queue: "q://jobs/a" });
    await next(2);
    assert.deepEqual(
      delivered.map((m) => [m.seq, m.queue, m.data]),
      [[1, "q://jobs/a", new Map([["k", 1]])], [2, "q://jobs/a", "new"]],
    );
    await opened.close();
  });
});

Deno.test("LocalCarrier sends the settlements of handlers run one after another in one message, on its deferred turn", async () => {
  const posted: PoolToBroker[] = [];
  const deferred: Array<() => void> = [];
  const carrier = new LocalCarrier(
    (message) => posted.push(message),
    (task) => deferred.push(task),
  );
  // Three handlers, each settling at the end of its own chain of microtasks.
  for (let seq = 1; seq <= 3; seq++) {
    await Promise.resolve();
    carrier.settle("s1", [{ seq, outcome: "ack" }]);
  }
  assert.equal(posted.length, 0);
  assert.equal(deferred.length, 1);
  deferred[0]!();
  assert.deepEqual(posted, [{
    op: "settle",
    subscription: "s1",
    settlements: [1, 2, 3].map((seq) => ({ seq, outcome: "ack" })),
  }]);
  await carrier.close();
});
