/**
 * The durable-queue benchmark of issue 22 (local half): each row measures
 * ours and its yardstick in the same run and prints the ratio.
 *
 * 1. **Durable deliveries/s on the local log, across two pools**: pool
 *    `producer` publishes `--messages` jobs on `q://bench/*`, 256 in flight
 *    at a time, each publish resolving once its record is appended and
 *    synced (`fdatasync`, one per batch of concurrent appends); pool
 *    `consumer` handles them in a group, each acknowledged. Timed from the
 *    first publish until the consumer has handled the last. Yardstick: a
 *    bare program in the same process appending the same records (same
 *    framing, CRC-32 and V8 serialization) to a file, 256 per `write` +
 *    `fdatasync`, then reading the file back and decoding every record.
 *    Target ≥ 0.5×.
 * 2. **Publish latency p50/p99 on a durable queue**: one awaited publish
 *    after another (`--latency` of them). Yardstick: one record `write` +
 *    `fdatasync` after another on a bare file. For information here (the
 *    issue's target row compares with raw JetStream, the other half).
 *
 * Run: `deno run -A bench/durable_bench.ts` (`--messages=N`, default
 * 50,000; `--latency=N`, default 1,000; `--dir=PATH` puts the files on
 * another disk, default a temporary folder). The figures depend on the
 * disk's `fdatasync` above all: quote the disk with them.
 *
 * @module
 */
import { Main } from "../mod.ts";
import type { LogRecord } from "../mod.ts";
import { serialize } from "node:v8";
import { frame, scan } from "../src/durable/record.ts";
import { decodeMessage } from "../src/durable/message.ts";
import {
  benchData,
  type DurableBenchConfig,
  type DurableBenchReport,
} from "./fixtures/durable_program.ts";
import { markdownTable } from "./_table.ts";

const PROGRAM = new URL("./fixtures/durable_program.ts", import.meta.url);
const BURST = 256;

const option = (name: string): string | undefined =>
  Deno.args.find((arg) => arg.startsWith(`--${name}=`))?.slice(
    name.length + 3,
  );
const MESSAGES = Number(option("messages") ?? 50_000);
const LATENCY = Number(option("latency") ?? 1_000);

// deno-lint-ignore no-console
const print = (line = ""): void => console.log(line);

/** Ours: ms from the first publish to the last delivery, and the latencies. */
async function ours(
  directory: string,
  config: DurableBenchConfig,
): Promise<{ ms: number; latency: number[] }> {
  const main = new Main();
  const reports: DurableBenchReport[] = [];
  const problems: string[] = [];
  const { promise: finished, resolve: finish } = Promise.withResolvers<void>();
  const sink = (record: LogRecord): void => {
    if (record.message.startsWith("REPORT ")) {
      reports.push(JSON.parse(record.message.slice(7)));
      const kinds = new Set(reports.map((r) => r.kind));
      if (kinds.has("end") && kinds.has("latency")) finish();
    } else if (record.level === "error") {
      problems.push(record.message);
      finish();
    }
  };
  const { pools } = await import("./fixtures/durable_program.ts");
  main.servicePools = pools(config);
  const done = main.run({
    module: PROGRAM,
    workerData: config,
    signals: false,
    setExitCode: false,
    logSink: sink,
    durable: { queues: ["q://bench/>"], directory },
  });
  await Promise.race([finished, done]);
  await main.stop();
  await done;
  if (problems.length > 0) throw new Error(problems.join("\n"));
  const at = (kind: "start" | "end"): number =>
    (reports.find((r) => r.kind === kind) as { at: number }).at;
  const latency = reports.find((r) => r.kind === "latency") as {
    ms: number[];
  };
  return { ms: at("end") - at("start"), latency: latency.ms };
}

/** The record ours writes for message `n`. */
function record(n: number): Uint8Array {
  return frame(serialize({
    seq: n + 1,
    queue: `q://bench/${n % 16}`,
    pool: "producer",
    service: "Producer",
    publishedAt: Date.now(),
    storedAt: Date.now(),
    data: benchData(n),
  }));
}

/** The yardstick: append in batches of BURST with one fdatasync each, read back. */
async function bare(path: string, messages: number): Promise<number> {
  const start = performance.now();
  {
    using file = await Deno.open(path, { append: true, create: true });
    for (let n = 0; n < messages; n += BURST) {
      const records: Uint8Array[] = [];
      for (let m = n; m < Math.min(messages, n + BURST); m++) {
        records.push(record(m));
      }
      const bytes = new Uint8Array(records.reduce((a, r) => a + r.length, 0));
      let offset = 0;
      for (const r of records) {
        bytes.set(r, offset);
        offset += r.length;
      }
      for (let written = 0; written < bytes.length;) {
        written += await file.write(bytes.subarray(written));
      }
      await file.syncData();
    }
  }
  const result = scan(await Deno.readFile(path));
  let count = 0;
  for (const { body } of result.records) {
    if (decodeMessage(body).seq > 0) count++;
  }
  if (count !== messages) throw new Error(`bare: read ${count} of ${messages}`);
  return performance.now() - start;
}

/** The yardstick of latency: one record write + fdatasync after another. */
async function bareLatency(path: string, count: number): Promise<number[]> {
  using file = await Deno.open(path, { append: true, create: true });
  const ms: number[] = [];
  for (let n = 0; n < count; n++) {
    const start = performance.now();
    const bytes = record(n);
    for (let written = 0; written < bytes.length;) {
      written += await file.write(bytes.subarray(written));
    }
    await file.syncData();
    ms.push(performance.now() - start);
  }
  return ms;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

if (import.meta.main) {
  const given = option("dir");
  const dir = await Deno.makeTempDir({
    prefix: "durable_bench_",
    dir: given,
  });
  try {
    const config = { messages: MESSAGES, burst: BURST, latency: LATENCY };
    const bareMs = await bare(`${dir}/bare.log`, MESSAGES);
    const ourRun = await ours(`${dir}/ours`, config);
    const bareLatencies = await bareLatency(`${dir}/latency.log`, LATENCY);
    const rate = (ms: number): number => MESSAGES / ms * 1000;
    const fixed = (n: number, digits = 0): string => n.toFixed(digits);
    print(
      `Durable queues, local log: ${MESSAGES} messages, ${BURST} publishes in flight; ${LATENCY} awaited publishes for latency. Files under ${dir}.`,
    );
    print();
    for (
      const line of markdownTable([
        "row",
        "ours",
        "yardstick",
        "ratio",
        "target",
      ], [
        [
          "deliveries/s across two pools vs bare append+fdatasync+read back",
          fixed(rate(ourRun.ms)),
          fixed(rate(bareMs)),
          `${fixed(rate(ourRun.ms) / rate(bareMs), 2)}×`,
          "≥ 0.5×",
        ],
        [
          "publish latency p50 (ms) vs bare write+fdatasync",
          fixed(percentile(ourRun.latency, 0.5), 3),
          fixed(percentile(bareLatencies, 0.5), 3),
          `${
            fixed(
              percentile(ourRun.latency, 0.5) / percentile(bareLatencies, 0.5),
              2,
            )
          }×`,
          "information",
        ],
        [
          "publish latency p99 (ms) vs bare write+fdatasync",
          fixed(percentile(ourRun.latency, 0.99), 3),
          fixed(percentile(bareLatencies, 0.99), 3),
          `${
            fixed(
              percentile(ourRun.latency, 0.99) /
                percentile(bareLatencies, 0.99),
              2,
            )
          }×`,
          "information",
        ],
      ])
    ) print(line);
    print();
    print(
      "For information: @moleculer/channels' README reports hundreds of messages/s for its JetStream adapter.",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
