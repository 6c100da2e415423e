/**
 * The lifecycle of services in pools: initialize → run → terminate, the
 * order across pools, failures in each phase, and the stop.
 *
 * The stories of the lifecycle run in this thread with `startServices`
 * (the same supervisor, pools and stop as `main.run()`), with `Noter`
 * services that note each phase they enter. What needs real workers runs on
 * them: `Main.run()`'s status events, `Main.isPrimary` and `main.stop()`
 * inside a pool (`fixtures/lifecycle_scenarios.ts`), and pools whose module
 * fails to load or never calls `main.run()`.
 */
import assert from "node:assert/strict";
import {
  type LogRecord,
  Service,
  type ServiceContext,
  ServiceStatus,
} from "../mod.ts";
import { startServices } from "@magic/foundation/testing";
import { lifecycleFixture } from "./fixtures/lifecycle_scenarios.ts";
import type { LoadFailureConfig } from "./fixtures/load_failures.ts";
import {
  type Program,
  recordStatuses,
  start,
  startProgram,
  statusesOf,
} from "./_helpers.ts";

type Phase = "initialize" | "run" | "terminate";

/** A phase a `Noter` entered, in order across the services of a test. */
interface Entered {
  service: string;
  pool: string;
  phase: Phase;
}

/**
 * Notes each phase it enters in `entered`. Its `run()` returns at once, or
 * with `loop` runs until the stop; with `throwIn` it throws in that phase;
 * with `hangInTerminate` its `terminate()` never finishes.
 */
class Noter extends Service {
  readonly #ran = Promise.withResolvers<void>();
  /** Resolves once its `run()` began. */
  readonly ran: Promise<void> = this.#ran.promise;
  constructor(
    name: string,
    readonly entered: Entered[],
    readonly behaviour: {
      throwIn?: Phase;
      loop?: boolean;
      hangInTerminate?: boolean;
    } = {},
  ) {
    super(name);
  }
  override initialize(ctx: ServiceContext): void {
    this.#enter(ctx, "initialize");
  }
  override async run(ctx: ServiceContext): Promise<void> {
    this.#enter(ctx, "run");
    while (this.behaviour.loop && this.status === ServiceStatus.running) {
      await ctx.sleep(1000);
    }
  }
  override async terminate(ctx: ServiceContext): Promise<void> {
    this.#enter(ctx, "terminate");
    if (this.behaviour.hangInTerminate) await new Promise(() => {});
  }
  #enter(ctx: ServiceContext, phase: Phase): void {
    this.entered.push({ service: this.name, pool: ctx.pool, phase });
    if (phase === "run") this.#ran.resolve();
    if (this.behaviour.throwIn === phase) {
      throw new Error(`${phase} failed on purpose`);
    }
  }
}

Deno.test("Main.run() drives a service through its lifecycle in one pool", async () => {
  const program = start(lifecycleFixture, "onePool");
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
  const program = start(lifecycleFixture, "twoPools");
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
  const entered: Entered[] = [];
  const [a1, a2, b1, c1] = ["A1", "A2", "B1", "C1"].map((name) =>
    new Noter(name, entered)
  );
  await using _bed = await startServices({
    pools: { a: [a1!, a2!], b: [b1!], c: [c1!] },
  });
  await Promise.all([a1!, a2!, b1!, c1!].map((noter) => noter.ran));
  const phases = entered.map((e) => e.phase).filter((p) => p !== "terminate");
  const lastInit = phases.lastIndexOf("initialize");
  const firstRun = phases.indexOf("run");
  assert.ok(lastInit < firstRun, `phases: ${phases.join(", ")}`);
});

for (const phase of ["initialize", "run", "terminate"] as const) {
  Deno.test(`a throw in ${phase}() puts only that service in error`, async () => {
    const entered: Entered[] = [];
    const logs: LogRecord[] = [];
    const bad = new Noter("Bad", entered, { throwIn: phase, loop: true });
    const good = new Noter("Good", entered, { loop: true });
    const other = new Noter("Other", entered, { loop: true });
    const statuses = [bad, good, other].map(recordStatuses);
    const failed = Promise.withResolvers<void>();
    const bed = await startServices({
      pools: { th1: [bad, good], th2: [other] },
      logLevel: "error",
      logSink: (record) => {
        logs.push(record);
        if (record.message.includes(`failed in ${phase}()`)) failed.resolve();
      },
    });
    if (phase !== "terminate") await failed.promise;
    const report = await bed.stop();
    assert.equal(report.failures.length, 1);
    assert.equal(report.failures[0]!.service, "Bad");
    assert.equal(report.failures[0]!.pool, "th1");
    assert.equal(report.failures[0]!.phase, phase);
    assert.match(
      report.failures[0]!.message,
      new RegExp(`failed in ${phase}\\(\\): ${phase} failed on purpose`),
    );
    const errorLine = logs.find((r) =>
      r.level === "error" && r.service === "Bad"
    );
    assert.ok(errorLine, "the failure is logged with pool and service");
    assert.equal(errorLine.pool, "th1");
    assert.equal(statuses[0]!.at(-1), "error");
    for (const [i, name] of [[1, "Good"], [2, "Other"]] as const) {
      assert.deepEqual(
        statuses[i],
        ["initialized", "running", "terminated"],
        name,
      );
    }
  });
}

Deno.test("services terminate in reverse order: pools last to first, services last to first", async () => {
  const entered: Entered[] = [];
  const bed = await startServices({
    pools: {
      p1: [new Noter("S1", entered), new Noter("S2", entered)],
      p2: [new Noter("S3", entered), new Noter("S4", entered)],
    },
  });
  await bed.stop();
  const order = entered.filter((e) => e.phase === "terminate").map((e) =>
    e.service
  );
  assert.deepEqual(order, ["S4", "S3", "S2", "S1"]);
});

Deno.test("a terminate() that hangs is cut off by the terminate timeout", async () => {
  const entered: Entered[] = [];
  const fine = new Noter("Fine", entered);
  const statuses = recordStatuses(fine);
  const bed = await startServices({
    pools: {
      p1: [new Noter("Stuck", entered, { hangInTerminate: true }), fine],
    },
    terminateTimeout: 300,
    logLevel: "silent",
  });
  const report = await bed.stop();
  assert.equal(report.failures.length, 1);
  assert.match(report.failures[0]!.message, /did not finish within 300 ms/);
  assert.equal(statuses.at(-1), "terminated");
});

Deno.test("main.stop() called inside a pool stops the whole program", async () => {
  const program = start(lifecycleFixture, "stopFromPool");
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
  const program = start(lifecycleFixture, "identity", { tag: "from the test" });
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
