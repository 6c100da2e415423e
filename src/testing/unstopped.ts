/**
 * Fails the test that started a test bed and never stopped it.
 *
 * Deno's sanitizers are off by default (since Deno 2.8), so a forgotten bed
 * passed its test and went on publishing into the next ones; with them on,
 * its ports were reported as leaks of the next tests too ("started before
 * the test, but completed during the test"). `Deno.test.afterEach` (Deno
 * 2.5+) runs after every test of the process once registered at load time
 * (registered inside a test it does nothing), after the test's own
 * `afterEach` hooks and before the sanitizers look; `beforeEach` tells a bed
 * started in a test from one started at load time or in `beforeAll`, which
 * is not checked.
 */
import { StateError } from "../errors.ts";

/** A bed started in the current test and not yet stopped. */
interface Tracked {
  readonly pools: readonly string[];
  /** The frame of the test that called `startServices()`, when known. */
  readonly origin: string | undefined;
  readonly stop: () => Promise<unknown>;
}

/** This folder: frames in it are the module's own, not the test's. */
const HERE = new URL(".", import.meta.url).href;

const live = new Set<Tracked>();
let inTest = false;

// Absent before Deno 2.5; no-ops outside `deno test`.
const hooks = Deno.test;
if (
  typeof hooks.beforeEach === "function" &&
  typeof hooks.afterEach === "function"
) {
  hooks.beforeEach(() => {
    inTest = true;
  });
  hooks.afterEach(async () => {
    inTest = false;
    if (live.size === 0) return;
    const forgotten = [...live];
    live.clear();
    await Promise.all(forgotten.map((bed) => bed.stop()));
    throw new StateError(unstoppedMessage(forgotten));
  });
}

/**
 * Tracks a bed being started, when in a test; returns what to call once the
 * bed is asked to stop.
 */
export function trackBed(
  pools: readonly string[],
  stop: () => Promise<unknown>,
): () => void {
  if (!inTest) return () => {};
  const origin = new Error().stack?.split("\n").map((line) => line.trim())
    .find((line) => line.startsWith("at ") && !line.includes(HERE))
    ?.slice(3);
  const bed: Tracked = { pools, origin, stop };
  live.add(bed);
  return () => live.delete(bed);
}

/** The message of the error that fails a test that forgot its beds. */
function unstoppedMessage(beds: readonly Tracked[]): string {
  const which = beds.map(({ pools, origin }) =>
    `of pools ${pools.map((p) => `"${p}"`).join(", ")}${
      origin === undefined ? "" : ` started at ${origin}`
    }`
  ).join(" and ");
  const [noun, verb, pronoun] = beds.length === 1
    ? ["bed", "was", "it is"]
    : ["beds", "were", "they are"];
  return `Cannot end the test: the test ${noun} ${which} ${verb} never stopped (${pronoun} stopped now). Start a bed with \`await using bed = await startServices(…)\`, or call \`await bed.stop()\` before the test ends`;
}
