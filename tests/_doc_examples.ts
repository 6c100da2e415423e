/**
 * The code examples of the module's JSDoc and README, extracted as
 * `deno test --doc` extracts them, so that `doc_examples_test.ts` can run
 * them all in one test module: `deno test --doc` gives each example a module
 * (and an isolate) of its own, about 0.35 s of CPU each here, 31 s for
 * examples that take 0.3 s together.
 */

/** One fenced ` ```ts ` block of a JSDoc comment or a Markdown file. */
export interface DocExample {
  /** `<path>#<first line>-<last line>`, as `deno test --doc` names it. */
  name: string;
  /** The example's code, its specifiers resolved to absolute URLs. */
  code: string;
}

const LANGUAGES = new Set(["ts", "typescript", "js", "javascript"]);

/**
 * The runnable examples in `source` (the text of the file at `url`, shown
 * as `path`): fenced blocks whose language is TypeScript or JavaScript and
 * that are not marked `ignore`, in `/** … *\/` comments of a module or
 * anywhere in a Markdown file. Relative specifiers are resolved against
 * `url`, and bare ones through `exports` (the package's own name and
 * sub-paths, as `deno.json` maps them).
 */
export function extractExamples(
  source: string,
  url: URL,
  path: string,
  exports: ReadonlyMap<string, string>,
): DocExample[] {
  const examples: DocExample[] = [];
  const lines = source.split("\n");
  const markdown = path.endsWith(".md");
  let inComment = markdown;
  let fence: { start: number; run: boolean; code: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!inComment) {
      inComment = /^\s*\/\*\*/.test(line) && !line.includes("*/");
      continue;
    }
    if (!markdown && line.includes("*/")) {
      inComment = false;
      fence = undefined;
      continue;
    }
    const text = markdown ? line : line.replace(/^\s*\* ?/, "");
    const opening = /^```\s*(\S*)(.*)$/.exec(text);
    if (fence === undefined && opening !== null) {
      const attributes = opening[2]!.trim().split(/\s+/);
      fence = {
        start: i + 1,
        run: LANGUAGES.has(opening[1]!) && !attributes.includes("ignore"),
        code: [],
      };
    } else if (fence !== undefined && /^```\s*$/.test(text)) {
      if (fence.run) {
        examples.push({
          name: `${path}#${fence.start}-${i + 2}`,
          code: resolveSpecifiers(fence.code.join("\n"), url, exports),
        });
      }
      fence = undefined;
    } else if (fence !== undefined) {
      fence.code.push(text);
    }
  }
  return examples;
}

/** `code` with each `from "…"` / `import("…")` specifier made absolute. */
function resolveSpecifiers(
  code: string,
  url: URL,
  exports: ReadonlyMap<string, string>,
): string {
  return code.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)"([^"]+)"/gm,
    (_all, before: string, specifier: string) => {
      const mapped = exports.get(specifier);
      if (mapped !== undefined) return `${before}"${mapped}"`;
      if (specifier.startsWith(".")) {
        return `${before}"${new URL(specifier, url).href}"`;
      }
      return `${before}"${specifier}"`;
    },
  );
}

/**
 * A module that runs `example` when its default export is called: its import
 * declarations stay at the top and the rest becomes the body of an async
 * function (an `export` before a declaration dropped), as `deno test --doc`
 * wraps an example in a test. An example that
 * registers its own `Deno.test` is kept as it is, to run at import.
 */
export function exampleModule(example: DocExample): {
  source: string;
  registersTests: boolean;
} {
  const imports: string[] = [];
  const body: string[] = [];
  let inImport = false;
  for (const line of example.code.split("\n")) {
    if (inImport || /^import\b(?!\s*\()/.test(line)) {
      imports.push(line);
      inImport = !/;\s*$/.test(line);
    } else {
      // A declaration the example exports is local to the wrapping function.
      body.push(line.replace(/^export (?=(?:async |declare )?\w+ )/, ""));
    }
  }
  if (/^Deno\.test\(/m.test(example.code)) {
    return { source: example.code, registersTests: true };
  }
  return {
    source: `${
      imports.join("\n")
    }\nexport default async function example() {\n${body.join("\n")}\n}\n`,
    registersTests: false,
  };
}
