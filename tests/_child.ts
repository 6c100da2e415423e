/**
 * A fixture program in a child `deno run`, read line by line: for the tests
 * that need real signals or a real process exit.
 */
import { Changes } from "./_changes.ts";
import { parseReport } from "./_helpers.ts";
import type { ReportKind, ReportOf } from "./fixtures/scenario.ts";

/** A running child program and the lines it printed so far. */
export class Child {
  readonly process: Deno.ChildProcess;
  readonly lines: string[] = [];
  readonly #reading: Promise<void>;
  readonly #changes = new Changes();

  /**
   * Starts `deno <subcommand> -A --no-check ...flags <fixture> ...args`, in
   * `cwd` (the test's own folder when not given); `subcommand` is `run`, or
   * `test` for a test file.
   */
  constructor(
    fixture: URL,
    args: string[],
    env: Record<string, string> = {},
    flags: string[] = [],
    cwd?: string,
    subcommand: "run" | "test" = "run",
  ) {
    this.process = new Deno.Command(Deno.execPath(), {
      args: [subcommand, "-A", "--no-check", ...flags, fixture.href, ...args],
      cwd,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...env },
    }).spawn();
    this.#reading = Promise.all([
      this.#read(this.process.stdout),
      this.#read(this.process.stderr),
    ]).then(() => {});
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      this.lines.push(...parts);
      this.#changes.notify();
    }
    if (rest !== "") this.lines.push(rest);
  }

  /** Resolves once `count` lines match. */
  waitFor(
    match: (line: string) => boolean,
    count = 1,
    timeout = 30_000,
  ): Promise<void> {
    return Changes.until(
      [this.#changes],
      () => this.lines.filter(match).length >= count,
      timeout,
      () =>
        `Timed out waiting for ${count} lines; got:\n${this.lines.join("\n")}`,
    );
  }

  /**
   * Resolves once `done()` holds, checked whenever any of `children` prints
   * a line; rejects after `timeout` ms with every child's output.
   */
  static waitForAll(
    children: readonly Child[],
    done: () => boolean,
    timeout = 30_000,
  ): Promise<void> {
    return Changes.until(
      children.map((child) => child.#changes),
      done,
      timeout,
      () =>
        `Timed out after ${timeout} ms; the children printed:\n${
          children.map((c) => c.lines.join("\n")).join("\n----\n")
        }`,
    );
  }

  /** Waits for the exit (at most `timeout` ms, then kills) and the last line. */
  async exit(timeout = 30_000): Promise<Deno.CommandStatus> {
    const timer = setTimeout(() => this.process.kill("SIGKILL"), timeout);
    try {
      const status = await this.process.status;
      await this.#reading;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The typed reports of `kind` printed so far, in order. */
  reportsOf<K extends ReportKind>(kind: K): ReportOf<K>[] {
    return this.lines.flatMap((line) => {
      const report = parseReport(line);
      return report?.kind === kind ? [report as ReportOf<K>] : [];
    });
  }

  /** The services that reported entering `phase`, in order. */
  entered(phase: ReportOf<"phase">["phase"]): string[] {
    return this.reportsOf("phase").filter((r) => r.phase === phase).map((r) =>
      r.service
    );
  }

  /** The `RESULT {json}` line (the run's report), parsed. */
  result(): {
    failures: Array<
      { pool: string; service: string; phase?: string; message: string }
    >;
  } | undefined {
    const line = this.lines.find((l) => l.startsWith("RESULT "));
    return line === undefined ? undefined : JSON.parse(line.slice(7));
  }
}
