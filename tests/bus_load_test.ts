import assert from "node:assert/strict";
import {
  pools,
  type ProgramConfig,
  type ServiceSpec,
} from "./fixtures/program.ts";
import { startProgram, testEachTransport } from "./_helpers.ts";

const fixture = new URL("./fixtures/program.ts", import.meta.url);
const PER_PUBLISHER = 250_000;
const PUBLISHERS = 4;
const TOTAL = PER_PUBLISHER * PUBLISHERS;
const BUFFER = 1024;

testEachTransport(
  "1,000,000 messages from 4 publisher pools reach 4 subscriber pools (one slow): exact, no duplicates, bounded",
  async () => {
    const publisher = (name: string): ServiceSpec => ({
      name,
      publish: [{ queue: "q://load", count: PER_PUBLISHER }],
    });
    const subscriber = (name: string, slow = false): ServiceSpec => ({
      name,
      subscribe: [{
        queue: "q://load",
        reportAt: TOTAL,
        ...(slow ? { slowEvery: 1000 } : {}),
      }],
    });
    const config: ProgramConfig = {
      pools: {
        pub1: [publisher("P1")],
        pub2: [publisher("P2")],
        pub3: [publisher("P3")],
        pub4: [publisher("P4")],
        sub1: [subscriber("S1")],
        sub2: [subscriber("S2")],
        sub3: [subscriber("S3")],
        slow: [subscriber("Slow", true)],
      },
    };
    const program = startProgram(fixture, pools(config), config, {
      bufferSize: BUFFER,
    });
    let peakRss = 0;
    let peakHighWater = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
    }, 100);
    let readyRss = 0;
    try {
      await program.main.ready;
      // Measured from here: a cold `deno test` type-checks the workers in this
      // process first, and the compiler's memory is no part of the bus's.
      readyRss = Deno.memoryUsage().rss;
      peakRss = readyRss;
      const reached = await program.waitForReports<
        {
          service: string;
          count: number;
          duplicates: number;
          outOfOrder: number;
          publishers: number;
        }
      >(
        4,
        (r) => (r as { reached?: number }).reached === TOTAL,
        240_000,
      );
      const topology = await program.main.topology();
      for (const entry of Object.values(topology["q://load"] ?? {}).flat()) {
        peakHighWater = Math.max(peakHighWater, entry.highWater);
      }
      const report = await program.stop();
      assert.deepEqual(report.failures, []);
      for (const r of reached) {
        assert.equal(r.count, TOTAL, r.service);
        assert.equal(r.duplicates, 0, r.service);
        assert.equal(r.outOfOrder, 0, r.service);
        assert.equal(r.publishers, PUBLISHERS, r.service);
      }
      const finals = program.reports<
        { phase?: string; service: string; stats?: { count: number }[] }
      >()
        .filter((r) => r.phase === "terminate" && r.service.startsWith("S"));
      for (const f of finals) {
        assert.equal(
          f.stats![0]!.count,
          TOTAL,
          `${f.service}: nothing arrives twice or late`,
        );
      }
    } finally {
      clearInterval(sampler);
    }
    assert.ok(
      peakHighWater <= BUFFER,
      `a subscription held ${peakHighWater} messages, over its buffer of ${BUFFER}`,
    );
    // The bound itself is proven by highWater above; this is a sanity guard
    // (8 busy V8 heaps grow by about 100 MiB each before they collect).
    const growth = peakRss - readyRss;
    if (Deno.env.get("TEST_LOG") === "1") {
      // deno-lint-ignore no-console
      console.log(
        `RSS at ready ${Math.round(readyRss / 2 ** 20)} MiB, growth ${
          Math.round(growth / 2 ** 20)
        } MiB`,
      );
    }
    assert.ok(
      growth < 1.5 * 1024 ** 3,
      `RSS grew by ${Math.round(growth / 2 ** 20)} MiB during the burst`,
    );
  },
);
