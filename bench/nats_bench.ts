/**
 * The NATS benchmarks of issue 9, against a private `nats-server` this
 * program starts on a free port (never the shared one). Each row measures
 * ours and its yardstick in the same run, against the same server:
 *
 * 1. `1:1` — cross-process deliveries/s: a publisher process → a subscriber
 *    process, small JSON objects (`{ id, round, text, at }`), JSON encoded
 *    and decoded on both ends. Target ≥ 0.7×.
 * 2. `fan-out` — the same to 4 subscriber processes, deliveries/s counted at
 *    the subscribers. Target ≥ 0.7×.
 * 3. `request/reply` — sequential round trips to a responder in another
 *    process, p50 and p99. Target ≤ 1.3×.
 * 4. For information: Moleculer 0.15 over NATS, measured on this machine
 *    (a constant, from the project notes).
 * 5. `local flow` (issue 21) — a 1:1 flow between two pools of one process
 *    joined to NATS with no other process interested, against the same flow
 *    in a process not joined to NATS. Target ≥ 0.9× (nothing should go to
 *    the server).
 * 6. `stalled subscriber` (issue 21) — the peak RSS of a subscriber process
 *    whose handler stalls 4 s while 100,000 messages of 4 KiB (400 MB)
 *    arrive from a plain client, against its RSS at rest. Target ≤ rest +
 *    2 × the arrival bound (`nats.arrivalBytes`, 8 MiB by default); what was
 *    dropped past the bound is printed.
 *
 * Yardstick: the RAW client (`@nats-io/transport-node`) in child `deno run`
 * processes (`bench/fixtures/nats_raw.ts`): a plain publish loop and a
 * callback subscription; `nc.request` for the round trips, from this
 * process.
 *
 * Ours: the same shapes over the library's `main.run({ nats })`
 * (`bench/fixtures/nats_ours.ts`): a service publishing with
 * `await ctx.publish` in a loop, a subscribing service, and `ctx.request`
 * from a service in a child process.
 *
 * Rates run a warm-up round and then 3 measured rounds, all of 200,000, in the same
 * processes and keep the best; every round checks its counts (nothing lost,
 * nothing duplicated, in order). Rates: deliveries/s (messages ×
 * subscribers), from the first publish to the last delivery (wall clock,
 * `performance.timeOrigin + now()`, which processes on one machine share).
 *
 * Run: `deno run -A bench/nats_bench.ts` (about 60 s on 2 cores). Options:
 * `--scale=0.2` for a quick look (fewer messages and requests), `--json`
 * also prints the figures as JSON, `--rows=rate,fanout,rr,local,stall` runs
 * only those rows. To see where the time goes: `MF_BENCH_THREAD_CPU=1`
 * prints each child's CPU time per thread as it ends (Linux);
 * `MF_BENCH_V8_FLAGS=--perf-basic-prof` (or `--prof`) passes V8 flags to
 * the children, and `MF_BENCH_CWD=<dir>` runs them in `<dir>`, where
 * `--prof` writes its logs.
 *
 * @module
 */
import { connect } from "@nats-io/transport-node";
import { startNatsServer } from "../tests/_nats.ts";
import type { BenchMessage } from "./fixtures/nats_raw.ts";
import type { OursNatsReport } from "./fixtures/nats_ours.ts";
import { threadCpu } from "./fixtures/thread_cpu.ts";

/**
 * `MF_BENCH_V8_FLAGS=--prof` (or `--perf-basic-prof`): the children's V8
 * flags, to profile them; `MF_BENCH_CWD=<dir>`: where they run (and write
 * their logs).
 */
const V8_FLAGS = Deno.env.get("MF_BENCH_V8_FLAGS");
const CWD = Deno.env.get("MF_BENCH_CWD");
/** `MF_BENCH_THREAD_CPU=1`: each child's CPU per thread is printed as it ends. */
const THREAD_CPU = Deno.env.get("MF_BENCH_THREAD_CPU") === "1";
const RAW = new URL("./fixtures/nats_raw.ts", import.meta.url).pathname;
const OURS = new URL("./fixtures/nats_ours.ts", import.meta.url).pathname;
const ROUND_TIMEOUT_MS = 60_000;
const MEASURED_ROUNDS = 3;
const FAN_OUT = 4;
/** For information: Moleculer 0.15 over NATS, this machine (`NOTES.md`). */
const MOLECULER =
  "Moleculer 0.15 over NATS, measured on this machine: 88–132k deliveries/s 1:1";

const arg = (name: string): string | undefined =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const scale = Number(arg("scale") ?? 1);
const json = Deno.args.includes("--json");
/** `--rows=rate,fanout,rr,local,stall`: the rows to run (default: all). */
const only = arg("rows")?.split(",");
const runs = (row: string): boolean => only === undefined || only.includes(row);
const COUNT = Math.max(1000, Math.round(200_000 * scale));
const REQUESTS = Math.max(100, Math.round(2000 * scale));
const REQUEST_WARM_UP = Math.max(20, Math.round(200 * scale));
const STALL_MESSAGES = Math.max(1000, Math.round(100_000 * scale));
/** The default `nats.arrivalBytes`. */
const ARRIVAL_BYTES = 8 * 1024 * 1024;

// deno-lint-ignore no-console
const print = (line = ""): void => console.log(line);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---- child processes ------------------------------------------------------

/** A child `deno run` process that reports JSON lines on stdout. */
class Child {
  readonly #process: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reports: OursNatsReport[] = [];
  #waiters: Array<() => void> = [];
  readonly #read: Promise<void>;
  readonly name: string;

  constructor(name: string, args: string[]) {
    this.name = name;
    this.#process = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        ...(V8_FLAGS === undefined ? [] : [`--v8-flags=${V8_FLAGS}`]),
        ...args,
      ],
      cwd: CWD,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#process.stdin.getWriter();
    this.#read = this.#readReports();
  }

  /** Sends one JSON line on the child's stdin. */
  async send(value: unknown): Promise<void> {
    await this.#stdin.write(encoder.encode(JSON.stringify(value) + "\n"));
  }

  /** Waits for the first report (after `from`) that `test` accepts. */
  async next<K extends OursNatsReport["kind"]>(
    kind: K,
    test: (report: Extract<OursNatsReport, { kind: K }>) => boolean = () =>
      true,
    timeoutMs = ROUND_TIMEOUT_MS,
  ): Promise<Extract<OursNatsReport, { kind: K }>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const index = this.#reports.findIndex((r) =>
        r.kind === kind && test(r as Extract<OursNatsReport, { kind: K }>)
      );
      if (index !== -1) {
        return this.#reports.splice(index, 1)[0] as Extract<
          OursNatsReport,
          { kind: K }
        >;
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(
          `${this.name}: no "${kind}" report within ${timeoutMs} ms`,
        );
      }
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#waiters.push(resolve);
      const timer = setTimeout(resolve, left);
      await promise;
      clearTimeout(timer);
    }
  }

  /**
   * The CPU time of each of the child's threads so far, in ms, by thread
   * name (Linux's `/proc`; empty elsewhere).
   */
  threadCpu(): Map<string, number> {
    const cpu = new Map<string, number>();
    const tasks = `/proc/${this.#process.pid}/task`;
    try {
      for (const task of Deno.readDirSync(tasks)) {
        const stat = Deno.readTextFileSync(`${tasks}/${task.name}/stat`);
        const close = stat.lastIndexOf(")");
        const name = stat.slice(stat.indexOf("(") + 1, close);
        const fields = stat.slice(close + 2).split(" ");
        // utime and stime, in clock ticks of 10 ms.
        const ms = (Number(fields[11]) + Number(fields[12])) * 10;
        cpu.set(name, (cpu.get(name) ?? 0) + ms);
      }
    } catch {
      // Not Linux, or gone.
    }
    return cpu;
  }

  /** Closes stdin (the child's signal to finish) and waits for its exit. */
  async close(): Promise<Deno.CommandStatus> {
    if (THREAD_CPU) {
      const threads = [...this.threadCpu()].filter(([, ms]) => ms >= 50)
        .map(([name, ms]) => `${name} ${ms} ms`);
      print(`CPU of ${this.name}: ${threads.join(", ")}`);
    }
    await this.#stdin.close().catch(() => {});
    const status = await this.#process.status;
    await this.#read;
    return status;
  }

  async #readReports(): Promise<void> {
    let pending = "";
    for await (
      const text of this.#process.stdout.pipeThrough(new TextDecoderStream())
    ) {
      pending += text;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        if (line.trim() === "") continue;
        this.#reports.push(JSON.parse(line) as OursNatsReport);
      }
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const wake of waiters) wake();
    }
  }
}

// ---- measurements ---------------------------------------------------------

/** The figures of one throughput side. */
export interface RateResult {
  /** Deliveries/s of each measured round. */
  rounds: number[];
  /** Deliveries counted in all rounds (warm-up included). */
  deliveries: number;
  problems: string[];
}

/** The figures of one request/reply side. */
export interface LatencyResult {
  /** Round trips, sorted, in ms. */
  samples: number[];
  /**
   * CPU per measured round trip, in µs, of the thread that runs each side's
   * client (a pool's, for ours), warm-up and startup left out.
   */
  cpu: { requester?: number; replier?: number };
  problems: string[];
}

/** Raw client: a publisher process → `subscribers` subscriber processes. */
function rawRate(url: string, subscribers: number): Promise<RateResult> {
  const subject = `bench.rate.${subscribers}`;
  const subs = Array.from(
    { length: subscribers },
    (_, i) =>
      new Child(`sub${i + 1}`, [RAW, "sub", url, subject, String(COUNT)]),
  );
  const pub = new Child("pub", [RAW, "pub", url, subject]);
  return measureRate(subs, pub, (round) => pub.send({ round, count: COUNT }));
}

/**
 * Ours: a publisher program → `subscribers` subscriber programs, each a
 * child `deno run` process joined to NATS, the same messages and rounds as
 * {@linkcode rawRate}; the bench starts a round with a plain client's
 * publish on the publisher's `q://bench/command`.
 */
async function oursRate(url: string, subscribers: number): Promise<RateResult> {
  const namespace = `bench${subscribers}`;
  const queue = `q://bench/rate/${subscribers}`;
  const subs = Array.from(
    { length: subscribers },
    (_, i) =>
      new Child(`ours-sub${i + 1}`, [
        OURS,
        "sub",
        url,
        namespace,
        queue,
        String(COUNT),
      ]),
  );
  const pub = new Child("ours-pub", [OURS, "pub", url, namespace, queue]);
  const nc = await connect({ servers: url });
  try {
    return await measureRate(subs, pub, async (round) => {
      nc.publish(
        `${namespace}.q.bench.command`,
        JSON.stringify({ round, count: COUNT }),
      );
      await nc.flush();
    });
  } finally {
    await nc.close();
  }
}

/**
 * The rounds of a rate row: `start(round)` makes `pub` publish `COUNT`
 * messages; every subscriber reports the round's end.
 */
async function measureRate(
  subs: Child[],
  pub: Child,
  start: (round: number) => Promise<void>,
): Promise<RateResult> {
  const subscribers = subs.length;
  const result: RateResult = { rounds: [], deliveries: 0, problems: [] };
  try {
    await Promise.all([...subs, pub].map((child) => child.next("ready")));
    // Round 0 warms up; the subscribers report each round at `COUNT`.
    for (let round = 0; round <= MEASURED_ROUNDS; round++) {
      await start(round);
      const started = await pub.next("start", (r) => r.round === round);
      const ends = await Promise.all(
        subs.map((sub) => sub.next("end", (r) => r.round === round)),
      );
      for (const [i, end] of ends.entries()) {
        result.deliveries += end.count;
        if (end.lost > 0 || end.duplicates > 0 || end.count !== COUNT) {
          result.problems.push(
            `round ${round}, ${
              subs[i]!.name
            }: ${end.count} of ${COUNT}, ${end.lost} lost, ${end.duplicates} duplicated`,
          );
        }
      }
      if (round === 0) continue;
      const ms = Math.max(...ends.map((e) => e.at)) - started.at;
      result.rounds.push(COUNT * subscribers / (ms / 1000));
    }
  } catch (error) {
    result.problems.push(
      error instanceof Error ? error.message : String(error),
    );
  } finally {
    await pub.close();
    const statuses = await Promise.all(subs.map((sub) => sub.close()));
    for (const [i, status] of statuses.entries()) {
      if (!status.success) {
        result.problems.push(`${subs[i]!.name} exited with ${status.code}`);
      }
    }
  }
  return result;
}

/**
 * A 1:1 flow between two pools of one child process, joined to NATS at `url`
 * or not joined (`"none"`); the process runs its rounds by itself.
 */
async function localRate(url: string): Promise<RateResult> {
  const child = new Child(`local-${url === "none" ? "alone" : "joined"}`, [
    OURS,
    "local",
    url,
    "benchlocal",
    "q://bench/local",
    String(COUNT),
    String(MEASURED_ROUNDS),
  ]);
  const result: RateResult = { rounds: [], deliveries: 0, problems: [] };
  try {
    for (let round = 0; round <= MEASURED_ROUNDS; round++) {
      const started = await child.next("start", (r) => r.round === round);
      const end = await child.next("end", (r) => r.round === round);
      result.deliveries += end.count;
      if (end.lost > 0 || end.duplicates > 0 || end.count !== COUNT) {
        result.problems.push(
          `round ${round}: ${end.count} of ${COUNT}, ${end.lost} lost, ${end.duplicates} duplicated`,
        );
      }
      if (round > 0) result.rounds.push(COUNT / ((end.at - started.at) / 1000));
    }
  } catch (error) {
    result.problems.push(
      error instanceof Error ? error.message : String(error),
    );
  } finally {
    const status = await child.close();
    if (!status.success) result.problems.push(`exited with ${status.code}`);
  }
  return result;
}

/** The figures of the stalled subscriber. */
interface RssResult {
  rest: number;
  peak: number;
  received: number;
  sent: number;
  /** The subscribing pool's isolate at rest and at its peak: V8 heap, external memory. */
  heapRest: number;
  heapPeak: number;
  externalRest: number;
  externalPeak: number;
  problems: string[];
}

/**
 * A subscriber process that stalls 4 s at its first message while a plain
 * client publishes `STALL_MESSAGES` of 4 KiB to it.
 */
async function stalledRss(url: string): Promise<RssResult> {
  const namespace = "benchstall";
  const child = new Child("stalled", [
    OURS,
    "stall",
    url,
    namespace,
    "q://bench/stall",
    "4000",
  ]);
  const result: RssResult = {
    rest: 0,
    peak: 0,
    received: 0,
    sent: STALL_MESSAGES,
    heapRest: 0,
    heapPeak: 0,
    externalRest: 0,
    externalPeak: 0,
    problems: [],
  };
  const nc = await connect({ servers: url });
  try {
    await child.next("ready");
    const payload = encoder.encode(JSON.stringify({ text: "x".repeat(4080) }));
    for (let i = 0; i < STALL_MESSAGES; i++) {
      nc.publish(`${namespace}.q.bench.stall`, payload);
      if (i % 1000 === 999) await nc.flush();
    }
    nc.publish(`${namespace}.q.bench.done`, "true");
    await nc.flush();
    const rss = await child.next("rss", undefined, 120_000);
    result.rest = rss.rest;
    result.peak = rss.peak;
    result.heapRest = rss.heapRest;
    result.heapPeak = rss.heapPeak;
    result.externalRest = rss.externalRest;
    result.externalPeak = rss.externalPeak;
  } catch (error) {
    result.problems.push(
      error instanceof Error ? error.message : String(error),
    );
  } finally {
    await nc.close();
    await child.close();
  }
  // Counted at the stop, once its buffers were handled.
  const total = await child.next("total", undefined, 1000).catch(() => {
    result.problems.push("no total reported");
    return { received: 0 };
  });
  result.received = total.received;
  return result;
}

/**
 * The ids of the first and last measured requests: a replier's CPU per
 * round trip is taken between them.
 */
function measuredIds(): string[] {
  return [
    String(REQUEST_WARM_UP),
    String(REQUEST_WARM_UP + REQUESTS - 1),
  ];
}

/** Raw client: sequential `nc.request` to a responder process. */
async function rawRequestReply(url: string): Promise<LatencyResult> {
  const subject = "bench.rr";
  const replier = new Child("reply", [
    RAW,
    "reply",
    url,
    subject,
    ...measuredIds(),
  ]);
  const result: LatencyResult = { samples: [], cpu: {}, problems: [] };
  let cpu = 0;
  const nc = await connect({ servers: url });
  try {
    await replier.next("ready");
    for (let i = 0; i < REQUEST_WARM_UP + REQUESTS; i++) {
      if (i === REQUEST_WARM_UP) cpu = threadCpu() ?? 0;
      const message: BenchMessage = {
        id: i,
        round: 0,
        text: "hello",
        at: 1733100000000,
      };
      const started = performance.now();
      const reply = await nc.request(
        subject,
        encoder.encode(JSON.stringify(message)),
        {
          timeout: 5000,
        },
      );
      const back = JSON.parse(decoder.decode(reply.data)) as BenchMessage;
      const elapsed = performance.now() - started;
      if (back.id !== i) {
        result.problems.push(`reply ${back.id} to request ${i}`);
      }
      if (i >= REQUEST_WARM_UP) result.samples.push(elapsed);
    }
    result.cpu.requester = ((threadCpu() ?? 0) - cpu) / 1000 / REQUESTS;
    result.cpu.replier = (await replier.next("cpu")).perRoundTrip;
  } catch (error) {
    result.problems.push(
      error instanceof Error ? error.message : String(error),
    );
  } finally {
    await nc.close();
    await replier.close();
  }
  result.samples.sort((a, b) => a - b);
  return result;
}

/**
 * Ours: `ctx.request` from a requester program to a responder program, each
 * a child process joined to NATS, the same messages as
 * {@linkcode rawRequestReply}; the requester times each round trip.
 */
async function oursRequestReply(url: string): Promise<LatencyResult> {
  const namespace = "benchrr";
  const queue = "q://bench/rr";
  const replier = new Child("ours-reply", [
    OURS,
    "reply",
    url,
    namespace,
    queue,
    ...measuredIds(),
  ]);
  const requester = new Child("ours-request", [
    OURS,
    "request",
    url,
    namespace,
    queue,
    String(REQUEST_WARM_UP),
    String(REQUESTS),
  ]);
  const result: LatencyResult = { samples: [], cpu: {}, problems: [] };
  const nc = await connect({ servers: url });
  try {
    await Promise.all([replier.next("ready"), requester.next("ready")]);
    nc.publish(`${namespace}.q.bench.command`, "true");
    await nc.flush();
    const { samples, cpuPerRoundTrip } = await requester.next("latencies");
    result.samples = samples.sort((a, b) => a - b);
    result.cpu.requester = cpuPerRoundTrip;
    result.cpu.replier = (await replier.next("cpu")).perRoundTrip;
  } catch (error) {
    result.problems.push(
      error instanceof Error ? error.message : String(error),
    );
  } finally {
    await nc.close();
    await Promise.all([replier.close(), requester.close()]);
  }
  return result;
}

// ---- the table -------------------------------------------------------------

interface Row {
  what: string;
  ours: string;
  raw: string;
  ratio: string;
  target: string;
  checks: string;
}

const rows: Row[] = [];
const figures: Record<string, unknown> = {};

const best = (r: RateResult | undefined): number | undefined =>
  r === undefined || r.rounds.length === 0 ? undefined : Math.max(...r.rounds);
const rate = (value: number | undefined): string =>
  value === undefined
    ? "pending"
    : `${Math.round(value).toLocaleString("en")}/s`;
const micros = (ms: number | undefined): string =>
  ms === undefined ? "pending" : `${Math.round(ms * 1000)} µs`;

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  ];
}

function checks(...results: Array<{ problems: string[] } | undefined>): string {
  const problems = results.flatMap((r) => r?.problems ?? []);
  return problems.length === 0 ? "ok" : `FAILED: ${problems.join("; ")}`;
}

function rateRow(
  what: string,
  ours: RateResult | undefined,
  raw: RateResult,
  target = "≥ 0.7×",
): void {
  const [o, r] = [best(ours), best(raw)];
  const ratio = o !== undefined && r !== undefined ? o / r : undefined;
  rows.push({
    what,
    ours: rate(o),
    raw: rate(r),
    ratio: ratio === undefined ? "—" : `${ratio.toFixed(2)}×`,
    target,
    checks: checks(ours, raw),
  });
  figures[what] = { ours: ours?.rounds, raw: raw.rounds, ratio };
}

function rssRow(r: RssResult): void {
  const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
  const dropped = r.sent - r.received;
  rows.push({
    what: `peak RSS, subscriber stalled 4 s while ${
      (r.sent * 4 / 1024).toFixed(0)
    } MB arrive (${dropped.toLocaleString("en")} dropped)`,
    ours: mb(r.peak),
    raw: `${mb(r.rest)} at rest`,
    ratio: `+${mb(r.peak - r.rest)}`,
    target: `≤ +${mb(2 * ARRIVAL_BYTES)}`,
    checks: checks(r),
  });
  figures["stalled subscriber"] = r;
  stallNote =
    `Stalled subscriber, its pool's isolate at rest → at its peak: V8 heap ${
      mb(r.heapRest)
    } → ${mb(r.heapPeak)}, external (ArrayBuffers) ${mb(r.externalRest)} → ${
      mb(r.externalPeak)
    }.`;
}

/** What the stall row found besides its figures. */
let stallNote: string | undefined;

function latencyRows(
  ours: LatencyResult | undefined,
  raw: LatencyResult,
): void {
  for (const [key, p] of [["p50", 0.5], ["p99", 0.99]] as const) {
    const o = ours === undefined ? undefined : percentile(ours.samples, p);
    const r = percentile(raw.samples, p);
    const ratio = o !== undefined && r !== undefined ? o / r : undefined;
    rows.push({
      what: `request/reply, ${key}`,
      ours: micros(o),
      raw: micros(r),
      ratio: ratio === undefined ? "—" : `${ratio.toFixed(2)}×`,
      target: "≤ 1.3×",
      checks: checks(ours, raw),
    });
    figures[`request/reply ${key}`] = { ours: o, raw: r, ratio };
  }
  const us = (value: number | undefined): string =>
    value === undefined ? "—" : `${value.toFixed(0)} µs`;
  for (const side of ["requester", "replier"] as const) {
    const o = ours?.cpu[side];
    const r = raw.cpu[side];
    cpuNotes.push(
      `${side} ${us(o)} (raw ${us(r)}${
        o !== undefined && r !== undefined ? `, ${(o / r).toFixed(2)}×` : ""
      })`,
    );
  }
}

/** The request/reply row's thread CPU per round trip, printed under the table. */
const cpuNotes: string[] = [];

function printTable(): void {
  const header: Row = {
    what: "row",
    ours: "ours",
    raw: "yardstick, same run",
    ratio: "ratio",
    target: "target",
    checks: "checks",
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
    `NATS benchmarks: Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${Deno.build.os}/${Deno.build.arch}, ` +
      `${navigator.hardwareConcurrency} cores, ${new Date().toISOString()}, ` +
      `load ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
  );
  const server = await startNatsServer();
  if (typeof server === "string") {
    print(`skipped: ${server}`);
    Deno.exit(0);
  }
  await using nats = server;
  print(
    `nats-server at ${nats.url}; rates: 1 warm-up + ${MEASURED_ROUNDS} rounds of ${
      n(COUNT)
    } messages; request/reply: ${n(REQUEST_WARM_UP)} warm-up + ${
      n(REQUESTS)
    } sequential requests`,
  );

  if (runs("rate")) {
    const raw1 = await rawRate(nats.url, 1);
    rateRow("1:1, deliveries/s", await oursRate(nats.url, 1), raw1);
  }
  if (runs("fanout")) {
    const rawFan = await rawRate(nats.url, FAN_OUT);
    rateRow(
      `fan-out to ${FAN_OUT}, deliveries/s`,
      await oursRate(nats.url, FAN_OUT),
      rawFan,
    );
  }
  if (runs("rr")) {
    const rawRR = await rawRequestReply(nats.url);
    latencyRows(await oursRequestReply(nats.url), rawRR);
  }
  const ours1 = rows[0]?.ours ?? "pending";
  if (runs("local")) {
    const alone = await localRate("none");
    rateRow(
      "1:1 between two pools of one process joined to NATS, no remote interest (yardstick: not joined)",
      await localRate(nats.url),
      alone,
      "≥ 0.9×",
    );
  }
  if (runs("stall")) rssRow(await stalledRss(nats.url));

  print();
  printTable();
  print();
  print(
    "Rates: best of the measured rounds, first publish → last delivery. Yardstick of the cross-process rows: the raw client, a plain publish loop + flush, a callback subscription, JSON.stringify/TextEncoder and TextDecoder/JSON.parse per message.",
  );
  if (cpuNotes.length > 0) {
    print(
      `Request/reply, CPU per measured round trip of the thread that runs each side's client (a pool's, for ours; warm-up and startup left out): ${
        cpuNotes.join("; ")
      }.`,
    );
  }
  if (stallNote !== undefined) print(stallNote);
  print(`For information: ${MOLECULER}; ours 1:1: ${ours1}.`);
  print(`Total time ${((performance.now() - began) / 1000).toFixed(1)} s.`);
  if (json) print(JSON.stringify(figures));
  if (rows.some((row) => row.checks.startsWith("FAILED"))) Deno.exitCode = 1;
}
