import assert from "node:assert/strict";
import type { ProgramConfig } from "./fixtures/program.ts";

const fixture = new URL("./fixtures/program.ts", import.meta.url);

/** A fixture program in a child `deno run`, read line by line. */
class Child {
  readonly process: Deno.ChildProcess;
  readonly lines: string[] = [];
  readonly #reading: Promise<void>;
  #waiters = new Set<() => void>();

  constructor(config: ProgramConfig, env: Record<string, string> = {}) {
    this.process = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", fixture.href, JSON.stringify(config)],
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
      for (const wake of [...this.#waiters]) wake();
    }
    if (rest !== "") this.lines.push(rest);
  }

  /** Resolves once `count` lines match. */
  waitFor(
    match: (line: string) => boolean,
    count = 1,
    timeout = 30_000,
  ): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const check = (): void => {
      if (this.lines.filter(match).length < count) return;
      clearTimeout(timer);
      this.#waiters.delete(check);
      resolve();
    };
    const timer = setTimeout(() => {
      this.#waiters.delete(check);
      reject(
        new Error(
          `Timed out waiting for ${count} lines; got:\n${
            this.lines.join("\n")
          }`,
        ),
      );
    }, timeout);
    this.#waiters.add(check);
    check();
    return promise;
  }

  async exit(): Promise<Deno.CommandStatus> {
    const status = await this.process.status;
    await this.#reading;
    return status;
  }

  reports(): Array<{ service: string; phase?: string }> {
    return this.lines.filter((l) => l.includes(" REPORT ")).map((l) =>
      JSON.parse(l.slice(l.indexOf(" REPORT ") + 8))
    );
  }
}

const isRun = (line: string): boolean => line.includes('"phase":"run"');

Deno.test("SIGTERM stops a program gracefully in reverse order and exits 0", async () => {
  const child = new Child({
    pools: {
      p1: [{ name: "S1", loop: true }, { name: "S2", loop: true }],
      p2: [{ name: "S3", loop: true }],
    },
  });
  await child.waitFor(isRun, 3);
  child.process.kill("SIGTERM");
  const status = await child.exit();
  assert.equal(status.code, 0, child.lines.join("\n"));
  const order = child.reports().filter((r) => r.phase === "terminate").map((
    r,
  ) => r.service);
  assert.deepEqual(order, ["S3", "S2", "S1"]);
  assert.ok(child.lines.some((l) => l.includes("Stopping: SIGTERM received")));
});

Deno.test("SIGINT with a service in error exits 1", async () => {
  const child = new Child({
    pools: {
      p1: [{ name: "Bad", throwIn: "run" }, { name: "Good", loop: true }],
    },
  });
  await child.waitFor((l) => l.includes("failed in run()"));
  child.process.kill("SIGINT");
  const status = await child.exit();
  assert.equal(status.code, 1, child.lines.join("\n"));
  assert.ok(
    child.reports().some((r) =>
      r.service === "Good" && r.phase === "terminate"
    ),
  );
});

Deno.test("a terminate() that hangs is cut off after the terminate timeout; a second signal exits at once", async () => {
  const child = new Child({
    pools: {
      p1: [{ name: "Hang", hangInTerminate: true }, {
        name: "Other",
        loop: true,
      }],
    },
  });
  await child.waitFor(isRun, 2);
  child.process.kill("SIGTERM");
  await child.waitFor((l) =>
    l.includes('"phase":"terminate"') && l.includes("Hang")
  );
  // A repeat within 250 ms of the first signal is the same request (see
  // stop_test.ts); this one must come later to mean "exit at once".
  await new Promise((resolve) => setTimeout(resolve, 300));
  child.process.kill("SIGTERM");
  const status = await child.exit();
  assert.equal(status.code, 143, child.lines.join("\n"));
  assert.ok(child.lines.some((l) => l.includes("SIGTERM again: exiting now")));
});

Deno.test("a terminate() that hangs is cut off by the timeout and the program still ends", async () => {
  const child = new Child({
    pools: { p1: [{ name: "Hang", hangInTerminate: true }] },
  });
  await child.waitFor(isRun, 1);
  child.process.kill("SIGTERM");
  const status = await child.exit();
  assert.equal(status.code, 1, child.lines.join("\n"));
  assert.ok(
    child.lines.some((l) => l.includes("did not finish within 1000 ms")),
  );
});

Deno.test("MAGIC_FOUNDATION_LOG=debug shows debug lines; the default level shows none", async () => {
  const config: ProgramConfig = {
    pools: { p1: [{ name: "Looper", loop: true }] },
  };
  const verbose = new Child(config, { MAGIC_FOUNDATION_LOG: "debug" });
  await verbose.waitFor((l) => l.includes("DEBUG [p1/Looper] run 0"));
  verbose.process.kill("SIGTERM");
  assert.equal((await verbose.exit()).code, 0);

  const quiet = new Child(config);
  await quiet.waitFor(isRun);
  quiet.process.kill("SIGTERM");
  assert.equal((await quiet.exit()).code, 0);
  assert.deepEqual(quiet.lines.filter((l) => l.includes(" DEBUG ")), []);
  const own = quiet.lines.filter((l) => !l.includes(" REPORT "));
  assert.deepEqual(own.map((l) => l.replace(/^\S+ /, "")), [
    "INFO  [main] Stopping: SIGTERM received (send it again to exit at once)",
  ]);
});
