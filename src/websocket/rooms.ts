/**
 * Rooms: named, dynamic sets of WebSocket connections. A consumer in any pool
 * puts the connection that sent a message into a room with
 * {@linkcode joinRoom}; whatever is published on `ws://room/<name>` then
 * reaches every connection in that room, on every WebSocketService of the
 * program. The helpers ask the service that owns the connection, on its
 * control queue, and resolve once it confirmed.
 *
 * @module
 */

import { NoRespondersError, QueueNameError } from "../errors.ts";
import type { MessageMeta, ServiceContext } from "../service_context.ts";

/** Prefix of the room queues: `ws://room/<name>`. */
export const ROOM_PREFIX = "ws://room/";
/** Prefix of the control queues of the WebSocket services. */
export const CONTROL_PREFIX = "ws://control/";
/** The `meta.headers` key that names the control queue of a connection's service. */
export const CONTROL_HEADER = "controlQueue";
/** Longest room name: the room queue stays within the 1024-character limit of queue names. */
export const MAX_ROOM_NAME = 1024 - ROOM_PREFIX.length;

/**
 * The queue whose messages reach every connection in `room`.
 *
 * @param room A room name (one queue segment: no `/`, no white space, not
 * `*` or `>`).
 * @returns The queue name, e.g. `ws://room/lobby`.
 * @throws {QueueNameError} When `room` is not a valid room name.
 *
 * @example Publish to a room
 * ```ts
 * import { roomQueue } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(roomQueue("lobby"), "ws://room/lobby");
 * assert.throws(() => roomQueue("a/b"), { name: "QueueNameError" });
 * ```
 */
export function roomQueue(room: string): string {
  return ROOM_PREFIX + validateRoomName(room);
}

/**
 * Checks a room name and returns it. A room name is one queue segment: a
 * non-empty string of at most {@linkcode MAX_ROOM_NAME} characters, without
 * `/`, white space or control characters, and not exactly `*` or `>`.
 *
 * @param room The name to check (any value: non-strings are refused).
 * @returns `room`, unchanged.
 * @throws {QueueNameError} When `room` is not a valid room name; its `queue`
 * is the room queue that would result, and the message names the room and
 * says why.
 *
 * @example Accept a room, refuse a wildcard
 * ```ts
 * import { validateRoomName } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * assert.equal(validateRoomName("table-7"), "table-7");
 * assert.throws(() => validateRoomName("*"), {
 *   name: "QueueNameError",
 *   message: 'Invalid room name "*": a room name may not be "*" or ">"',
 * });
 * ```
 */
export function validateRoomName(room: unknown): string {
  const reason = invalidRoomReason(room);
  if (reason !== undefined) {
    const error = new QueueNameError(ROOM_PREFIX + String(room), reason);
    // A client chose the room: tell it about the room, not the queue.
    const name = typeof room === "string" ? JSON.stringify(room) : String(room);
    error.message = `Invalid room name ${name}: ${reason}`;
    throw error;
  }
  return room as string;
}

/**
 * Why a room could not be joined: the connection is in
 * `maxRoomsPerConnection` rooms already (`"limit"`), or it is closed or
 * closing, or its service stopped (`"closed"`).
 */
export type RoomErrorReason = "limit" | "closed";

/**
 * The service that owns a connection refused to put it into a room.
 *
 * @example Tell the client it joined too many rooms
 * ```ts
 * import { RoomError } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * const error = new RoomError(
 *   "lobby",
 *   "c1",
 *   "limit",
 *   'Cannot join room "lobby": connection c1 is in 100 rooms already',
 * );
 * assert.equal(error.name, "RoomError");
 * assert.equal(error.reason, "limit");
 * ```
 */
export class RoomError extends Error {
  /** The room that was to be joined. */
  readonly room: string;
  /** The connection that was to join it. */
  readonly connectionId: string;
  /** Why it could not. */
  readonly reason: RoomErrorReason;

  /**
   * Makes the error for a refused join.
   *
   * @param room The room that was to be joined.
   * @param connectionId The connection that was to join it.
   * @param reason Why it could not.
   * @param message The full message, in the std style.
   * @param options The usual error options (`cause`).
   */
  constructor(
    room: string,
    connectionId: string,
    reason: RoomErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "RoomError";
    this.room = room;
    this.connectionId = connectionId;
    this.reason = reason;
  }
}

/** Options of {@linkcode joinRoom} and {@linkcode leaveRoom}. */
export interface RoomOptions {
  /** How long to wait for the owning service to confirm, in ms. Default 5000. */
  timeout?: number;
}

/**
 * Puts the connection that produced `meta` (an inbound message or a
 * `ws://connected/…` event) into `room`, and resolves once the service that
 * owns the connection confirmed: a message published on the room's queue
 * after that reaches the connection. Joining a room twice is not an error.
 * The connection leaves its rooms when it closes.
 *
 * @param ctx The calling service's context (any pool).
 * @param meta The `meta` of a message from the connection.
 * @param room The room name (see {@linkcode validateRoomName}).
 * @param options See {@linkcode RoomOptions}.
 * @throws {QueueNameError} When `room` is not a valid room name.
 * @throws {TypeError} When `meta` does not come from a WebSocket connection.
 * @throws {RoomError} When the connection is in `maxRoomsPerConnection`
 * rooms already (`reason` `"limit"`), or is closed (`"closed"`).
 * @throws {TimeoutError} When the service does not answer in time.
 *
 * @example A chat: `/join <room>` joins, anything else goes to the room
 * ```ts
 * import type { ServiceContext } from "@magic/foundation";
 * import { joinRoom, roomQueue } from "@magic/foundation/websocket";
 *
 * export async function chat(ctx: ServiceContext): Promise<void> {
 *   const roomOf = new Map<string, string>();
 *   await ctx.subscribe<string>("ws://inbound/chat", async (text, meta) => {
 *     const id = meta.headers!.connectionId!;
 *     if (text.startsWith("/join ")) {
 *       const room = text.slice(6);
 *       await joinRoom(ctx, meta, room);
 *       roomOf.set(id, room);
 *     } else if (roomOf.has(id)) {
 *       await ctx.publish(roomQueue(roomOf.get(id)!), text);
 *     }
 *   });
 * }
 * ```
 */
export async function joinRoom(
  ctx: Pick<ServiceContext, "request">,
  meta: Pick<MessageMeta, "headers">,
  room: string,
  options: RoomOptions = {},
): Promise<void> {
  const reply = await control(ctx, meta, "join", room, options);
  if (reply.kind === "refused") {
    throw new RoomError(room, reply.connectionId, reply.reason, reply.message);
  }
}

/**
 * Takes the connection that produced `meta` out of `room`, and resolves once
 * the owning service confirmed.
 *
 * @param ctx The calling service's context (any pool).
 * @param meta The `meta` of a message from the connection.
 * @param room The room name.
 * @param options See {@linkcode RoomOptions}.
 * @returns `true` if the connection was in the room, `false` if it was not
 * (or is closed, or its service stopped).
 * @throws {QueueNameError} When `room` is not a valid room name.
 * @throws {TypeError} When `meta` does not come from a WebSocket connection.
 * @throws {TimeoutError} When the service does not answer in time.
 *
 * @example `/leave <room>`
 * ```ts
 * import type { ServiceContext } from "@magic/foundation";
 * import { leaveRoom } from "@magic/foundation/websocket";
 *
 * export async function leaving(ctx: ServiceContext): Promise<void> {
 *   await ctx.subscribe<string>("ws://inbound/chat", async (text, meta) => {
 *     if (!text.startsWith("/leave ")) return;
 *     const left = await leaveRoom(ctx, meta, text.slice(7));
 *     await ctx.publish(meta.replyTo!, left ? "left" : "you were not there");
 *   });
 * }
 * ```
 */
export async function leaveRoom(
  ctx: Pick<ServiceContext, "request">,
  meta: Pick<MessageMeta, "headers">,
  room: string,
  options: RoomOptions = {},
): Promise<boolean> {
  const reply = await control(ctx, meta, "leave", room, options);
  return reply.kind === "left" && reply.was;
}

/** The rooms of one WebSocketService, as {@linkcode roomReport} returns them. */
export interface RoomReport {
  /** The service's name. */
  service: string;
  /** The pool it runs in. */
  pool: string;
  /** Its open connections. */
  connections: number;
  /** Room name → number of its connections in that room (rooms with none are absent). */
  rooms: Record<string, number>;
}

/**
 * The rooms and their sizes on every WebSocketService of the program: the
 * services are found in `ctx.topology()` by their control queues, and each
 * is asked for its rooms.
 *
 * @param ctx The calling service's context (any pool).
 * @param options See {@linkcode RoomOptions}.
 * @returns One report per service, sorted by pool and service.
 *
 * @example Log the size of every room
 * ```ts
 * import type { ServiceContext } from "@magic/foundation";
 * import { roomReport } from "@magic/foundation/websocket";
 *
 * export async function logRooms(ctx: ServiceContext): Promise<void> {
 *   for (const { pool, service, rooms } of await roomReport(ctx)) {
 *     for (const [room, size] of Object.entries(rooms)) {
 *       ctx.log.info(`${pool}/${service}: room "${room}" has ${size}`);
 *     }
 *   }
 * }
 * ```
 */
export async function roomReport(
  ctx: Pick<ServiceContext, "request" | "topology">,
  options: RoomOptions = {},
): Promise<RoomReport[]> {
  // A service's control queue is a name; a pattern someone else subscribed
  // to under ws://control/ cannot be requested on.
  const queues = Object.keys(await ctx.topology()).filter((q) =>
    q.startsWith(CONTROL_PREFIX) &&
    !q.split("/").some((segment) => segment === "*" || segment === ">")
  );
  const request: RoomControl = { kind: "report" };
  const reports = await Promise.all(queues.map(async (queue) => {
    try {
      return await ctx.request<RoomControlReply>(queue, request, {
        timeout: options.timeout ?? 5000,
      });
    } catch (error) {
      // The service stopped between the topology and the request.
      if (error instanceof NoRespondersError) return undefined;
      throw error;
    }
  }));
  return reports.filter((r): r is RoomReport & { kind: "report" } =>
    r?.kind === "report"
  ).map(({ service, pool, connections, rooms }) => ({
    service,
    pool,
    connections,
    rooms,
  })).sort((a, b) =>
    a.pool.localeCompare(b.pool) || a.service.localeCompare(b.service)
  );
}

/** A request on a service's control queue. */
export type RoomControl =
  | { kind: "join"; connectionId: string; room: string }
  | { kind: "leave"; connectionId: string; room: string }
  | { kind: "report" };

/** The answer of a service to a {@linkcode RoomControl}. */
export type RoomControlReply =
  | { kind: "joined" }
  | { kind: "left"; was: boolean }
  | {
    kind: "refused";
    connectionId: string;
    reason: RoomErrorReason;
    message: string;
  }
  | ({ kind: "report" } & RoomReport);

/** Whether `data` is a well-formed {@linkcode RoomControl}. */
export function isRoomControl(data: unknown): data is RoomControl {
  if (typeof data !== "object" || data === null) return false;
  const { kind, connectionId, room } = data as Record<string, unknown>;
  if (kind === "report") return true;
  return (kind === "join" || kind === "leave") &&
    typeof connectionId === "string" && invalidRoomReason(room) === undefined;
}

async function control(
  ctx: Pick<ServiceContext, "request">,
  meta: Pick<MessageMeta, "headers">,
  kind: "join" | "leave",
  room: string,
  options: RoomOptions,
): Promise<RoomControlReply> {
  validateRoomName(room);
  const connectionId = meta.headers?.connectionId;
  const queue = meta.headers?.[CONTROL_HEADER];
  if (connectionId === undefined || queue === undefined) {
    throw new TypeError(
      `Cannot ${kind} room "${room}": the message does not come from a WebSocket connection (no connectionId or ${CONTROL_HEADER} in meta.headers)`,
    );
  }
  const request: RoomControl = { kind, connectionId, room };
  try {
    return await ctx.request<RoomControlReply>(queue, request, {
      timeout: options.timeout ?? 5000,
    });
  } catch (error) {
    if (!(error instanceof NoRespondersError)) throw error;
    // The service that owned the connection stopped: so did the connection.
    if (kind === "leave") return { kind: "left", was: false };
    return refusedClosed(room, connectionId);
  }
}

/**
 * A new control queue for a service called `service`:
 * `ws://control/<service>/<random id>`, unique to one instance even when
 * two pools hold services of the same name.
 */
export function controlQueue(service: string): string {
  const name = encodeURIComponent(service).replaceAll("*", "%2A");
  return `${CONTROL_PREFIX}${name}/${crypto.randomUUID()}`;
}

/** The refusal for a connection that is closed or unknown. */
export function refusedClosed(
  room: string,
  connectionId: string,
): RoomControlReply {
  return {
    kind: "refused",
    connectionId,
    reason: "closed",
    message: `Cannot join room "${room}": connection ${connectionId} is closed`,
  };
}

function invalidRoomReason(room: unknown): string | undefined {
  if (typeof room !== "string") return "a room name must be a string";
  if (room === "") return "a room name may not be empty";
  if (room.length > MAX_ROOM_NAME) {
    return `a room name has at most ${MAX_ROOM_NAME} characters, got ${room.length}`;
  }
  if (room === "*" || room === ">") return 'a room name may not be "*" or ">"';
  if (room.includes("/")) return 'a room name is one segment: no "/"';
  const bad = /[\s\p{Cc}\p{Cf}]/u.exec(room);
  if (bad !== null) {
    return `a room name may not contain white space or a control or invisible character (at index ${bad.index})`;
  }
  return undefined;
}
