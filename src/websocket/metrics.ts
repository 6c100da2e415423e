/**
 * The metrics of a `WebSocketService`, as its pool adds them to the
 * program's snapshot (`MetricsSnapshot.websockets`).
 *
 * @module
 */

/**
 * The counters of one `WebSocketService` (`@magic/foundation/websocket`) in
 * {@linkcode MetricsSnapshot}, since its pool's worker started. Bytes are
 * the payloads' (UTF-8 for text frames), without the WebSocket framing.
 *
 * @example Connections open, per service
 * ```ts
 * import type { MetricsSnapshot } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * function open(snapshot: MetricsSnapshot): Record<string, number> {
 *   const out: Record<string, number> = {};
 *   for (const w of snapshot.websockets ?? []) {
 *     out[`${w.pool}/${w.service}`] = w.connections;
 *   }
 *   return out;
 * }
 *
 * assert.deepEqual(
 *   open({
 *     takenAt: 0,
 *     subscriptions: [],
 *     services: [],
 *     pools: [],
 *     websockets: [{
 *       pool: "web",
 *       service: "ws",
 *       connections: 3,
 *       framesIn: 10,
 *       framesOut: 12,
 *       bytesIn: 500,
 *       bytesOut: 640,
 *       closes: { "1000": 2 },
 *     }],
 *   }),
 *   { "web/ws": 3 },
 * );
 * ```
 */
export interface WebSocketMetrics {
  /** The service's pool. */
  pool: string;
  /** The service's name. */
  service: string;
  /** Connections open now (a gauge). */
  connections: number;
  /** Data frames received from clients. */
  framesIn: number;
  /** Data frames sent to clients. */
  framesOut: number;
  /** Payload bytes received from clients. */
  bytesIn: number;
  /** Payload bytes sent to clients. */
  bytesOut: number;
  /**
   * Closed connections by close code (as the `disconnected` event reports
   * it, e.g. `"1000"`, `"1001"`, `"1006"`).
   */
  closes: Record<string, number>;
}
