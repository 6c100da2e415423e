import { StateError } from "../errors.ts";
import type { ServiceEntry } from "../service.ts";
import { PoolRuntime } from "./pool_runtime.ts";
import { isProtocolMessage, type ToPool } from "./protocol.ts";
import { type WorkerScope, workerScope } from "./worker_scope.ts";

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
  let runtime: PoolRuntime | undefined;
  const exit = (reason: string): void => {
    scope.postMessage({ mf: 1, kind: "exit", reason });
  };
  patchExits(scope, originalClose, exit);
  scope.addEventListener("error", (event) => {
    event.preventDefault();
    const error = (event as ErrorEvent).error ?? (event as ErrorEvent).message;
    if (runtime !== undefined) runtime.uncaught("error", error);
    else exit(`uncaught error before the pool started: ${String(error)}`);
  });
  scope.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    const reason = (event as PromiseRejectionEvent).reason;
    if (runtime !== undefined) runtime.uncaught("promise rejection", reason);
  });
  const { promise: finished, resolve: finish } = Promise.withResolvers<void>();
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
        originalClose();
        return;
      }
      runtime = new PoolRuntime(scope, typed, entries);
      runtime.done.then(() => {
        finish();
        queueMicrotask(originalClose);
      });
      runtime.initialize();
      return;
    }
    // The primary sends nothing before `init`, so a runtime exists here.
    runtime?.handle(typed);
  });
  scope.postMessage({ mf: 1, kind: "ready" });
  await finished;
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
