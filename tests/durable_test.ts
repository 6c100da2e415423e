/**
 * Durable queues on the local log, end to end: user programs in a folder
 * outside the repository, killed with SIGKILL and started again.
 */
import assert from "node:assert/strict";
import { outsideFolder } from "./_outside.ts";
import type { Child } from "./_child.ts";
import { DURABLE_PROGRAM } from "./fixtures/durable_program.ts";

const ENV = { MAGIC_FOUNDATION_DURABLE: "q://jobs/>" };

/** The numbers in lines `<word> n …`. */
function numbers(child: Child, word: string): number[] {
  return child.lines.filter((l) => l.startsWith(word + " ")).map((l) =>
    Number(l.split(" ")[1])
  );
}

/** `HANDLED n attempt at` lines as [n, attempt, at]. */
function handled(child: Child): Array<[number, number, number]> {
  return child.lines.filter((l) => l.startsWith("HANDLED ")).map((l) => {
    const [, n, attempt, at] = l.split(" ");
    return [Number(n), Number(attempt), Number(at)];
  });
}

async function stopped(child: Child): Promise<Record<string, unknown>> {
  child.process.kill("SIGTERM");
  const status = await child.exit();
  assert.equal(status.code, 0, child.lines.join("\n"));
  const line = child.lines.find((l) => l.startsWith("RESULT "));
  assert.ok(line, child.lines.join("\n"));
  return JSON.parse(line.slice(7));
}

async function ended(child: Child): Promise<Record<string, unknown>> {
  const status = await child.exit();
  assert.equal(status.code, 0, child.lines.join("\n"));
  return JSON.parse(
    child.lines.find((l) => l.startsWith("RESULT "))!.slice(7),
  );
}

Deno.test("Durable: kill -9 mid-stream, start again: every stored job is handled, duplicates only those in flight", async () => {
  await using folder = await outsideFolder("file");
  await folder.write("program.ts", DURABLE_PROGRAM);
  const data = `${folder.dir}/data`;
  const first = folder.start("program.ts", {
    args: ["stream", data, "1000000"],
    env: ENV,
  });
  await first.waitFor((l) => l.startsWith("HANDLED "), 60);
  first.process.kill("SIGKILL");
  await first.exit();
  const stored = numbers(first, "STORED");
  const before = new Set(numbers(first, "HANDLED"));
  assert.ok(stored.length > before.size + 8, "killed with a backlog");

  const second = folder.start("program.ts", { args: ["work", data], env: ENV });
  const missing = new Set(stored.filter((n) => !before.has(n)));
  let read = 0;
  await second.waitFor(() => {
    for (; read < second.lines.length; read++) {
      const line = second.lines[read]!;
      if (line.startsWith("HANDLED ")) {
        missing.delete(Number(line.split(" ")[1]));
      }
    }
    return missing.size === 0;
  });
  await stopped(second);
  const again = numbers(second, "HANDLED");
  const duplicates = again.filter((n) => before.has(n));
  // At most bufferSize (8) were delivered and not yet settled at the kill.
  assert.ok(duplicates.length <= 8, `duplicates: ${duplicates}`);
  assert.equal(new Set(again).size, again.length, "no duplicate within a run");
  const all = new Set([...before, ...again]);
  assert.deepEqual(stored.filter((n) => !all.has(n)), []);
});

Deno.test("Durable: a stop finishes and settles the handlers in flight, reports what is pending, and that is delivered after a start", async () => {
  await using folder = await outsideFolder("file");
  await folder.write("program.ts", DURABLE_PROGRAM);
  const data = `${folder.dir}/data`;
  const first = folder.start("program.ts", {
    args: ["stream", data, "1000000"],
    env: ENV,
  });
  await first.waitFor((l) => l.startsWith("HANDLED "), 30);
  const report = await stopped(first);
  const [consumer] = report.durable as Array<{ pending: number }>;
  const before = new Set(numbers(first, "HANDLED"));
  assert.ok(consumer!.pending > 0, JSON.stringify(report));
  assert.ok(
    first.lines.some((l) =>
      l.includes(`${consumer!.pending} messages left pending`)
    ),
    first.lines.join("\n"),
  );

  const second = folder.start("program.ts", { args: ["work", data], env: ENV });
  await second.waitFor((l) => l.startsWith("HANDLED "), consumer!.pending);
  const again = await stopped(second);
  const handledAgain = numbers(second, "HANDLED");
  assert.equal(handledAgain.length, consumer!.pending);
  assert.deepEqual(handledAgain.filter((n) => before.has(n)), []);
  assert.equal(
    (again.durable as Array<{ pending: number }>)[0]!.pending,
    0,
  );
});

Deno.test("Durable: a handler that throws twice sees attempts 1, 2, 3 with the backoff between", async () => {
  await using folder = await outsideFolder("file");
  await folder.write("program.ts", DURABLE_PROGRAM);
  const child = folder.start("program.ts", {
    args: ["flaky", `${folder.dir}/data`],
    env: ENV,
  });
  await child.waitFor((l) => l.startsWith("HANDLED 1 3 "));
  const report = await stopped(child);
  const seen = handled(child);
  assert.deepEqual(seen.map(([n, attempt]) => [n, attempt]), [[1, 1], [1, 2], [
    1,
    3,
  ]]);
  // backoff [100, 200] with jitter: at least half of each.
  assert.ok(seen[1]![2] - seen[0]![2] >= 50, JSON.stringify(seen));
  assert.ok(seen[2]![2] - seen[1]![2] >= 100, JSON.stringify(seen));
  const [consumer] = report.durable as Array<Record<string, unknown>>;
  assert.equal(consumer!.redelivered, 2);
  assert.equal(consumer!.acknowledged, 1);
  assert.equal(consumer!.pending, 0);
});

Deno.test("Durable: a handler that always throws moves the job to dlq:// after maxDeliver, with headers", async () => {
  await using folder = await outsideFolder("file");
  await folder.write("program.ts", DURABLE_PROGRAM);
  const child = folder.start("program.ts", {
    args: ["poison", `${folder.dir}/data`],
    env: ENV,
  });
  await child.waitFor((l) => l.startsWith("DEAD "));
  const report = await stopped(child);
  assert.deepEqual(handled(child).map(([, attempt]) => attempt), [1, 2, 3]);
  const dead = child.lines.find((l) => l.startsWith("DEAD "))!;
  const headers = JSON.parse(dead.slice("DEAD 1 ".length));
  assert.deepEqual(headers, {
    "Mf-Dlq-Error": "boom 3",
    "Mf-Dlq-Attempts": "3",
    "Mf-Dlq-Queue": "q://jobs/1",
    "Mf-Dlq-Service": "Worker",
  });
  const consumers = report.durable as Array<Record<string, unknown>>;
  const jobs = consumers.find((c) => c.stream === "q://jobs/>")!;
  assert.equal(jobs.deadLettered, 1);
  assert.equal(jobs.pending, 0);
  const dlq = consumers.find((c) => c.stream === "dlq://q/jobs/>")!;
  assert.equal(dlq.acknowledged, 1);
});

Deno.test("Durable: a publish id already stored is not stored again", async () => {
  await using folder = await outsideFolder("file");
  await folder.write("program.ts", DURABLE_PROGRAM);
  const child = folder.start("program.ts", {
    args: ["dedupe", `${folder.dir}/data`],
    env: ENV,
  });
  await child.waitFor((l) => l === "STORED 3");
  await child.waitFor((l) => l.startsWith("HANDLED 3 "));
  await stopped(child);
  assert.deepEqual(numbers(child, "STORED"), [1, 2, 3]);
  assert.deepEqual(numbers(child, "HANDLED"), [1, 3]);
});

Deno.test("Durable: a subscriber that was down gets what was published meanwhile, and only that", async () => {
  await using folder = await outsideFolder("file");
  await folder.write("program.ts", DURABLE_PROGRAM);
  const data = `${folder.dir}/data`;
  await ended(
    folder.start("program.ts", { args: ["publish", data, "1", "1"], env: ENV }),
  );
  const first = folder.start("program.ts", {
    args: ["work", data, "alone"],
    env: ENV,
  });
  await first.waitFor((l) => l.startsWith("HANDLED 1 "));
  await stopped(first);
  await ended(
    folder.start("program.ts", { args: ["publish", data, "2", "4"], env: ENV }),
  );
  const second = folder.start("program.ts", {
    args: ["work", data, "alone"],
    env: ENV,
  });
  await second.waitFor((l) => l.startsWith("HANDLED 4 "));
  await stopped(second);
  assert.deepEqual(numbers(second, "HANDLED"), [2, 3, 4]);
});

Deno.test("Durable: a torn last record is cut and reported, the rest delivered", async () => {
  await using folder = await outsideFolder("file");
  await folder.write("program.ts", DURABLE_PROGRAM);
  const data = `${folder.dir}/data`;
  await ended(
    folder.start("program.ts", { args: ["publish", data, "1", "5"], env: ENV }),
  );
  const stream = `${data}/${encodeURIComponent("q://jobs/>")}`;
  const [segment] = [...Deno.readDirSync(stream)].filter((e) =>
    e.name.endsWith(".seg")
  );
  const path = `${stream}/${segment!.name}`;
  await Deno.truncate(path, Deno.statSync(path).size - 5);
  const child = folder.start("program.ts", { args: ["work", data], env: ENV });
  await child.waitFor((l) => l.startsWith("HANDLED 4 "));
  const report = await stopped(child);
  assert.deepEqual(numbers(child, "HANDLED"), [1, 2, 3, 4]);
  assert.ok(
    child.lines.some((l) =>
      l.includes("cut") && l.includes(path) && l.includes("cut short")
    ),
    child.lines.join("\n"),
  );
  assert.equal((report.durable as Array<{ pending: number }>)[0]!.pending, 0);
});
