/**
 * A test bed that a test forgets to stop fails that test, with a message
 * saying how to stop it, and is stopped before the next test begins: checked
 * in a child `deno test` of a user's test file outside the repository, with
 * Deno's sanitizers off (their default) and on.
 */
import assert from "node:assert/strict";
import { outsideFolder } from "./_outside.ts";

const USER_TESTS = `
import { Service, type ServiceContext } from "MOD/mod.ts";
import { startServices } from "MOD/src/testing/mod.ts";

/** Publishes a tick every 5 ms from run() until terminate(). */
class Ticker extends Service {
  #timer: ReturnType<typeof setInterval> | undefined;
  override run(ctx: ServiceContext): void {
    let n = 0;
    this.#timer = setInterval(() => void ctx.publish("q://tick", n++), 5);
  }
  override terminate(): void {
    clearInterval(this.#timer);
  }
}

Deno.test("forgets to stop its bed", async () => {
  const bed = await startServices({
    pools: { app: [new Ticker("ticker")] },
    watch: ["q://tick"],
  });
  await bed.next("q://tick");
});

Deno.test("stops its bed with await using", async () => {
  await using bed = await startServices({
    pools: { app: [new Ticker("ticker")] },
    watch: ["q://tick"],
  });
  await bed.next("q://tick");
});

Deno.test("stops its bed with stop()", async () => {
  const bed = await startServices({
    pools: { app: [new Ticker("ticker")] },
    watch: ["q://tick"],
  });
  await bed.next("q://tick");
  await bed.stop();
});
`;

const SANITIZERS = {
  off: {},
  on: { DENO_TEST_SANITIZE_OPS: "1", DENO_TEST_SANITIZE_RESOURCES: "1" },
};

for (const [sanitizers, env] of Object.entries(SANITIZERS)) {
  Deno.test(`a test that never stops its test bed fails with how to stop it; the next tests pass [sanitizers ${sanitizers}]`, async () => {
    await using folder = await outsideFolder("file");
    await folder.write("user_test.ts", USER_TESTS);
    const child = folder.start("user_test.ts", { subcommand: "test", env });
    const status = await child.exit(60_000);
    const output = child.lines.join("\n");
    assert.equal(status.code, 1, output);
    assert.match(output, /^forgets to stop its bed \.\.\. FAILED/m);
    assert.match(output, /^stops its bed with await using \.\.\. ok/m);
    assert.match(output, /^stops its bed with stop\(\) \.\.\. ok/m);
    assert.match(output, /FAILED \| 2 passed \| 1 failed/);
    const file = `file://${folder.dir}/user_test.ts`;
    assert.ok(
      output.includes(
        `StateError: Cannot end the test: the test bed of pools "app" started at ${file}:18:21 was never stopped (it is stopped now). Start a bed with \`await using bed = await startServices(…)\`, or call \`await bed.stop()\` before the test ends`,
      ),
      output,
    );
    // Only our message: the bed was stopped before the sanitizers looked.
    assert.doesNotMatch(output, /not cleaned up|never completed|not closed/);
  });
}
