/**
 * magic-foundation: long-running programs as services (`initialize` → `run`
 * → `terminate`), grouped into pools that each run in their own Web Worker,
 * talking by lossless publish/subscribe on queues such as `q://orders`.
 *
 * @example A service that publishes and one that listens
 * ```ts ignore
 * import { Main, Service, ServiceStatus, type ServiceContext } from "@magic/foundation";
 *
 * class Ticker extends Service {
 *   override async run(ctx: ServiceContext): Promise<void> {
 *     let n = 0;
 *     while (this.status === ServiceStatus.running) {
 *       await ctx.publish("q://ticks", { n: n++ });
 *       await ctx.sleep(1000);
 *     }
 *   }
 * }
 *
 * class Printer extends Service {
 *   override async initialize(ctx: ServiceContext): Promise<void> {
 *     await ctx.subscribe<{ n: number }>("q://ticks", (data) => ctx.log.info(`tick ${data.n}`));
 *   }
 * }
 *
 * if (import.meta.main) {
 *   const main = Main.instance();
 *   main.servicePools = { producer: [new Ticker("ticker")], consumer: [new Printer("printer")] };
 *   await main.run();
 * }
 * ```
 *
 * @module
 */
export { Main } from "./src/main.ts";
export type { MainEventMap, RunOptions, ServicePools } from "./src/main.ts";
export { Service, ServiceStatus } from "./src/service.ts";
export type {
  RestartPolicy,
  ServiceEntry,
  ServiceOptions,
} from "./src/service.ts";
export { ServiceErrorEvent } from "./src/error_event.ts";
export type { FailurePhase, LifecyclePhase } from "./src/errors.ts";
export type { NatsOptions, NatsTlsOptions } from "./src/nats/options.ts";
export type { DurableOptions } from "./src/durable/options.ts";
export { DEAD_LETTER_HEADERS } from "./src/durable/subscriber.ts";
export {
  DataCloneError,
  JsonDataError,
  MessageTooLargeError,
  NatsAuthError,
  NatsUnavailableError,
  NoRespondersError,
  QueueNameError,
  ServiceError,
  StateError,
  TimeoutError,
} from "./src/errors.ts";
export type { Logger, LogLevel, LogRecord } from "./src/logger.ts";
export type {
  MessageHandler,
  MessageMeta,
  MessageOrigin,
  PublishOptions,
  RequestOptions,
  ServiceContext,
  SubscribeOptions,
  Subscription,
  Topology,
  TopologyEntry,
} from "./src/service_context.ts";
export type {
  DroppedMetrics,
  DurableMetrics,
  HandlerTiming,
  HistogramSnapshot,
  LinkMetrics,
  MetricsSnapshot,
  PatternPublishes,
  PoolMetrics,
  PublisherMetrics,
  ServiceMetrics,
  SubscriptionMetrics,
} from "./src/metrics_snapshot.ts";
export type { WebSocketMetrics } from "./src/websocket/metrics.ts";
export type {
  DurablePending,
  RunReport,
  ServiceFailure,
  StatusChange,
  Undelivered,
} from "./src/run_report.ts";
export type { TransportKind } from "./src/transport/kinds.ts";
