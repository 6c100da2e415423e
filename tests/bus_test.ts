/**
 * The bus between services and pools: fan-out, order, unsubscribe,
 * wildcards, groups, request/reply, checks at the call, topology, isolation
 * of payloads, envelopes, concurrency and stuck subscribers.
 *
 * Each test runs its pools in this thread with `startServices` (real buses,
 * a real transport between the pools, on both transports where it matters)
 * and reads what the services saw straight from them: a `Counter` keeps a
 * `Tally` per subscription (counted by the `Tallier` of the load test's
 * fixture), a `Publisher` resolves `done` once it sent its plan. What needs
 * a thread of its own (a blocked event loop, a worker's death, a million
 * messages) is in `transport_test.ts`, `supervision_test.ts` and
 * `bus_load_test.ts`.
 */
import assert from "node:assert/strict";
import {
  type LogRecord,
  type MessageMeta,
  type PublishOptions,
  Service,
  type ServiceContext,
  type Subscription,
} from "../mod.ts";
import { startServices, type TestBed } from "@magic/foundation/testing";
import { testEachTransport } from "./_helpers.ts";
import { type Message, Tallier } from "./fixtures/bus_scenarios.ts";
import type { Tally } from "./fixtures/scenario.ts";
import { mismatch, mutate, valueKinds } from "./fixtures/value_kinds.ts";

/** One subscription of a `Counter`. */
interface Sub {
  queue: string;
  group?: string;
  bufferSize?: number;
  concurrency?: number;
}

/** What a `Counter`'s `onMessage` gets besides counting. */
interface Delivery {
  ctx: ServiceContext;
  data: unknown;
  meta: MessageMeta;
  /** The message's number on this subscription, from 1. */
  count: number;
  sub: Sub;
  subscription: Subscription;
  handler: (data: unknown, meta: MessageMeta) => Promise<void>;
}

/**
 * Subscribes to each of `subs` in `initialize()` and keeps a `Tally` of
 * each; `onMessage` is what it does with a message besides counting it.
 */
class Counter extends Service {
  readonly talliers: Tallier[] = [];
  #waiters: Array<{ count: number; resolve: () => void }> = [];
  constructor(
    name: string,
    readonly subs: Sub[],
    readonly onMessage?: (delivery: Delivery) => unknown,
  ) {
    super(name);
  }

  override async initialize(ctx: ServiceContext): Promise<void> {
    for (const sub of this.subs) await this.subscribe(ctx, sub);
  }

  /** The tallies of its subscriptions, in order. */
  get tallies(): Tally[] {
    return this.talliers.map((tallier) => tallier.tally);
  }

  /** The tally of its one subscription. */
  get tally(): Tally {
    assert.equal(this.talliers.length, 1, `${this.name} has one subscription`);
    return this.talliers[0]!.tally;
  }

  /** Resolves once its first subscription has had `count` messages. */
  reached(count: number): Promise<void> {
    if ((this.talliers[0]?.tally.count ?? 0) >= count) {
      return Promise.resolve();
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ count, resolve });
    return promise;
  }

  async subscribe(ctx: ServiceContext, sub: Sub): Promise<void> {
    const tallier = new Tallier(sub.queue);
    this.talliers.push(tallier);
    const handler = async (data: unknown, meta: MessageMeta): Promise<void> => {
      const count = tallier.begin(data);
      try {
        await this.onMessage?.({
          ctx,
          data,
          meta,
          count,
          sub,
          subscription,
          handler,
        });
      } finally {
        tallier.end();
      }
      if (tallier !== this.talliers[0]) return;
      this.#waiters = this.#waiters.filter((waiter) => {
        if (count < waiter.count) return true;
        waiter.resolve();
        return false;
      });
    };
    const subscription = await ctx.subscribe(sub.queue, handler, {
      group: sub.group,
      bufferSize: sub.bufferSize,
      concurrency: sub.concurrency,
    });
  }
}

/**
 * Publishes, in order from `run()`, `count` messages on each queue of its
 * plan, calling `afterEach` once each `publish` resolved; `done` resolves
 * once all were sent. It may count `subs` of its own.
 */
class Publisher extends Counter {
  readonly #done = Promise.withResolvers<void>();
  /** Resolves once the whole plan was published. */
  readonly done: Promise<void> = this.#done.promise;
  readonly afterEach?: (ctx: ServiceContext, message: Message) => unknown;
  constructor(
    name: string,
    readonly plan: Array<[queue: string, count: number]>,
    { subs = [], afterEach }: {
      subs?: Sub[];
      afterEach?: (ctx: ServiceContext, message: Message) => unknown;
    } = {},
  ) {
    super(name, subs);
    this.afterEach = afterEach;
  }

  override async run(ctx: ServiceContext): Promise<void> {
    try {
      for (const [queue, count] of this.plan) {
        for (let index = 0; index < count; index++) {
          const message: Message = {
            publisher: `${ctx.pool}/${this.name}`,
            index,
          };
          await ctx.publish(queue, message);
          await this.afterEach?.(ctx, message);
        }
      }
      this.#done.resolve();
    } catch (error) {
      this.#done.reject(error);
      throw error;
    }
  }
}

/** Stops the bed (which delivers what is pending) and checks the run was clean. */
async function drain(bed: TestBed): Promise<void> {
  const report = await bed.stop();
  assert.deepEqual(report.failures, []);
  assert.deepEqual(report.errors.map((e) => e.message), []);
  assert.deepEqual(report.undelivered, []);
}

Deno.test("publish fans out to every subscription in one pool, the publisher's own included", async () => {
  const pub = new Publisher("Pub", [["q://fan", 100]], {
    subs: [{ queue: "q://fan" }],
  });
  const subA = new Counter("SubA", [{ queue: "q://fan" }, {
    queue: "q://fan",
  }]);
  const subB = new Counter("SubB", [{ queue: "q://other" }]);
  const bed = await startServices({ pools: { p: [pub, subA, subB] } });
  await pub.done;
  await drain(bed);
  assert.equal(pub.tally.count, 100);
  assert.deepEqual(subA.tallies.map((t) => t.count), [100, 100]);
  assert.equal(subB.tally.count, 0);
});

testEachTransport(
  "publish fans out across three pools, exactly once each, in order",
  async (transport) => {
    const pub = new Publisher("Pub", [["q://fan", 5000]]);
    const [a, b, c] = ["A", "B", "C"].map((name) =>
      new Counter(name, [{ queue: "q://fan" }])
    );
    const bed = await startServices({
      transport,
      pools: { a: [pub, a!], b: [b!], c: [c!] },
    });
    await pub.done;
    await drain(bed);
    for (const counter of [a!, b!, c!]) {
      const { count, duplicates, outOfOrder } = counter.tally;
      assert.deepEqual(
        { count, duplicates, outOfOrder },
        { count: 5000, duplicates: 0, outOfOrder: 0 },
        counter.name,
      );
    }
  },
);

testEachTransport(
  "every kind of value arrives as structuredClone copies it, in the publisher's pool and in another, whatever the publisher changes after",
  async (transport) => {
    // Every value 12 times (enough for the codec's compiled shapes), each
    // changed once `publish` resolved; checkers in the publisher's pool and
    // in another compare what they get with `structuredClone` of the value.
    const rounds = 12;
    const length = valueKinds().length;
    class Pub extends Service {
      override async run(ctx: ServiceContext): Promise<void> {
        for (let round = 0; round < rounds; round++) {
          for (const value of valueKinds()) {
            await ctx.publish("q://kinds", value);
            mutate(value);
          }
        }
      }
    }
    const checker = (name: string) => {
      const seen = { count: 0, mismatches: [] as string[] };
      const service = new Counter(
        name,
        [{ queue: "q://kinds" }],
        ({ data }) => {
          const wrong = mismatch(seen.count++ % length, data);
          if (wrong !== "") seen.mismatches.push(wrong);
        },
      );
      return { service, seen };
    };
    const local = checker("LocalChecker");
    const remote = checker("RemoteChecker");
    const bed = await startServices({
      transport,
      pools: { a: [new Pub("Pub"), local.service], b: [remote.service] },
    });
    await Promise.all([
      local.service.reached(rounds * length),
      remote.service.reached(rounds * length),
    ]);
    await drain(bed);
    for (const { service, seen } of [local, remote]) {
      assert.deepEqual(
        seen,
        { count: rounds * length, mismatches: [] },
        service.name,
      );
    }
  },
);

testEachTransport(
  "concurrent publishers in several pools: each one's messages arrive in order",
  async (transport) => {
    const publishers = ["P1", "P2", "P3"].map((name) =>
      new Publisher(name, [["q://order", 20_000]])
    );
    const local = new Counter("Local", [{ queue: "q://order" }]);
    const remote = new Counter("Remote", [
      { queue: "q://order", concurrency: 1 },
    ]);
    const bed = await startServices({
      transport,
      pools: {
        a: [publishers[0]!, publishers[1]!],
        b: [publishers[2]!, local],
        c: [remote],
      },
    });
    await Promise.all(publishers.map((p) => p.done));
    await drain(bed);
    for (const counter of [local, remote]) {
      const { count, publishers, outOfOrder, duplicates } = counter.tally;
      assert.deepEqual(
        { count, publishers, outOfOrder, duplicates },
        { count: 60_000, publishers: 3, outOfOrder: 0, duplicates: 0 },
        counter.name,
      );
    }
  },
);

testEachTransport(
  "unsubscribe stops delivery to that subscription only",
  async (transport) => {
    // Of 2000 messages, Quitter leaves after 10 (subscription.unsubscribe()),
    // CtxQuitter after 20 (ctx.unsubscribe()), Disposer after 30 (dispose).
    const left: string[] = [];
    const leaver = (
      name: string,
      after: number,
      leave: (delivery: Delivery) => unknown,
    ): Counter =>
      new Counter(name, [{ queue: "q://u" }], async (delivery) => {
        if (delivery.count !== after) return;
        await leave(delivery);
        left.push(name);
      });
    const pub = new Publisher("Pub", [["q://u", 2000]]);
    const quitter = leaver("Quitter", 10, (d) => d.subscription.unsubscribe());
    const ctxQuitter = leaver(
      "CtxQuitter",
      20,
      (d) => d.ctx.unsubscribe(d.sub.queue, d.handler),
    );
    const disposer = leaver(
      "Disposer",
      30,
      (d) => d.subscription[Symbol.dispose](),
    );
    const stayer = new Counter("Stayer", [{ queue: "q://u" }]);
    const bed = await startServices({
      transport,
      pools: { a: [pub], b: [quitter, ctxQuitter, disposer, stayer] },
    });
    await pub.done;
    await drain(bed);
    assert.deepEqual(left.sort(), ["CtxQuitter", "Disposer", "Quitter"]);
    assert.equal(quitter.tally.count, 10);
    assert.equal(ctxQuitter.tally.count, 20);
    assert.equal(disposer.tally.count, 30);
    assert.equal(stayer.tally.count, 2000);
  },
);

testEachTransport(
  "wildcard subscriptions receive matching queues across pools",
  async (transport) => {
    const pub = new Publisher("Pub", [
      ["q://orders/eu", 10],
      ["q://orders/eu/paid", 10],
      ["q://orders", 10],
    ]);
    const star = new Counter("Star", [{ queue: "q://orders/*" }]);
    const tail = new Counter("Tail", [{ queue: "q://orders/>" }]);
    const bed = await startServices({
      transport,
      pools: { a: [pub], b: [star, tail] },
    });
    await pub.done;
    await drain(bed);
    assert.equal(star.tally.count, 10);
    assert.equal(tail.tally.count, 20);
  },
);

testEachTransport(
  "a group delivers each message to exactly one member across pools",
  async (transport) => {
    const pub = new Publisher("Pub", [["q://jobs", 3000]]);
    const [m1, m2, m3] = ["M1", "M2", "M3"].map((name) =>
      new Counter(name, [{ queue: "q://jobs", group: "workers" }])
    );
    const everyone = new Counter("Everyone", [{ queue: "q://jobs" }]);
    const bed = await startServices({
      transport,
      pools: { a: [pub, m1!], b: [m2!], c: [m3!, everyone] },
    });
    await pub.done;
    await drain(bed);
    const counts = [m1!, m2!, m3!].map((m) => m.tally.count);
    assert.equal(counts.reduce((a, b) => a + b), 3000, `counts ${counts}`);
    for (const count of counts) {
      assert.ok(count > 0, `every member gets work: ${counts}`);
    }
    assert.equal(everyone.tally.count, 3000);
  },
);

testEachTransport(
  "a group loses nothing and duplicates nothing while members leave mid-stream",
  async (transport) => {
    // Leaver (slow: a 1 ms pause every 100) leaves after 500, Leaver2 after
    // 2000; Stayer takes the rest.
    const member = { queue: "q://jobs", group: "w" };
    const pub = new Publisher("Pub", [["q://jobs", 20_000]]);
    const leaver = new Counter("Leaver", [member], async (d) => {
      if (d.count === 500) await d.subscription.unsubscribe();
      if (d.count % 100 === 0) await d.ctx.sleep(1);
    });
    const stayer = new Counter("Stayer", [member]);
    const leaver2 = new Counter("Leaver2", [member], async (d) => {
      if (d.count === 2000) await d.subscription.unsubscribe();
    });
    const bed = await startServices({
      transport,
      pools: { a: [pub], b: [leaver], c: [stayer], d: [leaver2] },
    });
    await pub.done;
    await drain(bed);
    const tallies = [leaver, stayer, leaver2].map((c) => c.tally);
    assert.equal(leaver.tally.count, 500);
    assert.equal(leaver2.tally.count, 2000);
    assert.equal(
      tallies.reduce((sum, t) => sum + t.count, 0),
      20_000,
      JSON.stringify(tallies),
    );
    for (const t of tallies) assert.equal(t.duplicates, 0);
  },
);

testEachTransport(
  "a group loses nothing and duplicates nothing while members join mid-stream",
  async (transport) => {
    // 100,000 jobs for group `w`, announced on `q://progress` every 10,000;
    // Early is a member from the start, Late joins at 10,000, Later at 30,000.
    const member = { queue: "q://jobs", group: "w" };
    const joined: string[] = [];
    class LateMember extends Counter {
      constructor(name: string, readonly joinAt: number) {
        super(name, []);
      }
      override async initialize(ctx: ServiceContext): Promise<void> {
        await ctx.subscribe<number>("q://progress", async (sent) => {
          if (joined.includes(this.name) || sent < this.joinAt) return;
          joined.push(this.name);
          await this.subscribe(ctx, member);
        });
      }
    }
    const pub = new Publisher("Pub", [["q://jobs", 100_000]], {
      afterEach: async (ctx, { index }) => {
        if ((index + 1) % 10_000 === 0) {
          await ctx.publish("q://progress", index + 1);
        }
      },
    });
    const early = new Counter("Early", [member]);
    const late = new LateMember("Late", 10_000);
    const later = new LateMember("Later", 30_000);
    const bed = await startServices({
      transport,
      pools: { a: [pub], b: [early], c: [late], d: [later] },
    });
    await pub.done;
    await drain(bed);
    const all = [early, late, later].map((c) => c.tally);
    assert.equal(
      all.reduce((sum, t) => sum + t.count, 0),
      100_000,
      JSON.stringify(all),
    );
    for (const t of all) assert.equal(t.duplicates, 0);
    assert.deepEqual(joined.sort(), ["Late", "Later"]);
  },
);

testEachTransport(
  "request/reply works across pools and times out with TimeoutError",
  async (transport) => {
    class Adder extends Service {
      override async initialize(ctx: ServiceContext): Promise<void> {
        await ctx.subscribe<{ a: number; b: number }>(
          "q://math/add",
          ({ a, b }, meta) => ctx.publish(meta.replyTo!, a + b),
        );
        await ctx.subscribe("q://math/silent", () => {}); // never answers
      }
    }
    await using bed = await startServices({
      transport,
      pools: { b: [new Adder("Adder")] },
    });
    const sum = await bed.request<number>("q://math/add", { a: 1, b: 2 });
    assert.equal(sum, 3);
    await assert.rejects(
      bed.request("q://math/silent", { a: 1, b: 1 }, { timeout: 200 }),
      { name: "TimeoutError" },
    );
  },
);

testEachTransport(
  "bad input gets a typed error at the call; nothing is sent",
  async (transport) => {
    const listener = new Counter("Listener", [{ queue: "q://bad" }]);
    const bed = await startServices({ transport, pools: { b: [listener] } });
    const ctx = bed.context;
    const errorOf = async (call: () => Promise<unknown>): Promise<Error> => {
      try {
        await call();
      } catch (error) {
        return error as Error;
      }
      assert.fail(`no error from ${call}`);
    };
    const cloneErrors = [
      await errorOf(() => ctx.publish("q://bad", { f: () => 1 })),
      await errorOf(() => ctx.publish("q://bad", Symbol("s"))),
    ];
    assert.equal(cloneErrors[0]!.name, "DataCloneError");
    assert.match(cloneErrors[0]!.message, /^Cannot publish on "q:\/\/bad"/);
    assert.equal(cloneErrors[1]!.name, "DataCloneError");
    for (
      const call of [
        () => ctx.publish("", 1),
        () => ctx.publish("orders", 1), // no scheme
        () => ctx.publish("q://my queue", 1),
        () => ctx.publish("q://orders/*", 1),
        () => ctx.publish("q://orders/>", 1),
        () => ctx.subscribe("q://a/>/b", () => {}),
      ]
    ) {
      const error = await errorOf(call);
      assert.equal(error.name, "QueueNameError", String(call));
      assert.match(error.message, /^Invalid queue name/, String(call));
    }
    assert.equal(
      (await errorOf(() => ctx.request("q://nobody/home", 1))).name,
      "NoRespondersError",
    );
    await drain(bed);
    assert.equal(listener.tally.count, 0);
  },
);

testEachTransport(
  "topology() lists every pool's subscriptions",
  async (transport) => {
    await using bed = await startServices({
      transport,
      pools: {
        a: [new Counter("Asker", [{ queue: "q://x" }])],
        b: [new Counter("G", [{ queue: "q://jobs/*", group: "g" }])],
      },
    });
    // Asked from a service (the bed's own) in a pool of its own.
    const topology = await bed.context.topology();
    assert.equal(topology["q://x"]!["a"]![0]!.service, "Asker");
    assert.equal(topology["q://jobs/*"]!["b"]![0]!.group, "g");
  },
);

testEachTransport(
  "no subscriber sees the publisher's later changes or another subscriber's, in any pool",
  async (transport) => {
    // Pub changes each message once `publish` resolved; mutators change what
    // they get; readers in both pools keep what they see. Small buffers in
    // pool b: most messages wait there, some as copies, some as originals.
    const pub = new Publisher("Pub", [["q://iso", 20]], {
      afterEach: (_ctx, message) => {
        message.index = -999;
      },
    });
    const mutator = (name: string, sub: Sub): Counter =>
      new Counter(name, [sub], ({ data }) => {
        Object.assign(data as Message, { index: -1, mutated: true });
      });
    const seen: Record<string, Message[]> = {};
    const reader = (name: string, sub: Sub): Counter =>
      new Counter(name, [sub], ({ data }) => {
        (seen[name] ??= []).push({ ...(data as Message) });
      });
    const small = { queue: "q://iso", bufferSize: 3 };
    const bed = await startServices({
      transport,
      pools: {
        a: [
          pub,
          mutator("Mutator", { queue: "q://iso" }),
          reader("LocalReader", { queue: "q://iso" }),
        ],
        b: [
          mutator("RemoteMutator", small),
          reader("RemoteReader", small),
          mutator("RemoteMutator2", small),
        ],
      },
    });
    await pub.done;
    await drain(bed);
    for (const service of ["LocalReader", "RemoteReader"]) {
      assert.deepEqual(
        seen[service],
        Array.from({ length: 20 }, (_, index) => ({
          publisher: "a/Pub",
          index,
        })),
        service,
      );
    }
  },
);

testEachTransport(
  "each message keeps its own queue, headers and replyTo when many travel together",
  async (transport) => {
    // Message i goes to q://mixed/{i % 3}, with headers when i % 4 === 1
    // and a replyTo when i % 5 === 2.
    const count = 300;
    class Pub extends Service {
      override async run(ctx: ServiceContext): Promise<void> {
        for (let index = 0; index < count; index++) {
          const options: PublishOptions = {};
          if (index % 4 === 1) options.headers = { n: String(index) };
          if (index % 5 === 2) options.replyTo = `q://mixed/reply/${index}`;
          await ctx.publish(`q://mixed/${index % 3}`, { index }, options);
        }
      }
    }
    const seen: Record<string, Array<{ index: number; meta: MessageMeta }>> =
      {};
    const reader = (name: string): Counter =>
      new Counter(name, [{ queue: "q://mixed/>" }], ({ data, meta }) => {
        (seen[name] ??= []).push({ index: (data as Message).index, meta });
      });
    const local = reader("LocalReader");
    const remote = reader("RemoteReader");
    const bed = await startServices({
      transport,
      pools: { a: [new Pub("Pub"), local], b: [remote] },
    });
    await Promise.all([local.reached(count), remote.reached(count)]);
    await drain(bed);
    for (const service of ["LocalReader", "RemoteReader"]) {
      const echoes = seen[service]!;
      assert.deepEqual(
        echoes.map((e) => e.index),
        Array.from({ length: count }, (_, i) => i),
        service,
      );
      for (const { index, meta } of echoes) {
        const at = `${service} #${index}`;
        assert.equal(meta.queue, `q://mixed/${index % 3}`, at);
        assert.deepEqual(meta.from, { pool: "a", service: "Pub" }, at);
        assert.deepEqual(
          meta.headers,
          index % 4 === 1 ? { n: String(index) } : undefined,
          at,
        );
        assert.equal(
          meta.replyTo,
          index % 5 === 2 ? `q://mixed/reply/${index}` : undefined,
          at,
        );
      }
    }
  },
);

testEachTransport(
  "concurrency: n lets a subscription handle n messages at once; the default handles one",
  async (transport) => {
    // 40 messages, each handled in 5 ms.
    const pub = new Publisher("Pub", [["q://c", 40]]);
    const handle = ({ ctx }: Delivery) => ctx.sleep(5);
    const serial = new Counter("Serial", [{ queue: "q://c" }], handle);
    const parallel = new Counter(
      "Parallel",
      [{ queue: "q://c", concurrency: 4 }],
      handle,
    );
    const bed = await startServices({
      transport,
      pools: { a: [pub], b: [serial, parallel] },
    });
    await pub.done;
    await drain(bed);
    assert.equal(serial.tally.maxActive, 1);
    assert.equal(parallel.tally.maxActive, 4);
    assert.equal(parallel.tally.count, 40);
  },
);

testEachTransport(
  "a stuck subscriber is reported with its pool, queue and backlog; it holds up no other subscriber; a slow one is not reported",
  async (transport) => {
    // Sleeper takes its first message on q://stuck (buffer 10) and never
    // finishes it; Slow takes 40 ms a message on q://slow, sent after, in
    // the same batches or later ones: the stuck one must not hold them up.
    const logs: LogRecord[] = [];
    const stuckLine = Promise.withResolvers<LogRecord>();
    const pub = new Publisher("Pub", [["q://stuck", 50], ["q://slow", 20]]);
    const sleeper = new Counter(
      "Sleeper",
      [{ queue: "q://stuck", bufferSize: 10 }],
      () => new Promise(() => {}),
    );
    const slow = new Counter(
      "Slow",
      [{ queue: "q://slow" }],
      ({ ctx }) => ctx.sleep(40),
    );
    const bed = await startServices({
      transport,
      pools: { a: [pub], b: [sleeper, slow] },
      stuckThreshold: 200,
      terminateTimeout: 300,
      logSink: (record) => {
        logs.push(record);
        if (record.message.includes("is stuck")) stuckLine.resolve(record);
      },
    });
    const line = await stuckLine.promise;
    await slow.reached(20);
    await bed.stop();
    assert.equal(line.level, "warn");
    assert.equal(line.pool, "b");
    const stuck =
      /^Subscriber Sleeper on "q:\/\/stuck" is stuck: no message handled for over 200 ms while (\d+) wait in its buffer \(capacity 10\), (\d+) more from other pools behind it and 0 publishers of this pool$/
        .exec(line.message);
    assert.ok(stuck, line.message);
    // Of 50, one is in the handler and 49 wait. The report may catch the
    // buffer while a message moves into it from behind (9 + 40 instead of
    // 10 + 39, seen once in six runs of the old test on a loaded machine).
    const [buffered, behind] = [Number(stuck[1]), Number(stuck[2])];
    assert.equal(buffered + behind, 49, line.message);
    assert.ok(buffered >= 9 && buffered <= 10, line.message);
    assert.deepEqual(
      logs.filter((r) => r.message.includes("is stuck")).map((r) =>
        r.message.split(" on ")[0]
      ),
      ["Subscriber Sleeper"],
    );
  },
);

testEachTransport(
  "dumpQueueTree() logs queue → pool → subscriptions",
  async (transport) => {
    const tree = Promise.withResolvers<LogRecord>();
    await using bed = await startServices({
      transport,
      pools: {
        a: [new Counter("Dumper", [{ queue: "q://tree" }])],
        b: [new Counter("Other", [{ queue: "q://tree", group: "g" }])],
      },
      logLevel: "info",
      logSink: (record) => {
        if (record.message.startsWith("queue tree:")) tree.resolve(record);
      },
    });
    await bed.context.dumpQueueTree();
    const line = await tree.promise;
    assert.match(line.message, /q:\/\/tree\n {4}a\n {6}Dumper buffered=0/);
    assert.match(line.message, / {4}b\n {6}Other group=g buffered=0/);
  },
);
