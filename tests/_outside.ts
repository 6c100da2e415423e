/**
 * Test helper: a user's program in a temporary folder outside this
 * repository, where this repository's `deno.json` (its `imports`) does not
 * apply, so the program sees the module as a user does: by file URL, or
 * over HTTP from a server the test starts.
 *
 * The program's source names the module's root as `MOD`, as in
 * `import { Main } from "MOD/mod.ts";`; `MOD` is replaced by the root's
 * file URL or HTTP address.
 */
import { Child } from "./_child.ts";

/** The repository's root, as a file URL ending in `/`. */
export const REPOSITORY = new URL("../", import.meta.url);

/** How the program imports the module. */
export type Via = "file" | "http";

/** A folder outside the repository, removed when disposed. */
export interface OutsideFolder extends AsyncDisposable {
  /** The folder's path. */
  readonly dir: string;
  /** Writes `source` (with `MOD` replaced) as `name` in the folder. */
  write(name: string, source: string): Promise<URL>;
  /**
   * Starts `deno run -A --no-check <name> ...args` (or `deno test` with
   * `subcommand: "test"`) with the folder as its working directory.
   */
  start(
    name: string,
    options?: {
      args?: string[];
      env?: Record<string, string>;
      subcommand?: "run" | "test";
    },
  ): Child;
}

/** The repository's files over HTTP on 127.0.0.1, stopped when disposed. */
interface RepositoryServer extends AsyncDisposable {
  readonly base: string;
}

const TYPES: Record<string, string> = {
  ts: "application/typescript",
  json: "application/json",
  js: "text/javascript",
};

/** Serves the repository's files (read-only) over HTTP on a free port. */
function serveRepository(): RepositoryServer {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen(): void {} },
    async (request) => {
      const path = decodeURIComponent(new URL(request.url).pathname);
      if (path.includes("..")) return new Response("bad path", { status: 400 });
      try {
        const body = await Deno.readFile(new URL(`.${path}`, REPOSITORY));
        const extension = path.slice(path.lastIndexOf(".") + 1);
        return new Response(body, {
          headers: { "content-type": TYPES[extension] ?? "text/plain" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    async [Symbol.asyncDispose](): Promise<void> {
      await server.shutdown();
    },
  };
}

/**
 * Makes a temporary folder outside the repository whose programs import the
 * module `via` a file URL or HTTP.
 *
 * @example
 * ```ts ignore
 * await using folder = await outsideFolder("http");
 * await folder.write("prog.ts", `import { Main } from "MOD/mod.ts"; …`);
 * const child = folder.start("prog.ts", { env: { OTEL_DENO: "true" } });
 * ```
 */
export async function outsideFolder(via: Via = "file"): Promise<OutsideFolder> {
  const dir = await Deno.makeTempDir({ prefix: "mf-user-" });
  const server = via === "http" ? serveRepository() : undefined;
  const root = server?.base ?? REPOSITORY.href.replace(/\/$/, "");
  const children: Child[] = [];
  return {
    dir,
    async write(name, source): Promise<URL> {
      const file = new URL(`file://${dir}/${name}`);
      await Deno.writeTextFile(file, source.replaceAll("MOD/", `${root}/`));
      return file;
    },
    start(name, options = {}): Child {
      const child = new Child(
        new URL(`file://${dir}/${name}`),
        options.args ?? [],
        options.env ?? {},
        [],
        dir,
        options.subcommand,
      );
      children.push(child);
      return child;
    },
    async [Symbol.asyncDispose](): Promise<void> {
      for (const child of children) {
        try {
          child.process.kill("SIGKILL");
        } catch {
          // It has exited already.
        }
        await child.exit();
      }
      await server?.[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
