/**
 * The transports under memory load: large messages across pools, measured by
 * the process's RSS, so this file runs in a process of its own (`deno task
 * test:load`, beside the other test files).
 */
import assert from "node:assert/strict";
import { start, testEachTransport } from "./_helpers.ts";
import { transportFixture } from "./fixtures/transport_scenarios.ts";

testEachTransport(
  "100 messages of 512 KiB across pools, beside 4 idle pools, stay within a small multiple of their size in memory",
  async () => {
    const count = 100;
    const bytes = 512 * 1024;
    const program = start(transportFixture, "largeMessages", {
      count,
      bytes,
      idlePools: 4,
    });
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, Deno.memoryUsage().rss);
    }, 20);
    try {
      await program.main.ready;
      const base = Deno.memoryUsage().rss;
      peak = base;
      const [received] = await program.waitForReport(
        "received",
        (r) => r.service === "Sink",
      );
      assert.deepEqual(received, {
        kind: "received",
        service: "Sink",
        count,
        bytes: count * bytes,
      });
      const payload = count * bytes;
      const growth = peak - base;
      // Over a BroadcastChannel every pool wakes for every message, but a
      // large string travels in shared memory and only its audience reads
      // it: the bound is the same for both transports (it was 40× for the
      // channel while every pool copied every message: about 20× measured).
      const bound = 4;
      assert.ok(
        growth < bound * payload,
        `RSS grew by ${(growth / 2 ** 20).toFixed(0)} MiB for a payload of ${
          payload / 2 ** 20
        } MiB`,
      );
    } finally {
      clearInterval(sampler);
      await program.stop();
    }
  },
);
