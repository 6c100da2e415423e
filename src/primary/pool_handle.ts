import type { FromPool, ServiceReport, ToPool } from "../pool/protocol.ts";
import { RestartBudget } from "../restart_budget.ts";
import { Service, type ServiceEntry } from "../service.ts";

/** How a dead worker is restarted: a service's restart settings. */
export type RestartSettings = Pick<
  ServiceReport,
  "restart" | "maxRestarts" | "restartWindow" | "backoffInitial" | "backoffMax"
>;

/**
 * What the primary needs of a pool's worker: a Web `Worker`, or anything
 * that carries the same protocol (the test bed runs pools in its own thread).
 */
export interface PoolWorker {
  postMessage(message: ToPool, transfer: Transferable[]): void;
  terminate(): void;
  onmessage: ((event: MessageEvent) => void) | null;
  onerror: ((event: ErrorEvent) => void) | null;
  onmessageerror: ((event: MessageEvent) => void) | null;
}

/** Starts the worker of pool `pool`, which then says `hello` or `ready`. */
export type LaunchPool = (pool: string) => PoolWorker;

/** Where a pool's worker is in its life. */
export type PoolState = "starting" | "live" | "stopping" | "stopped" | "dead";

/** The primary's view of one pool: its worker, services and restarts. */
export class PoolHandle {
  readonly name: string;
  readonly index: number;
  incarnation = 0;
  state: PoolState = "starting";
  worker: PoolWorker | undefined;
  /** Latest report of each service, by name. */
  services = new Map<string, ServiceReport>();
  /** Resolves when the pool first reports `initialized` (or can never). */
  initialized = Promise.withResolvers<void>();
  /** Resolves when the current worker reports `terminated`. */
  terminated = Promise.withResolvers<void>();
  /** The worker's restarts in the restart window, and their backoff. */
  readonly restarts: RestartBudget = new RestartBudget();
  /** Why the worker last died, if it did. */
  deathReason: string | undefined;
  /** The stop deadline (ms) the worker missed, if it did: it may still be spinning. */
  missedStop: number | undefined;
  /** When a stall began, or 0. */
  stalledSince = 0;
  /** Times the pool's event loop stalled (for the metrics). */
  stalls = 0;
  /** The timer of the start deadline or a restart backoff. */
  timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * What the main thread knows before the worker has built anything: the
   * restart settings of the first service given as an instance whose policy
   * is not `never`, and whether some are factories (only the worker builds
   * those, so their policies are unknown until it has).
   */
  readonly #declared: RestartSettings | undefined;
  readonly hasFactories: boolean;

  constructor(name: string, index: number, entries: readonly ServiceEntry[]) {
    this.name = name;
    this.index = index;
    this.#declared = entries.find((entry): entry is Service =>
      entry instanceof Service && entry.options.restart !== "never"
    )?.options;
    this.hasFactories = entries.some((entry) => !(entry instanceof Service));
  }

  /** Whether the worker can receive messages now. */
  get live(): boolean {
    return this.state === "live" || this.state === "stopping";
  }

  /** Sends a message to the worker, if it has one. */
  send(message: ToPool, transfer: Transferable[] = []): void {
    this.worker?.postMessage(message, transfer);
  }

  /** Records what a status or report message says. */
  record(message: FromPool): void {
    if (message.kind === "initialized" || message.kind === "terminated") {
      for (const report of message.services) {
        this.services.set(report.name, report);
      }
    } else if (message.kind === "status") {
      const report = this.services.get(message.service);
      if (report !== undefined) {
        report.status = message.status;
        report.error = message.error;
        report.phase = message.phase;
      }
    }
  }

  /**
   * The restart settings for the worker: those of the first service that
   * asks for restarts, as the worker reported them, or (before any report)
   * as declared in the main thread.
   */
  restartPolicy(): RestartSettings | undefined {
    if (this.services.size === 0) return this.#declared;
    for (const report of this.services.values()) {
      if (report.restart !== "never") return report;
    }
    return undefined;
  }

  /** Stops the worker at once (the fallback when it does not stop by itself). */
  kill(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.worker?.terminate();
    this.worker = undefined;
  }
}
