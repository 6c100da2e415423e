import assert from "node:assert/strict";
import type { RunOptions } from "../mod.ts";
import { pools, type ProgramConfig } from "./fixtures/program.ts";
import { type Program, startProgram, statusesOf } from "./_helpers.ts";

const fixture = new URL("./fixtures/program.ts", import.meta.url);

function start(config: ProgramConfig, options: RunOptions = {}): Program {
  return startProgram(fixture, pools(config), config, options);
}

Deno.test("Main.run() drives a service through its lifecycle in one pool", async () => {
  const config: ProgramConfig = {
    pools: { th1: [{ name: "Service_1", loop: true }] },
  };
  const program = start(config);
  await program.main.ready;
  const report = await program.stop();
  assert.deepEqual(report.failures, []);
  assert.deepEqual(statusesOf(program.statuses, "th1", "Service_1"), [
    "initialized",
    "running",
    "terminated",
  ]);
  const phases = program.reports<{ phase?: string }>().map((r) => r.phase);
  assert.deepEqual(phases, ["initialize", "run", "terminate"]);
});

Deno.test("Main.run() runs two pools, each service through its lifecycle", async () => {
  const config: ProgramConfig = {
    pools: {
      th1: [{ name: "Service_1", loop: true }],
      th2: [{ name: "Service_2", loop: true }],
    },
  };
  const program = start(config);
  await program.main.ready;
  const report = await program.stop();
  assert.deepEqual(report.failures, []);
  for (const [pool, service] of [["th1", "Service_1"], ["th2", "Service_2"]]) {
    assert.deepEqual(statusesOf(program.statuses, pool!, service!), [
      "initialized",
      "running",
      "terminated",
    ]);
  }
});

Deno.test("every initialize() finishes before any run() starts, across pools", async () => {
  const config: ProgramConfig = {
    pools: {
      a: [{ name: "A1" }, { name: "A2" }],
      b: [{ name: "B1" }],
      c: [{ name: "C1" }],
    },
  };
  const program = start(config);
  await program.main.ready;
  await program.waitForReports(4, (r: { phase?: string }) => r.phase === "run");
  await program.stop();
  const phases = program.reports<{ phase?: string }>().map((r) => r.phase)
    .filter((p) => p !== "terminate");
  const lastInit = phases.lastIndexOf("initialize");
  const firstRun = phases.indexOf("run");
  assert.ok(lastInit < firstRun, `phases: ${phases.join(", ")}`);
});

for (const phase of ["initialize", "run", "terminate"] as const) {
  Deno.test(`a throw in ${phase}() puts only that service in error`, async () => {
    const config: ProgramConfig = {
      pools: {
        th1: [{ name: "Bad", throwIn: phase }, { name: "Good", loop: true }],
        th2: [{ name: "Other", loop: true }],
      },
    };
    const program = start(config);
    await program.main.ready;
    if (phase !== "terminate") {
      await program.waitForLog((r) =>
        r.level === "error" && r.message.includes(`failed in ${phase}()`)
      );
    }
    const report = await program.stop();
    assert.equal(report.failures.length, 1);
    assert.equal(report.failures[0]!.service, "Bad");
    assert.equal(report.failures[0]!.pool, "th1");
    assert.equal(report.failures[0]!.phase, phase);
    assert.match(
      report.failures[0]!.message,
      new RegExp(`failed in ${phase}\\(\\): ${phase} failed on purpose`),
    );
    const errorLine = program.logs.find((r) =>
      r.level === "error" && r.service === "Bad"
    );
    assert.ok(errorLine, "the failure is logged with pool and service");
    assert.equal(errorLine.pool, "th1");
    const bad = statusesOf(program.statuses, "th1", "Bad");
    assert.equal(bad.at(-1), "error");
    assert.deepEqual(statusesOf(program.statuses, "th1", "Good"), [
      "initialized",
      "running",
      "terminated",
    ]);
    assert.deepEqual(statusesOf(program.statuses, "th2", "Other"), [
      "initialized",
      "running",
      "terminated",
    ]);
  });
}

Deno.test("services terminate in reverse order: pools last to first, services last to first", async () => {
  const config: ProgramConfig = {
    pools: {
      p1: [{ name: "S1" }, { name: "S2" }],
      p2: [{ name: "S3" }, { name: "S4" }],
    },
  };
  const program = start(config);
  await program.main.ready;
  await program.stop();
  const order = program.reports<{ phase?: string; service: string }>()
    .filter((r) => r.phase === "terminate").map((r) => r.service);
  assert.deepEqual(order, ["S4", "S3", "S2", "S1"]);
});

Deno.test("a terminate() that hangs is cut off by the terminate timeout", async () => {
  const config: ProgramConfig = {
    pools: { p1: [{ name: "Stuck", hangInTerminate: true }, { name: "Fine" }] },
  };
  const program = start(config, { terminateTimeout: 300 });
  await program.main.ready;
  const report = await program.stop();
  assert.equal(report.failures.length, 1);
  assert.match(report.failures[0]!.message, /did not finish within 300 ms/);
  assert.deepEqual(
    statusesOf(program.statuses, "p1", "Fine").at(-1),
    "terminated",
  );
});

Deno.test("main.stop() called inside a pool stops the whole program", async () => {
  const config: ProgramConfig = {
    pools: {
      p1: [{ name: "Quitter", stopWhenDone: true }],
      p2: [{ name: "Looper", loop: true }],
    },
  };
  const program = start(config);
  const report = await program.done;
  assert.deepEqual(report.failures, []);
  assert.ok(
    program.logs.some((r) =>
      r.message.includes('main.stop() was called in pool "p1"')
    ),
  );
  assert.deepEqual(
    statusesOf(program.statuses, "p2", "Looper").at(-1),
    "terminated",
  );
});

Deno.test("in a pool, Main.isPrimary is false and Main.poolName names the pool", async () => {
  const config: ProgramConfig = {
    pools: {
      first: [{ name: "Who", reportIdentity: true }],
      second: [{ name: "Me", reportIdentity: true }],
    },
  };
  const program = start(config);
  const reports = await program.waitForReports<
    {
      service: string;
      isPrimary: boolean;
      poolName: string;
      workerData: unknown;
    }
  >(
    2,
    (r) => (r as { isPrimary?: boolean }).isPrimary !== undefined,
  );
  await program.stop();
  const byService = Object.fromEntries(reports.map((r) => [r.service, r]));
  assert.equal(byService.Who!.isPrimary, false);
  assert.equal(byService.Who!.poolName, "first");
  assert.equal(byService.Me!.poolName, "second");
  assert.deepEqual(byService.Me!.workerData, config);
});

Deno.test("a worker that never calls main.run() is reported after the start timeout", async () => {
  const { pools: noRunPools } = await import("./fixtures/no_run.ts");
  const program = startProgram(
    new URL("./fixtures/no_run.ts", import.meta.url),
    noRunPools(),
    null,
    { startTimeout: 500 },
  );
  const report = await program.done;
  assert.equal(report.failures.length, 1);
  assert.equal(report.failures[0]!.pool, "lonely");
  assert.equal(report.failures[0]!.service, "*");
  assert.match(report.failures[0]!.message, /before its services were built/);
  const line = program.logs.find((r) =>
    r.message.startsWith('Pool "lonely" died')
  );
  assert.ok(line, program.logs.map((r) => r.message).join("\n"));
  assert.match(line.message, /did not call main\.run\(\) within 500 ms/);
});
