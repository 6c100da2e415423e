import { PoolBus, type PrimaryLink } from "../bus/bus.ts";
import { openTransport, type Transport } from "../transport/open.ts";
import {
  deserializeError,
  type FailurePhase,
  type LifecyclePhase,
  serializeError,
} from "../errors.ts";
import {
  createLogger,
  type Logger,
  type LogRecord,
  type LogSink,
} from "../logger.ts";
import { Service, type ServiceEntry } from "../service.ts";
import type { MetricsSnapshot } from "../metrics_snapshot.ts";
import type { Topology } from "../service_context.ts";
import type { Undelivered } from "../run_report.ts";
import { PoolServiceContext } from "./context.ts";
import type { FromPool, ServiceReport, ToPool } from "./protocol.ts";
import { Scheduler } from "../scheduler.ts";
import { beat } from "./heartbeat.ts";
import { type RunnerHost, ServiceRunner } from "./service_runner.ts";
import type { PoolScope } from "./worker_scope.ts";
import { withTimeout } from "../_util/time.ts";
import { collectContributions } from "../service_metrics.ts";
import { remoteCarrier, remoteDurable } from "./boot.ts";
import { type DurableCarrier, LocalCarrier } from "../durable/carrier.ts";
import { DurableClient } from "../durable/client.ts";

type Init = Extract<ToPool, { kind: "init" }>;
type Request = { resolve(value: unknown): void; reject(error: Error): void };

/** How often a pool marks its heartbeat and looks for stuck subscribers. */
const HOUSEKEEPING_MS = 100;

/**
 * Runs one pool inside its worker: builds the services, drives their
 * lifecycle, answers the primary and owns the pool's bus.
 */
export class PoolRuntime implements RunnerHost {
  readonly pool: string;
  readonly terminateTimeout: number;
  started: boolean;
  #scope: PoolScope;
  #init: Init;
  #controller = new AbortController();
  #scheduler = new Scheduler();
  #bus: PoolBus;
  #transport: Transport;
  /** The program's pool names, by index. */
  #poolNames: readonly string[];
  #log: Logger;
  #runners: ServiceRunner[] = [];
  /** Entries that could not become services, reported as failures. */
  #misconfigured: ServiceReport[] = [];
  #requests = new Map<number, Request>();
  #nextRequest = 0;
  #housekeeping: ReturnType<typeof setInterval>;
  #done = Promise.withResolvers<void>();
  /** The carrier of the durable queues, when there are. */
  #durable: DurableCarrier | undefined;
  /** The same, when it is the local log's on the main thread. */
  #localDurable: LocalCarrier | undefined;

  constructor(
    scope: PoolScope,
    init: Init,
    entries: readonly ServiceEntry[],
  ) {
    this.#scope = scope;
    this.#init = init;
    this.pool = init.pool;
    this.started = init.started;
    this.terminateTimeout = init.config.terminateTimeout;
    const sink: LogSink = (record: LogRecord) =>
      this.#send({ mf: 1, kind: "log", record });
    this.#log = createLogger(sink, init.config.logLevel, init.pool);
    const transport = openTransport(
      init.transport,
      init.index,
      init.incarnation,
      this.#scheduler,
    );
    this.#transport = transport;
    this.#poolNames = init.pools;
    const durable = init.config.durable;
    let durableClient: DurableClient | undefined;
    if (durable !== undefined) {
      let carrier: DurableCarrier;
      if (remoteDurable !== undefined) {
        // Joined to NATS: JetStream, on the pool's own connection.
        carrier = remoteDurable({
          pool: init.pool,
          log: this.#log,
          status: (change) =>
            this.#send({ mf: 1, kind: "remote-status", ...change }),
        });
      } else {
        const local = new LocalCarrier((message) =>
          this.#send({ mf: 1, kind: "durable", message })
        );
        this.#localDurable = local;
        carrier = local;
      }
      this.#durable = carrier;
      durableClient = new DurableClient({
        streams: durable.streams,
        groupOnly: durable.groupOnly,
        policy: durable,
        carrier,
        pool: init.pool,
        poolIndex: init.index,
        handlerFailed: (service, error, meta) =>
          this.#reportError(service, "handler", error, meta.queue),
      });
    }
    this.#bus = new PoolBus({
      pool: init.pool,
      index: init.index,
      incarnation: init.incarnation,
      pools: init.pools,
      scheduler: this.#scheduler,
      transport,
      primary: this.#primaryLink(),
      log: this.#log,
      bufferSize: init.config.bufferSize,
      handlerTiming: init.config.handlerTiming,
      onHandlerError: (service, error, meta) =>
        this.#reportError(service, "handler", error, meta.queue),
      remote: remoteCarrier,
      onRemoteStatus: (change) =>
        this.#send({ mf: 1, kind: "remote-status", ...change }),
      durable: durableClient,
    });
    this.#bus.applyTable(init.table, []);
    const { heartbeats, index } = init;
    beat(heartbeats, index);
    let ticks = 0;
    this.#housekeeping = setInterval(() => {
      beat(heartbeats, index);
      if (++ticks % 5 === 0) this.#reportStuck();
    }, HOUSEKEEPING_MS);
    for (const entry of entries) this.#addService(entry, sink);
  }

  /** The abort signal of the pool: aborted when stopping begins. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Resolves when the pool has stopped and reported it. */
  get done(): Promise<void> {
    return this.#done.promise;
  }

  /** Runs every service's `initialize` and reports the pool initialized. */
  async initialize(): Promise<void> {
    await Promise.all(this.#runners.map((runner) => runner.initialize()));
    // Knowing what other processes want before any run() publishes.
    await this.#bus.ready();
    this.#send({ mf: 1, kind: "initialized", services: this.#reports() });
  }

  /** Handles one message from the primary. */
  handle(message: ToPool): void {
    switch (message.kind) {
      case "boot":
      case "init":
        break;
      case "start":
        this.started = true;
        for (const runner of this.#runners) runner.start();
        break;
      case "table":
        this.#bus.applyTable(message.add, message.remove);
        this.#send({ mf: 1, kind: "table-ack", ack: message.ack });
        break;
      case "reply": {
        const request = this.#requests.get(message.request);
        if (request === undefined) break;
        this.#requests.delete(message.request);
        if (message.error !== undefined) {
          request.reject(deserializeError(message.error));
        } else request.resolve(message.value);
        break;
      }
      case "transport":
        this.#transport.update(message.update);
        break;
      case "flush":
        this.#bus.flush(message.to).then(() =>
          this.#send({ mf: 1, kind: "flushed", request: message.request })
        );
        break;
      case "drain": {
        const busy = this.#bus.busy();
        withTimeout(this.#bus.drain(), this.terminateTimeout).catch(() => {})
          .then(() =>
            this.#send({
              mf: 1,
              kind: "drained",
              request: message.request,
              busy,
            })
          );
        break;
      }
      case "topology":
        this.#send({
          mf: 1,
          kind: "topology-part",
          request: message.request,
          topology: this.#bus.topology(),
        });
        break;
      case "metrics":
        this.#send({
          mf: 1,
          kind: "metrics-part",
          request: message.request,
          part: {
            subscriptions: this.#bus.metrics(),
            publishers: this.#bus.publisherMetrics(),
            dropped: this.#bus.droppedMetrics(),
            services: this.#runners.map((runner) => ({
              pool: this.pool,
              service: runner.service.name,
              status: runner.service.status,
              restarts: runner.restarts,
            })),
            contributed: collectContributions(
              this.#runners.map((runner) => runner.service),
            ),
            links: (this.#transport.linkWaits?.() ?? []).map((w) => ({
              pool: this.pool,
              peer: this.#poolNames[w.to] ?? String(w.to),
              publisherWaits: w.publisherWaits,
              windowWaits: w.windowWaits,
            })),
          },
        });
        break;
      case "stopping":
        this.#beginStop();
        break;
      case "stop":
        this.#stop();
        break;
      case "durable":
        this.#localDurable?.receive(message.message);
        break;
      default: {
        const unknown: never = message;
        this.#log.warn(
          `Unknown message from the primary: ${JSON.stringify(unknown)}`,
        );
      }
    }
  }

  statusChanged(runner: ServiceRunner): void {
    const report = runner.report();
    const message: FromPool = {
      mf: 1,
      kind: "status",
      service: report.name,
      status: report.status,
    };
    if (report.error !== undefined) message.error = report.error;
    if (report.phase !== undefined) message.phase = report.phase;
    this.#send(message);
  }

  dropSubscriptions(service: string): Promise<void> {
    return this.#bus.unsubscribeService(service);
  }

  /** Reports an error that escaped every handler; the pool goes on. */
  uncaught(_kind: string, error: unknown): void {
    this.#reportError("*", "uncaught", error);
  }

  failed(service: string, phase: LifecyclePhase, error: unknown): void {
    this.#reportError(service, phase, error);
  }

  /**
   * Makes the bus report a handler's throw as an `error` event of `Main`
   * (the primary logs it) instead of logging it itself. The bus has no
   * option for this yet: until it has one, its `handlerFailed` method is
   * replaced on this instance (no cost per message).
   */
  /**
   * Sends a failure to the primary, which dispatches it as an `error` event
   * of `Main` and logs it unless a listener prevents that.
   */
  #reportError(
    service: string,
    phase: FailurePhase,
    error: unknown,
    queue?: string,
  ): void {
    const message: FromPool = {
      mf: 1,
      kind: "error",
      service,
      phase,
      error: serializeError(error),
    };
    if (queue !== undefined) message.queue = queue;
    this.#send(message);
  }

  #addService(entry: ServiceEntry, sink: LogSink): void {
    let service: Service;
    const position = this.#runners.length + this.#misconfigured.length + 1;
    try {
      service = entry instanceof Service ? entry : entry();
      if (!(service instanceof Service)) {
        throw new TypeError(
          `its factory returned ${describeValue(service)}, not a Service`,
        );
      }
    } catch (error) {
      this.#misconfiguration(
        `#${position}`,
        `Cannot build service #${position} of pool "${this.pool}": ${
          serializeError(error).message
        }`,
      );
      return;
    }
    if (this.#runners.some((runner) => runner.service.name === service.name)) {
      this.#misconfiguration(
        `${service.name} (#${position})`,
        `Pool "${this.pool}" has two services named "${service.name}"; the second is not started`,
      );
      return;
    }
    const log = createLogger(
      sink,
      this.#init.config.logLevel,
      this.pool,
      service.name,
    );
    const ctx = new PoolServiceContext(
      this.#bus,
      this.pool,
      service.name,
      this.signal,
      log,
    );
    this.#runners.push(new ServiceRunner(this, service, ctx));
  }

  /**
   * Records a service that could not be added (a factory that threw or
   * returned something else, a duplicate name): it is logged, and reported
   * to the primary as a service in `error`, so the run fails.
   */
  #misconfiguration(service: string, message: string): void {
    this.#log.error(message);
    this.#misconfigured.push({
      name: service,
      status: "error",
      error: serializeError(new TypeError(message)),
      restart: "never",
      maxRestarts: 0,
      restartWindow: 0,
      backoffInitial: 0,
      backoffMax: 0,
    });
  }

  /** Every service's report, the misconfigured ones included. */
  #reports(): ServiceReport[] {
    return [
      ...this.#runners.map((runner) => runner.report()),
      ...this.#misconfigured,
    ];
  }

  #primaryLink(): PrimaryLink {
    const call = (
      message: FromPool & { request: number },
    ): Promise<unknown> => {
      const { promise, resolve, reject } = Promise.withResolvers<unknown>();
      this.#requests.set(message.request, { resolve, reject });
      this.#send(message);
      return promise;
    };
    return {
      subscribe: async (entry) => {
        await call({
          mf: 1,
          kind: "subscribe",
          request: ++this.#nextRequest,
          entry,
        });
      },
      unsubscribe: async (ids) => {
        await call({
          mf: 1,
          kind: "unsubscribe",
          request: ++this.#nextRequest,
          ids,
        });
      },
      topology: async () =>
        await call({
          mf: 1,
          kind: "topology-request",
          request: ++this.#nextRequest,
        }) as Topology,
      metrics: async () =>
        await call({
          mf: 1,
          kind: "metrics-request",
          request: ++this.#nextRequest,
        }) as MetricsSnapshot,
    };
  }

  #reportStuck(): void {
    const after = this.#init.config.stuckThreshold;
    for (const runner of this.#runners) {
      const elapsed = runner.slowInitialize(after);
      if (elapsed !== undefined) {
        runner.log.warn(
          `initialize() has not finished after ${elapsed} ms: the start of every pool's run() waits for it`,
        );
      }
    }
    for (const subscription of this.#bus.stuck(after)) {
      this.#log.warn(
        `Subscriber ${subscription.service} on "${subscription.queue}" is stuck: no message handled for over ${after} ms while ${subscription.size} wait in its buffer (capacity ${subscription.capacity}), ${subscription.overflowed} more from other pools behind it and ${subscription.waiting} publishers of this pool`,
      );
    }
  }

  #beginStop(): void {
    if (this.#controller.signal.aborted) return;
    for (const runner of this.#runners) runner.beginStop();
    this.#controller.abort();
  }

  async #stop(): Promise<void> {
    this.#beginStop();
    const timeout = this.terminateTimeout;
    const bounded = (promise: Promise<void>): Promise<boolean> =>
      withTimeout(promise, timeout).then(() => true, () => false);
    let undelivered: Undelivered[] = [];
    try {
      await Promise.all(this.#runners.map((runner) => runner.settle(timeout)));
      if (!await bounded(this.#bus.drain())) {
        this.#log.warn(
          `Messages were still waiting ${timeout} ms into the stop; they are counted as undelivered`,
        );
      }
      for (const runner of [...this.#runners].reverse()) {
        await runner.terminate();
      }
      await bounded(this.#bus.flush());
    } finally {
      undelivered = await this.#bus.close();
      if (this.#durable !== undefined) await bounded(this.#durable.close());
      for (const lost of undelivered) {
        this.#log.error(describeUndelivered(lost));
      }
      clearInterval(this.#housekeeping);
      this.#scheduler.close();
      for (const request of this.#requests.values()) {
        request.reject(new Error(`Pool "${this.pool}" stopped`));
      }
      this.#requests.clear();
      this.#send({
        mf: 1,
        kind: "terminated",
        services: this.#reports(),
        undelivered,
      });
      this.#done.resolve();
    }
  }

  #send(message: FromPool): void {
    this.#scope.postMessage(message);
  }
}

/** One log line for messages that were never handled. */
export function describeUndelivered(lost: Undelivered): string {
  if (lost.dropped === true) {
    return `${lost.count} messages from other processes on "${lost.queue}" were dropped on arrival in pool "${lost.pool}" (their subscription's buffer and the pool's arrival bound were full)`;
  }
  const where = lost.service !== undefined
    ? `waited for ${lost.service} on "${lost.queue}" in pool "${lost.pool}" and were never handled (a handler that did not finish by the stop deadline?)`
    : lost.group !== undefined
    ? `on "${lost.queue}" found no member of group "${lost.group}" left`
    : `on "${lost.queue}" for pool "${lost.pool}" never left pool "${lost.heldBy}" (the receiving pool took nothing more)`;
  return `${lost.count} messages ${where}`;
}

/** A short description of a value that is not a service. */
function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "object") {
    return `an object (${value.constructor?.name ?? "no prototype"})`;
  }
  return `${typeof value} ${String(value)}`;
}
