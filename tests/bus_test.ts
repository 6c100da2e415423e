import assert from "node:assert/strict";
import type { RunOptions } from "../mod.ts";
import {
  pools,
  type ProgramConfig,
  type ServiceSpec,
} from "./fixtures/program.ts";
import { type Program, startProgram, testEachTransport } from "./_helpers.ts";

const fixture = new URL("./fixtures/program.ts", import.meta.url);

interface Stats {
  queue: string;
  group?: string;
  count: number;
  duplicates: number;
  outOfOrder: number;
  publishers: number;
  maxActive: number;
}
interface TerminateReport {
  service: string;
  phase?: string;
  pool?: string;
  stats?: Stats[];
}

function start(config: ProgramConfig, options: RunOptions = {}): Program {
  return startProgram(fixture, pools(config), config, options);
}

/** Runs until every publisher reported, stops (which drains), returns each service's stats. */
async function runToCompletion(
  config: ProgramConfig,
  publishers: number,
  options: RunOptions = {},
): Promise<{ program: Program; stats: Map<string, Stats[]> }> {
  const program = start(config, options);
  await program.waitForReports(
    publishers,
    (r: { published?: number }) => r.published !== undefined,
    120_000,
  );
  const report = await program.stop();
  assert.deepEqual(report.failures, []);
  const stats = new Map<string, Stats[]>();
  for (const r of program.reports<TerminateReport>()) {
    if (r.phase === "terminate") stats.set(r.service, r.stats ?? []);
  }
  return { program, stats };
}

Deno.test("publish fans out to every subscription in one pool, the publisher's own included", async () => {
  const config: ProgramConfig = {
    pools: {
      p: [
        {
          name: "Pub",
          publish: [{ queue: "q://fan", count: 100 }],
          subscribe: [{ queue: "q://fan" }],
        },
        {
          name: "SubA",
          subscribe: [{ queue: "q://fan" }, { queue: "q://fan" }],
        },
        { name: "SubB", subscribe: [{ queue: "q://other" }] },
      ],
    },
  };
  const { stats } = await runToCompletion(config, 1);
  assert.equal(stats.get("Pub")![0]!.count, 100);
  assert.deepEqual(stats.get("SubA")!.map((s) => s.count), [100, 100]);
  assert.equal(stats.get("SubB")![0]!.count, 0);
});

testEachTransport(
  "publish fans out across three pools, exactly once each, in order",
  async () => {
    const sub = (name: string): ServiceSpec => ({
      name,
      subscribe: [{ queue: "q://fan" }],
    });
    const config: ProgramConfig = {
      pools: {
        a: [
          { name: "Pub", publish: [{ queue: "q://fan", count: 5000 }] },
          sub("A"),
        ],
        b: [sub("B")],
        c: [sub("C")],
      },
    };
    const { stats } = await runToCompletion(config, 1);
    for (const name of ["A", "B", "C"]) {
      const [s] = stats.get(name)!;
      assert.equal(s!.count, 5000, name);
      assert.equal(s!.duplicates, 0, name);
      assert.equal(s!.outOfOrder, 0, name);
    }
  },
);

testEachTransport(
  "concurrent publishers in several pools: each one's messages arrive in order",
  async () => {
    const config: ProgramConfig = {
      pools: {
        a: [{ name: "P1", publish: [{ queue: "q://order", count: 20_000 }] }, {
          name: "P2",
          publish: [{ queue: "q://order", count: 20_000 }],
        }],
        b: [{ name: "P3", publish: [{ queue: "q://order", count: 20_000 }] }, {
          name: "Local",
          subscribe: [{ queue: "q://order" }],
        }],
        c: [{
          name: "Remote",
          subscribe: [{ queue: "q://order", concurrency: 1 }],
        }],
      },
    };
    const { stats } = await runToCompletion(config, 3);
    for (const name of ["Local", "Remote"]) {
      const [s] = stats.get(name)!;
      assert.equal(s!.count, 60_000, name);
      assert.equal(s!.publishers, 3, name);
      assert.equal(s!.outOfOrder, 0, name);
      assert.equal(s!.duplicates, 0, name);
    }
  },
);

testEachTransport(
  "unsubscribe stops delivery to that subscription only",
  async () => {
    const config: ProgramConfig = {
      pools: {
        a: [{ name: "Pub", publish: [{ queue: "q://u", count: 2000 }] }],
        b: [
          {
            name: "Quitter",
            subscribe: [{ queue: "q://u", unsubscribeAfter: 10 }],
          },
          {
            name: "CtxQuitter",
            subscribe: [{
              queue: "q://u",
              unsubscribeAfter: 20,
              unsubscribeVia: "ctx",
            }],
          },
          {
            name: "Disposer",
            subscribe: [{
              queue: "q://u",
              unsubscribeAfter: 30,
              unsubscribeVia: "dispose",
            }],
          },
          { name: "Stayer", subscribe: [{ queue: "q://u" }] },
        ],
      },
    };
    const { stats, program } = await runToCompletion(config, 1);
    assert.ok(
      program.reports<{ unsubscribed?: string }>().some((r) =>
        r.unsubscribed === "q://u"
      ),
    );
    assert.equal(stats.get("Quitter")![0]!.count, 10);
    assert.equal(stats.get("CtxQuitter")![0]!.count, 20);
    assert.equal(stats.get("Disposer")![0]!.count, 30);
    assert.equal(stats.get("Stayer")![0]!.count, 2000);
  },
);

testEachTransport(
  "wildcard subscriptions receive matching queues across pools",
  async () => {
    const config: ProgramConfig = {
      pools: {
        a: [{
          name: "Pub",
          publish: [
            { queue: "q://orders/eu", count: 10 },
            { queue: "q://orders/eu/paid", count: 10 },
            { queue: "q://orders", count: 10 },
          ],
        }],
        b: [{ name: "Star", subscribe: [{ queue: "q://orders/*" }] }, {
          name: "Tail",
          subscribe: [{ queue: "q://orders/>" }],
        }],
      },
    };
    const { stats } = await runToCompletion(config, 3);
    assert.equal(stats.get("Star")![0]!.count, 10);
    assert.equal(stats.get("Tail")![0]!.count, 20);
  },
);

testEachTransport(
  "a group delivers each message to exactly one member across pools",
  async () => {
    const member = (name: string): ServiceSpec => ({
      name,
      subscribe: [{ queue: "q://jobs", group: "workers" }],
    });
    const config: ProgramConfig = {
      pools: {
        a: [
          { name: "Pub", publish: [{ queue: "q://jobs", count: 3000 }] },
          member("M1"),
        ],
        b: [member("M2")],
        c: [member("M3"), {
          name: "Everyone",
          subscribe: [{ queue: "q://jobs" }],
        }],
      },
    };
    const { stats } = await runToCompletion(config, 1);
    const counts = ["M1", "M2", "M3"].map((n) => stats.get(n)![0]!.count);
    assert.equal(counts.reduce((a, b) => a + b), 3000, `counts ${counts}`);
    for (const count of counts) {
      assert.ok(count > 0, `every member gets work: ${counts}`);
    }
    assert.equal(stats.get("Everyone")![0]!.count, 3000);
  },
);

testEachTransport(
  "a group loses nothing and duplicates nothing while members leave mid-stream",
  async () => {
    const config: ProgramConfig = {
      pools: {
        a: [{ name: "Pub", publish: [{ queue: "q://jobs", count: 20_000 }] }],
        b: [{
          name: "Leaver",
          subscribe: [{
            queue: "q://jobs",
            group: "w",
            unsubscribeAfter: 500,
            slowEvery: 100,
          }],
        }],
        c: [{ name: "Stayer", subscribe: [{ queue: "q://jobs", group: "w" }] }],
        d: [{
          name: "Leaver2",
          subscribe: [{
            queue: "q://jobs",
            group: "w",
            unsubscribeAfter: 2000,
          }],
        }],
      },
    };
    const { stats } = await runToCompletion(config, 1);
    const counts = ["Leaver", "Stayer", "Leaver2"].map((n) =>
      stats.get(n)![0]!
    );
    assert.equal(counts[0]!.count, 500);
    assert.equal(counts[2]!.count, 2000);
    assert.equal(
      counts.reduce((a, s) => a + s.count, 0),
      20_000,
      JSON.stringify(counts),
    );
    for (const s of counts) assert.equal(s.duplicates, 0);
  },
);

testEachTransport(
  "request/reply works across pools and times out with TimeoutError",
  async () => {
    const config: ProgramConfig = {
      pools: {
        a: [{
          name: "Asker",
          request: [{ queue: "q://math/add", a: 1, b: 2 }, {
            queue: "q://math/silent",
            a: 1,
            b: 1,
            timeout: 200,
          }],
        }],
        b: [{
          name: "Adder",
          subscribe: [{ queue: "q://math/add", reply: true }, {
            queue: "q://math/silent",
          }],
        }],
      },
    };
    const program = start(config);
    const [sum, timeout] = await Promise.all([
      program.waitForReports(1, (r: { sum?: number }) => r.sum !== undefined),
      program.waitForReports(
        1,
        (r: { requestError?: string }) => r.requestError !== undefined,
      ),
    ]);
    await program.stop();
    assert.equal((sum[0] as { sum: number }).sum, 3);
    assert.equal(
      (timeout[0] as { requestError: string }).requestError,
      "TimeoutError",
    );
  },
);

Deno.test("bad input gets a typed error at the call; nothing is sent", async () => {
  const config: ProgramConfig = {
    pools: {
      a: [{ name: "Bad", badCalls: true }],
      b: [{ name: "Listener", subscribe: [{ queue: "q://bad" }] }],
    },
  };
  const program = start(config);
  const [report] = await program.waitForReports(
    1,
    (r: { errors?: unknown }) => r.errors !== undefined,
  );
  await program.stop();
  const errors = (report as { errors: Record<string, string> }).errors;
  assert.match(
    errors.function!,
    /^DataCloneError: Cannot publish on "q:\/\/bad"/,
  );
  assert.match(errors.symbol!, /^DataCloneError/);
  for (
    const key of [
      "empty",
      "noScheme",
      "whitespace",
      "wildcard",
      "tail",
      "subscribeBad",
    ]
  ) {
    assert.match(errors[key]!, /^QueueNameError: Invalid queue name/, key);
  }
  assert.match(errors.noResponders!, /^NoRespondersError/);
  const listener = program.reports<TerminateReport>().find((r) =>
    r.service === "Listener" && r.phase === "terminate"
  );
  assert.equal(listener!.stats![0]!.count, 0);
});

testEachTransport("topology() lists every pool's subscriptions", async () => {
  const config: ProgramConfig = {
    pools: {
      a: [{
        name: "Asker",
        reportTopology: true,
        subscribe: [{ queue: "q://x" }],
      }],
      b: [{ name: "G", subscribe: [{ queue: "q://jobs/*", group: "g" }] }],
    },
  };
  const program = start(config);
  const [report] = await program.waitForReports(
    1,
    (r: { topology?: unknown }) => r.topology !== undefined,
  );
  await program.stop();
  const topology = (report as {
    topology: Record<
      string,
      Record<string, Array<{ service: string; group?: string }>>
    >;
  }).topology;
  assert.equal(topology["q://x"]!["a"]![0]!.service, "Asker");
  assert.equal(topology["q://jobs/*"]!["b"]![0]!.group, "g");
});

testEachTransport(
  "no subscriber sees the publisher's later changes or another subscriber's, in any pool",
  async () => {
    const config: ProgramConfig = {
      pools: {
        a: [
          {
            name: "Pub",
            publish: [{ queue: "q://iso", count: 20, mutate: true }],
          },
          { name: "Mutator", subscribe: [{ queue: "q://iso", mutate: true }] },
          {
            name: "LocalReader",
            subscribe: [{ queue: "q://iso", echo: true }],
          },
        ],
        // Small buffers: most messages wait behind them, some as copies and
        // some as the originals.
        b: [
          {
            name: "RemoteMutator",
            subscribe: [{ queue: "q://iso", mutate: true, bufferSize: 3 }],
          },
          {
            name: "RemoteReader",
            subscribe: [{ queue: "q://iso", echo: true, bufferSize: 3 }],
          },
          {
            name: "RemoteMutator2",
            subscribe: [{ queue: "q://iso", mutate: true, bufferSize: 3 }],
          },
        ],
      },
    };
    const program = start(config);
    const seen = await program.waitForReports<
      { service: string; data: { index: number; mutated?: boolean } }
    >(
      40,
      (r) => (r as { data?: unknown }).data !== undefined,
    );
    await program.stop();
    for (const service of ["LocalReader", "RemoteReader"]) {
      const indices = seen.filter((r) => r.service === service).map((r) =>
        r.data.index
      );
      assert.deepEqual(
        indices,
        Array.from({ length: 20 }, (_, i) => i),
        service,
      );
      assert.ok(
        seen.filter((r) => r.service === service).every((r) =>
          r.data.mutated === undefined
        ),
      );
    }
  },
);

testEachTransport(
  "each message keeps its own queue, headers and replyTo when many travel together",
  async () => {
    const count = 300;
    const config: ProgramConfig = {
      pools: {
        a: [
          {
            name: "Pub",
            publish: [{ queue: "q://mixed", count, mixed: true }],
          },
          {
            name: "LocalReader",
            subscribe: [{ queue: "q://mixed/>", echo: true }],
          },
        ],
        b: [
          {
            name: "RemoteReader",
            subscribe: [{ queue: "q://mixed/>", echo: true }],
          },
        ],
      },
    };
    const program = start(config);
    type Echo = {
      service: string;
      queue: string;
      data: { index: number };
      from: { pool: string; service: string };
      headers?: Record<string, string>;
      replyTo?: string;
    };
    const seen = await program.waitForReports<Echo>(
      2 * count,
      (r) => (r as { data?: unknown }).data !== undefined,
    );
    await program.stop();
    for (const service of ["LocalReader", "RemoteReader"]) {
      const echoes = seen.filter((r) => r.service === service);
      assert.deepEqual(
        echoes.map((r) => r.data.index),
        Array.from({ length: count }, (_, i) => i),
        service,
      );
      for (const { data: { index }, queue, from, headers, replyTo } of echoes) {
        assert.equal(queue, `q://mixed/${index % 3}`, `${service} #${index}`);
        assert.deepEqual(from, { pool: "a", service: "Pub" });
        assert.deepEqual(
          headers,
          index % 4 === 1 ? { n: String(index) } : undefined,
          `${service} #${index}`,
        );
        assert.equal(
          replyTo,
          index % 5 === 2 ? `q://mixed/reply/${index}` : undefined,
          `${service} #${index}`,
        );
      }
    }
  },
);

Deno.test("concurrency: n lets a subscription handle n messages at once; the default handles one", async () => {
  const config: ProgramConfig = {
    pools: {
      a: [{ name: "Pub", publish: [{ queue: "q://c", count: 40 }] }],
      b: [
        { name: "Serial", subscribe: [{ queue: "q://c", sleepMs: 5 }] },
        {
          name: "Parallel",
          subscribe: [{ queue: "q://c", sleepMs: 5, concurrency: 4 }],
        },
      ],
    },
  };
  const { stats } = await runToCompletion(config, 1);
  assert.equal(stats.get("Serial")![0]!.maxActive, 1);
  assert.equal(stats.get("Parallel")![0]!.maxActive, 4);
  assert.equal(stats.get("Parallel")![0]!.count, 40);
});

testEachTransport(
  "a group loses nothing and duplicates nothing while members join mid-stream",
  async () => {
    const config: ProgramConfig = {
      pools: {
        a: [{ name: "Pub", publish: [{ queue: "q://jobs", count: 100_000 }] }],
        b: [{ name: "Early", subscribe: [{ queue: "q://jobs", group: "w" }] }],
        c: [{
          name: "Late",
          subscribe: [{ queue: "q://jobs", group: "w", joinAfterMs: 20 }],
        }],
        d: [{
          name: "Later",
          subscribe: [{ queue: "q://jobs", group: "w", joinAfterMs: 60 }],
        }],
      },
    };
    const { stats, program } = await runToCompletion(config, 1);
    const all = ["Early", "Late", "Later"].map((n) => stats.get(n)![0]!);
    assert.equal(
      all.reduce((sum, s) => sum + s.count, 0),
      100_000,
      JSON.stringify(all),
    );
    for (const s of all) assert.equal(s.duplicates, 0);
    const joined = program.reports<{ joined?: string }>().filter((r) =>
      r.joined !== undefined
    );
    assert.equal(joined.length, 2);
  },
);

testEachTransport(
  "a stuck subscriber is reported with its pool, queue and backlog; it holds up no other subscriber; a slow one is not reported",
  async () => {
    const config: ProgramConfig = {
      pools: {
        a: [{
          name: "Pub",
          publish: [{ queue: "q://stuck", count: 50 }, {
            queue: "q://slow",
            count: 20,
          }],
        }],
        // Slow's messages arrive after Sleeper's, in the same batches or
        // later ones: the stuck subscription must not hold them up.
        b: [{
          name: "Sleeper",
          subscribe: [{ queue: "q://stuck", hang: true, bufferSize: 10 }],
        }, {
          name: "Slow",
          subscribe: [{ queue: "q://slow", sleepMs: 40, reportAt: 20 }],
        }],
      },
    };
    const program = start(config, {
      stuckThreshold: 200,
      terminateTimeout: 300,
    });
    const line = await program.waitForLog((r) =>
      r.message.includes("is stuck")
    );
    await program.waitForReports(
      1,
      (r: { reached?: number }) => r.reached === 20,
    );
    await program.stop();
    assert.equal(line.level, "warn");
    assert.equal(line.pool, "b");
    assert.match(
      line.message,
      /^Subscriber Sleeper on "q:\/\/stuck" is stuck: no message handled for over 200 ms while 10 wait in its buffer \(capacity 10\), 39 more from other pools behind it and 0 publishers of this pool$/,
    );
    assert.deepEqual(
      program.logs.filter((r) => r.message.includes("is stuck")).map((r) =>
        r.message.split(" on ")[0]
      ),
      ["Subscriber Sleeper"],
    );
  },
);

Deno.test("dumpQueueTree() logs queue → pool → subscriptions", async () => {
  const config: ProgramConfig = {
    pools: {
      a: [{
        name: "Dumper",
        dumpTree: true,
        subscribe: [{ queue: "q://tree" }],
      }],
      b: [{ name: "Other", subscribe: [{ queue: "q://tree", group: "g" }] }],
    },
  };
  const program = start(config);
  const line = await program.waitForLog((r) =>
    r.message.startsWith("queue tree:")
  );
  await program.stop();
  assert.match(line.message, /q:\/\/tree\n {4}a\n {6}Dumper buffered=0/);
  assert.match(line.message, / {4}b\n {6}Other group=g buffered=0/);
});
