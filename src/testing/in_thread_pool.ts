import type { PoolWorker } from "../primary/pool_handle.ts";
import type { ToPool } from "../pool/protocol.ts";
import { hostPool } from "../pool/worker_main.ts";
import type { ServiceEntry } from "../service.ts";

/**
 * A pool run in the primary's own thread: what a Web Worker does for a pool,
 * over one `MessageChannel`. The primary's messages reach the pool's real
 * runtime (`hostPool`, as in a worker) through the channel, so the protocol,
 * the copies and the order are those of a run; only the thread is shared.
 */
export class InThreadPool implements PoolWorker {
  onmessage: ((event: MessageEvent) => void) | null = null;
  onerror: ((event: ErrorEvent) => void) | null = null;
  onmessageerror: ((event: MessageEvent) => void) | null = null;
  #primarySide: MessagePort;
  #poolSide: MessagePort;
  #closed = false;

  /**
   * @param pool The pool's name.
   * @param entries Its services (or factories), used as they are: not copied.
   */
  constructor(pool: string, entries: readonly ServiceEntry[]) {
    const { port1, port2 } = new MessageChannel();
    this.#primarySide = port1;
    this.#poolSide = port2;
    port1.onmessage = (event) => this.onmessage?.(event);
    port1.onmessageerror = (event) => this.onmessageerror?.(event);
    hostPool(
      port2,
      () => ({ [pool]: entries }),
      (reason) => port2.postMessage({ mf: 1, kind: "exit", reason }),
      () => port2.close(),
    );
    // hostPool listens with addEventListener, which does not start a port.
    port2.start();
  }

  postMessage(message: ToPool, transfer: Transferable[]): void {
    if (!this.#closed) this.#primarySide.postMessage(message, transfer);
  }

  /** Closes both ends; the pool's runtime closed its own resources when it stopped. */
  terminate(): void {
    this.#closed = true;
    this.#primarySide.close();
    this.#poolSide.close();
  }
}
