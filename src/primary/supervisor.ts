/**
 * The life of each pool's worker, as the primary supervises it: spawning
 * and the handshake (`hello` → `boot`, `ready` → `init`), the start
 * deadline, death, and a restart with backoff within the pool's budget.
 *
 * @module
 */
import { serializeError, ServiceError } from "../errors.ts";
import { ServiceErrorEvent } from "../error_event.ts";
import { resetHeartbeat } from "../pool/heartbeat.ts";
import type { FromPool, PoolConfig } from "../pool/protocol.ts";
import { isProtocolMessage } from "../pool/protocol.ts";
import type { RemoteSetup } from "../transport/open_remote.ts";
import type { TransportHub } from "../transport/transport.ts";
import type { Logger } from "../logger.ts";
import type { ErrorEvents } from "./error_events.ts";
import type { LaunchPool, PoolHandle } from "./pool_handle.ts";
import type { SubscriptionTable } from "./subscription_table.ts";

/** What the supervisor asks of the primary. */
export interface SupervisorHost {
  /** Whether the ordered stop has begun. */
  stopping(): boolean;
  /** Whether the program has passed the start barrier. */
  started(): boolean;
  /** Handles a message from `pool`'s current worker. */
  receive(pool: PoolHandle, message: FromPool): void;
  /** Forgets `pool`'s worker everywhere (it died): its links, subscriptions, answers. */
  poolGone(pool: PoolHandle): void;
  /** Asks for the ordered stop. */
  requestStop(reason: string): void;
}

/** What the supervisor works with. */
export interface SupervisorParts {
  pools: readonly PoolHandle[];
  heartbeats: Float64Array;
  hub: TransportHub;
  table: SubscriptionTable;
  log: Logger;
  errors: ErrorEvents;
  launch: LaunchPool;
  /** How long a worker has to say `ready`, in ms. */
  startTimeout: number;
  workerData: unknown;
  config: PoolConfig;
  /** How each pool joins other processes (NATS), when the program does. */
  remote: RemoteSetup | undefined;
}

/** Spawns, greets, buries and restarts the pools' workers. */
export class Supervisor {
  readonly #parts: SupervisorParts;
  readonly #host: SupervisorHost;
  readonly #names: string[];

  constructor(parts: SupervisorParts, host: SupervisorHost) {
    this.#parts = parts;
    this.#host = host;
    this.#names = parts.pools.map((pool) => pool.name);
  }

  /** Starts a new worker for `pool`, with its start deadline. */
  spawn(pool: PoolHandle): void {
    pool.incarnation++;
    pool.state = "starting";
    pool.terminated = Promise.withResolvers<void>();
    resetHeartbeat(this.#parts.heartbeats, pool.index);
    const worker = this.#parts.launch(pool.name);
    pool.worker = worker;
    const incarnation = pool.incarnation;
    worker.onmessage = (event: MessageEvent) => {
      if (pool.incarnation !== incarnation || !isProtocolMessage(event.data)) {
        return;
      }
      this.#host.receive(pool, event.data as FromPool);
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      if (pool.incarnation !== incarnation) return;
      this.died(pool, `uncaught error: ${event.message}`);
    };
    worker.onmessageerror = () => {
      this.#parts.log.error(
        `A message from pool "${pool.name}" could not be read`,
      );
    };
    const timeout = this.#parts.startTimeout;
    pool.timer = setTimeout(() => {
      if (pool.state === "starting" && pool.incarnation === incarnation) {
        this.died(
          pool,
          `its worker did not call main.run() within ${timeout} ms (is main.run() inside "if (import.meta.main)"?)`,
        );
      }
    }, timeout);
  }

  /** The worker said `hello`: it gets what it needs to load its services. */
  hello(pool: PoolHandle): void {
    pool.send({
      mf: 1,
      kind: "boot",
      pool: pool.name,
      workerData: this.#parts.workerData,
      remote: this.#parts.remote,
    });
  }

  /** The worker is `ready`: it joins the transport and gets the table. */
  ready(pool: PoolHandle): void {
    const stopping = this.#host.stopping();
    clearTimeout(pool.timer);
    pool.state = stopping ? "stopping" : "live";
    const { setup, transfer } = this.#parts.hub.connect(
      pool.index,
      pool.incarnation,
    );
    pool.send({
      mf: 1,
      kind: "init",
      pool: pool.name,
      index: pool.index,
      incarnation: pool.incarnation,
      pools: this.#names,
      transport: setup,
      heartbeats: this.#parts.heartbeats,
      table: this.#parts.table.entries(),
      config: this.#parts.config,
      started: this.#host.started(),
    }, transfer);
    if (stopping) pool.send({ mf: 1, kind: "stopping" });
  }

  /**
   * `pool`'s worker died (`reason`): it is forgotten, its services are in
   * `error`, and it is restarted if its budget allows; else the run may
   * stop (a pool that could not start, or none left).
   */
  died(pool: PoolHandle, reason: string): void {
    if (pool.state === "dead" || pool.state === "stopped") return;
    const wasStopping = this.#host.stopping();
    const wasStarting = pool.state === "starting";
    pool.kill();
    pool.state = "dead";
    pool.deathReason = reason;
    this.#host.poolGone(pool);
    pool.terminated.resolve();
    if (wasStopping) {
      this.#parts.log.warn(
        `Pool "${pool.name}" ended while stopping: ${reason}`,
      );
      return;
    }
    this.#parts.errors.emit(
      new ServiceErrorEvent(
        new ServiceError(
          pool.name,
          "*",
          "uncaught",
          new Error(`its worker died: ${reason}`),
        ),
      ),
      {
        level: "error",
        message: `Pool "${pool.name}" died: ${reason}`,
        time: Date.now(),
      },
    );
    for (const report of pool.services.values()) {
      if (report.status !== "error") {
        report.status = "error";
        report.error = serializeError(new Error(`its pool died: ${reason}`));
        report.phase = undefined;
      }
    }
    if (this.#restart(pool)) return;
    pool.initialized.resolve();
    if (wasStarting) {
      // Its module (or a module it loads at start) failed, and it will not
      // be restarted: the program cannot run as declared.
      this.#host.requestStop(`pool "${pool.name}" could not start: ${reason}`);
    } else if (this.#parts.pools.every((p) => p.state === "dead")) {
      this.#host.requestStop("every pool has died");
    }
  }

  /** Schedules a new worker for `pool` when its policy and budget allow. */
  #restart(pool: PoolHandle): boolean {
    const policy = pool.restartPolicy();
    if (policy === undefined) {
      if (pool.services.size === 0 && pool.hasFactories) {
        pool.deathReason +=
          "; it is not restarted: its restart policy is unknown, because its services are given as factories, which only its worker builds (give them as instances to have the pool restarted after a failed load)";
      }
      return false;
    }
    const delay = pool.restarts.take(policy);
    if (delay === undefined) {
      this.#parts.log.error(
        `Pool "${pool.name}" is not restarted: ${pool.restarts.used} restarts within ${policy.restartWindow} ms`,
      );
      return false;
    }
    this.#parts.log.info(`Restarting pool "${pool.name}" in ${delay} ms`);
    pool.timer = setTimeout(() => {
      if (!this.#host.stopping()) this.spawn(pool);
    }, delay);
    return true;
  }
}
