import assert from "node:assert/strict";
import type { RunOptions } from "../mod.ts";
import { pools, type ProgramConfig } from "./fixtures/program.ts";
import {
  type Program,
  startProgram,
  statusesOf,
  testEachTransport,
} from "./_helpers.ts";

const fixture = new URL("./fixtures/program.ts", import.meta.url);

function start(config: ProgramConfig, options: RunOptions = {}): Program {
  return startProgram(fixture, pools(config), config, options);
}

Deno.test("restart on-failure: run() that throws twice is restarted with doubling backoff", async () => {
  const config: ProgramConfig = {
    pools: {
      p: [{
        name: "Flaky",
        throwIn: "run",
        throwTimes: 2,
        loop: true,
        options: { restart: "on-failure", backoffInitial: 20, maxRestarts: 5 },
      }],
    },
  };
  const program = start(config);
  await program.waitUntil(() =>
    statusesOf(program.statuses, "p", "Flaky").filter((s) => s === "running")
      .length === 3
  );
  const report = await program.stop();
  assert.deepEqual(report.failures, []);
  assert.deepEqual(statusesOf(program.statuses, "p", "Flaky"), [
    "initialized",
    "running",
    "error",
    "uninitialized",
    "initialized",
    "running",
    "error",
    "uninitialized",
    "initialized",
    "running",
    "terminated",
  ]);
  const delays = program.logs.filter((r) =>
    r.message.startsWith("Restarting in")
  )
    .map((r) => Number(/Restarting in (\d+) ms/.exec(r.message)![1]));
  assert.deepEqual(delays, [20, 40]);
});

Deno.test("restart gives up after maxRestarts within the window; the service stays in error", async () => {
  const config: ProgramConfig = {
    pools: {
      p: [{
        name: "Broken",
        throwIn: "initialize",
        options: { restart: "on-failure", backoffInitial: 5, maxRestarts: 2 },
      }, { name: "Fine", loop: true }],
    },
  };
  const program = start(config);
  await program.waitForLog((r) =>
    r.message.startsWith("Gave up restarting after 2 restarts")
  );
  const report = await program.stop();
  assert.equal(report.failures.length, 1);
  assert.equal(report.failures[0]!.service, "Broken");
  const attempts = program.reports<{ threw?: string }>().filter((r) =>
    r.threw === "initialize"
  );
  assert.equal(attempts.length, 3);
  assert.equal(statusesOf(program.statuses, "p", "Fine").at(-1), "terminated");
});

Deno.test("restart always: a run() that returns is started again", async () => {
  const config: ProgramConfig = {
    pools: {
      p: [{
        name: "Once",
        options: { restart: "always", backoffInitial: 5, maxRestarts: 2 },
      }],
    },
  };
  const program = start(config);
  await program.waitForLog((r) => r.message.startsWith("Gave up restarting"));
  await program.stop();
  const runs = program.reports<{ phase?: string }>().filter((r) =>
    r.phase === "run"
  );
  assert.equal(runs.length, 3);
});

testEachTransport(
  "a worker that dies is reported and restarted, its subscriptions back",
  async () => {
    const config: ProgramConfig = {
      pools: {
        asker: [{
          name: "Asker",
          askForever: { queue: "q://math/add", a: 2, b: 3 },
        }],
        adder: [{
          name: "Adder",
          closeWorker: true,
          subscribe: [{ queue: "q://math/add", reply: true }],
          options: { restart: "on-failure", backoffInitial: 10 },
        }],
      },
    };
    Deno.env.delete("MF_TEST_CLOSED_Adder");
    const program = start(config);
    await program.waitForLog((r) =>
      r.message.startsWith('Pool "adder" died: self.close() was called')
    );
    const secondRun = await program.waitForReports(
      2,
      (r: { service: string; phase?: string }) =>
        r.service === "Adder" && r.phase === "run",
    );
    const restartedAt = program.logs.findIndex((r) =>
      r.message === `REPORT ${JSON.stringify(secondRun[1])}`
    );
    await program.waitForLog((r) =>
      r.service === "Asker" && r.message.includes('"sum"') &&
      program.logs.indexOf(r) > restartedAt
    );
    await program.stop();
    Deno.env.delete("MF_TEST_CLOSED_Adder");
    assert.ok(
      program.logs.some((r) => r.message.startsWith('Restarting pool "adder"')),
    );
    const answer = program.reports<{ service: string; sum?: number }>().find((
      r,
    ) => r.sum !== undefined);
    assert.equal(answer!.sum, 5);
  },
);

Deno.test("a pool whose event loop is blocked is reported once, then its recovery", async () => {
  const config: ProgramConfig = {
    pools: {
      a: [{ name: "Pub", publishOnce: "q://block" }],
      b: [{
        name: "Blocker",
        subscribe: [{ queue: "q://block", blockMs: 1800 }],
      }],
    },
  };
  const program = start(config, { stallThreshold: 500 });
  await program.waitForLog((r) =>
    r.message.startsWith('Pool "b" recovered after a stall')
  );
  await program.stop();
  const stalls = program.logs.filter((r) =>
    r.message.startsWith('Pool "b" is stalled')
  );
  assert.equal(stalls.length, 1);
  assert.equal(stalls[0]!.level, "warn");
  assert.equal(
    program.logs.filter((r) => r.message.includes('Pool "a" is stalled'))
      .length,
    0,
  );
});

Deno.test("a flood of deliveries does not starve timers in the same pool", async () => {
  const config: ProgramConfig = {
    pools: {
      p: [
        { name: "Ticker", tickFast: true },
        {
          name: "Flood",
          publish: [{ queue: "q://flood", count: 200_000 }],
          subscribe: [{ queue: "q://flood" }],
        },
      ],
    },
  };
  const program = start(config);
  const [report] = await program.waitForReports(
    1,
    (r: { published?: number }) => r.published !== undefined,
  );
  await program.stop();
  const { ticks } = report as { ticks: number };
  assert.ok(
    ticks > 0,
    `a 1 ms timer fired ${ticks} times while 200,000 messages were published and delivered`,
  );
});
