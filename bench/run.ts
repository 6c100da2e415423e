/**
 * `deno task bench`: runs every benchmark of the project, one after the
 * other, each as its own `deno` process (so that one's workers, JIT state and
 * garbage never weigh on the next), streaming their output.
 *
 * - `bench/bus_bench.ts` (`deno run -A`): the bus against its raw primitives;
 * - `bench/websocket_bench.ts` (`deno run -A`), when present;
 * - `bench/log_file_bench.ts` (`deno run -A`), when present;
 * - `bench/durable_bench.ts` (`deno run -A`), when present;
 * - `bench/nats_bench.ts` (`deno run -A`; it starts its own `nats-server`,
 *   and says "skipped" without one);
 * - `bench/nats_encoding_bench.ts` (`deno bench`);
 * - `bench/snapshot_bench.ts` (`deno bench`);
 * - `bench/metrics_bench.ts` (`deno bench`);
 * - `bench/tracing_bench.ts` (`deno bench`; the traced row only with
 *   `OTEL_DENO=true`);
 * - `bench/metrics_instructions.ts` (`deno run -A`; it runs under
 *   `valgrind`, and says "skipped" without it).
 *
 * Arguments after `--` go to the `deno run` benchmarks, e.g.
 * `deno task bench -- --scale=0.2`. Exits with 1 when any benchmark failed.
 *
 * @module
 */

interface Step {
  name: string;
  args: string[];
}

const root = new URL("..", import.meta.url);
const here = (file: string): string => new URL(file, import.meta.url).pathname;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** The steps to run: those whose file exists. */
async function steps(extra: string[]): Promise<Step[]> {
  const candidates: Array<{ file: string; step: Step }> = [
    {
      file: here("./bus_bench.ts"),
      step: {
        name: "bus",
        args: ["run", "-A", here("./bus_bench.ts"), ...extra],
      },
    },
    {
      file: here("./websocket_bench.ts"),
      step: {
        name: "websocket",
        args: ["run", "-A", here("./websocket_bench.ts"), ...extra],
      },
    },
    {
      file: here("./log_file_bench.ts"),
      step: {
        name: "log-file",
        args: ["run", "-A", here("./log_file_bench.ts")],
      },
    },
    {
      file: here("./durable_bench.ts"),
      step: {
        name: "durable",
        args: ["run", "-A", here("./durable_bench.ts")],
      },
    },
    {
      file: here("./nats_bench.ts"),
      step: {
        name: "nats",
        args: ["run", "-A", here("./nats_bench.ts"), ...extra],
      },
    },
    {
      file: here("./nats_encoding_bench.ts"),
      step: {
        name: "nats-encoding",
        args: ["bench", here("./nats_encoding_bench.ts")],
      },
    },
    {
      file: here("./snapshot_bench.ts"),
      step: { name: "snapshot", args: ["bench", here("./snapshot_bench.ts")] },
    },
    {
      file: here("./metrics_bench.ts"),
      step: { name: "metrics", args: ["bench", here("./metrics_bench.ts")] },
    },
    {
      file: here("./tracing_bench.ts"),
      step: { name: "tracing", args: ["bench", here("./tracing_bench.ts")] },
    },
    {
      file: here("./metrics_instructions.ts"),
      step: {
        name: "metrics-instructions",
        args: ["run", "-A", here("./metrics_instructions.ts")],
      },
    },
  ];
  const found: Step[] = [];
  for (const { file, step } of candidates) {
    if (await exists(file)) found.push(step);
  }
  return found;
}

/** Runs one step with its output streamed; resolves with its exit code. */
async function run(step: Step): Promise<number> {
  const line = `\n=== ${step.name}: deno ${step.args.join(" ")}\n`;
  await Deno.stdout.write(new TextEncoder().encode(line));
  const child = new Deno.Command(Deno.execPath(), {
    args: step.args,
    cwd: root,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const { code } = await child.status;
  return code;
}

if (import.meta.main) {
  const separator = Deno.args.indexOf("--");
  const extra = separator === -1 ? Deno.args : Deno.args.slice(separator + 1);
  const failed: string[] = [];
  for (const step of await steps(extra)) {
    const code = await run(step);
    if (code !== 0) failed.push(`${step.name} (exit code ${code})`);
  }
  const summary = failed.length === 0
    ? "\n=== all benchmarks finished\n"
    : `\n=== failed: ${failed.join(", ")}\n`;
  await Deno.stdout.write(new TextEncoder().encode(summary));
  if (failed.length > 0) Deno.exit(1);
}
