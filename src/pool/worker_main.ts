import { StateError } from "../errors.ts";
import type { ServiceEntry } from "../service.ts";
import { PoolRuntime } from "./pool_runtime.ts";
import { isProtocolMessage, type ToPool } from "./protocol.ts";
import {
  type PoolScope,
  type WorkerScope,
  workerScope,
} from "./worker_scope.ts";

let running = false;

/**
 * The worker's side of `main.run()`: tells the primary it is ready, receives
 * its pool, runs it, and closes the worker once the pool has stopped.
 *
 * @param pools The pools the re-executed main module declared.
 */
export async function runWorker(
  pools: () => Readonly<Record<string, readonly ServiceEntry[]>>,
): Promise<void> {
  if (running) {
    throw new StateError(
      "Cannot run the pool: main.run() was already called in this worker",
    );
  }
  running = true;
  const scope = workerScope();
  const originalClose = scope.close.bind(scope);
  const exit = (reason: string): void => {
    scope.postMessage({ mf: 1, kind: "exit", reason });
  };
  patchExits(scope, originalClose, exit);
  // Messages arrive in later tasks: the listeners below are in place first.
  const host = hostPool(scope, pools, exit, originalClose);
  scope.addEventListener("error", (event) => {
    event.preventDefault();
    const error = (event as ErrorEvent).error ?? (event as ErrorEvent).message;
    const runtime = host.runtime;
    if (runtime !== undefined) runtime.uncaught("error", error);
    else exit(`uncaught error before the pool started: ${String(error)}`);
  });
  scope.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    const reason = (event as PromiseRejectionEvent).reason;
    const runtime = host.runtime;
    if (runtime !== undefined) runtime.uncaught("promise rejection", reason);
  });
  await host.finished;
}

/** A pool served over a scope: its runtime once `init` arrived. */
export interface PoolHost {
  /** The pool's runtime, from the primary's `init` on. */
  readonly runtime: PoolRuntime | undefined;
  /** Resolves once the pool has stopped (or could not start). */
  readonly finished: Promise<void>;
}

/**
 * Serves the pool the primary names over `scope` (a worker's global scope,
 * or one end of a `MessageChannel` for a pool in the primary's thread):
 * answers `init` by building the pool's runtime, passes it every later
 * message, and posts `ready` to begin.
 *
 * @param scope Where the primary's messages arrive and the pool's go.
 * @param pools The pools the program declares.
 * @param exit Tells the primary the pool ended by itself.
 * @param close Ends the scope once the pool has stopped.
 */
export function hostPool(
  scope: PoolScope,
  pools: () => Readonly<Record<string, readonly ServiceEntry[]>>,
  exit: (reason: string) => void,
  close: () => void,
): PoolHost {
  const { promise: finished, resolve: finish } = Promise.withResolvers<void>();
  const host: { runtime: PoolRuntime | undefined; finished: Promise<void> } = {
    runtime: undefined,
    finished,
  };
  scope.addEventListener("message", (event) => {
    const message = event.data;
    if (!isProtocolMessage(message)) return;
    const typed = message as ToPool;
    if (typed.kind === "init") {
      const entries = pools()[typed.pool];
      if (entries === undefined) {
        exit(
          `the re-executed main module declares no pool named "${typed.pool}"`,
        );
        finish();
        close();
        return;
      }
      const runtime = new PoolRuntime(scope, typed, entries);
      host.runtime = runtime;
      runtime.done.then(() => {
        finish();
        queueMicrotask(close);
      });
      runtime.initialize();
      return;
    }
    // The primary sends nothing before `init`, so a runtime exists here.
    host.runtime?.handle(typed);
  });
  scope.postMessage({ mf: 1, kind: "ready" });
  return host;
}

/**
 * Makes `self.close()` and `Deno.exit()` tell the primary before the worker
 * ends, so the primary can report the pool's death and restart it.
 */
function patchExits(
  scope: WorkerScope,
  originalClose: () => void,
  exit: (reason: string) => void,
): void {
  const writable = scope as { close: () => void };
  writable.close = () => {
    exit("self.close() was called");
    originalClose();
  };
  const deno = Deno as { exit: (code?: number) => never };
  const originalExit = deno.exit.bind(Deno);
  try {
    deno.exit = (code?: number): never => {
      exit(`Deno.exit(${code ?? ""}) was called`);
      return originalExit(code);
    };
  } catch {
    // Deno.exit is read-only in this Deno: a death by it is seen as a stall.
  }
}
