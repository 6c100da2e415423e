/**
 * The worker global scope, typed by hand so that the library type-checks
 * under the default `deno.window` lib while it runs in both threads.
 */
export interface WorkerScope {
  readonly name: string;
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(
    type: "message",
    listener: (event: MessageEvent) => void,
  ): void;
  addEventListener(
    type: "error" | "unhandledrejection",
    listener: (event: Event) => void,
  ): void;
  removeEventListener(
    type: "message",
    listener: (event: MessageEvent) => void,
  ): void;
  close(): void;
}

/**
 * What a pool's runtime needs of its scope: where the primary's messages
 * arrive and its own go. A worker's global scope is one; so is a
 * `MessagePort`.
 */
export interface PoolScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(
    type: "message",
    listener: (event: MessageEvent) => void,
  ): void;
}

/** Whether this code runs in a Web Worker. */
export function inWorker(): boolean {
  const scope =
    (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope;
  return typeof scope === "function" && globalThis instanceof scope;
}

/** The worker scope; only call it in a worker. */
export function workerScope(): WorkerScope {
  return globalThis as unknown as WorkerScope;
}
