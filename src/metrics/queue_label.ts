/**
 * Which queues the metrics name as they are, which they name by a stable
 * pattern, and which the live page counts as internal.
 *
 * @module
 */

/**
 * The prefix of a `WebSocketService`'s control queue,
 * `ws://control/<service>/<random id>` (see `src/websocket/rooms.ts`): a new
 * id at every start.
 */
const CONTROL_PREFIX = "ws://control/";

/**
 * The prefixes of the queues a `WebSocketService` subscribes to for itself:
 * its connections' reply queues, its control queue and its rooms. The live
 * page groups them behind a toggle.
 */
export const INTERNAL_QUEUE_PREFIXES: readonly string[] = Object.freeze([
  "ws://connection/",
  CONTROL_PREFIX,
  "ws://room/",
]);

/**
 * The `queue` label of a queue or pattern: itself, but a control queue's
 * random id replaced by `*`, so that a restart makes no new series.
 *
 * @param queue The queue or pattern subscribed to.
 * @returns The label value.
 */
export function queueLabel(queue: string): string {
  if (!queue.startsWith(CONTROL_PREFIX)) return queue;
  const slash = queue.lastIndexOf("/");
  return slash < CONTROL_PREFIX.length ? queue : `${queue.slice(0, slash)}/*`;
}
