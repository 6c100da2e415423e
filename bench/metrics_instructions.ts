/**
 * What the metrics cost per delivery, counted in instructions, which a busy
 * machine changes far less than time: the one-thread loop of `bench/metrics_bench.ts`
 * (`bench/fixtures/metrics_loop.ts`: one subscription whose handler only
 * counts) run under `valgrind --tool=callgrind`, which counts the
 * instructions the program executes. V8 runs with `--single-threaded`, so
 * its compiler and garbage collector work in the counted thread and in the
 * same order every time.
 *
 * Each variant runs twice, with 100,000 and with 300,000 deliveries; the
 * difference of the two counts divided by 200,000 is the instructions per
 * delivery, with the start-up (Deno, the module graph, the warm-up of the
 * JIT) taken out. The variants:
 *
 * - `before`: the code as it was before the metrics existed (commit
 *   {@linkcode BEFORE}, taken with `git archive`): no counters at all, the
 *   honest baseline for the counters' own cost, which cannot be turned off;
 * - `off`: `handlerTiming: "off"` (the counters alone);
 * - `sampled`: the default, one handler call in 32 timed;
 * - `every`: every call timed.
 *
 * Instructions are not time: a timed call's two `performance.now()` are
 * system calls under Valgrind (no vDSO), whose kernel side is not counted,
 * so `sampled` and `every` count low; `deno bench bench/metrics_bench.ts`
 * gives their time. Nor are the counts exact: two runs of a variant
 * differed by 1–13% here (2026-12-02: `before` 355 and 407 per delivery,
 * `off` 447 and 451, `sampled` 528 and 529, `every` 2,163 and 2,210), the
 * garbage collector and the compiler not doing quite the same work each
 * time; `--repeat` shows it. Still far steadier than time on this machine.
 *
 * Why one thread: the bus's own same-pool flow (a real worker) was counted
 * the same way too, and is not repeatable: its threads interleave
 * differently from run to run, and so do its batches; two runs with the
 * same settings differed by more than the whole effect. A bus delivery
 * there costs some 5,500 instructions (all threads), which puts the loop's
 * figures in proportion.
 *
 * Run: `deno run -A bench/metrics_instructions.ts` (10 to 15 minutes on 2
 * cores: two runs at a time). `--repeat=N` runs it all N times;
 * `--messages=A,B` sets the two sizes (multiples of 10,000). Without
 * `valgrind` on the PATH it says so and exits 0; without git (or the
 * commit), `before` is left out.
 *
 * @module
 */
import { markdownTable } from "./_table.ts";

/** The last commit before the counters (2a9f0c8, issue 12's first part). */
export const BEFORE = "2a9f0c8^";

const VARIANTS = ["before", "off", "sampled", "every"] as const;

const arg = (name: string): string | undefined =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const REPEAT = Number(arg("repeat") ?? 1);
const [SMALL, LARGE] = (arg("messages") ?? "100000,300000").split(",").map(
  Number,
) as [number, number];
const root = new URL("..", import.meta.url).pathname;
const LOOP = new URL("./fixtures/metrics_loop.ts", import.meta.url).pathname;

// deno-lint-ignore no-console
const print = (line = ""): void => console.log(line);

/** Runs `command` with `args`; resolves with its exit code and output. */
async function output(
  command: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const result = await new Deno.Command(command, {
      args,
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return {
      code: result.code,
      stdout: text.decode(result.stdout),
      stderr: text.decode(result.stderr),
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { code: 127, stdout: "", stderr: `${command}: not found` };
    }
    throw error;
  }
}

/** A copy of `src/` as of {@linkcode BEFORE}, or `undefined` without git. */
async function beforeSources(): Promise<string | undefined> {
  const dir = await Deno.makeTempDir({ prefix: "metrics-before-" });
  const archive = `${dir}/src.tar`;
  const made = await output("git", [
    "archive",
    `--output=${archive}`,
    BEFORE,
    "src",
  ]);
  if (made.code !== 0) return undefined;
  const unpacked = await output("tar", ["-xf", archive, "-C", dir]);
  return unpacked.code === 0 ? `${dir}/src` : undefined;
}

/** Instructions executed by `deno run -A <args>` under callgrind. */
async function instructions(args: string[]): Promise<number> {
  const { code, stderr } = await output("valgrind", [
    "--tool=callgrind",
    "--callgrind-out-file=/dev/null",
    Deno.execPath(),
    "run",
    "-A",
    "--v8-flags=--single-threaded",
    ...args,
  ]);
  const collected = /Collected : (\d+)/.exec(stderr)?.[1];
  if (code !== 0 || collected === undefined) {
    throw new Error(
      `Cannot count ${args.join(" ")}: exit code ${code}: ${
        stderr.split("\n").filter((l) => !l.startsWith("==")).slice(-5)
          .join(" ")
      }`,
    );
  }
  return Number(collected);
}

/** One line of the table: a program run with two sizes. */
interface Case {
  variant: string;
  args(messages: number): string[];
  /** Instructions per delivery, one per repeat. */
  perDelivery: number[];
}

/** Runs `tasks` two at a time (this machine has 2 cores). */
async function twoAtATime<T>(tasks: Array<() => Promise<T>>): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all([lane(), lane()]);
  return results;
}

/** Prints `lines` under `header` as a Markdown table. */
function table(header: string[], lines: string[][]): void {
  for (const line of markdownTable(header, lines)) print(line);
}

const mean = (values: number[]): number =>
  values.reduce((a, b) => a + b, 0) / values.length;

if (import.meta.main) {
  if ((await output("valgrind", ["--version"])).code !== 0) {
    print("metrics instructions: skipped (valgrind is not installed)");
    Deno.exit(0);
  }
  const before = await beforeSources();
  const cases: Case[] = [];
  for (const variant of VARIANTS) {
    if (variant === "before" && before === undefined) continue;
    const src = variant === "before" ? before! : `${root}src`;
    cases.push({
      variant,
      args: (n) => [LOOP, src, variant, `${n}`],
      perDelivery: [],
    });
  }
  print(
    `metrics instructions: Deno ${Deno.version.deno}, ${
      (await output("valgrind", ["--version"])).stdout.trim()
    }, ${new Date().toISOString()}; ${SMALL.toLocaleString("en")} and ${
      LARGE.toLocaleString("en")
    } deliveries per case, ${REPEAT} time(s)${
      before ? "" : `; before left out (git archive ${BEFORE} failed)`
    }`,
  );
  for (let repeat = 0; repeat < REPEAT; repeat++) {
    const counts = await twoAtATime(
      cases.flatMap((c) =>
        [SMALL, LARGE].map((n) => () => instructions(c.args(n)))
      ),
    );
    for (const [i, c] of cases.entries()) {
      const [small, large] = [counts[2 * i]!, counts[2 * i + 1]!];
      c.perDelivery.push((large - small) / (LARGE - SMALL));
    }
  }
  const of = (variant: string): number | undefined => {
    const found = cases.find((c) => c.variant === variant);
    return found === undefined ? undefined : mean(found.perDelivery);
  };
  const versus = (value: number, base: number | undefined): string =>
    base === undefined
      ? "—"
      : `${value - base >= 0 ? "+" : ""}${(value - base).toFixed(1)} (${
        (value / base).toFixed(3)
      }×)`;
  print();
  print("One subscription in one thread (bench/fixtures/metrics_loop.ts):");
  table(
    [
      "handlerTiming",
      "instructions/delivery (each run)",
      "vs before",
      "vs off",
    ],
    cases.map((c) => [
      c.variant,
      c.perDelivery.map((x) => x.toFixed(1)).join(", "),
      versus(mean(c.perDelivery), of("before")),
      versus(mean(c.perDelivery), of("off")),
    ]),
  );
  if (before) {
    await Deno.remove(before.replace(/\/src$/, ""), { recursive: true });
  }
}
