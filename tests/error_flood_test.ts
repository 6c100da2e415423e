/**
 * A flood of handler errors: every error reaches the `error` listeners and
 * the metrics, while the log holds the first few with their stacks and a
 * summary line with the count of the others.
 */
import assert from "node:assert/strict";
import type { LogRecord } from "../mod.ts";
import { floodPools, QUEUE } from "./fixtures/error_flood.ts";
import { deadline } from "./fixtures/websocket_helpers.ts";
import { startProgram } from "./_helpers.ts";

const fixture = new URL("./fixtures/error_flood.ts", import.meta.url);

/** The most error lines with a stack logged per kind of error and interval. */
const BURST = 5;
const MESSAGES = 20_000;

/** The count in a summary line, or `undefined` for another line. */
function suppressed(record: LogRecord): number | undefined {
  const match = /^(\d+) more errors like this one were not logged/.exec(
    record.message,
  );
  return match === null ? undefined : Number(match[1]);
}

Deno.test("20,000 throwing handler calls: every one an error event and counted, the first 5 logged with their stacks, the rest in summary lines", async () => {
  const program = startProgram(fixture, floodPools(MESSAGES), MESSAGES);
  let events = 0;
  const all = Promise.withResolvers<void>();
  program.main.addEventListener("error", () => {
    if (++events === MESSAGES) all.resolve();
  });
  try {
    await deadline(all.promise, `${MESSAGES} error events`, 120_000);
    const metrics = await program.main.metrics();
    const subscription = metrics.subscriptions.find((s) =>
      s.service === "Thrower" && s.queue === QUEUE
    );
    assert.equal(subscription?.handlerErrors, MESSAGES);
  } finally {
    await program.stop();
  }
  const lines = program.logs.filter((r) =>
    r.level === "error" && r.pool === "consumer" && r.service === "Thrower"
  );
  const withStack = lines.filter((r) => suppressed(r) === undefined);
  const summaries = lines.filter((r) => suppressed(r) !== undefined);
  for (const line of withStack) {
    assert.match(line.message, /\(a message on "q:\/\/flood"\)/);
    assert.match(line.message, /\n\s+at .*error_flood\.ts/);
  }
  // The summary printed at stop is there: nothing is hidden.
  assert.ok(summaries.length >= 1, `no summary line; ${lines.length} lines`);
  assert.match(
    summaries.at(-1)!.message,
    /not logged in the last [\d.]+ s: Service "Thrower" in pool "consumer" failed in a message handler: message \d+ is bad \(a message on "q:\/\/flood"\)$/,
  );
  const counted = summaries.reduce((sum, r) => sum + suppressed(r)!, 0);
  assert.equal(withStack.length + counted, MESSAGES);
  // At most BURST stacks per interval, and an interval with fewer than
  // BURST errors needs no summary.
  assert.ok(withStack.length <= BURST * summaries.length + BURST);
  assert.ok(lines.length < MESSAGES / 100, `${lines.length} lines`);
});
