import { PoolBus } from "../bus/bus.ts";
import { openTransport } from "../transport/open.ts";
import type { Transport } from "../transport/transport.ts";
import {
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
import type { ServiceEntry } from "../service.ts";
import type { DurablePending, Undelivered } from "../run_report.ts";
import type { FromPool, ServiceReport, ToPool } from "./protocol.ts";
import { Scheduler } from "../scheduler.ts";
import { beat } from "./heartbeat.ts";
import type { RunnerHost, ServiceRunner } from "./service_runner.ts";
import type { PoolScope } from "./worker_scope.ts";
import { withTimeout } from "../_util/time.ts";
import { remoteCarrier } from "./boot.ts";
import { openPoolDurable, type PoolDurable } from "./durable_setup.ts";
import { metricsPart } from "./metrics_part.ts";
import { PrimaryCalls } from "./primary_calls.ts";
import { buildServices } from "./service_builder.ts";

type Init = Extract<ToPool, { kind: "init" }>;

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
  #runners: ServiceRunner[];
  /** Entries that could not become services, reported as failures. */
  #misconfigured: ServiceReport[];
  #calls: PrimaryCalls;
  #housekeeping: ReturnType<typeof setInterval>;
  #done = Promise.withResolvers<void>();
  /** The durable queues, when there are. */
  #durable: PoolDurable | undefined;

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
    this.#calls = new PrimaryCalls((message) => this.#send(message));
    const durable = init.config.durable;
    this.#durable = durable === undefined ? undefined : openPoolDurable({
      settings: durable,
      pool: init.pool,
      poolIndex: init.index,
      log: this.#log,
      send: (message) => this.#send(message),
      defer: (task) => this.#scheduler.defer(task),
      handlerFailed: (service, error, meta) =>
        this.#reportError(service, "handler", error, meta.queue),
    });
    this.#bus = new PoolBus({
      pool: init.pool,
      index: init.index,
      incarnation: init.incarnation,
      pools: init.pools,
      scheduler: this.#scheduler,
      transport,
      primary: this.#calls.link(),
      log: this.#log,
      bufferSize: init.config.bufferSize,
      handlerTiming: init.config.handlerTiming,
      onHandlerError: (service, error, meta) =>
        this.#reportError(service, "handler", error, meta.queue),
      remote: remoteCarrier,
      onRemoteStatus: (change) =>
        this.#send({ mf: 1, kind: "remote-status", ...change }),
      durable: this.#durable?.client,
    });
    this.#bus.applyTable(init.table, []);
    const { heartbeats, index } = init;
    beat(heartbeats, index);
    let ticks = 0;
    this.#housekeeping = setInterval(() => {
      beat(heartbeats, index);
      if (++ticks % 5 === 0) this.#reportStuck();
    }, HOUSEKEEPING_MS);
    const built = buildServices(entries, {
      pool: init.pool,
      bus: this.#bus,
      host: this,
      signal: this.signal,
      sink,
      logLevel: init.config.logLevel,
      log: this.#log,
    });
    this.#runners = built.runners;
    this.#misconfigured = built.misconfigured;
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
      case "reply":
        this.#calls.settle(message);
        break;
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
        void metricsPart({
          pool: this.pool,
          bus: this.#bus,
          runners: this.#runners,
          transport: this.#transport,
          poolNames: this.#poolNames,
          durable: this.#durable?.client,
        }).then((part) =>
          this.#send({
            mf: 1,
            kind: "metrics-part",
            request: message.request,
            part,
          })
        );
        break;
      case "stopping":
        this.#beginStop();
        break;
      case "stop":
        this.#stop();
        break;
      case "durable":
        this.#durable?.local?.receive(message.message);
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

  /** Every service's report, the misconfigured ones included. */
  #reports(): ServiceReport[] {
    return [
      ...this.#runners.map((runner) => runner.report()),
      ...this.#misconfigured,
    ];
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
    let durable: DurablePending[] | undefined;
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
      // Joined to NATS: what this pool's consumers leave, as the server says.
      const report = this.#durable?.report;
      if (report !== undefined) {
        durable = await withTimeout(report(), timeout).catch(() => undefined);
      }
    } finally {
      undelivered = await this.#bus.close();
      if (this.#durable !== undefined) {
        await bounded(this.#durable.carrier.close());
      }
      for (const lost of undelivered) {
        this.#log.error(describeUndelivered(lost));
      }
      clearInterval(this.#housekeeping);
      this.#scheduler.close();
      this.#calls.rejectAll(`Pool "${this.pool}" stopped`);
      this.#send({
        mf: 1,
        kind: "terminated",
        services: this.#reports(),
        undelivered,
        ...(durable === undefined ? {} : { durable }),
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
