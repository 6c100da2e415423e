/**
 * The rooms of one WebSocketService: which of its connections are in which
 * room, and the answers to the requests on its control queue.
 *
 * Each service subscribes once to `ws://room/*` rather than once per room:
 * a join or leave then costs two `Map` operations and no bus round trip
 * (a subscription is announced to every pool and waits for all of them),
 * rooms that churn (a user's tabs, short game tables) cost the bus nothing,
 * and the topology stays one line per service. The price is that every
 * room message reaches every WebSocketService, which drops it after one
 * lookup when it has no member there; programs have one or a few of them.
 *
 * @module
 */

import type { Connection } from "./connection.ts";
import {
  refusedClosed,
  ROOM_PREFIX,
  type RoomControl,
  type RoomControlReply,
} from "./rooms.ts";

/** What the registry needs to answer a report. */
export interface RegistryOwner {
  service: string;
  pool: string;
  connections: number;
  /** The open connection with this id, if any. */
  find(connectionId: string): Connection | undefined;
}

/** Room memberships of the connections of one service. */
export class RoomRegistry {
  readonly #members = new Map<string, Set<Connection>>();
  readonly #roomsOf = new Map<Connection, Set<string>>();
  readonly #limit: number;

  /** @param limit Most rooms one connection may be in. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The connections in `room`, or `undefined` when none is. */
  members(room: string): ReadonlySet<Connection> | undefined {
    return this.#members.get(room);
  }

  /** The members of the room a `ws://room/<name>` queue addresses. */
  membersOfQueue(queue: string): ReadonlySet<Connection> | undefined {
    return this.#members.get(queue.slice(ROOM_PREFIX.length));
  }

  /** The rooms `connection` is in. */
  roomsOf(connection: Connection): ReadonlySet<string> {
    return this.#roomsOf.get(connection) ?? EMPTY;
  }

  /** Room name → number of members, for rooms with members. */
  sizes(): Record<string, number> {
    const sizes: Record<string, number> = {};
    for (const [room, members] of this.#members) sizes[room] = members.size;
    return sizes;
  }

  /** Puts `connection` into `room`, unless it is in `limit` rooms already. */
  join(connection: Connection, room: string): RoomControlReply {
    let rooms = this.#roomsOf.get(connection);
    if (rooms?.has(room)) return { kind: "joined" };
    if ((rooms?.size ?? 0) >= this.#limit) {
      return {
        kind: "refused",
        connectionId: connection.id,
        reason: "limit",
        message:
          `Cannot join room "${room}": connection ${connection.id} is in ${this.#limit} rooms already`,
      };
    }
    if (rooms === undefined) this.#roomsOf.set(connection, rooms = new Set());
    rooms.add(room);
    connection.session?.follow(ROOM_PREFIX + room);
    let members = this.#members.get(room);
    if (members === undefined) this.#members.set(room, members = new Set());
    members.add(connection);
    return { kind: "joined" };
  }

  /** Takes `connection` (and its session) out of `room`; whether it was there. */
  leave(connection: Connection, room: string): boolean {
    connection.session?.unfollow(ROOM_PREFIX + room);
    return this.#remove(connection, room);
  }

  /**
   * Takes `connection` out of every room (when it closes); its session, if
   * kept for its client, stays in them.
   */
  leaveAll(connection: Connection): void {
    for (const room of [...this.roomsOf(connection)]) {
      this.#remove(connection, room);
    }
  }

  #remove(connection: Connection, room: string): boolean {
    const rooms = this.#roomsOf.get(connection);
    if (rooms === undefined || !rooms.delete(room)) return false;
    if (rooms.size === 0) this.#roomsOf.delete(connection);
    const members = this.#members.get(room);
    members?.delete(connection);
    if (members?.size === 0) this.#members.delete(room);
    return true;
  }

  /** The answer to a request on the service's control queue. */
  answer(request: RoomControl, owner: RegistryOwner): RoomControlReply {
    switch (request.kind) {
      case "join": {
        const connection = owner.find(request.connectionId);
        if (connection === undefined || !connection.open) {
          return refusedClosed(request.room, request.connectionId);
        }
        return this.join(connection, request.room);
      }
      case "leave": {
        const connection = owner.find(request.connectionId);
        const was = connection !== undefined &&
          this.leave(connection, request.room);
        return { kind: "left", was };
      }
      case "report":
        return {
          kind: "report",
          service: owner.service,
          pool: owner.pool,
          connections: owner.connections,
          rooms: this.sizes(),
        };
      default: {
        const never: never = request;
        throw new TypeError(`Unknown room request ${JSON.stringify(never)}`);
      }
    }
  }
}

const EMPTY: ReadonlySet<string> = new Set();
