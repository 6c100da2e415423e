/**
 * The durable-queue test programs' setting: a folder outside the repository
 * holding `tests/fixtures/durable_program.ts`, and on JetStream a private
 * `nats-server -js` with its own store, all gone at disposal.
 */
import { type OutsideFolder, outsideFolder } from "./_outside.ts";
import type { Child } from "./_child.ts";
import { type NatsServer, startNatsServer } from "./_nats.ts";
import { DURABLE_PROGRAM } from "./fixtures/durable_program.ts";

/** The environment every durable program runs with (local log). */
const ENV = { MAGIC_FOUNDATION_DURABLE: "q://jobs/>" };

/** Where durable queues are stored. */
export type Backend = "local" | "JetStream";
/** Both backends, for tests registered once each. */
export const BACKENDS: Backend[] = ["local", "JetStream"];

/** A test's folder, its program, and (on JetStream) its server. */
export interface Setup extends AsyncDisposable {
  folder: OutsideFolder;
  /** The program's data directory (its `directory` option). */
  data: string;
  server: NatsServer | undefined;
  /** Starts the program: `args[0]` is the scenario, the data directory follows it. */
  start(args: string[]): Child;
}

/** The folder and program, and on JetStream its server, for one test. */
export async function setUp(backend: Backend): Promise<Setup> {
  const folder = await outsideFolder("file");
  let server: NatsServer | undefined;
  // The server's store, apart: the folder goes (its programs killed) first.
  let store: string | undefined;
  const dispose = async (): Promise<void> => {
    await folder[Symbol.asyncDispose]();
    await server?.stop();
    if (store !== undefined) await Deno.remove(store, { recursive: true });
  };
  try {
    await folder.write("program.ts", DURABLE_PROGRAM);
    if (backend === "JetStream") {
      store = await Deno.makeTempDir({ prefix: "durable_jetstream_" });
      const started = await startNatsServer(["-js", "-sd", store]);
      if (typeof started === "string") throw new Error(started);
      server = started;
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  const env: Record<string, string> = server === undefined
    ? ENV
    : { ...ENV, MAGIC_FOUNDATION_NATS: server.url };
  const data = `${folder.dir}/data`;
  return {
    folder,
    data,
    server,
    start: (args) =>
      folder.start("program.ts", {
        args: [args[0]!, data, ...args.slice(1)],
        env,
      }),
    [Symbol.asyncDispose]: dispose,
  };
}
