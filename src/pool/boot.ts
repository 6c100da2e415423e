/**
 * The first exchange of a pool's worker, before the program's module runs.
 *
 * Each pool's worker executes the program's main module again (so that its
 * `if (import.meta.main)` block declares the pools there too). This module
 * is imported by that main module through the library, so it is evaluated
 * first; in a pool's worker it asks the primary which pool it runs and for
 * the run's `workerData`, and waits for the answer with a top-level
 * `await`: the program's module is evaluated only once both are known, so
 * `Main.workerData` can be read at its top level, and it may be any value
 * `structuredClone` copies (a `Map`, a `Date`, …).
 *
 * @module
 */
import {
  loadDurableCarrier,
  loadRemoteCarrier,
  type OpenDurableCarrier,
} from "../transport/open_remote.ts";
import type { OpenRemoteCarrier } from "../transport/remote.ts";
import { isProtocolMessage, type ToPool } from "./protocol.ts";
import { inWorker, workerScope } from "./worker_scope.ts";

/** Marks the URL of a pool's worker (a fixed hash: one type-check per module). */
export const POOL_WORKER_HASH = "#magic-foundation-pool";

/** What the primary tells a pool's worker first. */
export type Boot = Extract<ToPool, { kind: "boot" }>;

/** Whether this thread is a pool's worker started by the primary. */
export function isPoolWorker(): boolean {
  if (!inWorker()) return false;
  const location = (globalThis as { location?: { hash: string } }).location;
  return location?.hash === POOL_WORKER_HASH;
}

function receiveBoot(): Promise<Boot> {
  const scope = workerScope();
  const { promise, resolve } = Promise.withResolvers<Boot>();
  // Installed before the first await: a message that arrives while no
  // listener is installed is lost.
  const listener = (event: MessageEvent): void => {
    const message = event.data;
    if (!isProtocolMessage(message) || message.kind !== "boot") return;
    scope.removeEventListener("message", listener);
    resolve(message as Boot);
  };
  scope.addEventListener("message", listener);
  scope.postMessage({ mf: 1, kind: "hello" });
  return promise;
}

/** The primary's first message, in a pool's worker; `undefined` elsewhere. */
export const boot: Boot | undefined = isPoolWorker()
  ? await receiveBoot()
  : undefined;

/**
 * The opener of the pool's carrier between processes, loaded only in the
 * worker of a program joined to one (NATS): the others never load its
 * modules (a pool starts faster). Its client is loaded here too, while the
 * worker's module loads: when it cannot be (an npm registry out of reach),
 * the pool fails to start, which ends the run at once, instead of retrying
 * a connection that cannot be.
 */
export const remoteCarrier: OpenRemoteCarrier | undefined =
  boot?.remote === undefined ? undefined : await loadRemoteCarrier(boot.remote);

/**
 * The opener of the pool's durable-queue carrier between processes
 * (JetStream), loaded only when the program joins NATS with durable queues.
 */
export const remoteDurable: OpenDurableCarrier | undefined =
  boot?.remote === undefined
    ? undefined
    : await loadDurableCarrier(boot.remote);
