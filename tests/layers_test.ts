/**
 * The carrier between processes plugs in at the seam: `src/nats/` reads the
 * seam's types (`src/transport/remote.ts`, `reply_queue.ts`,
 * `transport.ts`) and the shared floor (`errors.ts`, `service_context.ts`,
 * …), never the bus, the pools or the primary; and those never name
 * `src/nats/` (only `transport/open_remote.ts`, which loads the carrier a run
 * asks for).
 */
import assert from "node:assert/strict";

const SRC = new URL("../src/", import.meta.url);

/** The relative imports of every `.ts` file in `folder`, resolved. */
async function importsOf(folder: string): Promise<Array<[string, string]>> {
  const found: Array<[string, string]> = [];
  const dir = new URL(`${folder}/`, SRC);
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    const file = new URL(entry.name, dir);
    const text = await Deno.readTextFile(file);
    const patterns = [
      /^\s*(?:import|export)\b[^;]*?\bfrom\s*"(\.[^"]+)"/gms,
      /\bimport\(\s*"(\.[^"]+)"/g,
    ];
    for (const pattern of patterns) {
      for (const match of text.matchAll(pattern)) {
        const target = new URL(match[1]!, file).pathname.slice(
          SRC.pathname.length,
        );
        found.push([`${folder}/${entry.name}`, target]);
      }
    }
  }
  return found;
}

Deno.test("src/nats/ imports only itself, the seams' files (remote carrier, durable carrier) and the shared floor", async () => {
  const allowed =
    /^(nats\/|transport\/(remote|reply_queue|transport)\.ts$|durable\/(carrier|protocol|patterns)\.ts$|_util\/|[a-z_]+\.ts$)/;
  const wrong = (await importsOf("nats")).filter(([, target]) =>
    !allowed.test(target)
  );
  assert.deepEqual(wrong, []);
});

Deno.test("src/bus/, src/pool/ and src/primary/ never import src/nats/", async () => {
  const wrong: Array<[string, string]> = [];
  for (const folder of ["bus", "pool", "primary"]) {
    for (const [file, target] of await importsOf(folder)) {
      if (target.startsWith("nats/")) wrong.push([file, target]);
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("src/pool/ never imports src/websocket/: a service adds its metrics through the generic hook", async () => {
  const wrong = (await importsOf("pool")).filter(([, target]) =>
    target.startsWith("websocket/")
  );
  assert.deepEqual(wrong, []);
});
