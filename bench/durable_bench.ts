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
 *    `fdatasync` after another on a bare file. For information.
 * 3. **Durable deliveries/s over JetStream, one publisher, one group of 2**:
 *    the same program joined to a private `nats-server -js` (file store in
 *    the temporary folder), the group's two members in two pools (each pool
 *    its own connection), the pattern `groupOnly` (a work-queue stream).
 *    Yardstick, same server, same run: raw `@nats-io/jetstream` publishes of
 *    the same JSON payloads, 256 in flight (acks awaited per batch), and two
 *    `consume()` of one durable pull consumer (explicit `ack()`) of a
 *    work-queue stream. Target ≥ 0.7×.
 * 4. **Publish latency p50/p99 over JetStream**: one awaited publish after
 *    another, against one awaited raw `js.publish` after another. Target
 *    ≤ 1.3×.
 *
 * Run: `deno run -A bench/durable_bench.ts` (`--messages=N`, default
 * 50,000; `--latency=N`, default 1,000; `--dir=PATH` puts the files on
 * another disk, default a temporary folder; `--rows=local` or
 * `--rows=jetstream` for one half). The figures depend on the disk's
 * `fdatasync` above all: quote the disk with them. The JetStream rows need
 * `nats-server` (Debian's, 2.9) on the PATH or in /usr/sbin.
 *
 * @module
 */
import { Main } from "../mod.ts";
import type { LogRecord } from "../mod.ts";
import { frame, scan } from "../src/durable/record.ts";
import {
  decodeMessage,
  encodeOutgoing,
  stampMessage,
} from "../src/durable/message.ts";
import {
  benchData,
  type DurableBenchConfig,
  type DurableBenchReport,
} from "./fixtures/durable_program.ts";
import { markdownTable } from "./_table.ts";
import { type NatsServer, startNatsServer } from "../tests/_nats.ts";
import { connect } from "@nats-io/transport-node";
import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
} from "@nats-io/jetstream";

const PROGRAM = new URL("./fixtures/durable_program.ts", import.meta.url);
const BURST = 256;

const option = (name: string): string | undefined =>
  Deno.args.find((arg) => arg.startsWith(`--${name}=`))?.slice(
    name.length + 3,
  );
const MESSAGES = Number(option("messages") ?? 50_000);
const LATENCY = Number(option("latency") ?? 1_000);
const ROWS = option("rows") ?? "local,jetstream";

// deno-lint-ignore no-console
const print = (line = ""): void => console.log(line);

/** Ours: ms from the first publish to the last delivery, and the latencies. */
async function ours(
  directory: string,
  config: DurableBenchConfig,
  nats?: NatsServer,
): Promise<{ ms: number; latency: number[] }> {
  const main = new Main();
  const reports: DurableBenchReport[] = [];
  const problems: string[] = [];
  const { promise: finished, resolve: finish } = Promise.withResolvers<void>();
  const counts = new Map<string, { count: number; at: number }>();
  const sink = (record: LogRecord): void => {
    if (record.message.startsWith("REPORT ")) {
      const report = JSON.parse(record.message.slice(7)) as DurableBenchReport;
      reports.push(report);
      if (report.kind === "progress") {
        counts.set(report.member, report);
        const all = [...counts.values()];
        if (all.reduce((sum, c) => sum + c.count, 0) === config.messages) {
          const at = Math.max(...all.map((c) => c.at));
          reports.push({ kind: "end", at });
        }
      }
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
    durable: {
      queues: ["q://bench/>"],
      directory,
      ...(nats === undefined ? {} : { groupOnly: ["q://bench/>"] }),
    },
    ...(nats === undefined ? {} : { nats: { servers: nats.url } }),
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
  const { body } = encodeOutgoing({
    queue: `q://bench/${n % 16}`,
    pool: "producer",
    service: "Producer",
    publishedAt: Date.now(),
    data: benchData(n),
  });
  stampMessage(body, n + 1, Date.now());
  return frame(body);
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

/**
 * The JetStream yardstick: `messages` raw publishes, BURST in flight, on a
 * work-queue stream, consumed by two `consume()` of one durable consumer
 * with explicit acks; then `latency` awaited publishes one after another.
 */
async function rawJetStream(
  url: string,
  messages: number,
  latency: number,
): Promise<{ ms: number; latency: number[] }> {
  const nc = await connect({ servers: url });
  const consumers = [
    await connect({ servers: url }),
    await connect({ servers: url }),
  ];
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: "raw_bench",
      subjects: ["raw.bench.>"],
      retention: RetentionPolicy.Workqueue,
    });
    await jsm.consumers.add("raw_bench", {
      durable_name: "g",
      ack_policy: AckPolicy.Explicit,
      filter_subject: "raw.bench.>",
      max_ack_pending: 1024,
    });
    const encoder = new TextEncoder();
    const js = jetstream(nc);
    let count = 0;
    const { promise: consumed, resolve } = Promise.withResolvers<void>();
    const iterators = await Promise.all(consumers.map(async (connection) => {
      const consumer = await jetstream(connection).consumers.get(
        "raw_bench",
        "g",
      );
      return consumer.consume({
        max_messages: 512,
        callback: (m) => {
          const { n } = m.json<{ n: number }>();
          m.ack();
          if (n < messages && ++count === messages) resolve();
        },
      });
    }));
    const start = performance.now();
    for (let n = 0; n < messages; n += BURST) {
      const publishes = [];
      for (let m = n; m < Math.min(messages, n + BURST); m++) {
        publishes.push(
          js.publish(
            `raw.bench.${m % 16}`,
            encoder.encode(JSON.stringify(benchData(m))),
          ),
        );
      }
      await Promise.all(publishes);
    }
    await consumed;
    const ms = performance.now() - start;
    const latencies: number[] = [];
    for (let i = 0; i < latency; i++) {
      const begin = performance.now();
      await js.publish(
        "raw.bench.latency",
        encoder.encode(JSON.stringify(benchData(messages + i))),
      );
      latencies.push(performance.now() - begin);
    }
    for (const iterator of iterators) await iterator.close();
    return { ms, latency: latencies };
  } finally {
    for (const connection of [nc, ...consumers]) await connection.close();
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** A row: ours against the yardstick, with the ratio. */
function row(
  name: string,
  ours: number,
  yardstick: number,
  target: string,
  digits = 0,
): string[] {
  return [
    name,
    ours.toFixed(digits),
    yardstick.toFixed(digits),
    `${(ours / yardstick).toFixed(2)}×`,
    target,
  ];
}

if (import.meta.main) {
  const given = option("dir");
  const dir = await Deno.makeTempDir({
    prefix: "durable_bench_",
    dir: given,
  });
  const rate = (ms: number): number => MESSAGES / ms * 1000;
  const rows: string[][] = [];
  try {
    const config = { messages: MESSAGES, burst: BURST, latency: LATENCY };
    if (ROWS.includes("local")) {
      const bareMs = await bare(`${dir}/bare.log`, MESSAGES);
      const ourRun = await ours(`${dir}/ours`, config);
      const bareLatencies = await bareLatency(`${dir}/latency.log`, LATENCY);
      rows.push(
        row(
          "local log: deliveries/s across two pools vs bare append+fdatasync+read back",
          rate(ourRun.ms),
          rate(bareMs),
          "≥ 0.5×",
        ),
        row(
          "local log: publish latency p50 (ms) vs bare write+fdatasync",
          percentile(ourRun.latency, 0.5),
          percentile(bareLatencies, 0.5),
          "information",
          3,
        ),
        row(
          "local log: publish latency p99 (ms) vs bare write+fdatasync",
          percentile(ourRun.latency, 0.99),
          percentile(bareLatencies, 0.99),
          "information",
          3,
        ),
      );
    }
    if (ROWS.includes("jetstream")) {
      const server = await startNatsServer(["-js", "-sd", `${dir}/jetstream`]);
      if (typeof server === "string") throw new Error(server);
      try {
        const raw = await rawJetStream(server.url, MESSAGES, LATENCY);
        const ourRun = await ours(
          `${dir}/unused`,
          { ...config, members: 2 },
          server,
        );
        rows.push(
          row(
            "JetStream: deliveries/s, one publisher, a group of 2, vs raw publish + consume()",
            rate(ourRun.ms),
            rate(raw.ms),
            "≥ 0.7×",
          ),
          row(
            "JetStream: publish latency p50 (ms) vs raw js.publish",
            percentile(ourRun.latency, 0.5),
            percentile(raw.latency, 0.5),
            "≤ 1.3×",
            3,
          ),
          row(
            "JetStream: publish latency p99 (ms) vs raw js.publish",
            percentile(ourRun.latency, 0.99),
            percentile(raw.latency, 0.99),
            "≤ 1.3×",
            3,
          ),
        );
      } finally {
        await server.stop();
      }
    }
    print(
      `Durable queues: ${MESSAGES} messages, ${BURST} publishes in flight; ${LATENCY} awaited publishes for latency. Files under ${dir}.`,
    );
    print();
    for (
      const line of markdownTable(
        ["row", "ours", "yardstick", "ratio", "target"],
        rows,
      )
    ) print(line);
    print();
    print(
      "For information: @moleculer/channels' README reports hundreds of messages/s for its JetStream adapter.",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
