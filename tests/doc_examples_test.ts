/**
 * Every runnable example of the README and of the published module's JSDoc
 * (`mod.ts` and `src/`), each a test of its own, all in this one test module
 * (see `_doc_examples.ts` for why not `deno test --doc`; `deno task test:doc`
 * runs them that way, one module each, with the same outcome).
 */
import assert from "node:assert/strict";
import {
  type DocExample,
  exampleModule,
  extractExamples,
} from "./_doc_examples.ts";

const root = new URL("../", import.meta.url);
const config = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", root)),
) as { name: string; exports: Record<string, string> };

/** The package's own specifiers (`@magic/foundation/websocket`, …) → URLs. */
const exports = new Map(
  Object.entries(config.exports).map(([key, target]) => [
    config.name + key.slice(1),
    new URL(target, root).href,
  ]),
);

/** The `.ts` files under `dir`, in a stable order. */
async function* sourceFiles(dir: URL): AsyncGenerator<URL> {
  const entries = await Array.fromAsync(Deno.readDir(dir));
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (entry.isDirectory) yield* sourceFiles(new URL(`${entry.name}/`, dir));
    else if (entry.name.endsWith(".ts")) yield new URL(entry.name, dir);
  }
}

const examples: DocExample[] = [];
const files = [new URL("README.md", root), new URL("mod.ts", root)];
for await (const entry of Deno.readDir(new URL("docs/", root))) {
  if (entry.name.endsWith(".md")) {
    files.push(new URL(`docs/${entry.name}`, root));
  }
}
files.sort((a, b) => a.href.localeCompare(b.href));
for await (const url of sourceFiles(new URL("src/", root))) files.push(url);
for (const url of files) {
  const path = "./" + url.href.slice(root.href.length);
  examples.push(
    ...extractExamples(await Deno.readTextFile(url), url, path, exports),
  );
}

// Each example is written out and imported now, while tests may still be
// registered (an example may be a whole `Deno.test` of its own).
const dir = await Deno.makeTempDir({ prefix: "doc_examples_" });
try {
  for (const [i, example] of examples.entries()) {
    const { source, registersTests } = exampleModule(example);
    const file = `${dir}/example_${i}.ts`;
    await Deno.writeTextFile(file, source);
    const module = await import(`file://${file}`) as {
      default?: () => Promise<void>;
    };
    if (!registersTests) {
      const run = module.default!;
      Deno.test(example.name, () => run());
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

Deno.test("the examples are extracted as deno test --doc extracts them", () => {
  const source = [
    "/**", //                                  1
    " * Text.", //                             2
    " * ```ts", //                             3
    ' * import { a } from "./a.ts";', //       4
    ' * import { b } from "@magic/x";', //     5
    " * export const c = a + b;", //           6
    " * ```", //                               7
    " * ```ts ignore", //                      8
    " * opensASocket();", //                   9
    " * ```", //                              10
    " * ```html", //                          11
    " * <p></p>", //                          12
    " * ```", //                              13
    " */", //                                 14
    "const notAnExample = '```ts';", //       15
  ].join("\n");
  const url = new URL("file:///project/src/m.ts");
  const exports = new Map([["@magic/x", "file:///project/x.ts"]]);
  const found = extractExamples(source, url, "./src/m.ts", exports);
  assert.deepEqual(found.map((e) => e.name), ["./src/m.ts#3-8"]);
  const { source: module, registersTests } = exampleModule(found[0]!);
  assert.equal(registersTests, false);
  assert.equal(
    module,
    'import { a } from "file:///project/src/a.ts";\n' +
      'import { b } from "file:///project/x.ts";\n' +
      "export default async function example() {\n" +
      "const c = a + b;\n}\n",
  );
  const markdown = "# Title\n```ts\nDeno.test('t', () => {});\n```\n";
  const [test] = extractExamples(markdown, url, "./README.md", exports);
  assert.equal(test!.name, "./README.md#2-5");
  assert.equal(exampleModule(test!).registersTests, true);
});
