/**
 * The log-file benchmark of issue 11: lines/s through a `LogFileService`
 * (publisher in pool `main`, the service in pool `background`, as in the
 * original's example) against bare `Deno.FsFile` writers appending the same
 * lines in the same run.
 *
 * Rows, each the best of its measured rounds; the rows run in turn,
 * `--passes` times over (each run a warm-up round and then `--rounds`
 * measured ones), so that a change in the machine's load weighs on every
 * row alike:
 * 1. **LogFileService**: from the publisher's first `publish` until the file
 *    holds every line of the round (the publisher watches the size every
 *    millisecond from its own pool). The service has its defaults but
 *    `flushInterval: 20`, so a round's last, partial buffer is not timed
 *    waiting for the 5 s default.
 * 2. **Bare writer, one `write` per line**: the main thread builds the same
 *    objects and appends each as `JSON.stringify(o) + "\n"` with an awaited
 *    `FsFile.write`, what a service would do by itself (a tenth of the
 *    lines: it is slow). Target: row 1 ≥ 0.8×.
 * 3. **Bare writer, 1 MiB chunks** (the service's `bufferBytes`): the same,
 *    joined into chunks; the file's own ceiling. For information.
 * 4. **The bus alone**: the same publisher, and in the other pool a
 *    subscriber that only counts; the ceiling of the cross-pool hop for these
 *    messages. For information.
 *
 * Every file is checked afterwards (every line, in order), and the bus row's
 * counts are exact by construction (rounds end at exact counts).
 *
 * Run: `deno run -A bench/log_file_bench.ts` (about a minute on 2 cores;
 * `--lines=N` per round, default 300,000; `--rounds=N` per pass, default 2;
 * `--passes=N` over all rows, default 2; `--json` also prints the figures
 * as JSON).
 *
 * @module
 */
import { Main } from "../mod.ts";
import type { LogRecord } from "../mod.ts";
import {
  benchLine,
  type LogBenchConfig,
  type LogBenchReport,
  pools,
} from "./fixtures/log_file_program.ts";

const PROGRAM = new URL("./fixtures/log_file_program.ts", import.meta.url);
const CHUNK = 1024 * 1024;

const option = (name: string, fallback: number): number =>
  Number(
    Deno.args.find((arg) => arg.startsWith(`--${name}=`))?.slice(
      name.length + 3,
    ) ?? fallback,
  );
const LINES = option("lines", 300_000);
const MEASURED = option("rounds", 2);
const PASSES = option("passes", 2);
const WARM_UP = Math.max(10_000, Math.round(LINES / 3));
const json = Deno.args.includes("--json");

// deno-lint-ignore no-console
const print = (line = ""): void => console.log(line);

/**
 * Appends lines `from` … `from + count − 1` with a bare writer, each line
 * on its own (`chunk` 0) or joined into chunks of `chunk` characters;
 * returns the ms taken.
 */
async function bareRound(
  path: string,
  from: number,
  count: number,
  chunk: number,
): Promise<number> {
  const encoder = new TextEncoder();
  const start = performance.now();
  using file = await Deno.open(path, { append: true, create: true });
  let lines: string[] = [];
  let size = 0;
  const write = async (bytes: Uint8Array): Promise<void> => {
    for (let written = 0; written < bytes.length;) {
      written += await file.write(bytes.subarray(written));
    }
  };
  for (let i = from; i < from + count; i++) {
    const line = JSON.stringify(benchLine(i));
    if (chunk === 0) {
      await write(encoder.encode(line + "\n"));
      continue;
    }
    lines.push(line);
    size += line.length + 1;
    if (size >= chunk) {
      await write(encoder.encode(lines.join("\n") + "\n"));
      lines = [];
      size = 0;
    }
  }
  if (lines.length > 0) await write(encoder.encode(lines.join("\n") + "\n"));
  return performance.now() - start;
}

/** Runs the bare rounds into a fresh file, checks it, removes it. */
async function bare(
  path: string,
  counts: number[],
  chunk: number,
): Promise<number[]> {
  const ms: number[] = [];
  let from = 0;
  for (const count of counts) {
    ms.push(await bareRound(path, from, count, chunk));
    from += count;
  }
  await check(path, from);
  await Deno.remove(path);
  return ms;
}

/** Runs the framework's rounds; resolves with the ms of each. */
async function ours(config: LogBenchConfig): Promise<number[]> {
  const main = new Main();
  main.servicePools = pools(config);
  const starts: number[] = [];
  const rounds: number[] = [];
  const problems: string[] = [];
  const { promise: finished, resolve: finish } = Promise.withResolvers<void>();
  const sink = (record: LogRecord): void => {
    if (record.message.startsWith("REPORT ")) {
      const report = JSON.parse(
        record.message.slice("REPORT ".length),
      ) as LogBenchReport;
      if (report.kind === "start") starts[report.round] = report.at;
      if (report.kind === "end") {
        rounds[report.round] = report.at - starts[report.round]!;
        if (report.round === config.rounds.length - 1) finish();
      }
      if (report.kind === "timeout") {
        problems.push(
          `round ${report.round} timed out: ${JSON.stringify(report)}`,
        );
        finish();
      }
    } else if (record.level === "error") {
      problems.push(record.message);
    } else if (record.level === "warn") {
      // A stall warning on a busy machine is noise, not a failure: show it.
      print(`  (${config.sink} row) warning: ${record.message}`);
    }
  };
  const done = main.run({
    module: PROGRAM,
    workerData: config,
    signals: false,
    setExitCode: false,
    logSink: sink,
  });
  await Promise.race([finished, done]);
  await main.stop();
  const report = await done;
  for (const failure of report.failures) {
    problems.push(`${failure.service} failed: ${failure.message}`);
  }
  if (problems.length > 0) throw new Error(problems.join("\n"));
  if (config.sink === "file") {
    await check(config.path, config.rounds.reduce((a, b) => a + b, 0));
    await Deno.remove(config.path);
  }
  return rounds;
}

/** Checks that `path` holds lines 0 … total − 1, in order. */
async function check(path: string, total: number): Promise<void> {
  const text = await Deno.readTextFile(path);
  const lines = text.split("\n");
  if (lines.pop() !== "" || lines.length !== total) {
    throw new Error(`${path}: ${lines.length} lines, expected ${total}`);
  }
  for (let i = 0; i < total; i++) {
    if (lines[i] !== JSON.stringify(benchLine(i))) {
      throw new Error(`${path}: line ${i} is ${lines[i]}`);
    }
  }
}

if (import.meta.main) {
  const dir = await Deno.makeTempDir({ prefix: "log_file_bench_" });
  try {
    const counts = [WARM_UP, ...Array(MEASURED).fill(LINES)] as number[];
    const config = (sink: "file" | "bus"): LogBenchConfig => ({
      sink,
      path: `${dir}/${sink}.jsonl`,
      rounds: counts,
      flushInterval: 20,
    });
    // The write-per-line writer is slow: a tenth of the lines is plenty.
    const tenth = counts.map((n) => Math.round(n / 10));
    const rows: Array<{
      name: string;
      lines: number;
      run: () => Promise<number[]>;
      ms: number[];
    }> = [
      {
        name: "LogFileService, 2 pools",
        lines: LINES,
        run: () => ours(config("file")),
        ms: [],
      },
      {
        name: "bare writer, a write per line",
        lines: tenth[1]!,
        run: () => bare(`${dir}/bare-lines.jsonl`, tenth, 0),
        ms: [],
      },
      {
        name: "bare writer, 1 MiB chunks",
        lines: LINES,
        run: () => bare(`${dir}/bare-chunks.jsonl`, counts, CHUNK),
        ms: [],
      },
      {
        name: "the bus alone (no file)",
        lines: LINES,
        run: () => ours(config("bus")),
        ms: [],
      },
    ];
    // Passes over all rows, each a warm-up and MEASURED rounds: a change in
    // the machine's load then weighs on every row alike.
    for (let pass = 0; pass < PASSES; pass++) {
      for (const row of rows) row.ms.push(...(await row.run()).slice(1));
    }

    const perSecond = rows.map((row) => row.lines / Math.min(...row.ms) * 1000);
    const format = (n: number): string => Math.round(n).toLocaleString("en-US");
    print(
      `log-file: ${
        format(LINES)
      } lines a round (a tenth for the write-per-line writer), best of ${PASSES} passes × ${MEASURED} rounds, each pass after a warm-up of ${
        format(WARM_UP)
      }; every file checked`,
    );
    print(
      `| row                            |      lines/s | rounds (ms)                | LogFileService / row |`,
    );
    print(
      `| ------------------------------ | -----------: | -------------------------- | -------------------: |`,
    );
    rows.forEach((row, i) => {
      const ratio = perSecond[0]! / perSecond[i]!;
      print(
        `| ${row.name.padEnd(30)} | ${format(perSecond[i]!).padStart(12)} | ${
          row.ms.map((ms) => ms.toFixed(0)).join(", ").padEnd(26)
        } | ${(ratio.toFixed(2) + "×").padStart(20)} |`,
      );
    });
    const target = perSecond[0]! / perSecond[1]!;
    print(
      `target: LogFileService ≥ 0.8× the bare writer with a write per line: ${
        target.toFixed(2)
      }× ${target >= 0.8 ? "✓" : "✗"}`,
    );
    if (json) {
      print(JSON.stringify({ lines: LINES, rows, perSecond }));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
