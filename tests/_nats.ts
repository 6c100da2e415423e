/**
 * Test helper: a private `nats-server` on a free port of 127.0.0.1, started,
 * killed and restarted by the test, never the shared one on 4222.
 *
 * Readiness is an event: the server's own "Server is ready" line on stderr,
 * within a deadline (no sleep). The server's stderr is read to the end, so
 * its pipe never fills, and its last lines go into error messages.
 */

/** Where Debian puts `nats-server` (often not on a user's `PATH`). */
const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin"];
const READY_LINE = "Server is ready";
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
/** Lines of stderr kept for error messages. */
const KEPT_LINES = 20;

/** A running private `nats-server`. */
export interface NatsServer extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** The port, the same across restarts. */
  readonly port: number;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** Stops the server gracefully (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Kills the server (SIGKILL) and waits for it to exit. */
  kill(): Promise<void>;
  /**
   * Starts the server again on the same port (stopping it first if it runs)
   * and waits until it is ready; with `args`, those replace its extra
   * arguments from then on.
   */
  restart(args?: readonly string[]): Promise<void>;
}

/** The `nats-server` executable, or `undefined`. */
export async function findNatsServer(): Promise<string | undefined> {
  const path = Deno.env.get("PATH") ?? "";
  for (
    const dir of [...path.split(":").filter((d) => d !== ""), ...EXTRA_DIRS]
  ) {
    const file = `${dir}/nats-server`;
    try {
      const info = await Deno.stat(file);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return file;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** A port that was free a moment ago (listen on 0, close). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

const NOT_FOUND =
  "nats-server not found on PATH or in /usr/sbin (apt-get install nats-server)";

/**
 * Why the NATS tests must be skipped (a one-line reason), or `undefined`
 * when `nats-server` is installed. For `Deno.test({ ignore })`.
 */
export async function natsSkipReason(): Promise<string | undefined> {
  return await findNatsServer() === undefined ? NOT_FOUND : undefined;
}

/**
 * Starts a private `nats-server` on a free port and waits until it is ready.
 *
 * @param args More arguments for the server (`["--user", "u", "--pass",
 * "p"]`, `["-c", file]`), kept across restarts.
 * @returns The server, or a one-line skip reason when `nats-server` is not
 * installed.
 */
export async function startNatsServer(
  args: readonly string[] = [],
): Promise<NatsServer | string> {
  const executable = await findNatsServer();
  if (executable === undefined) return NOT_FOUND;
  // Another process may take the free port before the server does: retry.
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    const server = new PrivateNatsServer(executable, port, args);
    try {
      await server.start();
      return server;
    } catch (error) {
      if (attempt >= 3 || !server.portTaken) throw error;
    }
  }
}

/** One child process of the server and the reading of its stderr. */
interface Run {
  readonly child: Deno.ChildProcess;
  /** Resolves when stderr is read to its end. */
  readonly drained: Promise<void>;
  /** Resolves with the exit status. */
  readonly exited: Promise<Deno.CommandStatus>;
}

class PrivateNatsServer implements NatsServer {
  readonly url: string;
  readonly port: number;
  /** Whether the last failed start saw "address already in use". */
  portTaken = false;
  #executable: string;
  #args: readonly string[];
  #run: Run | undefined;
  #lines: string[] = [];

  constructor(executable: string, port: number, args: readonly string[]) {
    this.#executable = executable;
    this.#args = args;
    this.port = port;
    this.url = `nats://127.0.0.1:${port}`;
  }

  get running(): boolean {
    return this.#run !== undefined;
  }

  /** Spawns the server and waits for its ready line (or its exit). */
  async start(): Promise<void> {
    if (this.#run !== undefined) throw new Error("nats-server already runs");
    this.#lines = [];
    this.portTaken = false;
    const child = new Deno.Command(this.#executable, {
      args: ["-a", "127.0.0.1", "-p", String(this.port), ...this.#args],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const ready = Promise.withResolvers<void>();
    const drained = this.#read(child.stderr, ready.resolve);
    const exited = child.status;
    this.#run = { child, drained, exited };
    const signal = AbortSignal.timeout(READY_TIMEOUT_MS);
    const timedOut = new Promise<"timeout">((resolve) =>
      signal.addEventListener("abort", () => resolve("timeout"), { once: true })
    );
    const outcome = await Promise.race([
      ready.promise.then(() => "ready" as const),
      exited.then(() => "exited" as const),
      timedOut,
    ]);
    if (outcome === "ready") return;
    if (outcome === "timeout") await this.#end("SIGKILL");
    else await this.#end(undefined);
    this.portTaken = this.#lines.some((line) =>
      line.includes("address already in use")
    );
    throw new Error(
      `nats-server on port ${this.port} ${
        outcome === "timeout"
          ? `was not ready within ${READY_TIMEOUT_MS} ms`
          : "exited before it was ready"
      }; its last lines:\n${this.#lines.join("\n")}`,
    );
  }

  stop(): Promise<void> {
    return this.#end("SIGTERM");
  }

  kill(): Promise<void> {
    return this.#end("SIGKILL");
  }

  async restart(args?: readonly string[]): Promise<void> {
    if (this.#run !== undefined) await this.stop();
    if (args !== undefined) this.#args = args;
    await this.start();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Signals the process (if given), then waits for its exit and its stderr. */
  async #end(signal: Deno.Signal | undefined): Promise<void> {
    const run = this.#run;
    if (run === undefined) return;
    if (signal !== undefined) {
      try {
        run.child.kill(signal);
      } catch {
        // It has exited already.
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<true>((resolve) => {
      timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
    });
    const slow = await Promise.race([run.exited.then(() => false), late]);
    clearTimeout(timer);
    if (slow) {
      run.child.kill("SIGKILL");
      await run.exited;
    }
    await run.drained;
    this.#run = undefined;
  }

  /** Reads stderr to its end, keeping the last lines; calls `onReady` once. */
  async #read(
    stream: ReadableStream<Uint8Array>,
    onReady: () => void,
  ): Promise<void> {
    let pending = "";
    let ready = false;
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      pending += text;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        this.#lines.push(line);
        if (this.#lines.length > KEPT_LINES) this.#lines.shift();
        if (!ready && line.includes(READY_LINE)) {
          ready = true;
          onReady();
        }
      }
    }
    if (pending !== "") this.#lines.push(pending);
  }
}
