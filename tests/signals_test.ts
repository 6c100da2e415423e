/**
 * Signals reach a real child process: SIGTERM and SIGINT stop the program
 * gracefully, a terminate() that hangs is cut off by the terminate timeout,
 * a second signal exits at once, and the log level comes from the
 * environment. The programs are the scenarios of `fixtures/stop_scenarios.ts`.
 */
import assert from "node:assert/strict";
import { Child } from "./_child.ts";

const fixture = new URL("./fixtures/stop_scenarios.ts", import.meta.url);

const isRun = (line: string): boolean => line.includes('"phase":"run"');

Deno.test("SIGTERM stops a program gracefully in reverse order and exits 0", async () => {
  const child = new Child(fixture, ["three loopers"]);
  await child.waitFor(isRun, 3);
  child.process.kill("SIGTERM");
  const status = await child.exit();
  assert.equal(status.code, 0, child.lines.join("\n"));
  assert.deepEqual(child.entered("terminate"), ["S3", "S2", "S1"]);
  assert.ok(child.lines.some((l) => l.includes("Stopping: SIGTERM received")));
});

Deno.test("SIGINT with a service in error exits 1", async () => {
  const child = new Child(fixture, ["fails in run"]);
  await child.waitFor((l) => l.includes("failed in run()"));
  child.process.kill("SIGINT");
  const status = await child.exit();
  assert.equal(status.code, 1, child.lines.join("\n"));
  assert.ok(child.entered("terminate").includes("Good"));
});

Deno.test("a terminate() that hangs is cut off by the terminate timeout; the others still terminate and the program exits 1", async () => {
  const child = new Child(fixture, ["terminate hangs"]);
  await child.waitFor(isRun, 2);
  child.process.kill("SIGTERM");
  const status = await child.exit();
  const output = child.lines.join("\n");
  assert.equal(status.code, 1, output);
  // Services terminate last to first: Other, then Hang, which is cut off.
  assert.deepEqual(child.entered("terminate"), ["Other", "Hang"], output);
  const failures = child.result()?.failures;
  assert.deepEqual(
    failures?.map((f) => [f.pool, f.service, f.phase]),
    [["p1", "Hang", "terminate"]],
    output,
  );
  assert.match(
    failures[0]!.message,
    /terminate\(\) of "Hang" did not finish within 500 ms/,
  );
});

Deno.test("a second SIGTERM while a terminate() hangs exits at once with 143, before the terminate timeout", async () => {
  // The terminate timeout is 10 s here; Hang reports 300 ms into its
  // terminate(), so the second signal is no repeat of the first (repeats
  // within 250 ms are the same request, see stop_test.ts).
  const child = new Child(fixture, ["terminate hangs past a second signal"]);
  await child.waitFor(isRun, 2);
  child.process.kill("SIGTERM");
  await child.waitFor((l) => l.includes('"kind":"stillInTerminate"'));
  child.process.kill("SIGTERM");
  const status = await child.exit();
  const output = child.lines.join("\n");
  assert.equal(status.code, 143, output);
  assert.ok(child.lines.some((l) => l.includes("SIGTERM again: exiting now")));
  assert.ok(!child.lines.some((l) => l.includes("did not finish")), output);
  assert.equal(child.result(), undefined, "main.run() never returned");
});

Deno.test("MAGIC_FOUNDATION_LOG=debug shows debug lines; the default level shows none", async () => {
  const verbose = new Child(fixture, ["one looper"], {
    MAGIC_FOUNDATION_LOG: "debug",
  });
  await verbose.waitFor((l) => l.includes("DEBUG [p1/Looper] run 0"));
  verbose.process.kill("SIGTERM");
  assert.equal((await verbose.exit()).code, 0);

  const quiet = new Child(fixture, ["one looper"]);
  await quiet.waitFor(isRun);
  quiet.process.kill("SIGTERM");
  assert.equal((await quiet.exit()).code, 0);
  assert.deepEqual(quiet.lines.filter((l) => l.includes(" DEBUG ")), []);
  const own = quiet.lines.filter((l) =>
    !l.includes(" REPORT ") && !l.startsWith("RESULT ")
  );
  assert.deepEqual(own.map((l) => l.replace(/^\S+ /, "")), [
    "INFO  [main] Stopping: SIGTERM received (send it again to exit at once)",
  ]);
});
