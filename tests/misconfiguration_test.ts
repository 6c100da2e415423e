import assert from "node:assert/strict";
import { scenarios } from "./fixtures/misconfigured.ts";
import { type Program, startProgram } from "./_helpers.ts";

const fixture = new URL("./fixtures/misconfigured.ts", import.meta.url);

function start(scenario: string): Program {
  return startProgram(fixture, scenarios[scenario]!(), scenario);
}

Deno.test("a service factory that throws fails the run", async () => {
  const program = start("factory throws");
  await program.main.ready;
  const report = await program.stop();
  assert.deepEqual(report.failures, [{
    pool: "p",
    service: "#2",
    phase: undefined,
    message: 'Cannot build service #2 of pool "p": no database',
  }]);
});

Deno.test("a service factory that returns something else fails the run", async () => {
  const program = start("factory returns no service");
  await program.main.ready;
  const report = await program.stop();
  assert.equal(report.failures.length, 1);
  assert.equal(report.failures[0]!.service, "#1");
  assert.equal(
    report.failures[0]!.message,
    'Cannot build service #1 of pool "p": its factory returned an object (Object), not a Service',
  );
});

Deno.test("two services with the same name, built in the worker, fail the run", async () => {
  const program = start("duplicate names from factories");
  await program.main.ready;
  const report = await program.stop();
  assert.equal(report.failures.length, 1);
  assert.equal(report.failures[0]!.service, "Same (#2)");
  assert.match(report.failures[0]!.message, /two services named "Same"/);
});

Deno.test("a service without run() handles messages and stops cleanly", async () => {
  const program = start("no run()");
  await program.waitForReports(1);
  const report = await program.stop();
  assert.deepEqual(report.failures, []);
  assert.deepEqual(program.reports(), [{ got: "q://ping" }]);
});
