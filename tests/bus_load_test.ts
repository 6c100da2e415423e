/**
 * The bus under load: a million messages from four publisher pools to four
 * subscriber pools, one of them slow (scenario `load` of
 * `fixtures/bus_scenarios.ts`).
 */
import assert from "node:assert/strict";
import { busFixture } from "./fixtures/bus_scenarios.ts";
import { start, testEachTransport } from "./_helpers.ts";

const PER_PUBLISHER = 250_000;
const PUBLISHERS = 4;
const TOTAL = PER_PUBLISHER * PUBLISHERS;
const BUFFER = 1024;

testEachTransport(
  "1,000,000 messages from 4 publisher pools reach 4 subscriber pools (one slow): exact, no duplicates, bounded",
  async () => {
    const program = start(busFixture, "load", {
      publishers: PUBLISHERS,
      perPublisher: PER_PUBLISHER,
    }, { bufferSize: BUFFER });
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
      const reached = await program.waitForReport(
        "tally",
        (r) => r.when === "reached",
        4,
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
      const finals = program.reportsOf("tally").filter((r) =>
        r.when === "terminate"
      );
      assert.deepEqual(
        finals.map((f) => f.service).sort(),
        ["S1", "S2", "S3", "Slow"],
      );
      for (const f of finals) {
        assert.equal(
          f.count,
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
