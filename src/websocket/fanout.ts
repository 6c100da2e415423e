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

/** The open connections of one service, and what goes to them. */
export class Fanout {
  /** Connections by reply queue (`ws://connection/<service>/<id>`). */
  readonly #byQueue = new Map<string, Connection>();
  readonly #byPath = new Map<string, Set<Connection>>();
  /** The connections' rooms. */
  readonly rooms: RoomRegistry;
  readonly #warn: (message: string) => void;

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

  /** Adds an opened connection. */
  add(connection: Connection): void {
    this.#byQueue.set(connection.replyTo, connection);
    let peers = this.#byPath.get(connection.path);
    if (peers === undefined) {
      this.#byPath.set(connection.path, peers = new Set());
    }
    peers.add(connection);
  }

  /** Removes a finished connection from its path and its rooms. */
  forget(connection: Connection): void {
    this.rooms.leaveAll(connection);
    this.#byQueue.delete(connection.replyTo);
    const peers = this.#byPath.get(connection.path);
    peers?.delete(connection);
    if (peers?.size === 0) this.#byPath.delete(connection.path);
  }

  /** Sends a message of `ws://outbound/<path>` to every connection on the path. */
  toPath(data: unknown, queue: string): void {
    const path = pathOfOutbound(queue);
    const peers = path === undefined ? undefined : this.#byPath.get(path);
    if (peers !== undefined && peers.size > 0) this.#send(data, queue, peers);
  }

  /** Sends a message of a connection's reply queue to that connection. */
  toConnection(data: unknown, queue: string): void {
    const connection = this.#byQueue.get(queue);
    if (connection !== undefined) this.#send(data, queue, [connection]);
  }

  /** Sends a message of `ws://room/<name>` to the room's connections. */
  toRoom(data: unknown, queue: string): void {
    const members = this.rooms.membersOfQueue(queue);
    if (members !== undefined) this.#send(data, queue, members);
  }

  #send(data: unknown, queue: string, to: Iterable<Connection>): void {
    const frame = toFrame(data);
    if (frame === undefined) {
      this.#warn(
        `Cannot send the message of "${queue}": it is not a string, bytes or JSON`,
      );
      return;
    }
    for (const connection of to) connection.send(frame);
  }
}
