/**
 * A user's program in its own folder, outside this repository, importing
 * the module by file URL and over HTTP: joined to NATS with tracing on, and
 * with the npm registry unreachable (a dependency that cannot load fails the
 * run at once, with exit code 1, instead of hanging in `initialize()`).
 */
import assert from "node:assert/strict";
import { outsideFolder, type Via } from "./_outside.ts";
import { natsSkipReason, startNatsServer } from "./_nats.ts";

const PROGRAM = `
import { Main, Service, type MessageMeta, type ServiceContext } from "MOD/mod.ts";

const [role, queue] = Deno.args;

class Subscriber extends Service {
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe(queue, (data: unknown, meta: MessageMeta) => {
      const traced = meta.headers?.traceparent !== undefined;
      console.log("GOT " + JSON.stringify({ data, traced }));
      void Main.instance().stop();
    });
  }
  override run(): void {
    console.log("SUBSCRIBED");
  }
}

class Publisher extends Service {
  override async run(ctx: ServiceContext): Promise<void> {
    await ctx.publish(queue, { hello: "world" });
    console.log("PUBLISHED");
    void Main.instance().stop();
  }
}

if (import.meta.main) {
  const main = Main.instance();
  main.servicePools = role === "subscriber"
    ? { listen: [new Subscriber("subscriber")] }
    : { talk: [new Publisher("publisher")] };
  const report = await main.run();
  console.log("RESULT " + JSON.stringify(report));
}
`;

/** Tracing on, its exporter pointed at a port nobody listens on. */
const TRACING = {
  OTEL_DENO: "true",
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
  OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
};

for (const via of ["file", "http"] as const satisfies Via[]) {
  Deno.test({
    name:
      `A program outside the repository (mod.ts by ${via}) joins NATS with tracing on`,
    ignore: await natsSkipReason() !== undefined,
    async fn(): Promise<void> {
      const server = await startNatsServer();
      if (typeof server === "string") throw new Error(server);
      await using _server = server;
      await using folder = await outsideFolder(via);
      await folder.write("program.ts", PROGRAM);
      const env = { ...TRACING, MAGIC_FOUNDATION_NATS: server.url };
      const subscriber = folder.start("program.ts", {
        args: ["subscriber", "q://greetings"],
        env,
      });
      await subscriber.waitFor((line) => line === "SUBSCRIBED");
      const publisher = folder.start("program.ts", {
        args: ["publisher", "q://greetings"],
        env,
      });
      const [subscribed, published] = await Promise.all([
        subscriber.exit(),
        publisher.exit(),
      ]);
      const output = `subscriber:\n${subscriber.lines.join("\n")}\n` +
        `publisher:\n${publisher.lines.join("\n")}`;
      assert.equal(subscribed.code, 0, output);
      assert.equal(published.code, 0, output);
      const got = subscriber.lines.find((line) => line.startsWith("GOT "));
      assert.deepEqual(JSON.parse(got!.slice(4)), {
        data: { hello: "world" },
        traced: true,
      });
      assert.deepEqual(subscriber.result()?.failures, []);
      assert.deepEqual(publisher.result()?.failures, []);
    },
  });
}

/**
 * The environment of a child whose npm packages cannot load: an empty
 * DENO_DIR of its own and a registry on a port nobody listens on.
 */
async function unreachableRegistry(
  dir: string,
): Promise<Record<string, string>> {
  const denoDir = `${dir}/deno_dir`;
  await Deno.mkdir(denoDir);
  return { DENO_DIR: denoDir, NPM_CONFIG_REGISTRY: "http://127.0.0.1:9/" };
}

Deno.test({
  name:
    "A pool whose NATS client cannot load fails the run at once (exit 1, a failure naming the import)",
  ignore: await natsSkipReason() !== undefined,
  async fn(): Promise<void> {
    const server = await startNatsServer();
    if (typeof server === "string") throw new Error(server);
    await using _server = server;
    await using folder = await outsideFolder("file");
    await folder.write("program.ts", PROGRAM);
    const child = folder.start("program.ts", {
      args: ["subscriber", "q://greetings"],
      env: {
        ...await unreachableRegistry(folder.dir),
        MAGIC_FOUNDATION_NATS: server.url,
      },
    });
    const status = await child.exit(60_000);
    const output = child.lines.join("\n");
    assert.equal(status.code, 1, output);
    assert.ok(!output.includes("SUBSCRIBED"), output);
    const failures = child.result()?.failures ?? [];
    assert.equal(failures.length, 1, output);
    assert.equal(failures[0]!.pool, "listen");
    assert.match(failures[0]!.message, /@nats-io\/transport-node/);
  },
});

Deno.test(
  "A program with tracing on whose OpenTelemetry API cannot load ends at once with exit 1, naming it",
  async (): Promise<void> => {
    await using folder = await outsideFolder("file");
    await folder.write("program.ts", PROGRAM);
    const child = folder.start("program.ts", {
      args: ["subscriber", "q://greetings"],
      env: { ...await unreachableRegistry(folder.dir), ...TRACING },
    });
    const status = await child.exit(60_000);
    const output = child.lines.join("\n");
    assert.equal(status.code, 1, output);
    assert.match(output, /@opentelemetry\/api/);
  },
);
