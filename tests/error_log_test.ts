/**
 * The error log's limiter alone (fake time): the first errors of a kind in
 * full, then one summary line per interval and one at close.
 */
import assert from "node:assert/strict";
import { mock } from "node:test";
import { ServiceError, ServiceErrorEvent } from "../mod.ts";
import { ErrorLog } from "../src/primary/error_log.ts";
import type { LogRecord } from "../src/logger.ts";

/** The event and the default log line of a handler's throw of `cause`. */
function handlerError(
  cause: Error,
  queue = "q://jobs",
): [ServiceErrorEvent, LogRecord] {
  const error = new ServiceError("io", "reader", "handler", cause);
  return [new ServiceErrorEvent(error, queue), {
    level: "error",
    pool: "io",
    service: "reader",
    message: `${error.message} (a message on "${queue}")\n${cause.stack}`,
    time: Date.now(),
  }];
}

function withFakeTime(test: () => void): void {
  mock.timers.enable({ apis: ["setTimeout", "Date"] });
  try {
    test();
  } finally {
    mock.timers.reset();
  }
}

Deno.test("ErrorLog logs 3 errors of a kind in full, then a summary with the count at the interval's end", () => {
  withFakeTime(() => {
    const lines: LogRecord[] = [];
    const log = new ErrorLog((r) => lines.push(r), 3, 10_000);
    for (let n = 0; n < 10; n++) {
      log.write(...handlerError(new TypeError(`bad ${n}`)));
    }
    assert.equal(lines.length, 3);
    assert.match(lines[0]!.message, /: bad 0 \(a message on "q:\/\/jobs"\)\n/);
    assert.match(
      lines[2]!.message,
      /: bad 2 \(a message on "q:\/\/jobs"\) \[3 errors like this one within 10 s: the next ones are counted and summarised\]\nTypeError: bad 2\n/,
    );
    mock.timers.tick(9_999);
    assert.equal(lines.length, 3);
    mock.timers.tick(1);
    assert.equal(lines.length, 4);
    assert.deepEqual({ ...lines[3], time: 0 }, {
      level: "error",
      pool: "io",
      service: "reader",
      message:
        '7 more errors like this one were not logged in the last 10.0 s: Service "reader" in pool "io" failed in a message handler: bad 9 (a message on "q://jobs")',
      time: 0,
    });
    // A new interval: the first ones are logged in full again.
    log.write(...handlerError(new TypeError("bad again")));
    assert.equal(lines.length, 5);
    assert.match(lines[4]!.message, /bad again/);
    log.close();
    assert.equal(lines.length, 5, "nothing to summarise");
  });
});

Deno.test("ErrorLog counts each kind (queue, error name) apart, and close() logs the summaries due", () => {
  withFakeTime(() => {
    const lines: LogRecord[] = [];
    const log = new ErrorLog((r) => lines.push(r), 1, 10_000);
    for (let n = 0; n < 4; n++) {
      log.write(...handlerError(new TypeError("type")));
      log.write(...handlerError(new RangeError("range")));
      log.write(...handlerError(new TypeError("type"), "q://other"));
    }
    assert.equal(lines.length, 3);
    mock.timers.tick(2_500);
    log.close();
    assert.deepEqual(lines.slice(3).map((r) => r.message.slice(0, 60)), [
      "3 more errors like this one were not logged in the last 2.5 ",
      "3 more errors like this one were not logged in the last 2.5 ",
      "3 more errors like this one were not logged in the last 2.5 ",
    ]);
    assert.deepEqual(
      lines.slice(3).map((r) =>
        / (\w+) \(a message on "(.+)"\)$/.exec(r.message)?.slice(1)
      ),
      [["type", "q://jobs"], ["range", "q://jobs"], ["type", "q://other"]],
    );
    // After close, lines are logged as they come (no timer is left).
    log.write(...handlerError(new TypeError("late")));
    log.write(...handlerError(new TypeError("late")));
    assert.equal(lines.length, 8);
  });
});
