/**
 * The bus benchmarks of issue 4: each row measures the bus and the raw
 * primitive it rides on in the same run, and prints the ratio (this machine
 * is noisy; absolute figures drift, ratios much less).
 *
 * 1. Same pool, 1 and 4 subscribers, deliveries/s. Raw: a bare
 *    `Map<string, Set<fn>>` dispatch loop with one `structuredClone` per
 *    message. Target ≥ 1×.
 * 2. Across pools, 1 and 4 subscriber pools, deliveries/s, zero lost. Raw:
 *    a bare BroadcastChannel, batches of 1,000, at most 128 unacknowledged
 *    channel messages per receiver (shared counters + `Atomics.waitAsync`),
 *    between the same number of workers. Target ≥ 0.8×.
 * 3. For information: batched `worker.postMessage` for the same fan-out.
 * 4. Across pools at 1 message/ms, p50 and p99 latency from publish to
 *    handler. Raw: one bare BroadcastChannel message at the same pace.
 *    Target p99 ≤ 2×.
 *
 * The framework is timed from outside: its services log `REPORT {json}`
 * lines with their own clock (`performance.timeOrigin + performance.now()`,
 * which agrees between workers to a few µs), captured by a `logSink`.
 *
 * Noise: the throughput rows run a warm-up round and then 3 measured rounds
 * in the same workers, and keep the best round of each side; the latency row
 * runs raw, ours three times over (each a warm-up and 2,000 paced messages) and
 * pools the samples. Every round of every row checks its counts (nothing
 * lost, nothing duplicated, in order), and the framework's subscribers also
 * report their grand totals when the program stops.
 *
 * Run: `deno run -A bench/bus_bench.ts` (about 1.5 minutes on 2 cores;
 * `--scale=0.2` for a quick look, `--only=2,4` for some rows, `--json` to
 * also print the figures as JSON).
 *
 * @module
 */
import { Main } from "../mod.ts";
import type { LogRecord } from "../mod.ts";
import {
  type BenchConfig,
  type BenchReport,
  now,
  pools,
  type Round,
} from "./fixtures/bus_program.ts";
import type { RawReport, RawSetup } from "./fixtures/raw_worker.ts";
import { takeWindow } from "./fixtures/raw_window.ts";

const PROGRAM = new URL("./fixtures/bus_program.ts", import.meta.url);
const RAW = new URL("./fixtures/raw_worker.ts", import.meta.url);
const BATCH = 1000;
const WINDOW = 128;
const TIMEOUT_MS = 120_000;
const MEASURED_ROUNDS = 3;
const LATENCY_REPEATS = 3;

const scale = Number(
  Deno.args.find((arg) => arg.startsWith("--scale="))?.slice(
    "--scale=".length,
  ) ?? 1,
);
const json = Deno.args.includes("--json");
/** `--only=2,4` runs only those rows (row 3 reuses row 2's figures for the bus). */
const only = Deno.args.find((arg) => arg.startsWith("--only="))?.slice(
  "--only=".length,
).split(",");
const runs = (row: number): boolean =>
  only === undefined || only.includes(String(row)) ||
  (row === 2 && only.includes("3"));
const sized = (n: number): number =>
  Math.max(BATCH, Math.round(n * scale / BATCH) * BATCH);

/** A warm-up round, then `MEASURED_ROUNDS` rounds of `count`. */
function rounds(
  warmUp: number,
  count: number,
  intervalMs?: number,
  measured = MEASURED_ROUNDS,
): Round[] {
  const round = (n: number): Round =>
    intervalMs === undefined ? { count: n } : { count: n, intervalMs };
  return [
    round(warmUp),
    ...Array.from({ length: measured }, () => round(count)),
  ];
}

const LOCAL = rounds(sized(200_000), sized(500_000));
const CROSS = rounds(sized(100_000), sized(300_000));
const LATENCY = rounds(
  Math.max(100, Math.round(500 * Math.min(1, scale))),
  2000,
  1,
  1,
);

// deno-lint-ignore no-console
const print = (line = ""): void => console.log(line);

// ---- measurements ---------------------------------------------------------

/** What a subscription (ours or raw) reported at the end of a round. */
type End = Omit<Extract<RawReport, { kind: "end" }>, "kind" | "start">;

/** The rounds of one run: when each started, and each receiver's end. */
interface RunResult {
  starts: Map<number, number>;
  ends: End[];
  problems: string[];
}

/** The figures of one side of a row. */
interface Measurement {
  /** Deliveries/s of each measured round. */
  rates: number[];
  /** Publish → handler, all measured rounds pooled, sorted, in ms. */
  latencies: number[];
  /** Deliveries checked, all rounds (warm-up included). */
  deliveries: number;
  problems: string[];
}

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  ];
}

const best = (m: Measurement): number | undefined =>
  m.rates.length === 0 ? undefined : Math.max(...m.rates);

/** Checks every round's counts and computes the rates of the measured rounds. */
function measure(
  result: RunResult,
  plan: Round[],
  subscriptions: number,
): Measurement {
  const problems = [...result.problems];
  const rates: number[] = [];
  const latencies: number[] = [];
  let deliveries = 0;
  for (const [round, { count }] of plan.entries()) {
    const ends = result.ends.filter((end) => end.round === round);
    if (ends.length !== subscriptions) {
      problems.push(
        `round ${round}: ${ends.length} of ${subscriptions} subscribers finished`,
      );
    }
    for (const end of ends) {
      deliveries += end.count;
      if (end.lost > 0) problems.push(`round ${round}: ${end.lost} lost`);
      if (end.duplicates > 0) {
        problems.push(
          `round ${round}: ${end.duplicates} duplicated or out of order`,
        );
      }
      if (end.count !== count) {
        problems.push(`round ${round}: ${end.count} received of ${count}`);
      }
    }
    const start = result.starts.get(round);
    if (round === 0 || start === undefined || ends.length === 0) continue;
    rates.push(
      (count * ends.length) /
        ((Math.max(...ends.map((e) => e.at)) - start) / 1000),
    );
    for (const end of ends) latencies.push(...end.latencies ?? []);
  }
  return {
    rates,
    latencies: latencies.sort((a, b) => a - b),
    deliveries,
    problems,
  };
}

function merge(measurements: Measurement[]): Measurement {
  return {
    rates: measurements.flatMap((m) => m.rates),
    latencies: measurements.flatMap((m) => m.latencies).sort((a, b) => a - b),
    deliveries: measurements.reduce((sum, m) => sum + m.deliveries, 0),
    problems: measurements.flatMap((m) => m.problems),
  };
}

// ---- the framework --------------------------------------------------------

/** Runs the bench program with `config` until its publisher is done, then stops it. */
async function runProgram(
  config: BenchConfig,
  subscriptions: number,
): Promise<RunResult> {
  const main = new Main();
  main.servicePools = pools(config);
  const reports: BenchReport[] = [];
  const problems: string[] = [];
  const { promise: finished, resolve: finish } = Promise.withResolvers<void>();
  const sink = (record: LogRecord): void => {
    if (record.message.startsWith("REPORT ")) {
      const report = JSON.parse(
        record.message.slice("REPORT ".length),
      ) as BenchReport;
      reports.push(report);
      if (report.kind === "done") finish();
    } else if (record.level === "warn" || record.level === "error") {
      problems.push(
        `[${record.level} ${record.pool ?? "main"}] ${
          record.message.split("\n")[0]
        }`,
      );
    }
  };
  const done = main.run({
    module: PROGRAM,
    workerData: config,
    signals: false,
    setExitCode: false,
    logLevel: "info",
    logSink: sink,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), TIMEOUT_MS);
  });
  const late = await Promise.race([
    finished.then(() => false),
    timedOut,
    done.then(() => false),
  ]);
  clearTimeout(timer);
  if (late) problems.push(`timed out after ${TIMEOUT_MS} ms`);
  await main.stop();
  const report = await done;
  for (const failure of report.failures) {
    problems.push(
      `${failure.pool}/${failure.service} failed: ${failure.message}`,
    );
  }
  // Grand totals, reported at terminate: a late duplicate or a stray
  // delivery after the last round shows here.
  const sent = config.rounds.reduce((sum, r) => sum + r.count, 0);
  const totals = reports.filter((r) => r.kind === "total");
  if (totals.length !== subscriptions) {
    problems.push(
      `${totals.length} of ${subscriptions} subscriptions reported totals`,
    );
  }
  for (const total of totals) {
    if (total.received !== sent) {
      problems.push(
        `${total.subscription} received ${total.received} of ${sent} in all`,
      );
    }
  }
  const starts = new Map<number, number>();
  const ends: End[] = [];
  for (const r of reports) {
    if (r.kind === "start") starts.set(r.round, r.at);
    if (r.kind === "end") ends.push(r);
  }
  return { starts, ends, problems };
}

async function oursLocal(subscribers: number): Promise<Measurement> {
  const config: BenchConfig = {
    pools: { bench: { publisher: true, subscriptions: subscribers } },
    rounds: LOCAL,
  };
  return measure(await runProgram(config, subscribers), LOCAL, subscribers);
}

async function oursCross(
  receivers: number,
  plan: Round[],
): Promise<Measurement> {
  const config: BenchConfig = {
    pools: { publisher: { publisher: true } },
    rounds: plan,
  };
  for (let i = 1; i <= receivers; i++) {
    config.pools[`subscriber${i}`] = { subscriptions: 1 };
  }
  return measure(await runProgram(config, receivers), plan, receivers);
}

// ---- the raw primitives ---------------------------------------------------

/** One raw worker and what it said so far. */
class RawWorker {
  readonly worker: Worker;
  readonly reports: RawReport[] = [];
  #listeners = new Set<() => void>();

  constructor() {
    this.worker = new Worker(RAW, { type: "module" });
    this.worker.onmessage = (event: MessageEvent<RawReport>) => {
      this.reports.push(event.data);
      for (const listener of [...this.#listeners]) listener();
    };
  }

  /** Resolves once `count` reports match (past or future), or rejects after the timeout. */
  waitFor(
    match: (report: RawReport) => boolean,
    count = 1,
  ): Promise<RawReport[]> {
    const found = (): RawReport[] | undefined => {
      const matches = this.reports.filter(match);
      return matches.length >= count ? matches : undefined;
    };
    const already = found();
    if (already !== undefined) return Promise.resolve(already);
    const { promise, resolve, reject } = Promise.withResolvers<RawReport[]>();
    const timer = setTimeout(() => {
      this.#listeners.delete(listener);
      reject(new Error(`raw worker: timed out after ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    const listener = (): void => {
      const matches = found();
      if (matches === undefined) return;
      clearTimeout(timer);
      this.#listeners.delete(listener);
      resolve(matches);
    };
    this.#listeners.add(listener);
    return promise;
  }

  async setup(setup: RawSetup): Promise<void> {
    this.worker.postMessage(setup);
    await this.waitFor((r) => r.kind === "ready");
  }

  terminate(): void {
    this.worker.terminate();
  }
}

type EndReport = Extract<RawReport, { kind: "end" }>;
const endOf = (round: number) => (r: RawReport): boolean =>
  r.kind === "end" && r.round === round;

/** Runs `plan` round by round; `startRound` starts one and resolves with its start time. */
async function runRaw(
  receivers: RawWorker[],
  plan: Round[],
  perReceiver: number,
  startRound: (round: number, spec: Round) => Promise<number | undefined>,
): Promise<RunResult> {
  const starts = new Map<number, number>();
  const ends: End[] = [];
  const problems: string[] = [];
  try {
    for (const [round, spec] of plan.entries()) {
      const ended = Promise.all(
        receivers.map((r) => r.waitFor(endOf(round), perReceiver)),
      );
      const start = await startRound(round, spec);
      const found = (await ended).flat() as EndReport[];
      starts.set(round, start ?? Math.min(...found.map((e) => e.start!)));
      ends.push(...found);
    }
  } catch (error) {
    problems.push(String(error));
  }
  return { starts, ends, problems };
}

/** The bare dispatch loop, in a worker like a pool's. */
async function rawLocal(subscribers: number): Promise<Measurement> {
  const raw = new RawWorker();
  try {
    await raw.setup({ kind: "setup", role: "local", subscribers });
    const result = await runRaw([raw], LOCAL, subscribers, (round, spec) => {
      raw.worker.postMessage({ kind: "round", round, count: spec.count });
      return Promise.resolve(undefined);
    });
    return measure(result, LOCAL, subscribers);
  } finally {
    raw.terminate();
  }
}

function credits(receivers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * (receivers + 1));
}

/** Receivers of a raw fan-out, set up and ready. */
async function rawReceivers(
  role: "bc-recv" | "pm-recv",
  receivers: number,
  channel: string,
  shared: SharedArrayBuffer,
  plan: Round[],
  ack: boolean,
): Promise<RawWorker[]> {
  const workers = Array.from({ length: receivers }, () => new RawWorker());
  const counts = plan.map((r) => r.count);
  await Promise.all(
    workers.map((w, slot) =>
      w.setup({
        kind: "setup",
        role,
        channel,
        credits: shared,
        slot,
        rounds: counts,
        ack,
      })
    ),
  );
  return workers;
}

/** A bare BroadcastChannel from one worker to `receivers` workers. */
async function rawBroadcast(
  receivers: number,
  plan: Round[],
  paced = false,
): Promise<Measurement> {
  const channel = `bench-${crypto.randomUUID()}`;
  const shared = credits(receivers);
  const workers = await rawReceivers(
    "bc-recv",
    receivers,
    channel,
    shared,
    plan,
    !paced,
  );
  const sender = new RawWorker();
  try {
    await sender.setup({
      kind: "setup",
      role: paced ? "lat-send" : "bc-send",
      channel,
      credits: shared,
      receivers,
      batch: BATCH,
      window: WINDOW,
    });
    const result = await runRaw(workers, plan, 1, async (round, spec) => {
      sender.worker.postMessage({ kind: "round", round, ...spec });
      const [start] = await sender.waitFor((r) =>
        r.kind === "start" && r.round === round
      );
      return (start as Extract<RawReport, { kind: "start" }>).at;
    });
    return measure(result, plan, receivers);
  } finally {
    sender.terminate();
    for (const w of workers) w.terminate();
  }
}

/** Batched `worker.postMessage` from this thread to `receivers` workers, same flow control. */
async function rawPostMessage(
  receivers: number,
  plan: Round[],
): Promise<Measurement> {
  const shared = credits(receivers);
  const counters = new Int32Array(shared);
  const notifyAt = receivers;
  const workers = await rawReceivers(
    "pm-recv",
    receivers,
    "",
    shared,
    plan,
    true,
  );
  const send = async (count: number): Promise<void> => {
    for (let first = 0; first < count; first += BATCH) {
      const last = Math.min(count, first + BATCH);
      const messages = [];
      for (let index = first; index < last; index++) {
        messages.push({ index, s: "hello" });
      }
      await takeWindow(counters, receivers, WINDOW, notifyAt);
      for (const w of workers) w.worker.postMessage(messages);
    }
  };
  try {
    const result = await runRaw(workers, plan, 1, (_round, spec) => {
      const start = now();
      void send(spec.count);
      return Promise.resolve(start);
    });
    return measure(result, plan, receivers);
  } finally {
    for (const w of workers) w.terminate();
  }
}

// ---- the table ------------------------------------------------------------

interface Row {
  what: string;
  ours: string;
  raw: string;
  ratio: string;
  target: string;
  met: string;
  counts: string;
}

const rows: Row[] = [];
const figures: Record<string, unknown> = {};

function rate(value: number | undefined): string {
  if (value === undefined) return "—";
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M/s`;
  return `${(value / 1e3).toFixed(0)}k/s`;
}

function ms(value: number | undefined): string {
  if (value === undefined) return "—";
  return value >= 10
    ? `${value.toFixed(1)} ms`
    : `${(value * 1000).toFixed(0)} µs`;
}

function countsOf(ours: Measurement, raw: Measurement): string {
  const problems = [
    ...ours.problems.map((p) => `ours: ${p}`),
    ...raw.problems.map((p) => `raw: ${p}`),
  ];
  if (problems.length === 0) {
    const n = (m: Measurement): string => m.deliveries.toLocaleString("en");
    return `ok, ${n(ours)} / ${n(raw)} checked`;
  }
  return `FAILED: ${[...new Set(problems)].slice(0, 4).join("; ")}`;
}

function addRateRow(
  what: string,
  ours: Measurement,
  raw: Measurement,
  target: number | undefined,
): void {
  const [o, r] = [best(ours), best(raw)];
  const ratio = o !== undefined && r !== undefined ? o / r : undefined;
  const countsOk = ours.problems.length === 0 && raw.problems.length === 0;
  rows.push({
    what,
    ours: rate(o),
    raw: rate(r),
    ratio: ratio === undefined ? "—" : `${ratio.toFixed(2)}×`,
    target: target === undefined ? "info" : `≥ ${target}×`,
    met: target === undefined
      ? ""
      : ratio !== undefined && ratio >= target && countsOk
      ? "yes"
      : "NO",
    counts: countsOf(ours, raw),
  });
  figures[what] = {
    ours: ours.rates,
    raw: raw.rates,
    ratio,
    problems: [...ours.problems, ...raw.problems],
  };
}

function addLatencyRows(
  what: string,
  ours: Measurement,
  raw: Measurement,
): void {
  const ok = ours.problems.length === 0 && raw.problems.length === 0;
  const summary: Record<string, unknown> = {
    samples: [ours.latencies.length, raw.latencies.length],
  };
  for (const [key, p] of [["p50", 0.5], ["p99", 0.99]] as const) {
    const [o, r] = [
      percentile(ours.latencies, p),
      percentile(raw.latencies, p),
    ];
    const ratio = o !== undefined && r !== undefined ? o / r : undefined;
    rows.push({
      what: `${what}, ${key}`,
      ours: ms(o),
      raw: ms(r),
      ratio: ratio === undefined ? "—" : `${ratio.toFixed(2)}×`,
      target: key === "p99" ? "≤ 2×" : "info",
      met: key === "p99"
        ? (ratio !== undefined && ratio <= 2 && ok ? "yes" : "NO")
        : "",
      counts: countsOf(ours, raw),
    });
    summary[key] = { ours: o, raw: r, ratio };
  }
  for (
    const [key, p] of [["p90", 0.9], ["p99.9", 0.999], ["max", 1]] as const
  ) {
    summary[key] = {
      ours: percentile(ours.latencies, p),
      raw: percentile(raw.latencies, p),
    };
  }
  figures[what] = summary;
}

function printTable(): void {
  const header: Row = {
    what: "row",
    ours: "ours",
    raw: "raw, same run",
    ratio: "ours/raw",
    target: "target",
    met: "met",
    counts: "counts (ours / raw deliveries)",
  };
  const keys = Object.keys(header) as Array<keyof Row>;
  const width = (key: keyof Row): number =>
    Math.max(...[header, ...rows].map((row) => row[key].length));
  const line = (row: Row): string =>
    `| ${keys.map((key) => row[key].padEnd(width(key))).join(" | ")} |`;
  print(line(header));
  print(`|${keys.map((key) => "-".repeat(width(key) + 2)).join("|")}|`);
  for (const row of rows) print(line(row));
}

// ---- main -----------------------------------------------------------------

if (import.meta.main) {
  const began = performance.now();
  const n = (value: number): string => value.toLocaleString("en");
  print(
    `bus benchmarks: Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${Deno.build.os}/${Deno.build.arch}, ` +
      `${navigator.hardwareConcurrency} cores, ${new Date().toISOString()}`,
  );
  print(
    `rounds: same pool ${n(LOCAL[0]!.count)} warm-up + ${MEASURED_ROUNDS} × ${
      n(LOCAL[1]!.count)
    }; ` +
      `across pools ${n(CROSS[0]!.count)} + ${MEASURED_ROUNDS} × ${
        n(CROSS[1]!.count)
      } (batches of ${BATCH}, ` +
      `window ${WINDOW}); latency ${LATENCY_REPEATS} × (${
        n(LATENCY[0]!.count)
      } + ${n(LATENCY[1]!.count)}) at 1/ms`,
  );
  const progress = (what: string): void => {
    Deno.stderr.writeSync(new TextEncoder().encode(`  … ${what}\n`));
  };

  for (const subscribers of runs(1) ? [1, 4] : []) {
    progress(`same pool, ${subscribers} subscriber(s)`);
    const raw = await rawLocal(subscribers);
    const ours = await oursLocal(subscribers);
    addRateRow(
      `1. same pool, ${subscribers} subscriber${subscribers > 1 ? "s" : ""}`,
      ours,
      raw,
      1,
    );
  }

  const crossOurs = new Map<number, Measurement>();
  for (const receivers of runs(2) ? [1, 4] : []) {
    progress(`across pools, ${receivers} subscriber pool(s)`);
    const raw = await rawBroadcast(receivers, CROSS);
    const ours = await oursCross(receivers, CROSS);
    crossOurs.set(receivers, ours);
    const pools = `${receivers} subscriber pool${receivers > 1 ? "s" : ""}`;
    addRateRow(
      `2. across pools, ${pools} (raw: BroadcastChannel)`,
      ours,
      raw,
      0.8,
    );
  }

  for (const receivers of runs(3) ? [1, 4] : []) {
    progress(`worker.postMessage, ${receivers} worker(s)`);
    const raw = await rawPostMessage(receivers, CROSS);
    const pools = `${receivers} subscriber pool${receivers > 1 ? "s" : ""}`;
    addRateRow(
      `3. across pools, ${pools} (raw: worker.postMessage)`,
      crossOurs.get(receivers)!,
      raw,
      undefined,
    );
  }

  const rawRuns: Measurement[] = [];
  const oursRuns: Measurement[] = [];
  for (let i = 0; i < (runs(4) ? LATENCY_REPEATS : 0); i++) {
    progress(`latency at 1 message/ms, run ${i + 1} of ${LATENCY_REPEATS}`);
    rawRuns.push(await rawBroadcast(1, LATENCY, true));
    oursRuns.push(await oursCross(1, LATENCY));
  }
  addLatencyRows(
    "4. across pools at 1 msg/ms, latency (raw: BroadcastChannel)",
    merge(oursRuns),
    merge(rawRuns),
  );

  print();
  printTable();
  print();
  print(
    "Rates: deliveries/s (messages × subscribers), first publish → last delivery, best of the measured rounds.",
  );
  print(
    "Raw 1 clones once per message (shared by its handlers); ours copies once per subscription.",
  );
  print(
    "Raw 2 and 3: batches of 1,000, at most 128 unacknowledged batches per receiver; raw 3 sends from the main thread.",
  );
  print(
    `Latency: publish → handler, ${LATENCY_REPEATS} alternating runs pooled. Total time ${
      ((performance.now() - began) / 1000).toFixed(1)
    } s.`,
  );
  if (json) print(JSON.stringify(figures));
  if (rows.some((row) => row.counts.startsWith("FAILED"))) Deno.exitCode = 1;
}
