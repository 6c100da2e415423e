import assert from "node:assert/strict";
import { mock } from "node:test";
import { LogFileService } from "../src/log_file/mod.ts";
import { LogFile } from "../src/log_file/file.ts";
import {
  type LogFileProgramConfig,
  pools,
} from "./fixtures/log_file_program.ts";
import { startProgram } from "./_helpers.ts";
import { readLines, stubContext, tempDir } from "./_log_file.ts";

const fixture = new URL("./fixtures/log_file_program.ts", import.meta.url);
const repo = new URL("..", import.meta.url).pathname;

async function linesOrNone(path: string): Promise<string[]> {
  try {
    return await readLines(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/** Polls `check` through real file-system round trips (no timers: they may be faked). */
async function untilIo(check: () => boolean, path: string): Promise<void> {
  for (let i = 0; i < 10_000 && !check(); i++) await Deno.stat(path);
  assert.ok(check(), "the condition held within 10,000 file-system turns");
}

/** Polls the file (every 20 ms) until it holds `count` lines, with a deadline. */
async function waitForLines(
  path: string,
  count: number,
  timeout = 30_000,
): Promise<string[]> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const lines = await linesOrNone(path);
    if (lines.length >= count) return lines;
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${timeout} ms: "${path}" has ${lines.length} of ${count} lines`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A `deno run --no-check` child with the given arguments, its output collected. */
class ChildProgram implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  #output = "";
  #wake = (): void => {};
  readonly #reading: Promise<void>;

  constructor(args: string[]) {
    this.process = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-check", ...args],
      cwd: repo,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#reading = Promise.all(
      [this.process.stdout, this.process.stderr].map(async (stream) => {
        for await (const text of stream.pipeThrough(new TextDecoderStream())) {
          this.#output += text;
          this.#wake();
        }
      }),
    ).then(() => this.#wake());
  }

  /** Resolves once the output contains `text`; rejects after `timeout` ms or at exit. */
  async waitFor(text: string, timeout = 30_000): Promise<void> {
    const signal = AbortSignal.timeout(timeout);
    let ended = false;
    void this.#reading.then(() => ended = true);
    while (!this.#output.includes(text)) {
      if (ended || signal.aborted) {
        throw new Error(`No "${text}" in the output:\n${this.#output}`);
      }
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#wake = resolve;
      const onAbort = (): void => resolve();
      signal.addEventListener("abort", onAbort, { once: true });
      await Promise.race([promise, this.#reading]);
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Waits for the exit; the exit code and everything printed. */
  async exit(): Promise<{ code: number; output: string }> {
    const { code } = await this.process.status;
    await this.#reading;
    return { code, output: this.#output };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.process.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.exit();
  }
}

// ---- options -----------------------------------------------------------

Deno.test("new LogFileService() refuses bad options at the call, in std style", () => {
  assert.throws(() => new LogFileService({ path: "" }), {
    name: "TypeError",
    message:
      'Cannot create LogFileService: path must be a non-empty string, got ""',
  });
  assert.throws(
    () => new LogFileService({ path: "a.jsonl", flushInterval: -1 }),
    {
      name: "RangeError",
      message:
        "Cannot create LogFileService: flushInterval must be a number > 0, got -1",
    },
  );
  assert.throws(
    () => new LogFileService({ path: "a.jsonl", flushInterval: 2 ** 31 }),
    RangeError,
  );
  assert.throws(
    () => new LogFileService({ path: "a.jsonl", maxBytes: 0 }),
    { message: /maxBytes must be an integer >= 1, got 0/ },
  );
  assert.throws(
    () => new LogFileService({ path: "a.jsonl", keep: 1.5 }),
    { message: /keep must be an integer >= 0, got 1.5/ },
  );
  assert.throws(() => new LogFileService({ path: "my log.jsonl" }), {
    name: "TypeError",
    message: /white space/,
  });
  assert.throws(() => new LogFileService({ path: "logs/*/a.jsonl" }), {
    name: "TypeError",
    message: /pattern/,
  });
  const absolute = new LogFileService({ path: "/var/log/app.jsonl" });
  assert.equal(absolute.name, "LogFileService:/var/log/app.jsonl");
  assert.equal(absolute.queue, "log:///var/log/app.jsonl");
  assert.equal(absolute.rejectedQueue, "log-rejected:///var/log/app.jsonl");
});

// ---- rotation ------------------------------------------------------------

Deno.test("LogFile rotates at maxBytes without splitting or losing a line", async (t) => {
  await using dir = await tempDir();
  const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

  await t.step(
    "a write that fits exactly does not rotate; one byte more does",
    async () => {
      const path = `${dir.path}/exact.jsonl`;
      const file = await LogFile.open(path, {
        maxBytes: 20,
        keep: 2,
        fsync: false,
      });
      await file.append(encode("aaaaa\nbbbbb\nccccc\n")); // 18 bytes
      await file.append(encode("d\n")); // 20: exactly maxBytes
      assert.equal(file.rotations, 0);
      await file.append(encode("e\n")); // 22 > 20: rotate first
      await file.close();
      assert.equal(file.rotations, 1);
      assert.deepEqual(await readLines(`${path}.1`), [
        "aaaaa",
        "bbbbb",
        "ccccc",
        "d",
      ]);
      assert.deepEqual(await readLines(path), ["e"]);
    },
  );

  await t.step(
    "one write spanning several files keeps the newest `keep`",
    async () => {
      const path = `${dir.path}/span.jsonl`;
      const file = await LogFile.open(path, {
        maxBytes: 12,
        keep: 2,
        fsync: true,
      });
      const lines = Array.from({ length: 9 }, (_, i) => `line${i}`); // 6 bytes each
      await file.append(encode(lines.map((l) => l + "\n").join("")));
      await file.close();
      assert.equal(file.rotations, 4);
      assert.deepEqual(await readLines(`${path}.2`), ["line4", "line5"]);
      assert.deepEqual(await readLines(`${path}.1`), ["line6", "line7"]);
      assert.deepEqual(await readLines(path), ["line8"]);
      await assert.rejects(Deno.stat(`${path}.3`), Deno.errors.NotFound);
    },
  );

  await t.step(
    "a line longer than maxBytes goes alone into a fresh file",
    async () => {
      const path = `${dir.path}/big.jsonl`;
      const file = await LogFile.open(path, {
        maxBytes: 10,
        keep: 5,
        fsync: false,
      });
      const big = "x".repeat(30);
      await file.append(encode(`abc\n${big}\nd\n`));
      await file.close();
      assert.deepEqual(await readLines(`${path}.2`), ["abc"]);
      assert.deepEqual(await readLines(`${path}.1`), [big]);
      assert.deepEqual(await readLines(path), ["d"]);
    },
  );

  await t.step(
    "keep: 0 starts the file afresh; an existing file's size counts",
    async () => {
      const path = `${dir.path}/zero.jsonl`;
      await Deno.writeTextFile(path, "old1\nold2\n"); // 10 bytes
      const file = await LogFile.open(path, {
        maxBytes: 12,
        keep: 0,
        fsync: false,
      });
      assert.equal(file.size, 10);
      await file.append(encode("new\n"));
      await file.close();
      assert.deepEqual(await readLines(path), ["new"]);
      await assert.rejects(Deno.stat(`${path}.1`), Deno.errors.NotFound);
    },
  );
});

Deno.test("LogFile rotation renames only the rotated files that exist, with one listing: the same cost whatever keep is", async () => {
  await using dir = await tempDir();
  const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
  const renames = mock.method(Deno, "rename");
  const listings = mock.method(Deno, "readDir");
  try {
    for (const keep of [5, 10_000]) {
      const path = `${dir.path}/keep${keep}.jsonl`;
      const file = await LogFile.open(path, {
        maxBytes: 10,
        keep,
        fsync: false,
      });
      const [renamed, listed] = [renames, listings].map((m) =>
        m.mock.callCount()
      );
      // 6 bytes each, 10 a file: a rotation before each line but the first.
      for (let i = 0; i < 4; i++) await file.append(encode(`line${i}\n`));
      await file.close();
      assert.equal(file.rotations, 3);
      // Rotation k renames the k − 1 rotated files, then the file itself.
      assert.equal(
        renames.mock.callCount() - renamed!,
        1 + 2 + 3,
        `keep ${keep}`,
      );
      assert.equal(listings.mock.callCount() - listed!, 3, `keep ${keep}`);
      for (let i = 0; i < 4; i++) {
        const name = i === 3 ? path : `${path}.${3 - i}`;
        assert.deepEqual(await readLines(name), [`line${i}`]);
      }
    }
  } finally {
    renames.mock.restore();
    listings.mock.restore();
  }
});

Deno.test("LogFileService with keep 10,000 rotates 20,000 lines into 64 KiB files: every line on disk, in order, renaming only what exists", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/many.jsonl`;
  const count = 20_000;
  const service = new LogFileService({
    path,
    maxBytes: 64 * 1024,
    keep: 10_000,
    bufferBytes: 64 * 1024,
  });
  const stub = stubContext(service.queue);
  const renames = mock.method(Deno, "rename");
  try {
    await service.initialize(stub.ctx);
    for (let index = 0; index < count; index++) {
      const held = stub.deliver({ index, text: "rotated with many kept" });
      if (held instanceof Promise) await held;
      if (index % 1000 === 999) await Promise.resolve(); // end of a turn
    }
    await service.terminate(stub.ctx);
  } finally {
    renames.mock.restore();
  }
  const { rotations } = service.stats;
  assert.ok(rotations >= 12, `rotations: ${rotations}`); // 950,000 bytes
  assert.ok(
    renames.mock.callCount() <= rotations * (rotations + 1) / 2,
    `${renames.mock.callCount()} renames for ${rotations} rotations`,
  );
  const all: string[] = [];
  for (let i = rotations; i >= 1; i--) {
    all.push(...await readLines(`${path}.${i}`));
  }
  all.push(...await readLines(path));
  assert.equal(all.length, count);
  all.forEach((line, index) => {
    if (JSON.parse(line).index !== index) assert.fail(`line ${index}: ${line}`);
  });
  assert.deepEqual(stub.errors, []);
});

// ---- batching, in one thread with a stub context and fake time -------------

Deno.test("LogFileService writes on the flush interval, not before (fake time)", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/interval.jsonl`;
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const service = new LogFileService({ path, flushInterval: 1000 });
    const stub = stubContext(service.queue);
    await service.initialize(stub.ctx);
    for (let i = 0; i < 3; i++) stub.deliver({ i });
    // Real I/O round trips: a write, had one started, would finish.
    for (let i = 0; i < 20; i++) await Deno.stat(path);
    mock.timers.tick(999);
    for (let i = 0; i < 20; i++) await Deno.stat(path);
    assert.equal(service.stats.writes, 0);
    assert.equal((await Deno.stat(path)).size, 0);
    mock.timers.tick(1);
    await untilIo(() => service.stats.writes === 1, path);
    assert.deepEqual(await readLines(path), ['{"i":0}', '{"i":1}', '{"i":2}']);
    // The next line arms a new interval.
    stub.deliver({ i: 3 });
    mock.timers.tick(1000);
    await untilIo(() => service.stats.writes === 2, path);
    await service.terminate(stub.ctx);
    assert.equal((await readLines(path)).length, 4);
  } finally {
    mock.timers.reset();
  }
});

Deno.test("LogFileService writes lines whose interval ran out during a write once that write is done (fake time)", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/overlap.jsonl`;
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const service = new LogFileService({ path, flushInterval: 1000 });
    const stub = stubContext(service.queue);
    await service.initialize(stub.ctx);
    stub.deliver({ i: 0 });
    mock.timers.tick(1000); // the first write starts…
    stub.deliver({ i: 1 });
    mock.timers.tick(1000); // …and is still in flight when this interval ends
    await untilIo(() => service.stats.writes === 2, path);
    assert.deepEqual(await readLines(path), ['{"i":0}', '{"i":1}']);
    await service.terminate(stub.ctx);
  } finally {
    mock.timers.reset();
  }
});

Deno.test("LogFileService writes one turn's messages in one write once bufferBytes wait", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/turn.jsonl`;
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const service = new LogFileService({ path, bufferBytes: 100 });
    const stub = stubContext(service.queue);
    await service.initialize(stub.ctx);
    // One turn: 50 lines of 9 bytes, far past 100 bytes, no time passing.
    for (let i = 10; i < 60; i++) stub.deliver({ i });
    await untilIo(() => service.stats.writes > 0, path);
    assert.deepEqual(service.stats, {
      lines: 50,
      bytes: 450,
      writes: 1,
      rejected: 0,
      rotations: 0,
      rotationErrors: 0,
      writeErrors: 0,
      dropped: 0,
    });
    await service.terminate(stub.ctx);
  } finally {
    mock.timers.reset();
  }
});

Deno.test("LogFileService takes no more messages while a write is in flight and a buffer's worth waits", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/backpressure.jsonl`;
  const service = new LogFileService({ path, bufferBytes: 64 });
  const stub = stubContext(service.queue);
  await service.initialize(stub.ctx);
  let waited = 0;
  for (let turn = 0; turn < 20; turn++) {
    for (let i = 0; i < 10; i++) {
      const result = stub.deliver({ turn, i });
      if (result instanceof Promise) {
        waited++;
        await result;
      }
    }
    await Promise.resolve();
  }
  await service.terminate(stub.ctx);
  assert.ok(waited > 0, "the handler made the subscription wait");
  const lines = await readLines(path);
  assert.equal(lines.length, 200);
  assert.deepEqual(
    lines.map((l) => JSON.parse(l)),
    Array.from(
      { length: 200 },
      (_, n) => ({ turn: Math.floor(n / 10), i: n % 10 }),
    ),
  );
});

Deno.test("LogFileService with maxBytes rotates between lines: every line once, in order, across the files", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/rotated.jsonl`;
  const service = new LogFileService({
    path,
    maxBytes: 100,
    keep: 50,
    bufferBytes: 64,
  });
  const stub = stubContext(service.queue);
  await service.initialize(stub.ctx);
  for (let turn = 0; turn < 10; turn++) {
    for (let i = 0; i < 10; i++) await stub.deliver({ n: turn * 10 + i });
    await Promise.resolve();
  }
  await service.terminate(stub.ctx);
  const { rotations } = service.stats;
  assert.ok(rotations >= 8, `rotations: ${rotations}`); // 890 bytes, 100 a file
  const files = [
    ...Array.from({ length: rotations }, (_, i) => `${path}.${rotations - i}`),
    path,
  ];
  const all: string[] = [];
  for (const file of files) {
    assert.ok((await Deno.stat(file)).size <= 100, file);
    all.push(...await readLines(file));
  }
  assert.deepEqual(
    all,
    Array.from({ length: 100 }, (_, n) => JSON.stringify({ n })),
  );
});

// ---- real workers ------------------------------------------------------------

function start(config: LogFileProgramConfig): ReturnType<typeof startProgram> {
  return startProgram(fixture, pools(config), config);
}

Deno.test("LogFileService writes pending lines on the interval while the program runs", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/running.jsonl`;
  const program = start({
    scenario: "lines",
    log: { path, flushInterval: 100 },
    lines: [{ a: 1 }, "two", [3], null],
  });
  try {
    await program.waitForReports(1);
    const lines = await waitForLines(path, 4);
    assert.deepEqual(lines, ['{"a":1}', '"two"', "[3]", "null"]);
  } finally {
    const report = await program.stop();
    assert.deepEqual(report.failures, []);
  }
});

Deno.test("LogFileService writes everything acknowledged at a stop, long before the interval", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/stop.jsonl`;
  const count = 5000;
  const program = start({
    scenario: "lines",
    log: { path }, // 5 s interval: only terminate() can have written them
    count,
  });
  await program.waitForReports(1);
  const report = await program.stop();
  assert.deepEqual(report.failures, []);
  const lines = await readLines(path);
  assert.equal(lines.length, count);
  lines.forEach((line, index) =>
    assert.deepEqual(JSON.parse(line), { index, é: "ü" })
  );
});

Deno.test("LogFileService skips data JSON cannot carry, logs each kind once, counts it in topology() and keeps running", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/rejects.jsonl`;
  const program = start({
    scenario: "rejects",
    log: { path, flushInterval: 500 },
  });
  let stopped = false;
  try {
    await program.waitForReports(1);
    const lines = await waitForLines(path, 4);
    assert.deepEqual(lines, [
      '{"index":0}',
      '{"index":1}',
      '{"index":2}',
      '"end"',
    ]);
    const topology = await program.main.topology();
    const [entry] = topology[`log-rejected://${path}`]?.background ?? [];
    assert.equal(entry?.service, `LogFileService:${path}`);
    assert.equal(entry?.delivered, 1003);
    assert.equal(topology[`log://${path}`]?.background?.[0]?.delivered, 1007);
    const service = `LogFileService:${path}`;
    assert.ok(
      !program.statuses.some((s) =>
        s.service === service && s.status === "error"
      ),
    );
    const report = await program.stop();
    stopped = true;
    assert.deepEqual(report.failures, []);
    const errors = program.logs.filter((r) =>
      r.level === "error" && r.service === service
    ).map((r) => r.message);
    const firsts = errors.filter((m) => m.startsWith("Cannot write a message"));
    assert.equal(firsts.length, 3, errors.join("\n"));
    for (const first of firsts) {
      assert.ok(first.includes(`on "log://${path}" from main/Producer`));
    }
    assert.ok(firsts.some((m) => m.includes("BigInt")));
    assert.ok(firsts.some((m) => m.includes("circular")));
    assert.ok(firsts.some((m) => m.includes("undefined is not JSON")));
    // The 1,000 BigInts after the first are summed up, at most one line per
    // 500 ms interval (the flood takes well under 5 s), not one each.
    const repeats = errors.filter((m) => / more messages on /.test(m));
    assert.ok(repeats.length >= 1 && repeats.length < 10, errors.join("\n"));
    const summed = repeats.reduce((n, m) => n + Number(m.split(" ")[0]), 0);
    assert.equal(summed, 1000);
  } finally {
    if (!stopped) await program.stop();
  }
});

Deno.test("LogFileService whose file cannot be opened is in error, naming the path", async (t) => {
  await using dir = await tempDir();
  const cases: Array<[string, string]> = [
    ["a missing folder", `${dir.path}/missing/app.jsonl`],
    ["a folder", dir.path],
  ];
  for (const [what, path] of cases) {
    await t.step(what, async () => {
      const program = start({ scenario: "none", log: { path } });
      await program.waitUntil(() =>
        program.statuses.some((s) => s.status === "error")
      );
      const report = await program.stop();
      assert.equal(report.failures.length, 1);
      const [failure] = report.failures;
      assert.equal(failure?.service, `LogFileService:${path}`);
      assert.equal(failure?.phase, "initialize");
      assert.match(failure!.message, /Cannot open log file "/);
      assert.ok(failure!.message.includes(`"${path}"`), failure!.message);
    });
  }
});

Deno.test("LogFileService without write permission for its file is in error, naming the path, and the program exits 1", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/denied.jsonl`;
  const config: LogFileProgramConfig = { scenario: "none", log: { path } };
  await using child = new ChildProgram([
    `--allow-read=${repo},${dir.path}`,
    `--allow-write=${dir.path}/other.jsonl`,
    fixture.href,
    JSON.stringify(config),
  ]);
  await child.waitFor("failed in initialize()");
  child.process.kill("SIGTERM");
  const { code, output } = await child.exit();
  assert.equal(code, 1, output);
  assert.ok(output.includes(`Cannot open log file "${path}"`), output);
  assert.match(output, /write access/);
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
});

// ---- the original's example, as a child process ------------------------------

Deno.test("SIGTERM mid-stream: the file holds exactly the acknowledged lines, in order, and the program exits 0", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/dump.jsonl`;
  const config: LogFileProgramConfig = { scenario: "stream", log: { path } };
  // Read for the code, write for the log file alone: nothing more is needed.
  await using child = new ChildProgram([
    `--allow-read=${repo},${dir.path}`,
    `--allow-write=${path}`,
    fixture.href,
    JSON.stringify(config),
  ]);
  await child.waitFor('REPORT {"progress"');
  child.process.kill("SIGTERM");
  const { code, output } = await child.exit();
  assert.equal(code, 0, output);
  const acked = Number(/REPORT \{"acked":(\d+)\}/.exec(output)?.[1]);
  assert.ok(acked >= 50_000, output);
  const lines = await readLines(path);
  assert.equal(lines.length, acked, "exactly the acknowledged lines");
  for (let i = 0; i < lines.length; i++) {
    if (JSON.parse(lines[i]!).index !== i) {
      assert.fail(`line ${i}: ${lines[i]}`);
    }
  }
});

Deno.test("examples/dump_to_file.ts runs with read and write permissions only, and loses nothing at SIGTERM", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/dump.jsonl`;
  await using child = new ChildProgram([
    `--allow-read=${repo},${dir.path}`,
    `--allow-write=${path}`,
    "examples/dump_to_file.ts",
    path,
  ]);
  // flushInterval is 1 s in the example: the first write shows it works.
  await waitForLines(path, 2);
  child.process.kill("SIGTERM");
  const { code, output } = await child.exit();
  assert.equal(code, 0, output);
  const published = Number(/published (\d+) records/.exec(output)?.[1]);
  const lines = await readLines(path);
  assert.equal(lines.length, published, output);
  lines.forEach((line, index) => assert.equal(JSON.parse(line).index, index));
});
