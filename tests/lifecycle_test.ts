/**
 * The lifecycle of services in pools: initialize → run → terminate, the
 * order across pools, failures in each phase, and the stop. The programs are
 * the named scenarios of `fixtures/lifecycle_scenarios.ts`.
 */
import assert from "node:assert/strict";
import type { RunOptions } from "../mod.ts";
import {
  type LifecycleScenario,
  scenarios,
} from "./fixtures/lifecycle_scenarios.ts";
import type { LoadFailureConfig } from "./fixtures/load_failures.ts";
import {
  type Program,
  startProgram,
  startScenario,
  statusesOf,
} from "./_helpers.ts";

const fixture = new URL("./fixtures/lifecycle_scenarios.ts", import.meta.url);

function start<N extends LifecycleScenario>(
  scenario: N,
  params?: Parameters<(typeof scenarios)[N]>[0],
  options?: RunOptions,
): Program {
  return startScenario(fixture, scenarios, scenario, params, options);
}

Deno.test("Main.run() drives a service through its lifecycle in one pool", async () => {
  const program = start("onePool");
  await program.main.ready;
  const report = await program.stop();
  assert.deepEqual(report.failures, []);
  assert.deepEqual(statusesOf(program.statuses, "th1", "Service_1"), [
    "initialized",
    "running",
    "terminated",
  ]);
  const phases = program.reportsOf("phase").map((r) => r.phase);
  assert.deepEqual(phases, ["initialize", "run", "terminate"]);
});

Deno.test("Main.run() runs two pools, each service through its lifecycle", async () => {
  const program = start("twoPools");
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
  const program = start("threePools");
  await program.main.ready;
  await program.waitForReport("phase", (r) => r.phase === "run", 4);
  await program.stop();
  const phases = program.reportsOf("phase").map((r) => r.phase)
    .filter((p) => p !== "terminate");
  const lastInit = phases.lastIndexOf("initialize");
  const firstRun = phases.indexOf("run");
  assert.ok(lastInit < firstRun, `phases: ${phases.join(", ")}`);
});

for (const phase of ["initialize", "run", "terminate"] as const) {
  Deno.test(`a throw in ${phase}() puts only that service in error`, async () => {
    const program = start("throwsIn", { phase });
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
  const program = start("twoByTwo");
  await program.main.ready;
  await program.stop();
  const order = program.reportsOf("phase")
    .filter((r) => r.phase === "terminate").map((r) => r.service);
  assert.deepEqual(order, ["S4", "S3", "S2", "S1"]);
});

Deno.test("a terminate() that hangs is cut off by the terminate timeout", async () => {
  const program = start("hangingTerminate", undefined, {
    terminateTimeout: 300,
  });
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
  const program = start("stopFromPool");
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
  const program = start("identity", { tag: "from the test" });
  const reports = await program.waitForReport("identity", undefined, 2);
  await program.stop();
  const byService = Object.fromEntries(reports.map((r) => [r.service, r]));
  assert.equal(byService.Who!.isPrimary, false);
  assert.equal(byService.Who!.poolName, "first");
  assert.equal(byService.Me!.isPrimary, false);
  assert.equal(byService.Me!.poolName, "second");
  assert.deepEqual(byService.Me!.workerData, {
    scenario: "identity",
    params: { tag: "from the test" },
  });
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

/** Runs `test` with the path of a file that does not exist yet, removed after. */
async function withMarker(
  test: (marker: string) => Promise<void>,
): Promise<void> {
  const marker = await Deno.makeTempFile();
  await Deno.remove(marker);
  try {
    await test(marker);
  } finally {
    await Deno.remove(marker).catch(() => {});
  }
}

/** Starts `fixtures/load_failures.ts` with `config`. */
async function startLoadFailures(config: LoadFailureConfig): Promise<Program> {
  const { pools } = await import("./fixtures/load_failures.ts");
  return startProgram(
    new URL("./fixtures/load_failures.ts", import.meta.url),
    pools(config),
    config,
  );
}

Deno.test("a pool whose module throws while loading ends the whole run at once, with a failure", async () => {
  const program = await startLoadFailures({
    broken: "flaky",
    entries: "instances",
    restart: "never",
  });
  const report = await program.done;
  assert.deepEqual(
    report.failures.map((f) => [f.pool, f.service]),
    [["flaky", "*"]],
  );
  assert.match(report.failures[0]!.message, /module load broke/);
  const stopping = program.logs.find((r) => r.message.startsWith("Stopping"));
  assert.match(stopping?.message ?? "", /pool "flaky" could not start/);
  assert.equal(program.reportsOf("phase").length, 0, "no run() may begin");
});

Deno.test("a pool of services given as instances is restarted after its module throws while loading", () =>
  withMarker(async (marker) => {
    const program = await startLoadFailures({
      broken: "flaky",
      once: marker,
      entries: "instances",
      restart: "on-failure",
    });
    await program.waitForReport("phase", (r) => r.service === "Flaky");
    const report = await program.stop();
    assert.deepEqual(report.failures, []);
    assert.ok(
      program.logs.some((r) => r.message.startsWith('Restarting pool "flaky"')),
    );
  }));

Deno.test("a pool of factories whose module throws on its first load is not restarted, and the error says why", () =>
  withMarker(async (marker) => {
    const program = await startLoadFailures({
      broken: "flaky",
      once: marker,
      entries: "factories",
      restart: "on-failure",
    });
    const report = await program.done;
    assert.equal(report.failures.length, 1);
    assert.match(
      report.failures[0]!.message,
      /module load broke once.*restart policy is unknown.*factories/s,
    );
  }));
