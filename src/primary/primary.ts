import type { SubscriptionEntry } from "../bus/entry.ts";
import {
  deserializeError,
  type LifecyclePhase,
  type SerializedError,
  serializeError,
  ServiceError,
} from "../errors.ts";
import { createLogger, type LogSink } from "../logger.ts";
import {
  createHeartbeats,
  resetHeartbeat,
  silentFor,
} from "../pool/heartbeat.ts";
import type {
  FromPool,
  PoolConfig,
  PoolMetricsPart,
  ToPool,
} from "../pool/protocol.ts";
import { isProtocolMessage } from "../pool/protocol.ts";
import type { RemoteSetup } from "../transport/open_remote.ts";
import type { RemoteStatus } from "../transport/remote.ts";
import { createHub } from "../transport/open.ts";
import type { TransportHub, TransportKind } from "../transport/transport.ts";
import type {
  DroppedMetrics,
  DurablePending,
  LinkMetrics,
  Logger,
  LogRecord,
  MetricsSnapshot,
  PublisherMetrics,
  Topology,
  Undelivered,
  WebSocketMetrics,
} from "../types.ts";
import type { ServiceEntry, ServiceStatus } from "../service.ts";
import { type LaunchPool, PoolHandle } from "./pool_handle.ts";
import { ServiceErrorEvent } from "../error_event.ts";
import { withTimeout } from "../_util/time.ts";
import { endProcessAfterReport, unstoppableMessage } from "./stop_deadline.ts";
import { ErrorLog } from "./error_log.ts";
import { LocalBroker } from "../durable/broker.ts";
import type { DurableSettings } from "../durable/options.ts";

/** One service that ended in `error`, as `main.run()` reports it. */
export interface ServiceFailure {
  /** The pool of the service. */
  pool: string;
  /** The service's name; `*` when the pool died before its services were built. */
  service: string;
  /** The phase that failed; absent when the service's pool died. */
  phase?: LifecyclePhase | undefined;
  /** What went wrong. */
  message: string;
}

/** What `main.run()` resolves with once everything has stopped. */
export interface RunReport {
  /** Services that ended in `error` (empty when all went well). */
  failures: ServiceFailure[];
  /**
   * Messages whose `publish` resolved but that were never handled (empty
   * when all went well); each is also logged, and makes the exit code 1.
   */
  undelivered: Undelivered[];
  /**
   * With durable queues: each consumer's counts, and what it left pending
   * (stored, not yet settled: delivered after the next start).
   */
  durable?: DurablePending[];
}

/** The detail of a `status` event of `Main`. */
export interface StatusChange {
  /** The pool of the service. */
  pool: string;
  /** The service's name. */
  service: string;
  /** Its new status. */
  status: ServiceStatus;
  /** The error message, when the status is `error`. */
  error?: string | undefined;
}

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

const STALL_CHECK_MS = 250;
/** A stop signal repeated within this many ms is the same request, not "exit at once". */
const SIGNAL_REPEAT_MS = 250;

/**
 * The main thread's side of a run: starts one worker per pool, keeps the
 * table of subscriptions, holds the start barrier, supervises the workers and
 * stops everything in order.
 */
export class Primary {
  readonly ready = Promise.withResolvers<void>();
  #settings: PrimarySettings;
  #events: EventTarget;
  #log: Logger;
  #pools: PoolHandle[];
  #names: string[];
  #hub: TransportHub;
  /** What each pool gets. */
  #config: PoolConfig;
  /** How each pool joins other processes (NATS), when the program does. */
  #remote: RemoteSetup | undefined;
  /** The pools' NATS connections that are down: `<pool>/<link>`. */
  #natsDown = new Set<string>();
  #natsDownSince = 0;
  /** NATS refused a pool's connection for good: the run ends with these. */
  #natsRefusals: ServiceFailure[] = [];
  #heartbeats: Float64Array;
  #undelivered: Undelivered[] = [];
  #table = new Map<number, SubscriptionEntry>();
  /** Messages sent to several pools, waiting for each one's answer. */
  #pending = new Map<number, PendingAnswers>();
  #nextId = 0;
  #started = false;
  #stopping = false;
  /** Set by `requestStop`, before the stop itself begins. */
  #stopAsked = false;
  /** When the first stop signal arrived; a repeat soon after is the same request. */
  #firstSignalAt: number | undefined;
  #stopRequested = Promise.withResolvers<string>();
  #stallTimer: ReturnType<typeof setInterval> | undefined;
  #signals: Array<[Deno.Signal, () => void]> = [];
  /** Decides which error lines are logged (see `error_log.ts`). */
  #errorLog: ErrorLog;
  /** The durable queues' local log, open while the program runs. */
  #durable: LocalBroker | undefined;
  #durablePending: DurablePending[] | undefined;

  constructor(
    events: EventTarget,
    pools: Readonly<Record<string, readonly ServiceEntry[]>>,
    settings: PrimarySettings,
  ) {
    this.#events = events;
    this.#settings = settings;
    this.#log = createLogger(settings.sink, settings.config.logLevel);
    this.#errorLog = new ErrorLog(settings.sink);
    this.#names = Object.keys(pools);
    this.#pools = this.#names.map((name, index) =>
      new PoolHandle(name, index, pools[name]!)
    );
    this.#heartbeats = createHeartbeats(this.#names.length);
    this.#config = settings.config;
    // Each pool connects to NATS itself; they share the process's id.
    this.#remote = settings.remote === undefined ? undefined : {
      ...settings.remote,
      processId: crypto.randomUUID().replaceAll("-", "").slice(0, 16),
      closeTimeout: settings.terminateTimeout,
    };
    this.#hub = createHub(
      settings.transport,
      settings.config.runId,
      this.#names.length,
      (index, update, transfer) =>
        this.#pools[index]?.send(
          { mf: 1, kind: "transport", update },
          transfer,
        ),
    );
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
    return mergeTopology(await this.#gather("topology") as Topology[]);
  }

  /**
   * Every pool's counters. A stalled pool is not waited for: its
   * subscriptions and services are missing, and `pools` says it is stalled.
   */
  async metrics(): Promise<MetricsSnapshot> {
    const parts = await this.#ask(
      (request) => ({ mf: 1, kind: "metrics", request }),
      undefined,
      "skip-stalled",
    ) as PoolMetricsPart[];
    const websockets: WebSocketMetrics[] = [];
    const links: LinkMetrics[] = [];
    const publishers: PublisherMetrics[] = [];
    const dropped: DroppedMetrics[] = [];
    const snapshot: MetricsSnapshot = {
      takenAt: Date.now(),
      subscriptions: [],
      services: [],
      websockets,
      links,
      publishers,
      dropped,
      pools: this.#pools.map((pool) => ({
        pool: pool.name,
        restarts: Math.max(0, pool.incarnation - 1),
        stalls: pool.stalls,
        stalled: pool.stalledSince !== 0,
      })),
    };
    for (const part of parts) {
      snapshot.subscriptions.push(...part.subscriptions);
      snapshot.services.push(...part.services);
      websockets.push(...part.websockets);
      links.push(...part.links);
      publishers.push(...part.publishers);
      dropped.push(...part.dropped);
    }
    return snapshot;
  }

  /** Runs the program until it is asked to stop. */
  async run(): Promise<RunReport> {
    this.#listenForSignals();
    this.#stallTimer = setInterval(() => this.#checkStalls(), STALL_CHECK_MS);
    try {
      if (this.#settings.durable !== undefined) {
        this.#durable = await LocalBroker.open(
          this.#settings.durable,
          (index, message) =>
            this.#pools[index]?.send({ mf: 1, kind: "durable", message }),
          this.#log,
        );
      }
      for (const pool of this.#pools) this.#spawn(pool);
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
      await this.#stopAll();
    } finally {
      clearInterval(this.#stallTimer);
      this.#errorLog.close();
      for (const [signal, listener] of this.#signals) {
        Deno.removeSignalListener(signal, listener);
      }
      for (const pool of this.#pools) pool.kill();
      await this.#closeDurable();
    }
    const report: RunReport = {
      failures: this.#failures(),
      undelivered: this.#undelivered,
    };
    if (this.#durablePending !== undefined) {
      report.durable = this.#durablePending;
    }
    return report;
  }

  // ---- NATS --------------------------------------------------------------

  /**
   * Logs a NATS outage once for the whole process (however many pools and
   * connections see it) and its end once, when every connection is back.
   */
  #natsStatus(pool: PoolHandle, change: RemoteStatus): void {
    if (change.refused !== undefined) {
      this.#natsRefused(pool, change.refused);
      return;
    }
    const key = `${pool.name}/${change.link}`;
    if (!change.up) {
      if (this.#natsDown.has(key)) return;
      if (this.#natsDown.size === 0) {
        this.#natsDownSince = Date.now();
        this.#log.warn(
          `NATS: ${change.detail} (pool "${pool.name}"); reconnecting. What this program publishes meanwhile is held and sent in order once it is back; what others publish meanwhile does not reach it`,
        );
      }
      this.#natsDown.add(key);
      return;
    }
    if (!this.#natsDown.delete(key) || this.#natsDown.size > 0) return;
    const seconds = ((Date.now() - this.#natsDownSince) / 1000).toFixed(1);
    this.#log.info(
      `NATS: connected again to ${change.detail} after ${seconds} s`,
    );
  }

  /**
   * NATS refused a pool's connection (credentials, TLS): no retry or restart
   * cures that, so the run ends, and its report names the error (once,
   * however many pools met it).
   */
  #natsRefused(pool: PoolHandle, refusal: SerializedError): void {
    const message = `${refusal.name}: ${refusal.message}`;
    if (this.#natsRefusals.some((failure) => failure.message === message)) {
      return;
    }
    this.#natsRefusals.push({ pool: pool.name, service: "*", message });
    const error = new ServiceError(
      pool.name,
      "*",
      "uncaught",
      deserializeError(refusal),
    );
    this.#emitError(new ServiceErrorEvent(error), {
      level: "error",
      pool: pool.name,
      message: `${message}; stopping`,
      time: Date.now(),
    });
    this.requestStop(`NATS refused the connection of pool "${pool.name}"`);
  }

  // ---- workers ---------------------------------------------------------

  #spawn(pool: PoolHandle): void {
    pool.incarnation++;
    pool.state = "starting";
    pool.terminated = Promise.withResolvers<void>();
    resetHeartbeat(this.#heartbeats, pool.index);
    const worker = this.#settings.launch(pool.name);
    pool.worker = worker;
    const incarnation = pool.incarnation;
    worker.onmessage = (event: MessageEvent) => {
      if (pool.incarnation !== incarnation || !isProtocolMessage(event.data)) {
        return;
      }
      this.#receive(pool, event.data as FromPool);
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      if (pool.incarnation !== incarnation) return;
      this.#died(pool, `uncaught error: ${event.message}`);
    };
    worker.onmessageerror = () => {
      this.#log.error(`A message from pool "${pool.name}" could not be read`);
    };
    const timeout = this.#settings.startTimeout;
    pool.timer = setTimeout(() => {
      if (pool.state === "starting" && pool.incarnation === incarnation) {
        this.#died(
          pool,
          `its worker did not call main.run() within ${timeout} ms (is main.run() inside "if (import.meta.main)"?)`,
        );
      }
    }, timeout);
  }

  #receive(pool: PoolHandle, message: FromPool): void {
    switch (message.kind) {
      case "hello":
        pool.send({
          mf: 1,
          kind: "boot",
          pool: pool.name,
          workerData: this.#settings.workerData,
          remote: this.#remote,
        });
        break;
      case "ready": {
        clearTimeout(pool.timer);
        pool.state = this.#stopping ? "stopping" : "live";
        const { setup, transfer } = this.#hub.connect(
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
          heartbeats: this.#heartbeats,
          table: [...this.#table.values()],
          config: this.#config,
          started: this.#started,
        }, transfer);
        if (this.#stopping) pool.send({ mf: 1, kind: "stopping" });
        break;
      }
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
        this.#dispatchError(pool, message);
        break;
      case "subscribe":
        this.#table.set(message.entry.id, message.entry);
        this.#broadcastTable([message.entry], [], pool.index).then(() =>
          pool.send({ mf: 1, kind: "reply", request: message.request })
        );
        break;
      case "unsubscribe":
        for (const id of message.ids) this.#table.delete(id);
        this.#broadcastTable([], message.ids, pool.index).then(() =>
          pool.send({ mf: 1, kind: "reply", request: message.request })
        );
        break;
      case "table-ack":
        this.#settle(message.ack, pool.index);
        break;
      case "flushed":
        this.#settle(message.request, pool.index);
        break;
      case "drained":
        this.#settle(message.request, pool.index, message.busy);
        break;
      case "topology-request":
        this.#gather("topology").then((parts) =>
          pool.send({
            mf: 1,
            kind: "reply",
            request: message.request,
            value: mergeTopology(parts as Topology[]),
          })
        );
        break;
      case "topology-part":
        this.#settle(message.request, pool.index, message.topology);
        break;
      case "metrics-request":
        this.metrics().then((value) =>
          pool.send({ mf: 1, kind: "reply", request: message.request, value })
        );
        break;
      case "metrics-part":
        this.#settle(message.request, pool.index, message.part);
        break;
      case "remote-status":
        this.#natsStatus(pool, message);
        break;
      case "stop-all":
        this.requestStop(`main.stop() was called in pool "${pool.name}"`);
        break;
      case "terminated":
        pool.record(message);
        this.#undelivered.push(...message.undelivered);
        pool.terminated.resolve();
        break;
      case "exit":
        this.#died(pool, message.reason);
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

  /**
   * Dispatches a pool's failure as an `error` event of `Main`; its default
   * action logs it with the pool and the service.
   */
  #dispatchError(
    pool: PoolHandle,
    message: Extract<FromPool, { kind: "error" }>,
  ): void {
    const cause = deserializeError(message.error);
    const error = new ServiceError(
      pool.name,
      message.service,
      message.phase,
      cause,
    );
    const queue = message.queue === undefined
      ? ""
      : ` (a message on "${message.queue}")`;
    const stack = cause.stack === undefined ? "" : `\n${cause.stack}`;
    this.#emitError(new ServiceErrorEvent(error, message.queue), {
      level: "error",
      pool: pool.name,
      service: message.service === "*" ? undefined : message.service,
      message: `${error.message}${queue}${stack}`,
      time: Date.now(),
    });
  }

  /** Dispatches `event` on `Main`; unless a listener prevents it, logs `line`. */
  #emitError(event: ServiceErrorEvent, line: LogRecord): void {
    this.#events.dispatchEvent(event);
    if (event.defaultPrevented || this.#settings.config.logLevel === "silent") {
      return;
    }
    this.#errorLog.write(event, line);
  }

  #died(pool: PoolHandle, reason: string): void {
    if (pool.state === "dead" || pool.state === "stopped") return;
    const wasStopping = this.#stopping;
    const wasStarting = pool.state === "starting";
    pool.kill();
    pool.state = "dead";
    pool.deathReason = reason;
    // Its NATS connections are gone with it, not down.
    for (const key of this.#natsDown) {
      if (key.startsWith(`${pool.name}/`)) this.#natsDown.delete(key);
    }
    this.#hub.disconnect(pool.index);
    this.#durable?.poolGone(pool.index);
    const removed = [...this.#table.values()].filter((e) =>
      e.poolIndex === pool.index
    )
      .map((e) => e.id);
    for (const id of removed) this.#table.delete(id);
    if (removed.length > 0) void this.#broadcastTable([], removed, pool.index);
    for (const id of [...this.#pending.keys()]) this.#settle(id, pool.index);
    pool.terminated.resolve();
    if (wasStopping) {
      this.#log.warn(`Pool "${pool.name}" ended while stopping: ${reason}`);
      return;
    }
    this.#emitError(
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
      this.requestStop(`pool "${pool.name}" could not start: ${reason}`);
    } else if (this.#pools.every((p) => p.state === "dead")) {
      this.requestStop("every pool has died");
    }
  }

  #restart(pool: PoolHandle): boolean {
    const policy = pool.restartPolicy();
    if (policy === undefined) {
      if (pool.services.size === 0 && pool.hasFactories) {
        pool.deathReason +=
          "; it is not restarted: its restart policy is unknown, because its services are given as factories, which only its worker builds (give them as instances to have the pool restarted after a failed load)";
      }
      return false;
    }
    const now = Date.now();
    pool.restarts = pool.restarts.filter((t) => now - t < policy.restartWindow);
    if (pool.restarts.length >= policy.maxRestarts) {
      this.#log.error(
        `Pool "${pool.name}" is not restarted: ${pool.restarts.length} restarts within ${policy.restartWindow} ms`,
      );
      return false;
    }
    const delay = Math.min(
      policy.backoffMax,
      policy.backoffInitial * 2 ** pool.restarts.length,
    );
    pool.restarts.push(now);
    this.#log.info(`Restarting pool "${pool.name}" in ${delay} ms`);
    pool.timer = setTimeout(() => {
      if (!this.#stopping) this.#spawn(pool);
    }, delay);
    return true;
  }

  // ---- the subscription table and calls to pools -------------------------

  /**
   * Tells every pool but `except` of a change of the table; resolves once
   * each has applied it, or is stalled (see `#checkStalls`): a pool whose
   * event loop is blocked holds up nobody's `subscribe()` beyond the stall
   * threshold. It applies the change before any later message from the
   * primary once its loop turns again.
   */
  #broadcastTable(
    add: SubscriptionEntry[],
    remove: number[],
    except: number,
  ): Promise<unknown[]> {
    return this.#ask(
      (ack) => ({ mf: 1, kind: "table", add, remove, ack }),
      except,
      "skip-stalled",
    );
  }

  #gather(
    kind: "topology" | "flush" | "drain",
    except?: number,
  ): Promise<unknown[]> {
    return this.#ask((request) => ({ mf: 1, kind, request }), except);
  }

  /**
   * Sends a message to every live pool but `except`; resolves with their
   * answers (with `"skip-stalled"`, without those of stalled pools).
   */
  #ask(
    message: (id: number) => ToPool,
    except?: number,
    stalled: "wait-for-stalled" | "skip-stalled" = "wait-for-stalled",
  ): Promise<unknown[]> {
    const id = ++this.#nextId;
    const waiting = new Set<number>();
    for (const pool of this.#pools) {
      if (pool.index === except || !pool.live) continue;
      pool.send(message(id));
      if (stalled === "wait-for-stalled" || pool.stalledSince === 0) {
        waiting.add(pool.index);
      }
    }
    if (waiting.size === 0) return Promise.resolve([]);
    const { promise, resolve } = Promise.withResolvers<unknown[]>();
    this.#pending.set(id, { waiting, parts: [], resolve, stalled });
    return promise;
  }

  /** Records pool `pool`'s answer to message `id`. */
  #settle(id: number, pool: number, part?: unknown): void {
    const entry = this.#pending.get(id);
    if (entry === undefined || !entry.waiting.delete(pool)) return;
    if (part !== undefined) entry.parts.push(part);
    if (entry.waiting.size > 0) return;
    this.#pending.delete(id);
    entry.resolve(entry.parts);
  }

  // ---- stopping ----------------------------------------------------------

  async #stopAll(): Promise<void> {
    this.#stopping = true;
    this.#durable?.stopDelivering();
    for (const pool of this.#pools) {
      clearTimeout(pool.timer);
      if (pool.live) {
        pool.state = "stopping";
        pool.send({ mf: 1, kind: "stopping" });
      } else if (pool.state === "starting") {
        pool.kill();
        pool.state = "stopped";
      }
    }
    const timeout = this.#settings.terminateTimeout;
    await this.#quiesce(timeout);
    for (const pool of [...this.#pools].reverse()) {
      if (!pool.live) continue;
      const ids = [...this.#table.values()].filter((e) =>
        e.poolIndex === pool.index
      )
        .map((e) => e.id);
      for (const id of ids) this.#table.delete(id);
      const bound = <T>(promise: Promise<T>): Promise<T | undefined> =>
        withTimeout(promise, timeout).catch(() => undefined);
      await bound(this.#broadcastTable([], ids, pool.index));
      await bound(this.#ask(
        (request) => ({ mf: 1, kind: "flush", request, to: pool.index }),
        pool.index,
      ));
      pool.send({ mf: 1, kind: "stop" });
      const deadline = timeout * (pool.services.size + 2) + 1000;
      const ended = await withTimeout(pool.terminated.promise, deadline)
        .then(() => true, () => false);
      if (!ended) {
        pool.missedStop = deadline;
        this.#log.error(
          `Pool "${pool.name}" did not stop within ${deadline} ms; its worker is terminated`,
        );
      }
      pool.kill();
      pool.state = "stopped";
      this.#hub.disconnect(pool.index);
    }
  }

  /**
   * Before any pool's subscriptions are removed, lets every pool deliver what
   * it holds (messages for a group member that left are handed to another
   * member then, while all members are still known): drains rounds until two
   * in a row find every pool idle, or `timeout` passes.
   */
  async #quiesce(timeout: number): Promise<void> {
    const deadline = Date.now() + timeout;
    let idleRounds = 0;
    while (idleRounds < 2 && Date.now() < deadline) {
      const answers = await withTimeout(this.#gather("drain"), timeout)
        .catch(() => [true]);
      idleRounds = answers.some((busy) => busy === true) ? 0 : idleRounds + 1;
    }
  }

  /** Closes the durable log once every pool has stopped; logs what is left pending. */
  async #closeDurable(): Promise<void> {
    const durable = this.#durable;
    if (durable === undefined) return;
    this.#durable = undefined;
    this.#durablePending = await durable.close();
    for (const entry of this.#durablePending) {
      if (entry.pending > 0) {
        this.#log.info(
          `Durable queue "${entry.stream}": ${entry.pending} messages left pending for ${entry.consumer}; they are delivered after the next start`,
        );
      }
    }
  }

  #failures(): ServiceFailure[] {
    const failures: ServiceFailure[] = [...this.#natsRefusals];
    for (const pool of this.#pools) {
      if (pool.services.size === 0 && pool.deathReason !== undefined) {
        failures.push({
          pool: pool.name,
          service: "*",
          message:
            `the pool died before its services were built: ${pool.deathReason}`,
        });
      }
      if (pool.missedStop !== undefined) {
        failures.push({
          pool: pool.name,
          service: "*",
          message: unstoppableMessage(pool.missedStop),
        });
      }
      for (const report of pool.services.values()) {
        if (report.status === "error") {
          failures.push({
            pool: pool.name,
            service: report.name,
            phase: report.phase,
            message: report.error?.message ?? "unknown error",
          });
        }
      }
    }
    return failures;
  }

  // ---- signals and stalls ------------------------------------------------

  #listenForSignals(): void {
    if (!this.#settings.signals) return;
    const signals: Deno.Signal[] = Deno.build.os === "windows"
      ? ["SIGINT"]
      : ["SIGINT", "SIGTERM"];
    for (const signal of signals) {
      let seen = false;
      const listener = (): void => {
        const now = Date.now();
        const first = this.#firstSignalAt;
        if (first !== undefined && now - first < SIGNAL_REPEAT_MS) {
          // GNU timeout and some process managers signal the process and
          // its group: two signals microseconds apart are one request.
          this.#log.debug(
            `${signal} again ${
              now - first
            } ms after the first: the same request`,
          );
          return;
        }
        this.#firstSignalAt ??= now;
        if (seen || this.#stopping) {
          this.#log.warn(`${signal} again: exiting now`);
          Deno.exit(signal === "SIGINT" ? 130 : 143);
        }
        seen = true;
        this.requestStop(`${signal} received (send it again to exit at once)`);
      };
      Deno.addSignalListener(signal, listener);
      this.#signals.push([signal, listener]);
    }
  }

  #checkStalls(): void {
    const now = Date.now();
    const threshold = this.#settings.stallThreshold;
    for (const pool of this.#pools) {
      if (!pool.live) {
        pool.stalledSince = 0;
        continue;
      }
      const silent = silentFor(this.#heartbeats, pool.index, now);
      if (silent === undefined) continue;
      const last = now - silent;
      if (pool.stalledSince === 0 && silent > threshold) {
        pool.stalledSince = last;
        pool.stalls++;
        this.#log.warn(
          `Pool "${pool.name}" is stalled: its event loop has not turned for ${silent} ms (a handler blocking synchronously?)`,
        );
        this.#skipStalled(pool.index);
      } else if (pool.stalledSince !== 0 && silent <= threshold) {
        this.#log.info(
          `Pool "${pool.name}" recovered after a stall of ${
            last - pool.stalledSince
          } ms`,
        );
        pool.stalledSince = 0;
      }
    }
  }

  /** Stops waiting for stalled pool `index` where that is allowed. */
  #skipStalled(index: number): void {
    for (const [id, entry] of this.#pending) {
      if (entry.stalled === "skip-stalled") this.#settle(id, index);
    }
  }
}

/** Answers the primary waits for, from several pools. */
interface PendingAnswers {
  waiting: Set<number>;
  parts: unknown[];
  resolve(parts: unknown[]): void;
  /** Whether a pool that stalls is still waited for. */
  stalled: "wait-for-stalled" | "skip-stalled";
}

/** Merges the topology parts of several pools. */
function mergeTopology(parts: readonly Topology[]): Topology {
  const merged: Topology = {};
  for (const part of parts) {
    for (const [queue, pools] of Object.entries(part)) {
      const target = merged[queue] ??= {};
      for (const [pool, entries] of Object.entries(pools)) {
        (target[pool] ??= []).push(...entries);
      }
    }
  }
  return merged;
}
