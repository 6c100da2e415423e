/**
 * What `src/` imports must resolve for a program outside this repository,
 * where this repository's `deno.json` does not apply: relative paths,
 * `node:` modules and full `npm:` specifiers only, each npm package at the
 * version `deno.json` pins for the tests.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** Every `.ts` file under `src/`, with its text. */
async function sources(
  dir = new URL("src/", ROOT),
): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) {
      for (const [path, text] of await sources(url)) files.set(path, text);
    } else if (entry.name.endsWith(".ts")) {
      files.set(
        url.pathname.slice(ROOT.pathname.length),
        await Deno.readTextFile(url),
      );
    }
  }
  return files;
}

/** The specifiers a file imports (static, type-only, re-exports, dynamic). */
function specifiers(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"/gms,
    /^\s*import\s*"([^"]+)"/gm,
    /\bimport\(\s*"([^"]+)"/g,
  ];
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) found.push(match[1]!);
  }
  return found;
}

Deno.test("src/ imports only relative paths, node: modules and npm: packages pinned as in deno.json", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  ) as { imports: Record<string, string> };
  const pinned = new Map(
    Object.values(config.imports).map((target) => {
      const name = target.replace(/^npm:/, "").replace(/@[^@/]+$/, "");
      return [name, target];
    }),
  );
  const npm: string[] = [];
  for (const [path, text] of await sources()) {
    for (const specifier of specifiers(text)) {
      if (/^(\.\.?\/|node:)/.test(specifier)) continue;
      assert.match(
        specifier,
        /^npm:/,
        `${path} imports "${specifier}": a bare specifier resolves only through this repository's deno.json`,
      );
      const name = specifier.slice(4).replace(/@[^@/]+$/, "");
      assert.equal(
        specifier,
        pinned.get(name),
        `${path} imports "${specifier}", but deno.json pins "${
          pinned.get(name)
        }"`,
      );
      npm.push(specifier);
    }
  }
  assert.ok(npm.length > 0, "no npm: import found: is the scan broken?");
});
