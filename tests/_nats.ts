/**
 * A `nats-server` of the test's own, on a free port: started, killed and
 * restarted on the same port, waited for by its "Server is ready" line.
 */

const CANDIDATES = ["/usr/sbin/nats-server", "/usr/bin/nats-server"];

/** The `nats-server` executable, or `undefined` when it is not installed. */
export function findNatsServer(): string | undefined {
  const path = Deno.env.get("PATH") ?? "";
  const dirs = path.split(":").filter((dir) => dir !== "");
  for (
    const candidate of [...dirs.map((d) => `${d}/nats-server`), ...CANDIDATES]
  ) {
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch {
      // Not there.
    }
  }
  return undefined;
}

/** A running `nats-server` of the test's. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** Its port (the same after a restart). */
  readonly port: number;
  /** Kills it with SIGKILL and waits for its exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port and waits until it is ready. */
  restart(): Promise<void>;
  /** Stops it (SIGTERM) and waits for its exit. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a `nats-server` on a free port of 127.0.0.1; resolves once it says
 * it is ready, or with a one-line reason when there is none to start.
 */
export async function startNatsServer(): Promise<NatsServer | string> {
  const executable = findNatsServer();
  if (executable === undefined) return "nats-server is not installed";
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  let running = await launch(executable, port);
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    async kill(): Promise<void> {
      running.process.kill("SIGKILL");
      await running.done;
    },
    async restart(): Promise<void> {
      running = await launch(executable, port);
    },
    async [Symbol.asyncDispose](): Promise<void> {
      try {
        running.process.kill("SIGTERM");
      } catch {
        // It has exited already.
      }
      await running.done;
    },
  };
}

interface Running {
  process: Deno.ChildProcess;
  /** Resolves once the process has exited and its output is read. */
  done: Promise<void>;
}

async function launch(executable: string, port: number): Promise<Running> {
  const process = new Deno.Command(executable, {
    args: ["-a", "127.0.0.1", "-p", String(port)],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const ready = Promise.withResolvers<void>();
  const log: string[] = [];
  const reading = (async () => {
    for await (
      const chunk of process.stderr.pipeThrough(new TextDecoderStream())
    ) {
      log.push(chunk);
      if (log.join("").includes("Server is ready")) ready.resolve();
    }
    ready.reject(
      new Error(`nats-server on port ${port} exited:\n${log.join("")}`),
    );
  })();
  const done = Promise.all([process.status, reading]).then(() => {});
  await ready.promise;
  return { process, done };
}
