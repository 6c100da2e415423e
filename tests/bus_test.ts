/**
 * The bus between services and pools: fan-out, order, unsubscribe,
 * wildcards, groups, request/reply, checks at the call, topology, isolation
 * of payloads, envelopes, concurrency and stuck subscribers. The programs
 * are the named scenarios of `fixtures/bus_scenarios.ts`; subscribers report
 * a `tally` per subscription when they terminate.
 */
import assert from "node:assert/strict";
import type { RunOptions } from "../mod.ts";
import { type BusScenario, scenarios } from "./fixtures/bus_scenarios.ts";
import type { Tally } from "./fixtures/scenario.ts";
import { type Program, startScenario, testEachTransport } from "./_helpers.ts";

const fixture = new URL("./fixtures/bus_scenarios.ts", import.meta.url);

function start<N extends BusScenario>(
  scenario: N,
  params?: Parameters<(typeof scenarios)[N]>[0],
  options?: RunOptions,
): Program {
  return startScenario(fixture, scenarios, scenario, params, options);
}

/**
 * Runs `scenario` until its publishers reported `published` times, stops it
 * (which drains), and returns each service's tallies at terminate.
 */
async function runToCompletion<N extends BusScenario>(
  scenario: N,
  published: number,
): Promise<{ program: Program; tallies: Map<string, Tally[]> }> {
  const program = start(scenario);
  await program.waitForReport("published", undefined, published, 120_000);
  const report = await program.stop();
  assert.deepEqual(report.failures, []);
  const tallies = new Map<string, Tally[]>();
  for (
    const { kind: _, service, when, ...tally } of program.reportsOf("tally")
  ) {
    if (when !== "terminate") continue;
    tallies.set(service, [...(tallies.get(service) ?? []), tally]);
  }
  return { program, tallies };
}

/** The one tally of `service` (which has one subscription). */
function tallyOf(tallies: Map<string, Tally[]>, service: string): Tally {
  const found = tallies.get(service);
  assert.equal(found?.length, 1, `${service} has one subscription`);
  return found[0]!;
}

Deno.test("publish fans out to every subscription in one pool, the publisher's own included", async () => {
  const { tallies } = await runToCompletion("fanoutInOnePool", 1);
  assert.equal(tallyOf(tallies, "Pub").count, 100);
  assert.deepEqual(tallies.get("SubA")!.map((s) => s.count), [100, 100]);
  assert.equal(tallyOf(tallies, "SubB").count, 0);
});

testEachTransport(
  "publish fans out across three pools, exactly once each, in order",
  async () => {
    const { tallies } = await runToCompletion("fanoutAcrossPools", 1);
    for (const name of ["A", "B", "C"]) {
      const tally = tallyOf(tallies, name);
      assert.equal(tally.count, 5000, name);
      assert.equal(tally.duplicates, 0, name);
      assert.equal(tally.outOfOrder, 0, name);
    }
  },
);

testEachTransport(
  "every kind of value arrives as structuredClone copies it, in the publisher's pool and in another, whatever the publisher changes after",
  async () => {
    const program = start("valueKinds");
    const checked = await program.waitForReport("kindsChecked", undefined, 2);
    await program.stop();
    for (const { service, count, mismatches } of checked) {
      assert.equal(count, 12 * 20, service);
      assert.deepEqual(mismatches, [], service);
    }
  },
);

testEachTransport(
  "concurrent publishers in several pools: each one's messages arrive in order",
  async () => {
    const { tallies } = await runToCompletion("concurrentPublishers", 3);
    for (const name of ["Local", "Remote"]) {
      const tally = tallyOf(tallies, name);
      assert.equal(tally.count, 60_000, name);
      assert.equal(tally.publishers, 3, name);
      assert.equal(tally.outOfOrder, 0, name);
      assert.equal(tally.duplicates, 0, name);
    }
  },
);

testEachTransport(
  "unsubscribe stops delivery to that subscription only",
  async () => {
    // Of 2000 messages, Quitter leaves after 10 (subscription.unsubscribe()),
    // CtxQuitter after 20 (ctx.unsubscribe()), Disposer after 30 (dispose).
    const { tallies, program } = await runToCompletion("unsubscribeWays", 1);
    assert.deepEqual(
      program.reportsOf("unsubscribed").map((r) => r.service).sort(),
      ["CtxQuitter", "Disposer", "Quitter"],
    );
    assert.equal(tallyOf(tallies, "Quitter").count, 10);
    assert.equal(tallyOf(tallies, "CtxQuitter").count, 20);
    assert.equal(tallyOf(tallies, "Disposer").count, 30);
    assert.equal(tallyOf(tallies, "Stayer").count, 2000);
  },
);

testEachTransport(
  "wildcard subscriptions receive matching queues across pools",
  async () => {
    // 10 each on q://orders/eu, q://orders/eu/paid and q://orders.
    const { tallies } = await runToCompletion("wildcards", 3);
    assert.equal(tallyOf(tallies, "Star").count, 10);
    assert.equal(tallyOf(tallies, "Tail").count, 20);
  },
);

testEachTransport(
  "a group delivers each message to exactly one member across pools",
  async () => {
    const { tallies } = await runToCompletion("groupAcrossPools", 1);
    const counts = ["M1", "M2", "M3"].map((n) => tallyOf(tallies, n).count);
    assert.equal(counts.reduce((a, b) => a + b), 3000, `counts ${counts}`);
    for (const count of counts) {
      assert.ok(count > 0, `every member gets work: ${counts}`);
    }
    assert.equal(tallyOf(tallies, "Everyone").count, 3000);
  },
);

testEachTransport(
  "a group loses nothing and duplicates nothing while members leave mid-stream",
  async () => {
    const { tallies } = await runToCompletion("groupMembersLeave", 1);
    const counts = ["Leaver", "Stayer", "Leaver2"].map((n) =>
      tallyOf(tallies, n)
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
    const program = start("requestReply");
    const [answers, failures] = await Promise.all([
      program.waitForReport("answer"),
      program.waitForReport("requestFailed"),
    ]);
    await program.stop();
    assert.equal(answers[0]!.sum, 3);
    assert.equal(failures[0]!.error, "TimeoutError");
  },
);

testEachTransport(
  "bad input gets a typed error at the call; nothing is sent",
  async () => {
    const program = start("badCalls");
    const [report] = await program.waitForReport("callErrors");
    await program.stop();
    const { errors } = report!;
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
    const listener = program.reportsOf("tally").find((r) =>
      r.service === "Listener" && r.when === "terminate"
    );
    assert.equal(listener?.count, 0);
  },
);

testEachTransport("topology() lists every pool's subscriptions", async () => {
  const program = start("topology");
  const [report] = await program.waitForReport("topology");
  await program.stop();
  const { topology } = report!;
  assert.equal(topology["q://x"]!["a"]![0]!.service, "Asker");
  assert.equal(topology["q://jobs/*"]!["b"]![0]!.group, "g");
});

testEachTransport(
  "no subscriber sees the publisher's later changes or another subscriber's, in any pool",
  async () => {
    const program = start("isolation");
    const seen = await program.waitForReport("echo", undefined, 40);
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
    // Message i goes to q://mixed/{i % 3}, with headers when i % 4 === 1
    // and a replyTo when i % 5 === 2.
    const count = 300;
    const program = start("mixedEnvelopes", { count });
    const seen = await program.waitForReport("echo", undefined, 2 * count);
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

testEachTransport(
  "concurrency: n lets a subscription handle n messages at once; the default handles one",
  async () => {
    const { tallies } = await runToCompletion("concurrency", 1);
    assert.equal(tallyOf(tallies, "Serial").maxActive, 1);
    assert.equal(tallyOf(tallies, "Parallel").maxActive, 4);
    assert.equal(tallyOf(tallies, "Parallel").count, 40);
  },
);

testEachTransport(
  "a group loses nothing and duplicates nothing while members join mid-stream",
  async () => {
    // Late joins once 10,000 were sent, Later once 30,000 were.
    const { tallies, program } = await runToCompletion("groupMembersJoin", 1);
    const all = ["Early", "Late", "Later"].map((n) => tallyOf(tallies, n));
    assert.equal(
      all.reduce((sum, s) => sum + s.count, 0),
      100_000,
      JSON.stringify(all),
    );
    for (const s of all) assert.equal(s.duplicates, 0);
    assert.deepEqual(
      program.reportsOf("joined").map((r) => r.service).sort(),
      ["Late", "Later"],
    );
  },
);

testEachTransport(
  "a stuck subscriber is reported with its pool, queue and backlog; it holds up no other subscriber; a slow one is not reported",
  async () => {
    // Slow's messages arrive after Sleeper's, in the same batches or later
    // ones: the stuck subscription must not hold them up.
    const program = start("stuckBesideSlow", undefined, {
      stuckThreshold: 200,
      terminateTimeout: 300,
    });
    const line = await program.waitForLog((r) =>
      r.message.includes("is stuck")
    );
    await program.waitForReport(
      "tally",
      (r) => r.service === "Slow" && r.when === "reached" && r.count === 20,
    );
    await program.stop();
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
      program.logs.filter((r) => r.message.includes("is stuck")).map((r) =>
        r.message.split(" on ")[0]
      ),
      ["Subscriber Sleeper"],
    );
  },
);

testEachTransport(
  "dumpQueueTree() logs queue → pool → subscriptions",
  async () => {
    const program = start("queueTree");
    const line = await program.waitForLog((r) =>
      r.message.startsWith("queue tree:")
    );
    await program.stop();
    assert.match(line.message, /q:\/\/tree\n {4}a\n {6}Dumper buffered=0/);
    assert.match(line.message, / {4}b\n {6}Other group=g buffered=0/);
  },
);
