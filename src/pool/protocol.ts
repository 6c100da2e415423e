/**
 * The messages between the primary (main thread) and a pool's worker, as
 * discriminated unions. Every message carries `mf: 1` so the library can
 * tell its own messages from a user's.
 */
import type {
  FailurePhase,
  LifecyclePhase,
  SerializedError,
} from "../errors.ts";
import type { ServiceStatus } from "../service.ts";
import type {
  DroppedMetrics,
  DurableMetrics,
  HandlerTiming,
  LinkMetrics,
  PublisherMetrics,
  ServiceMetrics,
  SubscriptionMetrics,
} from "../metrics_snapshot.ts";
import type { LogLevel, LogRecord } from "../logger.ts";
import type { Topology } from "../service_context.ts";
import type { DurablePending, Undelivered } from "../run_report.ts";
import type { ContributedMetrics } from "../service_metrics.ts";
import type { SubscriptionEntry } from "../bus/entry.ts";
import type { BrokerToPool, PoolToBroker } from "../durable/protocol.ts";
import type { RemoteSetup } from "../transport/open_remote.ts";
import type { RemoteStatus } from "../transport/remote.ts";
import type {
  TransportSetup,
  TransportUpdate,
} from "../transport/transport.ts";

/** What the runtime tells about one service. */
export interface ServiceReport {
  name: string;
  status: ServiceStatus;
  error?: SerializedError | undefined;
  /** The phase that failed, when `status` is `error`. */
  phase?: LifecyclePhase | undefined;
  /** Whether a dead worker of this pool should be restarted for this service. */
  restart: "never" | "on-failure" | "always";
  maxRestarts: number;
  restartWindow: number;
  backoffInitial: number;
  backoffMax: number;
}

/** Settings the primary hands to each pool. */
export interface PoolConfig {
  logLevel: LogLevel;
  terminateTimeout: number;
  bufferSize: number;
  stuckThreshold: number;
  /** Which handler calls are timed for the metrics' histogram. */
  handlerTiming: HandlerTiming;
  runId: string;
  /** The durable queues, when there are. */
  durable?: DurablePoolSettings | undefined;
}

/** What a pool knows of the durable queues. */
export interface DurablePoolSettings {
  streams: string[];
  /** The patterns only groups subscribe to. */
  groupOnly: string[];
  maxDeliver: number;
  backoff: number[];
}

/** One pool's part of a metrics snapshot. */
export interface PoolMetricsPart {
  subscriptions: SubscriptionMetrics[];
  services: ServiceMetrics[];
  /** What the pool's services add, by section (see `service_metrics.ts`). */
  contributed: ContributedMetrics;
  links: LinkMetrics[];
  publishers: PublisherMetrics[];
  dropped: DroppedMetrics[];
  durable: DurableMetrics[];
}

/** Primary → worker. */
export type ToPool =
  | {
    mf: 1;
    kind: "boot";
    /** The pool this worker runs. */
    pool: string;
    /** `main.run({ workerData })`, structured-cloned. */
    workerData: unknown;
    /** The carrier between processes, when the program joins one. */
    remote: RemoteSetup | undefined;
  }
  | {
    mf: 1;
    kind: "init";
    pool: string;
    index: number;
    incarnation: number;
    pools: string[];
    transport: TransportSetup;
    heartbeats: Float64Array;
    table: SubscriptionEntry[];
    config: PoolConfig;
    /** True when the program is already running (a restart after a crash). */
    started: boolean;
  }
  | { mf: 1; kind: "start" }
  | {
    mf: 1;
    kind: "table";
    add: SubscriptionEntry[];
    remove: number[];
    ack: number;
  }
  | {
    mf: 1;
    kind: "reply";
    request: number;
    error?: SerializedError;
    value?: unknown;
  }
  | { mf: 1; kind: "transport"; update: TransportUpdate }
  | {
    mf: 1;
    kind: "flush";
    request: number;
    /** Only what was sent to this pool. */
    to?: number;
  }
  | { mf: 1; kind: "drain"; request: number }
  | { mf: 1; kind: "topology"; request: number }
  | { mf: 1; kind: "metrics"; request: number }
  | { mf: 1; kind: "stopping" }
  | { mf: 1; kind: "stop" }
  | { mf: 1; kind: "durable"; message: BrokerToPool };

/** Worker → primary. */
export type FromPool =
  | { mf: 1; kind: "hello" }
  | { mf: 1; kind: "ready" }
  | { mf: 1; kind: "initialized"; services: ServiceReport[] }
  | {
    mf: 1;
    kind: "status";
    service: string;
    status: ServiceStatus;
    error?: SerializedError;
    phase?: ServiceReport["phase"];
  }
  | { mf: 1; kind: "log"; record: LogRecord }
  | {
    mf: 1;
    kind: "error";
    /** The service, or `*` for an uncaught error of the pool. */
    service: string;
    phase: FailurePhase;
    /** What was thrown. */
    error: SerializedError;
    /** The queue of the message, for a handler's error. */
    queue?: string;
  }
  | { mf: 1; kind: "subscribe"; request: number; entry: SubscriptionEntry }
  | { mf: 1; kind: "unsubscribe"; request: number; ids: number[] }
  | { mf: 1; kind: "table-ack"; ack: number }
  | { mf: 1; kind: "flushed"; request: number }
  | { mf: 1; kind: "drained"; request: number; busy: boolean }
  | { mf: 1; kind: "topology-request"; request: number }
  | { mf: 1; kind: "topology-part"; request: number; topology: Topology }
  | { mf: 1; kind: "metrics-request"; request: number }
  | { mf: 1; kind: "metrics-part"; request: number; part: PoolMetricsPart }
  | { mf: 1; kind: "stop-all" }
  | ({ mf: 1; kind: "remote-status" } & RemoteStatus)
  | {
    mf: 1;
    kind: "terminated";
    services: ServiceReport[];
    /** Messages the pool never handled or never sent. */
    undelivered: Undelivered[];
    /**
     * Joined to NATS: what its durable consumers leave pending, with its
     * counts (on the local log the broker reports instead).
     */
    durable?: DurablePending[] | undefined;
  }
  | { mf: 1; kind: "exit"; reason: string }
  | { mf: 1; kind: "durable"; message: PoolToBroker };

/** Whether `data` is one of the library's own messages. */
export function isProtocolMessage(
  data: unknown,
): data is { mf: 1; kind: string } {
  return typeof data === "object" && data !== null &&
    (data as { mf?: unknown }).mf === 1;
}
