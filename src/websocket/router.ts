/**
 * Maps WebSocket paths to queue names and back. Pure functions, no I/O.
 *
 * @module
 */

/** Prefix of the queues the service publishes received frames on. */
export const INBOUND_PREFIX = "ws://inbound";
/** Prefix of the queues whose messages the service sends to every connection of a path. */
export const OUTBOUND_PREFIX = "ws://outbound";
/** Prefix of the queues the service announces new connections on. */
export const CONNECTED_PREFIX = "ws://connected";
/** Prefix of the queues the service announces resumed sessions on. */
export const RECONNECTED_PREFIX = "ws://reconnected";
/** Prefix of the queues the service announces closed connections on. */
export const DISCONNECTED_PREFIX = "ws://disconnected";
/** Prefix of the per-connection reply queues (`meta.replyTo`). */
export const CONNECTION_PREFIX = "ws://connection";

/**
 * Normalises a URL path into the form used in queue names and in the
 * connection registry: repeated slashes collapse, a trailing slash goes
 * (except for the root `/`), and the wildcard characters `*` and `>` are
 * percent-encoded so a client can never subscribe-by-accident to a pattern.
 *
 * @param pathname The `pathname` of a request URL.
 * @returns The normalised path, always starting with `/`.
 *
 * @example Normalise paths
 * ```ts
 * import { routePath } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(routePath("/client/"), "/client");
 * assert.equal(routePath("//chat//room1"), "/chat/room1");
 * assert.equal(routePath(""), "/");
 * assert.equal(routePath("/a*b"), "/a%2Ab");
 * ```
 */
export function routePath(pathname: string): string {
  let path = pathname.replace(/\/{2,}/g, "/");
  if (!path.startsWith("/")) path = `/${path}`;
  if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  return path.replaceAll("*", "%2A").replaceAll(">", "%3E");
}

/**
 * The queue on which frames received on connections to `path` are published.
 *
 * @param path A request path (normalised with {@linkcode routePath}).
 * @returns The queue name, e.g. `ws://inbound/client`.
 *
 * @example Subscribe to the frames of `/client`
 * ```ts
 * import { inboundQueue } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(inboundQueue("/client"), "ws://inbound/client");
 * assert.equal(inboundQueue("/"), "ws://inbound/");
 * ```
 */
export function inboundQueue(path: string): string {
  return INBOUND_PREFIX + routePath(path);
}

/**
 * The queue whose messages are sent to every connection on `path`.
 *
 * @param path A request path (normalised with {@linkcode routePath}).
 * @returns The queue name, e.g. `ws://outbound/client`.
 *
 * @example Broadcast to the connections on `/client`
 * ```ts
 * import { outboundQueue } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(outboundQueue("/client"), "ws://outbound/client");
 * ```
 */
export function outboundQueue(path: string): string {
  return OUTBOUND_PREFIX + routePath(path);
}

/**
 * The queue on which a new connection to `path` is announced.
 *
 * @param path A request path (normalised with {@linkcode routePath}).
 * @returns The queue name, e.g. `ws://connected/client`.
 *
 * @example Watch connections to `/client`
 * ```ts
 * import { connectedQueue } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(connectedQueue("/client"), "ws://connected/client");
 * ```
 */
export function connectedQueue(path: string): string {
  return CONNECTED_PREFIX + routePath(path);
}

/**
 * The queue on which a closed connection to `path` is announced.
 *
 * @param path A request path (normalised with {@linkcode routePath}).
 * @returns The queue name, e.g. `ws://disconnected/client`.
 *
 * @example Watch disconnections from `/client`
 * ```ts
 * import { disconnectedQueue } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(disconnectedQueue("/client"), "ws://disconnected/client");
 * ```
 */
export function disconnectedQueue(path: string): string {
  return DISCONNECTED_PREFIX + routePath(path);
}

/**
 * The queue on which a session that came back to `path` within the
 * recovery window is announced (instead of a `disconnected` and a
 * `connected` event).
 *
 * @param path A request path (normalised with {@linkcode routePath}).
 * @returns The queue name, e.g. `ws://reconnected/client`.
 *
 * @example Count the clients that came back
 * ```ts
 * import { reconnectedQueue } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(reconnectedQueue("/client"), "ws://reconnected/client");
 * ```
 */
export function reconnectedQueue(path: string): string {
  return RECONNECTED_PREFIX + routePath(path);
}

/**
 * The queue that reaches one connection only: the `replyTo` of every message
 * the service publishes for that connection.
 *
 * @param service The name of the WebSocket service.
 * @param id The connection id.
 * @returns The queue name, e.g. `ws://connection/WebSocketService/3f2a…`.
 *
 * @example Address one connection
 * ```ts
 * import { connectionQueue } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(connectionQueue("ws", "c1"), "ws://connection/ws/c1");
 * assert.equal(connectionQueue("my ws", "c1"), "ws://connection/my%20ws/c1");
 * ```
 */
export function connectionQueue(service: string, id: string): string {
  return `${connectionPrefix(service)}/${encodeSegment(id)}`;
}

/** The pattern that matches every reply queue of a service. */
export function connectionPattern(service: string): string {
  return `${connectionPrefix(service)}/*`;
}

/** `ws://connection/<service>`: the reply queues of a service share it. */
export function connectionPrefix(service: string): string {
  return `${CONNECTION_PREFIX}/${encodeSegment(service)}`;
}

/**
 * The path an outbound queue addresses, or `undefined` when `queue` is not
 * an outbound queue.
 */
export function pathOfOutbound(queue: string): string | undefined {
  if (!queue.startsWith(OUTBOUND_PREFIX)) return undefined;
  const rest = queue.slice(OUTBOUND_PREFIX.length);
  return rest.startsWith("/") ? rest : undefined;
}

function encodeSegment(value: string): string {
  return encodeURIComponent(value).replaceAll("*", "%2A");
}
