/**
 * The transports between pools: what each one guarantees. A stuck
 * subscriber runs in this thread with `startServices` (real transports
 * between the pools); a blocked event loop and `Main.workerData` need real
 * workers (`fixtures/transport_scenarios.ts`).
 */
import assert from "node:assert/strict";
import {
  type LogRecord,
  Service,
  type ServiceContext,
  type TransportKind,
  type Undelivered,
} from "../mod.ts";
import { startServices } from "@magic/foundation/testing";
import { start, testEachTransport } from "./_helpers.ts";
import { transportFixture } from "./fixtures/transport_scenarios.ts";
import { type Report, scenarioPools } from "./fixtures/scenario.ts";

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
      transportFixture,
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
  async (transport) => {
    // Flood publishes on q://feed until the stop, to Healthy and to Stuck,
    // which takes the first message and never finishes it.
    let published = 0;
    let healthy = 0;
    class Flood extends Service {
      override async run(ctx: ServiceContext): Promise<void> {
        while (!ctx.signal.aborted) {
          await ctx.publish("q://feed", published);
          published++;
        }
      }
    }
    class Healthy extends Service {
      override async initialize(ctx: ServiceContext): Promise<void> {
        await ctx.subscribe("q://feed", () => {
          healthy++;
        });
      }
    }
    class Stuck extends Service {
      override async initialize(ctx: ServiceContext): Promise<void> {
        await ctx.subscribe("q://feed", () => new Promise<void>(() => {}), {
          bufferSize: 64,
        });
      }
    }
    const logs: LogRecord[] = [];
    const stuckLine = Promise.withResolvers<void>();
    const bed = await startServices({
      transport,
      pools: {
        source: [new Flood("Flood")],
        healthy: [new Healthy("Healthy")],
        stuck: [new Stuck("Stuck")],
      },
      stuckThreshold: 300,
      // Stuck never finishes its handler; the stop's waits for it are
      // bounded by this timeout.
      terminateTimeout: 300,
      logSink: (record) => {
        logs.push(record);
        if (record.message.includes("is stuck")) stuckLine.resolve();
      },
    });
    await stuckLine.promise;
    const report = await bed.stop();
    // Every publish that resolved reached the healthy subscriber (one more
    // may have been on its way when the stop began).
    assert.ok(
      healthy >= published && healthy <= published + 1,
      `healthy got ${healthy} of ${published} published`,
    );
    // The stuck one took one message and never finished it; every other one
    // it was sent is counted: in its buffer, or never sent to it.
    const forStuck = report.undelivered.filter((u: Undelivered) =>
      u.pool === "stuck"
    );
    assert.ok(forStuck.some((u) => u.service === "Stuck" && u.count > 0));
    const counted = forStuck.reduce((sum, u) => sum + u.count, 0);
    assert.equal(counted, healthy - 1, `counted: ${JSON.stringify(forStuck)}`);
    assert.deepEqual(
      report.undelivered.filter((u) => u.pool !== "stuck"),
      [],
    );
    assert.ok(
      logs.some((r) =>
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
  const program = start(transportFixture, "workerData", params);
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
  main.servicePools = scenarioPools(
    transportFixture.scenarios,
    "workerData",
    {},
  );
  await assert.rejects(
    main.run({
      module: transportFixture.url,
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
    main.run({
      module: transportFixture.url,
      workerData: { f: () => 1 },
      signals: false,
    }),
    { name: "TypeError", message: /^Cannot run: workerData must be a value/ },
  );
});
