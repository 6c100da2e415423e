/**
 * The fan-out to connections: the open connections of one WebSocket
 * service, by reply queue, by path and by room, and the sending of one
 * message to the connections it is for (a path's, one connection, a
 * room's), framed once.
 *
 * @module
 */

import type { Connection } from "./connection.ts";
import { toFrame } from "./connection.ts";
import { RoomRegistry } from "./room_registry.ts";
import { pathOfOutbound } from "./router.ts";
import type { HistoryStore } from "./history.ts";
import { offsetFrame } from "./session_wire.ts";

/** The open connections of one service, and what goes to them. */
export class Fanout {
  /** Connections by reply queue (`ws://connection/<service>/<id>`). */
  readonly #byQueue = new Map<string, Connection>();
  readonly #byPath = new Map<string, Set<Connection>>();
  /** The connections' rooms. */
  readonly rooms: RoomRegistry;
  readonly #warn: (message: string) => void;
  /** Where what is sent to sessions is recorded (recovery on). */
  history: HistoryStore | undefined;

  /**
   * @param maxRoomsPerConnection The most rooms a connection may be in.
   * @param warn Where a message that cannot be framed is reported.
   */
  constructor(maxRoomsPerConnection: number, warn: (message: string) => void) {
    this.rooms = new RoomRegistry(maxRoomsPerConnection);
    this.#warn = warn;
  }

  /** How many connections are open. */
  get size(): number {
    return this.#byQueue.size;
  }

  /** The open connections. */
  values(): IterableIterator<Connection> {
    return this.#byQueue.values();
  }

  /** The connection whose reply queue is `queue`, if open. */
  get(queue: string): Connection | undefined {
    return this.#byQueue.get(queue);
  }

  /** Adds an opened connection (back into its session's rooms). */
  add(connection: Connection): void {
    this.#byQueue.set(connection.replyTo, connection);
    let peers = this.#byPath.get(connection.path);
    if (peers === undefined) {
      this.#byPath.set(connection.path, peers = new Set());
    }
    peers.add(connection);
    for (const room of connection.session?.rooms() ?? []) {
      this.rooms.join(connection, room);
    }
  }

  /** Removes a finished connection from its path and its rooms. */
  forget(connection: Connection): void {
    this.rooms.leaveAll(connection);
    // A resumed session's new connection may hold the reply queue already.
    if (this.#byQueue.get(connection.replyTo) === connection) {
      this.#byQueue.delete(connection.replyTo);
    }
    const peers = this.#byPath.get(connection.path);
    peers?.delete(connection);
    if (peers?.size === 0) this.#byPath.delete(connection.path);
  }

  /** Sends a message of `ws://outbound/<path>` to every connection on the path. */
  toPath(data: unknown, queue: string): void {
    const path = pathOfOutbound(queue);
    const peers = path === undefined ? undefined : this.#byPath.get(path);
    this.#send(data, queue, peers);
  }

  /** Sends a message of a connection's reply queue to that connection. */
  toConnection(data: unknown, queue: string): void {
    const connection = this.#byQueue.get(queue);
    this.#send(data, queue, connection && [connection]);
  }

  /** Sends a message of `ws://room/<name>` to the room's connections. */
  toRoom(data: unknown, queue: string): void {
    this.#send(data, queue, this.rooms.membersOfQueue(queue));
  }

  /**
   * Frames `data` once, records it when sessions follow `queue` (detached
   * ones included), and sends it to `to`: bare to plain connections, with
   * its offset to sessions.
   */
  #send(
    data: unknown,
    queue: string,
    to: Iterable<Connection> | undefined,
  ): void {
    const history = this.history?.has(queue) ? this.history : undefined;
    if (to === undefined && history === undefined) return;
    const frame = toFrame(data);
    if (frame === undefined) {
      this.#warn(
        `Cannot send the message of "${queue}": it is not a string, bytes or JSON`,
      );
      return;
    }
    const offset = history?.append(queue, frame);
    if (to === undefined) return;
    let framed: string | Uint8Array | undefined;
    for (const connection of to) {
      const session = connection.session;
      if (session === undefined) connection.send(frame);
      else if (offset !== undefined) {
        session.deliver(offset, framed ??= offsetFrame(offset, frame));
      }
    }
  }
}
