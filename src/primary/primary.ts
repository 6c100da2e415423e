/**
 * The main thread's side of a run: it owns the parts (see each file of
 * this folder) and dispatches the pools' messages to them.
 *
 * @module
 */
import { createLogger, type Logger, type LogSink } from "../logger.ts";
import { createHeartbeats } from "../pool/heartbeat.ts";
import type {
  FromPool,
  PoolConfig,
  PoolMetricsPart,
} from "../pool/protocol.ts";
import type { RemoteSetup } from "../transport/open_remote.ts";
import { createHub } from "../transport/open.ts";
import type { TransportKind } from "../transport/kinds.ts";
import type { TransportHub } from "../transport/transport.ts";
import type { MetricsSnapshot } from "../metrics_snapshot.ts";
import type { Topology } from "../service_context.ts";
import type {
  DurablePending,
  RunReport,
  StatusChange,
  Undelivered,
} from "../run_report.ts";
import type { ServiceEntry } from "../service.ts";
import type { DurableSettings } from "../durable/options.ts";
import { type LaunchPool, PoolHandle } from "./pool_handle.ts";
import { endProcessAfterReport } from "./stop_deadline.ts";
import { ErrorEvents } from "./error_events.ts";
import { PoolCalls } from "./pool_calls.ts";
import { SubscriptionTable } from "./subscription_table.ts";
import { Supervisor } from "./supervisor.ts";
import { RemoteOutages } from "./remote_outages.ts";
import { StallWatch } from "./stalls.ts";
import { StopSignals } from "./signals.ts";
import { stopPools } from "./stop.ts";
import { DurableLink } from "./durable_link.ts";
import { logPending, mergePending } from "../durable/pending_report.ts";
import { failuresOf } from "./failures.ts";
import { mergeMetrics, mergeTopology } from "./merge.ts";

/** Settings the primary runs with (defaults applied). */
export interface PrimarySettings {
  /** Starts a pool's worker. */
  launch: LaunchPool;
  workerData: unknown;
  transport: TransportKind;
  signals: boolean;
  terminateTimeout: number;
  stallThreshold: number;
  startTimeout: number;
  config: PoolConfig;
  sink: LogSink;
  /** Joins the program to other processes (NATS), when set. */
  remote?: Pick<RemoteSetup, "kind" | "settings"> | undefined;
  /** The durable queues on the local log, when set. */
  durable?: DurableSettings | undefined;
}

/**
 * The main thread's side of a run: starts one worker per pool, holds the
 * start barrier, dispatches what the pools say, and stops everything in
 * order.
 */
export class Primary {
  readonly ready = Promise.withResolvers<void>();
  #settings: PrimarySettings;
  #events: EventTarget;
  #log: Logger;
  #pools: PoolHandle[];
  #hub: TransportHub;
  #calls: PoolCalls;
  #table: SubscriptionTable;
  #errors: ErrorEvents;
  #outages: RemoteOutages;
  #supervisor: Supervisor;
  #stalls: StallWatch;
  #signals: StopSignals;
  #undelivered: Undelivered[] = [];
  /** Joined to NATS: what the pools' durable consumers left, as each stopped. */
  #remoteDurable: DurablePending[] = [];
  #started = false;
  #stopping = false;
  /** Set by `requestStop`, before the stop itself begins. */
  #stopAsked = false;
  #stopRequested = Promise.withResolvers<string>();
  /** The durable queues' local log, open while the program runs. */
  #durable: DurableLink | undefined;
  /** Joined to other processes: durable queues are then JetStream's. */
  get #joined(): boolean {
    return this.#settings.remote !== undefined;
  }

  constructor(
    events: EventTarget,
    pools: Readonly<Record<string, readonly ServiceEntry[]>>,
    settings: PrimarySettings,
  ) {
    this.#events = events;
    this.#settings = settings;
    const log = createLogger(settings.sink, settings.config.logLevel);
    this.#log = log;
    const names = Object.keys(pools);
    this.#pools = names.map((name, index) =>
      new PoolHandle(name, index, pools[name]!)
    );
    const heartbeats = createHeartbeats(names.length);
    this.#hub = createHub(
      settings.transport,
      settings.config.runId,
      names.length,
      (index, update, transfer) =>
        this.#pools[index]?.send(
          { mf: 1, kind: "transport", update },
          transfer,
        ),
    );
    this.#calls = new PoolCalls(this.#pools);
    this.#table = new SubscriptionTable(this.#calls);
    this.#errors = new ErrorEvents(
      events,
      settings.sink,
      settings.config.logLevel,
    );
    const requestStop = (reason: string): void => this.requestStop(reason);
    this.#outages = new RemoteOutages(log, this.#errors, requestStop);
    this.#stalls = new StallWatch(
      this.#pools,
      heartbeats,
      settings.stallThreshold,
      log,
      (index) => this.#calls.skipStalled(index),
    );
    this.#signals = new StopSignals(log, requestStop, () => this.#stopping);
    this.#supervisor = new Supervisor({
      pools: this.#pools,
      heartbeats,
      hub: this.#hub,
      table: this.#table,
      log,
      errors: this.#errors,
      launch: settings.launch,
      startTimeout: settings.startTimeout,
      workerData: settings.workerData,
      config: settings.config,
      // Each pool connects to NATS itself; they share the process's id.
      remote: settings.remote === undefined ? undefined : {
        ...settings.remote,
        processId: crypto.randomUUID().replaceAll("-", "").slice(0, 16),
        closeTimeout: settings.terminateTimeout,
        // Joined to NATS, durable queues are JetStream's, not the local log's.
        durable: settings.durable === undefined ? undefined : {
          streams: settings.durable.streams,
          groupOnly: settings.durable.groupOnly,
          dedupeWindow: settings.durable.dedupeWindow,
          ackWait: settings.durable.ackWait,
        },
      },
    }, {
      stopping: () => this.#stopping,
      started: () => this.#started,
      receive: (pool, message) => this.#receive(pool, message),
      poolGone: (pool) => this.#poolGone(pool),
      requestStop,
    });
  }

  /** Asks every pool to stop; `run()` resolves once they have. */
  requestStop(reason: string): void {
    this.#stopAsked = true;
    this.#stopRequested.resolve(reason);
  }

  /** The pools whose worker did not stop by the stop deadline (see `stop_deadline.ts`). */
  get unstoppable(): string[] {
    return this.#pools.filter((pool) => pool.missedStop !== undefined).map((
      pool,
    ) => pool.name);
  }

  /**
   * After the report: ends the process (code 1) when a pool's worker missed
   * its stop deadline, since nothing else can stop it.
   */
  endIfUnstoppable(): void {
    const pools = this.unstoppable;
    if (pools.length > 0) endProcessAfterReport(pools, this.#log);
  }

  /** Every pool's subscriptions, gathered from the live pools. */
  async topology(): Promise<Topology> {
    return mergeTopology(await this.#calls.gather("topology") as Topology[]);
  }

  /**
   * Every pool's counters. A stalled pool is not waited for: its
   * subscriptions and services are missing, and `pools` says it is stalled.
   */
  async metrics(): Promise<MetricsSnapshot> {
    const parts = await this.#calls.ask(
      (request) => ({ mf: 1, kind: "metrics", request }),
      undefined,
      "skip-stalled",
    ) as PoolMetricsPart[];
    return mergeMetrics(this.#pools, parts);
  }

  /** Runs the program until it is asked to stop. */
  async run(): Promise<RunReport> {
    if (this.#settings.signals) this.#signals.listen();
    this.#stalls.start();
    let durable: RunReport["durable"];
    try {
      if (this.#settings.durable !== undefined && !this.#joined) {
        this.#durable = await DurableLink.open(
          this.#settings.durable,
          this.#pools,
          this.#log,
        );
      }
      for (const pool of this.#pools) this.#supervisor.spawn(pool);
      await Promise.race([
        Promise.all(this.#pools.map((pool) => pool.initialized.promise)),
        this.#stopRequested.promise,
      ]);
      // A stop asked for during the initializations: no run() may start.
      if (!this.#stopping && !this.#stopAsked) {
        this.#started = true;
        for (const pool of this.#pools) {
          if (pool.live) pool.send({ mf: 1, kind: "start" });
        }
        this.#log.debug(`All ${this.#pools.length} pools started`);
        this.ready.resolve();
      }
      const reason = await this.#stopRequested.promise;
      this.#log.info(`Stopping: ${reason}`);
      this.ready.resolve();
      this.#stopping = true;
      this.#durable?.stopDelivering();
      await stopPools({
        pools: this.#pools,
        calls: this.#calls,
        table: this.#table,
        hub: this.#hub,
        log: this.#log,
        terminateTimeout: this.#settings.terminateTimeout,
      });
    } finally {
      this.#stalls.stop();
      this.#errors.close();
      this.#signals.close();
      for (const pool of this.#pools) pool.kill();
      durable = await this.#durable?.close();
    }
    if (this.#settings.durable !== undefined && this.#joined) {
      durable = this.#remoteDurable;
      logPending(durable, this.#log);
    }
    const report: RunReport = {
      failures: failuresOf(this.#pools, this.#outages.refusals),
      undelivered: this.#undelivered,
    };
    if (durable !== undefined) report.durable = durable;
    return report;
  }

  /** The dispatcher: hands each message of a pool to the part it is for. */
  #receive(pool: PoolHandle, message: FromPool): void {
    switch (message.kind) {
      case "hello":
        this.#supervisor.hello(pool);
        break;
      case "ready":
        this.#supervisor.ready(pool);
        break;
      case "initialized":
        pool.record(message);
        pool.initialized.resolve();
        break;
      case "status":
        pool.record(message);
        this.#events.dispatchEvent(
          new CustomEvent<StatusChange>("status", {
            detail: {
              pool: pool.name,
              service: message.service,
              status: message.status,
              error: message.error?.message,
            },
          }),
        );
        break;
      case "log":
        this.#settings.sink(message.record);
        break;
      case "error":
        this.#errors.fromPool(pool.name, message);
        break;
      case "subscribe":
        this.#table.add(message.entry, pool.index).then(() =>
          pool.send({ mf: 1, kind: "reply", request: message.request })
        );
        break;
      case "unsubscribe":
        this.#table.remove(message.ids, pool.index).then(() =>
          pool.send({ mf: 1, kind: "reply", request: message.request })
        );
        break;
      case "table-ack":
        this.#calls.settle(message.ack, pool.index);
        break;
      case "flushed":
        this.#calls.settle(message.request, pool.index);
        break;
      case "drained":
        this.#calls.settle(message.request, pool.index, message.busy);
        break;
      case "topology-request":
        this.topology().then((value) =>
          pool.send({ mf: 1, kind: "reply", request: message.request, value })
        );
        break;
      case "topology-part":
        this.#calls.settle(message.request, pool.index, message.topology);
        break;
      case "metrics-request":
        this.metrics().then((value) =>
          pool.send({ mf: 1, kind: "reply", request: message.request, value })
        );
        break;
      case "metrics-part":
        this.#calls.settle(message.request, pool.index, message.part);
        break;
      case "remote-status":
        this.#outages.status(pool.name, message);
        break;
      case "stop-all":
        this.requestStop(`main.stop() was called in pool "${pool.name}"`);
        break;
      case "terminated":
        pool.record(message);
        this.#undelivered.push(...message.undelivered);
        if (message.durable !== undefined) {
          mergePending(this.#remoteDurable, message.durable);
        }
        pool.terminated.resolve();
        break;
      case "exit":
        this.#supervisor.died(pool, message.reason);
        break;
      case "durable":
        this.#durable?.receive(pool.index, message.message);
        break;
      default: {
        const unknown: never = message;
        this.#log.warn(
          `Unknown message from pool "${pool.name}": ${
            JSON.stringify(unknown)
          }`,
        );
      }
    }
  }

  /** `pool`'s worker died: its links, subscriptions and answers are gone. */
  #poolGone(pool: PoolHandle): void {
    this.#outages.poolGone(pool.name);
    this.#hub.disconnect(pool.index);
    this.#durable?.poolGone(pool.index);
    const removed = this.#table.dropPool(pool.index);
    if (removed.length > 0) {
      void this.#table.broadcast([], removed, pool.index);
    }
    this.#calls.poolGone(pool.index);
  }
}
