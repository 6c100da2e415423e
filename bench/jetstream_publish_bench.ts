/**
 * The JetStream publish path alone: the pool's `JetStreamCarrier.publish`
 * (what a durable `ctx.publish` ends in, joined to NATS) against a raw
 * `js.publish` of the same JSON, one awaited publish after another, in one
 * thread, on a private `nats-server -js`. Blocks of 500 publishes alternate
 * ours / raw, so both see the same load; it prints p50 and p99 latency and
 * the process's CPU time per publish (`process.cpuUsage()`, user + system),
 * and their ratios. Unlike row 4 of `durable_bench.ts`, no pool, worker or
 * consumer runs beside it: what it measures is what our publish adds, not
 * what the program's other threads take from it.
 *
 * Run: `deno run -A bench/jetstream_publish_bench.ts` (`--blocks=N`, default
 * 20 blocks of 500 each).
 *
 * @module
 */
import process from "node:process";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { jetStreamCarrier } from "../src/nats/jetstream_carrier.ts";
import { resolveNats } from "../src/nats/options.ts";
import { startNatsServer } from "../tests/_nats.ts";
import { benchData } from "./fixtures/durable_program.ts";
import { markdownTable } from "./_table.ts";

const BLOCK = 500;
const BLOCKS = Number(
  Deno.args.find((a) => a.startsWith("--blocks="))?.slice(9) ?? 20,
);

// deno-lint-ignore no-console
const print = (line = ""): void => console.log(line);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

if (import.meta.main) {
  const store = await Deno.makeTempDir({ prefix: "jetstream_publish_" });
  const server = await startNatsServer(["-js", "-sd", store]);
  if (typeof server === "string") throw new Error(server);
  const quiet = (): void => {};
  const open = await jetStreamCarrier(
    {
      ...resolveNats({ servers: server.url })!,
      processId: "bench",
      closeTimeout: 2000,
    },
    {
      streams: ["q://latency/>"],
      groupOnly: [],
      dedupeWindow: 120_000,
      ackWait: 30_000,
    },
  );
  const ours = open({
    pool: "bench",
    log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    status: quiet,
  });
  const nc = await connect({ servers: server.url });
  try {
    await (await jetstreamManager(nc)).streams.add({
      name: "raw_latency",
      subjects: ["raw.latency.>"],
    });
    const js = jetstream(nc);
    const encoder = new TextEncoder();
    let n = 0;
    const publishes = {
      ours: (): Promise<void> =>
        ours.publish({
          queue: "q://latency/x",
          pool: "bench",
          service: "Producer",
          publishedAt: Date.now(),
          data: benchData(n++),
        }),
      raw: async (): Promise<void> => {
        await js.publish(
          "raw.latency.x",
          encoder.encode(JSON.stringify(benchData(n++))),
        );
      },
    };
    // Warm up both paths (streams created, code compiled).
    for (let i = 0; i < 300; i++) {
      await publishes.ours();
      await publishes.raw();
    }
    const latency = { ours: [] as number[], raw: [] as number[] };
    const cpu = { ours: 0, raw: 0 };
    for (let block = 0; block < BLOCKS; block++) {
      for (const name of ["ours", "raw"] as const) {
        const before = process.cpuUsage();
        for (let i = 0; i < BLOCK; i++) {
          const start = performance.now();
          await publishes[name]();
          latency[name].push(performance.now() - start);
        }
        const used = process.cpuUsage(before);
        cpu[name] += used.user + used.system;
      }
    }
    const count = BLOCKS * BLOCK;
    const row = (
      name: string,
      a: number,
      b: number,
      digits: number,
    ): string[] => [
      name,
      a.toFixed(digits),
      b.toFixed(digits),
      `${(a / b).toFixed(2)}×`,
    ];
    const table = markdownTable(["row", "ours", "raw", "ratio"], [
      row(
        "publish latency p50 (ms)",
        percentile(latency.ours, 0.5),
        percentile(latency.raw, 0.5),
        3,
      ),
      row(
        "publish latency p99 (ms)",
        percentile(latency.ours, 0.99),
        percentile(latency.raw, 0.99),
        3,
      ),
      row("CPU per publish (µs)", cpu.ours / count, cpu.raw / count, 1),
    ]);
    for (const line of table) print(line);
    print(`${count} awaited publishes each, in alternating blocks of ${BLOCK}`);
  } finally {
    await ours.close();
    await nc.close();
    await server.stop();
    await Deno.remove(store, { recursive: true });
  }
}
