/**
 * Helpers for the log-file tests: temporary folders, a small real disk (a
 * tmpfs), reading a log file back, and a stub context that delivers by hand.
 */
import assert from "node:assert/strict";
import type { MessageHandler, MessageMeta, ServiceContext } from "../mod.ts";

/** A temporary folder, removed at the end of the scope. */
export async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "log_file_test_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** The lines of a log file, checking that it ends with a whole line. */
export async function readLines(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path);
  assert.ok(text === "" || text.endsWith("\n"), "the file ends with a line");
  return text === "" ? [] : text.slice(0, -1).split("\n");
}

/** A stub context, its handlers, and what the service logged (warnings and errors). */
export interface Stub {
  ctx: ServiceContext;
  handlers: Map<string, MessageHandler>;
  errors: string[];
  deliver(data: unknown): void | Promise<void>;
}

/** A context that records subscriptions and logs, and delivers by hand. */
export function stubContext(queue: string): Stub {
  const handlers = new Map<string, MessageHandler>();
  const errors: string[] = [];
  const meta = (q: string, headers?: Record<string, string>): MessageMeta => ({
    queue: q,
    from: { pool: "main", service: "Producer" },
    publishedAt: 0,
    headers,
  });
  const ctx = {
    pool: "background",
    service: "LogFileService",
    signal: new AbortController().signal,
    log: {
      debug: (): void => {},
      info: (): void => {},
      warn: (m: string) => errors.push(m),
      error: (m: string) => errors.push(m),
    },
    subscribe: (q: string, handler: MessageHandler) => {
      handlers.set(q, handler);
      return Promise.resolve();
    },
    publish: async (
      q: string,
      data: unknown,
      options?: { headers?: Record<string, string> },
    ) => {
      await handlers.get(q)?.(data, meta(q, options?.headers));
    },
  } as unknown as ServiceContext;
  return {
    ctx,
    handlers,
    errors,
    deliver: (data) => handlers.get(queue)!(data, meta(queue)),
  };
}

/** One MiB, the size of {@linkcode smallDisk}. */
export const MIB = 1024 * 1024;

/**
 * A real 1 MiB disk: a tmpfs mounted on a temporary folder (needs root),
 * unmounted and removed when disposed.
 *
 * @throws {Error} When the tmpfs cannot be mounted.
 */
export async function smallDisk(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "log_file_disk_" });
  try {
    await run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", path]);
  } catch (error) {
    await Deno.remove(path);
    throw error;
  }
  return {
    path,
    async [Symbol.asyncDispose](): Promise<void> {
      await run("umount", [path]);
      await Deno.remove(path);
    },
  };
}

/** Why a tmpfs cannot be mounted here, or `undefined` when it can. */
export async function noSmallDisk(): Promise<string | undefined> {
  try {
    await using _disk = await smallDisk();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Fills `disk` (a {@linkcode smallDisk}) with a file `filler` so that `room`
 * bytes stay free; returns the filler's path.
 */
export async function fill(disk: string, room: number): Promise<string> {
  const path = `${disk}/filler`;
  await Deno.writeFile(path, new Uint8Array(MIB - room));
  return path;
}

async function run(command: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(command, {
    args,
    stdout: "null",
    stderr: "piped",
  }).output().catch((error: Error) => {
    throw new Error(`Cannot run ${command}: ${error.message}`);
  });
  if (!output.success) {
    const reason = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`Cannot ${command} a tmpfs: ${reason}`);
  }
}
