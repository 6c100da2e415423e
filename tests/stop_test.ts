import assert from "node:assert/strict";
import { Child } from "./_child.ts";

const fixture = new URL("./fixtures/stop_scenarios.ts", import.meta.url);

const phase = (name: string) => (line: string): boolean =>
  line.includes(`"phase":"${name}"`);

Deno.test("SIGTERM during initialize(): no run() starts, and the stop is graceful", async () => {
  const child = new Child(fixture, ["stop during initialize"]);
  await child.waitFor(phase("initialize"), 2);
  child.process.kill("SIGTERM");
  const status = await child.exit();
  const output = child.lines.join("\n");
  assert.equal(status.code, 0, output);
  assert.deepEqual(child.entered("run"), [], output);
  assert.deepEqual(
    child.result(),
    { failures: [], undelivered: [] },
    output,
  );
});

Deno.test("an initialize() that never returns is reported, then fails at the stop", async () => {
  const child = new Child(fixture, ["initialize never returns"]);
  await child.waitFor((l) =>
    l.includes("[b/B] initialize() has not finished after")
  );
  child.process.kill("SIGTERM");
  const status = await child.exit();
  const output = child.lines.join("\n");
  assert.equal(status.code, 1, output);
  const failures = child.result()?.failures;
  assert.equal(failures?.length, 1, output);
  assert.equal(failures[0]!.service, "B");
  assert.equal(failures[0]!.phase, "initialize");
  assert.match(
    failures[0]!.message,
    /initialize\(\) did not finish within 500 ms of the stop/,
  );
});

Deno.test("a pool spinning in a synchronous loop is reported and the process exits 1", async () => {
  const child = new Child(fixture, ["spinning pool"]);
  await child.waitFor(phase("run"), 2);
  child.process.kill("SIGTERM");
  const status = await child.exit(20_000);
  const output = child.lines.join("\n");
  assert.equal(status.code, 1, output);
  assert.ok(
    child.lines.some((l) => l.includes('Pool "b" could not be stopped')),
    output,
  );
  const failures = child.result()?.failures;
  assert.deepEqual(
    failures?.map((f) => [f.pool, f.service]),
    [["b", "*"]],
    output,
  );
  assert.match(failures![0]!.message, /did not stop within \d+ ms/);
  // The other pool still stopped gracefully.
  assert.ok(
    child.entered("terminate").includes("A"),
    output,
  );
});

Deno.test("two SIGTERMs microseconds apart are one request: the stop is graceful", async () => {
  const child = new Child(fixture, ["two pools"]);
  await child.waitFor(phase("run"), 2);
  child.process.kill("SIGTERM");
  child.process.kill("SIGTERM");
  // Two signals sent back to back are often merged into one by the OS; a
  // third, sent as soon as the stop is under way (a few ms later), surely
  // arrives on its own and must still count as the same request.
  await child.waitFor((l) => l.includes("Stopping: SIGTERM received"));
  child.process.kill("SIGTERM");
  const status = await child.exit();
  const output = child.lines.join("\n");
  assert.equal(status.code, 0, output);
  assert.deepEqual(child.entered("terminate"), ["B", "A"], output);
});
