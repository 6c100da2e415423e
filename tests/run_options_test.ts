import assert from "node:assert/strict";
import { Main, type RunOptions, Service, type ServiceContext } from "../mod.ts";
import { PoolServiceContext } from "../src/pool/context.ts";
import type { PoolBus } from "../src/bus/bus.ts";
import { pools as noRunPools } from "./fixtures/no_run.ts";

/** A worker that never calls `main.run()`: should a check let a bad run through, it ends after `startTimeout`. */
const noRun = new URL("./fixtures/no_run.ts", import.meta.url);

class Idle extends Service {}

const quiet = (): void => {};

/** Runs `pools` with `options`; the checks must refuse it before any worker starts. */
function run(
  pools: Record<string, Array<Service | (() => Service)>>,
  options: RunOptions,
): Promise<unknown> {
  const main = new Main();
  main.servicePools = pools;
  return main.run({
    module: noRun,
    signals: false,
    setExitCode: false,
    logLevel: "silent",
    startTimeout: 300,
    ...options,
  });
}

Deno.test("main.run() refuses durations of 2^31 ms or more with a RangeError", async (t) => {
  for (
    const key of [
      "terminateTimeout",
      "startTimeout",
      "stallThreshold",
      "stuckThreshold",
    ] as const
  ) {
    await t.step(key, async () => {
      await assert.rejects(run(noRunPools(), { [key]: 3e9 }), {
        name: "RangeError",
        message:
          `Cannot run: ${key} must be a number > 0 and <= 2147483647 (about 24.8 days), got 3000000000`,
      });
    });
  }
});

Deno.test("ctx.request() and ctx.sleep() refuse a duration a timer cannot hold", async () => {
  const bus = {
    request: () => Promise.resolve("the bus was called"),
  } as unknown as PoolBus;
  const ctx: ServiceContext = new PoolServiceContext(
    bus,
    "p",
    "S",
    new AbortController().signal,
    { debug: quiet, info: quiet, warn: quiet, error: quiet },
  );
  await assert.rejects(ctx.request("q://slow", 1, { timeout: 3e9 }), {
    name: "RangeError",
    message:
      'Cannot request on "q://slow": timeout must be a number > 0 and <= 2147483647 (about 24.8 days), got 3000000000',
  });
  await assert.rejects(ctx.sleep(3e9), {
    name: "RangeError",
    message: /^Cannot sleep: ms must be a number >= 0 and <= 2147483647/,
  });
  assert.equal(
    await ctx.request("q://slow", 1, { timeout: 2 ** 31 - 1 }),
    "the bus was called",
  );
});

Deno.test("a service's backoff of 2^31 ms or more is refused when it is created", () => {
  assert.throws(() => new Idle("I", { backoffMax: 3e9 }), {
    name: "RangeError",
    message:
      /^Cannot create service "I": backoffMax must be a number >= 0 and <= 2147483647/,
  });
});

Deno.test("main.run() checks bufferSize as subscribe() does", async () => {
  await assert.rejects(run(noRunPools(), { bufferSize: 0.5 }), {
    name: "RangeError",
    message: "Cannot run: bufferSize must be an integer >= 1, got 0.5",
  });
  await assert.rejects(run(noRunPools(), { bufferSize: 0 }), RangeError);
});

Deno.test("main.run() refuses options of the wrong type", async () => {
  await assert.rejects(
    run(noRunPools(), { signals: "yes" as unknown as boolean }),
    {
      name: "TypeError",
      message: "Cannot run: signals must be a boolean, got string",
    },
  );
  await assert.rejects(
    run(noRunPools(), { logSink: 1 as unknown as () => void }),
    { name: "TypeError", message: "Cannot run: logSink must be a function" },
  );
});

Deno.test("main.run() refuses integer-like pool names, which JavaScript would move ahead", async () => {
  const pools = { b: [() => new Idle("B")], 1: [() => new Idle("One")] };
  assert.deepEqual(
    Object.keys(pools),
    ["1", "b"],
    "the order JavaScript gives",
  );
  await assert.rejects(run(pools, {}), {
    name: "TypeError",
    message:
      /^Cannot run: pool name "1" is an integer, .* use a name such as "p1"$/,
  });
  // Names that only look numeric keep their place and are accepted by the check.
  const kept = { b: [], "01": [], "-1": [], "1.5": [] };
  assert.deepEqual(Object.keys(kept), ["b", "01", "-1", "1.5"]);
});

Deno.test("main.run() refuses an empty servicePools with a TypeError", async () => {
  await assert.rejects(run({}, {}), {
    name: "TypeError",
    message: "Cannot run: servicePools declares no pool",
  });
});

Deno.test("main.run() refuses two services with the same name in a pool before any pool starts", async () => {
  await assert.rejects(run({ p: [new Idle("Same"), new Idle("Same")] }, {}), {
    name: "TypeError",
    message: 'Cannot run: pool "p" has two services named "Same"',
  });
});

Deno.test("main.run() refuses malformed NATS options with a typed error naming the option, before anything starts", async (t) => {
  const cases: Array<[string, RunOptions["nats"], string, RegExp]> = [
    [
      "no server",
      { servers: [] },
      "TypeError",
      /nats\.servers must name at least one server/,
    ],
    [
      "not a string",
      { servers: 4222 as unknown as string },
      "TypeError",
      /nats\.servers must be a string or an array/,
    ],
    [
      "a bad address",
      { servers: "nats://a b:4222" },
      "TypeError",
      /invalid server address "nats:\/\/a b:4222"/,
    ],
    [
      "a namespace with a wildcard",
      { servers: "nats://h:4222", namespace: "mf*" },
      "RangeError",
      /^Cannot run: nats\.namespace: Invalid NATS namespace "mf\*": it holds "\*" at index 2/,
    ],
    [
      'a namespace of two tokens (it would share subjects with namespace "mf")',
      { servers: "nats://h:4222", namespace: "mf.q" },
      "RangeError",
      /^Cannot run: nats\.namespace: Invalid NATS namespace "mf\.q": it holds "\." at index 2 \(a namespace is one NATS token: letters, digits, "-" and "_"\)$/,
    ],
    [
      "negative attempts",
      { servers: "nats://h:4222", reconnectAttempts: -1 },
      "RangeError",
      /reconnectAttempts must be an integer >= 0 or Infinity/,
    ],
    [
      "a zero publish timeout",
      { servers: "nats://h:4222", publishTimeout: 0 },
      "RangeError",
      /nats\.publishTimeout must be a number > 0/,
    ],
  ];
  for (const [name, nats, errorName, message] of cases) {
    await t.step(name, async () => {
      await assert.rejects(run(noRunPools(), { nats }), {
        name: errorName,
        message,
      });
    });
  }
});

Deno.test("main.run() refuses a MAGIC_FOUNDATION_NATS_NAMESPACE that is not one NATS token, naming the variable", async () => {
  Deno.env.set("MAGIC_FOUNDATION_NATS_NAMESPACE", "mf.q");
  try {
    await assert.rejects(
      run(noRunPools(), { nats: { servers: "nats://h:4222" } }),
      {
        name: "RangeError",
        message:
          /^Cannot run: MAGIC_FOUNDATION_NATS_NAMESPACE: Invalid NATS namespace "mf\.q": it holds "\."/,
      },
    );
  } finally {
    Deno.env.delete("MAGIC_FOUNDATION_NATS_NAMESPACE");
  }
});
