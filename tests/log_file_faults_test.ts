/**
 * The log-file service when the file system fails: a full disk (a real
 * 1 MiB tmpfs, which needs root) and a rotation that cannot rename.
 */
import assert from "node:assert/strict";
import { LogFileService } from "../src/log_file/mod.ts";
import { LogFile, LogFileWriteError } from "../src/log_file/file.ts";
import { outsideFolder } from "./_outside.ts";
import {
  fill,
  noSmallDisk,
  readLines,
  smallDisk,
  stubContext,
  tempDir,
} from "./_log_file.ts";

const encoder = new TextEncoder();
const noDisk = await noSmallDisk();
if (noDisk !== undefined) {
  // deno-lint-ignore no-console
  console.warn(`Skipping the full-disk tests: ${noDisk}`);
}

/** `count` lines of about 40 bytes, `{"index":…,"text":…}`. */
function lines(count: number): string[] {
  return Array.from(
    { length: count },
    (_, index) => JSON.stringify({ index, text: "a line on disk" }),
  );
}

/** Every line whole, its index once, in increasing order. */
function indexes(written: string[]): number[] {
  const seen = written.map((line) => JSON.parse(line).index as number);
  seen.forEach((index, i) => {
    if (i > 0 && index <= seen[i - 1]!) {
      assert.fail(`line ${i} (${written[i]}) after ${written[i - 1]}`);
    }
  });
  return seen;
}

// ---- a full disk -----------------------------------------------------------

Deno.test({
  name:
    "LogFile on a full disk never leaves part of a line: it truncates back to the last whole line and says how many bytes went in",
  ignore: noDisk !== undefined,
  async fn(): Promise<void> {
    await using disk = await smallDisk();
    const filler = await fill(disk.path, 8192);
    const path = `${disk.path}/app.jsonl`;
    const file = await LogFile.open(path, {
      maxBytes: Infinity,
      keep: 0,
      fsync: false,
    });
    try {
      const bytes = encoder.encode(lines(1000).join("\n") + "\n"); // 38 KB
      let written = -1;
      await assert.rejects(file.append(bytes), (error) => {
        assert.ok(error instanceof LogFileWriteError, String(error));
        assert.match(error.message, /^Cannot write to log file ".*": /);
        written = error.written;
        return true;
      });
      assert.ok(written > 0 && written < bytes.length, `written: ${written}`);
      assert.equal(bytes[written - 1], 0x0a, "written ends with a line");
      assert.equal(file.size, written);
      assert.deepEqual(
        await Deno.readFile(path),
        bytes.subarray(0, written),
        "the file holds exactly the whole lines written",
      );
      // Room again: the rest goes in after them.
      await Deno.remove(filler);
      await file.append(bytes.subarray(written));
      assert.deepEqual(await Deno.readFile(path), bytes);
    } finally {
      await file.close();
    }
  },
});

Deno.test({
  name:
    "LogFileService on a disk that stays full drops what it cannot write at terminate(), counts it, and terminate() rejects naming the count",
  ignore: noDisk !== undefined,
  async fn(): Promise<void> {
    await using disk = await smallDisk();
    await fill(disk.path, 16 * 1024);
    const path = `${disk.path}/full.jsonl`;
    const count = 3000; // 115 KB, room for 16 KiB
    const service = new LogFileService({ path, bufferBytes: 4096 });
    const stub = stubContext(service.queue);
    await service.initialize(stub.ctx);
    for (const line of lines(count)) {
      const held = stub.deliver(JSON.parse(line));
      if (held instanceof Promise) await held;
    }
    let message = "";
    await assert.rejects(service.terminate(stub.ctx), (error: Error) => {
      message = error.message;
      return true;
    });
    const dropped = Number(
      /^Cannot write (\d+) lines to log file "/.exec(
        message,
      )?.[1],
    );
    const written = await readLines(path);
    indexes(written);
    assert.ok(dropped > 0, message);
    assert.equal(service.stats.dropped, dropped);
    assert.equal(service.stats.lines, written.length);
    assert.equal(written.length + dropped, count, message);
    // One line when the writes start failing, not one per attempt.
    const failing = stub.errors.filter((m) => m.startsWith("Cannot write"));
    assert.equal(failing.length, 1, stub.errors.join("\n"));
  },
});

/**
 * A user's program: a producer publishes the first half of `count` lines,
 * waits until the file `go` appears in its folder (the test makes it once the
 * disk has room again and the service writes again), then the second half.
 */
const PROGRAM = `
import { Main, Service, type ServiceContext } from "MOD/mod.ts";
import { LogFileService, logQueue } from "MOD/src/log_file/mod.ts";

const [path, count] = [Deno.args[0]!, Number(Deno.args[1])];

async function exists(name: string): Promise<boolean> {
  return await Deno.stat(name).then(() => true, () => false);
}

async function untilExists(name: string): Promise<void> {
  const watcher = Deno.watchFs(".");
  try {
    if (await exists(name)) return;
    for await (const _ of watcher) if (await exists(name)) return;
  } finally {
    watcher.close();
  }
}

class Producer extends Service {
  override async run(ctx: ServiceContext): Promise<void> {
    for (let index = 0; index < count; index++) {
      if (index === count / 2) {
        ctx.log.info("HALF");
        await untilExists("go");
      }
      await ctx.publish(logQueue(path), { index, text: "a line on disk" });
    }
    ctx.log.info(\`PUBLISHED \${count}\`);
  }
}

const main = Main.instance();
main.servicePools = {
  background: [() =>
    new LogFileService({
      path,
      flushInterval: 20,
      bufferBytes: 4096,
      backlogBytes: 16384,
    })
  ],
  main: [() => new Producer("Producer")],
};
const report = await main.run();
if (Main.isPrimary) console.log(\`RESULT \${JSON.stringify(report)}\`);
`;

Deno.test({
  name:
    "A program logging to a disk that fills up and gets room again halfway: every line whole, written + dropped = published, the drop in the report, exit code 1",
  ignore: noDisk !== undefined,
  async fn(): Promise<void> {
    await using disk = await smallDisk();
    // Room for 64 KiB of the 230 KB, and 16 KiB more in memory.
    const filler = await fill(disk.path, 64 * 1024);
    const path = `${disk.path}/app.jsonl`;
    const count = 6000;
    await using folder = await outsideFolder("file");
    await folder.write("program.ts", PROGRAM);
    const child = folder.start("program.ts", { args: [path, `${count}`] });
    // The first half fills the disk and the backlog: the service says so.
    await child.waitFor((l) => l.includes("No space left on device"));
    await child.waitFor((l) => l.includes("dropping the lines that arrive"));
    await child.waitFor((l) => l.endsWith("HALF"));
    await Deno.remove(filler);
    await child.waitFor((l) => l.includes("again after"));
    await Deno.writeTextFile(`${folder.dir}/go`, "");
    await child.waitFor((l) => l.endsWith(`PUBLISHED ${count}`));
    child.process.kill("SIGTERM");
    const status = await child.exit();
    const output = child.lines.join("\n");
    const report = child.result();
    assert.ok(report !== undefined, output);
    assert.equal(report.failures.length, 1, output);
    const [failure] = report.failures;
    assert.equal(failure?.service, `LogFileService:${path}`);
    assert.equal(failure?.phase, "terminate");
    const dropped = Number(
      /Cannot write (\d+) lines to log file "/.exec(failure!.message)?.[1],
    );
    assert.ok(dropped > 0, failure!.message);
    const written = await readLines(path);
    const seen = indexes(written);
    assert.equal(written.length + dropped, count, failure!.message);
    // The second half is all there.
    assert.deepEqual(
      seen.slice(-count / 2),
      Array.from({ length: count / 2 }, (_, i) => count / 2 + i),
    );
    assert.equal(status.code, 1, output);
  },
});

// ---- a failed rotation -----------------------------------------------------

Deno.test("LogFile whose rotation fails goes on writing to the file, reports the failure, and rotates once it can", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/app.jsonl`;
  // The rotated name is taken by a folder: renaming the file there fails.
  await Deno.mkdir(`${path}.1`);
  await Deno.writeTextFile(`${path}.1/other`, "");
  const failures: string[] = [];
  const file = await LogFile.open(path, {
    maxBytes: 12,
    keep: 3,
    fsync: false,
    onRotationError: (error) => failures.push(error.message),
  });
  try {
    const line = (i: number): Uint8Array => encoder.encode(`line${i}\n`); // 6 bytes
    // 0 and 1 fill the file; 2 fails to rotate and goes on; so does 4, one
    // maxBytes later.
    for (let i = 0; i < 5; i++) await file.append(line(i));
    assert.equal(failures.length, 2, failures.join("\n"));
    assert.match(failures[0]!, /^Cannot rotate log file ".*app\.jsonl": /);
    assert.equal(file.rotations, 0);
    await Deno.remove(`${path}.1`, { recursive: true });
    // 5 fits before the next attempt, which works when 6 comes.
    for (let i = 5; i < 8; i++) await file.append(line(i));
    assert.equal(file.rotations, 1);
    assert.equal(failures.length, 2);
    assert.deepEqual(
      await readLines(`${path}.1`),
      ["line0", "line1", "line2", "line3", "line4", "line5"],
    );
  } finally {
    await file.close();
  }
  assert.deepEqual(await readLines(path), ["line6", "line7"]);
});

Deno.test("LogFileService whose rotation fails loses no line, logs the failure once with a count, and terminate() succeeds", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/app.jsonl`;
  await Deno.mkdir(`${path}.1`);
  await Deno.writeTextFile(`${path}.1/other`, "");
  const count = 3000;
  const service = new LogFileService({
    path,
    maxBytes: 4096,
    keep: 3,
    bufferBytes: 1024,
  });
  const stub = stubContext(service.queue);
  await service.initialize(stub.ctx);
  for (const [i, line] of lines(count).entries()) {
    const held = stub.deliver(JSON.parse(line));
    if (held instanceof Promise) await held;
    if (i % 100 === 99) await Promise.resolve(); // end of a turn
  }
  await service.terminate(stub.ctx);
  assert.equal(indexes(await readLines(path)).length, count);
  const { rotationErrors, rotations, lines: written } = service.stats;
  assert.equal(written, count);
  assert.equal(rotations, 0);
  assert.ok(rotationErrors >= 2, `rotationErrors: ${rotationErrors}`);
  assert.equal(stub.errors.length, 1, stub.errors.join("\n"));
  assert.match(
    stub.errors[0]!,
    /^Cannot rotate log file ".*": .*; writing on to it, trying again once it grows by maxBytes/,
  );
});
