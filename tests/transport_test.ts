/**
 * The transports between pools: what each one guarantees, on real workers
 * (scenarios in `fixtures/transport_scenarios.ts`) and on the transports
 * themselves, wired in one thread.
 */
import assert from "node:assert/strict";
import type { RunOptions, TransportKind, Undelivered } from "../mod.ts";
import { type Program, startScenario, testEachTransport } from "./_helpers.ts";
import { scenarios } from "./fixtures/transport_scenarios.ts";
import { type Report, scenarioPools } from "./fixtures/scenario.ts";

const fixture = new URL("./fixtures/transport_scenarios.ts", import.meta.url);

function start<N extends keyof typeof scenarios>(
  scenario: N,
  params?: Parameters<(typeof scenarios)[N]>[0],
  options?: RunOptions,
): Program {
  return startScenario(fixture, scenarios, scenario, params, options);
}

/** The position of the first report of `kind` from `service` in the log. */
function positionOf(
  reports: Report[],
  kind: Report["kind"],
  service: string,
): number {
  return reports.findIndex((r) =>
    r.kind === kind && "service" in r && r.service === service
  );
}

testEachTransport(
  "a pool whose event loop is blocked holds up no subscribe() elsewhere beyond the stall threshold",
  async (transport) => {
    const count = 50_000;
    const program = start(
      "blockedNeighbour",
      // The stall is seen within about 450 ms, and the flow between the two
      // other pools takes well under a second: 2.5 s leaves a wide margin.
      { count, blockMs: 2500 },
      {
        stallThreshold: 300,
      },
    );
    try {
      await program.waitForReport("unblocked");
      const reports = program.scenarioReports();
      const unblocked = positionOf(reports, "unblocked", "Blocker");
      const subscribed = positionOf(reports, "subscribed", "Late");
      assert.ok(
        subscribed >= 0 && subscribed < unblocked,
        "subscribe() resolved while the blocked pool was still blocked",
      );
      if (transport === "ports") {
        // Only what is sent to a blocked pool waits for it.
        const received = positionOf(reports, "received", "Sink");
        assert.ok(
          received >= 0 && received < unblocked,
          "the flow between two other pools finished while the third was blocked",
        );
      }
      await program.waitForReport("received", (r) => r.count === count);
    } finally {
      await program.stop();
    }
  },
);

testEachTransport(
  "a stuck subscriber costs a healthy one no acknowledged message; what it never took is counted and reported",
  async () => {
    const program = start("stuckSubscriber", undefined, {
      stuckThreshold: 300,
      // Stuck never finishes its handler; the stop's waits for it are bounded
      // by this timeout (the default of startProgram, 2 s, cost 6 s a run).
      terminateTimeout: 300,
    });
    await program.waitForLog((r) => r.message.includes("is stuck"));
    const report = await program.stop();
    const published = program.reportsOf("published")[0];
    const healthy = program.reportsOf("received").find((r) =>
      r.service === "Healthy"
    );
    assert.ok(published !== undefined && healthy !== undefined);
    // Every publish that resolved reached the healthy subscriber (one more
    // may have been on its way when the stop began).
    assert.ok(
      healthy.count >= published.count && healthy.count <= published.count + 1,
      `healthy got ${healthy.count} of ${published.count} published`,
    );
    // The stuck one took one message and never finished it; every other one
    // it was sent is counted: in its buffer, or never sent to it.
    const forStuck = report.undelivered.filter((u: Undelivered) =>
      u.pool === "stuck"
    );
    assert.ok(forStuck.some((u) => u.service === "Stuck" && u.count > 0));
    const counted = forStuck.reduce((sum, u) => sum + u.count, 0);
    assert.equal(
      counted,
      healthy.count - 1,
      `counted: ${JSON.stringify(forStuck)}`,
    );
    assert.deepEqual(
      report.undelivered.filter((u) => u.pool !== "stuck"),
      [],
    );
    assert.ok(
      program.logs.some((r) =>
        r.level === "error" && /\d+ messages waited for Stuck/.test(r.message)
      ),
    );
  },
);

Deno.test("workerData travels in the first message: a Map reaches every pool, readable while the module is evaluated", async () => {
  const params = new Map<string, Date | number>([
    ["when", new Date(0)],
    ["n", 7],
  ]);
  const program = start("workerData", params);
  try {
    const reports = await program.waitForReport("workerData", undefined, 2);
    for (const pool of ["a", "b"]) {
      const seen = reports.find((r) => r.pool === pool);
      assert.deepEqual(seen, {
        kind: "workerData",
        pool,
        isMap: true,
        entries: [["when", new Date(0).toISOString()], ["n", 7]],
      });
    }
  } finally {
    await program.stop();
  }
});

Deno.test("main.run() refuses an unknown transport and data structuredClone cannot copy", async () => {
  const { Main } = await import("../mod.ts");
  const main = new Main();
  main.servicePools = scenarioPools(scenarios, "workerData", {});
  await assert.rejects(
    main.run({
      module: fixture,
      transport: "carrier-pigeon" as TransportKind,
      signals: false,
    }),
    {
      name: "TypeError",
      message:
        'Cannot run: transport must be one of "ports", "broadcast", got "carrier-pigeon"',
    },
  );
  await assert.rejects(
    main.run({ module: fixture, workerData: { f: () => 1 }, signals: false }),
    { name: "TypeError", message: /^Cannot run: workerData must be a value/ },
  );
});
