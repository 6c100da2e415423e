/**
 * The metrics of magic-foundation for Prometheus: {@linkcode MetricsService}
 * serves `GET /metrics`, every pool's counters in the text exposition
 * format, and {@linkcode renderPrometheus} renders a snapshot of
 * `main.metrics()` or `ctx.metrics()` yourself. The metric names are listed
 * in docs/observability.md.
 *
 * @example A program that can be scraped
 * ```ts ignore
 * import { Main } from "@magic/foundation";
 * import { MetricsService } from "@magic/foundation/metrics";
 *
 * if (import.meta.main) {
 *   const main = Main.instance();
 *   main.servicePools = {
 *     // … the program's own pools …
 *     metrics: [new MetricsService({ hostname: "127.0.0.1", port: 9464 })],
 *   };
 *   await main.run();
 * }
 * ```
 *
 * @module
 */

export { MetricsService, type MetricsServiceOptions } from "./service.ts";
export { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
