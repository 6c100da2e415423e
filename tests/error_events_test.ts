import assert from "node:assert/strict";
import {
  type LogRecord,
  ServiceError,
  type ServiceErrorEvent,
} from "../mod.ts";
import { pools } from "./fixtures/failures.ts";
import { startProgram } from "./_helpers.ts";

const fixture = new URL("./fixtures/failures.ts", import.meta.url);

/** `promise`, or a rejection with the last log lines after 30 s. */
async function withDeadline(
  promise: Promise<void>,
  logs: readonly LogRecord[],
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() =>
      reject(
        new Error(
          `Timed out waiting for 4 error events; logs:\n${
            logs.map((r) => r.message).join("\n")
          }`,
        ),
      ), 30_000);
  });
  try {
    await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("Main dispatches an error event for a failed run(), each throwing handler and an uncaught error", async () => {
  const program = startProgram(fixture, pools(), null);
  const events: ServiceErrorEvent[] = [];
  const four = Promise.withResolvers<void>();
  // Typed: no cast needed for `event.pool`, `event.error.phase`, …
  program.main.addEventListener("error", (event) => {
    events.push(event);
    if (events.length === 4) four.resolve();
  });
  await withDeadline(four.promise, program.logs);
  await program.stop();
  const seen = events.map((e) => [e.pool, e.service, e.phase, e.queue]);
  assert.deepEqual(
    new Set(seen),
    new Set([
      ["a", "Runner", "run", undefined],
      ["a", "Handlers", "handler", "q://sync"],
      ["a", "Handlers", "handler", "q://async"],
      ["b", "*", "uncaught", undefined],
    ]),
  );
  for (const event of events) {
    assert.ok(event instanceof ErrorEvent);
    assert.ok(event.error instanceof ServiceError);
    assert.equal(event.message, event.error.message);
  }
  const run = events.find((e) => e.phase === "run")!;
  assert.equal(
    run.error.message,
    'Service "Runner" in pool "a" failed in run(): run broke',
  );
  const cause = run.error.cause as Error;
  assert.equal(cause.name, "RangeError");
  assert.match(cause.stack ?? "", /failures\.ts/);
  // The default action logged each one, with its pool and service.
  const lines = program.logs.filter((r) => r.level === "error");
  assert.ok(
    lines.some((r) =>
      r.pool === "a" && r.service === "Handlers" &&
      r.message.startsWith(
        'Service "Handlers" in pool "a" failed in a message handler: sync handler broke (a message on "q://sync")',
      )
    ),
    lines.map((r) => r.message).join("\n"),
  );
  assert.ok(lines.some((r) =>
    r.pool === "b" && r.service === undefined &&
    r.message.startsWith('Uncaught error in pool "b": stray callback broke')
  ));
});

Deno.test("a listener that calls preventDefault() replaces the default log line", async () => {
  const program = startProgram(fixture, pools(), null);
  let count = 0;
  const four = Promise.withResolvers<void>();
  program.main.addEventListener("error", (event) => {
    event.preventDefault();
    if (++count === 4) four.resolve();
  });
  await withDeadline(four.promise, program.logs);
  await program.stop();
  assert.deepEqual(program.logs.filter((r) => r.level === "error"), []);
});

Deno.test("a pool whose worker dies is an error event too", async () => {
  const { pools: noRunPools } = await import("./fixtures/no_run.ts");
  const program = startProgram(
    new URL("./fixtures/no_run.ts", import.meta.url),
    noRunPools(),
    null,
    { startTimeout: 300 },
  );
  const events: ServiceErrorEvent[] = [];
  program.main.addEventListener("error", (event) => events.push(event));
  await program.done;
  assert.deepEqual(
    events.map((e) => [e.pool, e.service, e.phase]),
    [["lonely", "*", "uncaught"]],
  );
  assert.match(
    events[0]!.message,
    /^Uncaught error in pool "lonely": its worker died: its worker did not call main\.run\(\) within 300 ms/,
  );
  assert.ok(
    program.logs.some((r) => r.message.startsWith('Pool "lonely" died:')),
    "the default action logs the usual line",
  );
});
