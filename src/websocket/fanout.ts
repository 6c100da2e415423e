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
import { frameBytes } from "./counters.ts";
import { RoomRegistry } from "./room_registry.ts";
import { OUTBOUND_PREFIX, pathOfOutbound } from "./router.ts";
import type { HistoryStore } from "./history.ts";
import { offsetFrame } from "./session_wire.ts";
import type { SharedEntry, SharedHistory } from "./shared_history.ts";
import type { MessageMeta } from "../service_context.ts";
import { errorMessage } from "../_util/error_text.ts";
import { ROOM_PREFIX } from "./rooms.ts";

/** The open connections of one service, and what goes to them. */
export class Fanout {
  /** Connections by reply queue (`ws://connection/<service>/<id>`). */
  readonly #byQueue = new Map<string, Connection>();
  readonly #byPath = new Map<string, Set<Connection>>();
  /** The connections' rooms. */
  readonly rooms: RoomRegistry;
  readonly #warn: (message: string) => void;
  /** Where what is sent to sessions is recorded (recovery on, in memory). */
  history: HistoryStore | undefined;
  /**
   * The history shared by the run's processes (recovery on, `history:
   * "jetstream"`): every message is appended to it, and sessions get their
   * messages from it (`toSessions`), in its order.
   */
  shared: SharedHistory | undefined;
  /** The last append to `shared` failed (warned once). */
  #appendFailing = false;

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
  toPath(data: unknown, meta: MessageMeta): void {
    this.#send(data, meta, this.#ofPath(meta.queue));
  }

  /** Sends a message of a connection's reply queue to that connection. */
  toConnection(data: unknown, meta: MessageMeta): void {
    this.#send(data, meta, this.#ofConnection(meta.queue));
  }

  /** Sends a message of `ws://room/<name>` to the room's connections. */
  toRoom(data: unknown, meta: MessageMeta): void {
    this.#send(data, meta, this.rooms.membersOfQueue(meta.queue));
  }

  /** Sends an entry of the shared history to the sessions it is for. */
  toSessions({ stream, offset, frame }: SharedEntry): void {
    const to = stream.startsWith(OUTBOUND_PREFIX)
      ? this.#ofPath(stream)
      : stream.startsWith(ROOM_PREFIX)
      ? this.rooms.membersOfQueue(stream)
      : this.#ofConnection(stream);
    let framed: string | Uint8Array | undefined;
    for (const connection of to ?? []) {
      connection.session?.deliver(
        offset,
        framed ??= offsetFrame(offset, frame),
      );
    }
  }

  #ofPath(queue: string): Iterable<Connection> | undefined {
    const path = pathOfOutbound(queue);
    return path === undefined ? undefined : this.#byPath.get(path);
  }

  #ofConnection(queue: string): Iterable<Connection> | undefined {
    const connection = this.#byQueue.get(queue);
    return connection && [connection];
  }

  /**
   * Frames `data` once, records it when sessions follow `queue` (detached
   * ones included), and sends it to `to`: bare to plain connections, with
   * its offset to sessions.
   */
  #send(
    data: unknown,
    meta: MessageMeta,
    to: Iterable<Connection> | undefined,
  ): void {
    const { queue } = meta;
    const shared = this.shared;
    const history = this.history?.has(queue) ? this.history : undefined;
    if (to === undefined && history === undefined && shared === undefined) {
      return;
    }
    const frame = toFrame(data);
    if (frame === undefined) {
      this.#warn(
        `Cannot send the message of "${queue}": it is not a string, bytes or JSON`,
      );
      return;
    }
    if (shared !== undefined) {
      // One warning per outage, not one per message.
      shared.append(frame, meta).then(
        () => this.#appendFailing = false,
        (error) => {
          if (!this.#appendFailing) {
            this.#warn(
              `Cannot record the message of "${queue}" for recovery (and maybe more, until it works again): ${
                errorMessage(error)
              }`,
            );
          }
          this.#appendFailing = true;
        },
      );
    }
    // Measured once, for the history and the counters alike.
    const bytes = history === undefined ? undefined : frameBytes(frame);
    const offset = history?.append(queue, frame, bytes);
    if (to === undefined) return;
    let framed: string | Uint8Array | undefined;
    let framedBytes = 0;
    for (const connection of to) {
      const session = connection.session;
      if (session === undefined) connection.send(frame, bytes);
      // Shared: sessions get it from the shared history (`toSessions`).
      else if (offset !== undefined) {
        if (framed === undefined) {
          framed = offsetFrame(offset, frame);
          // The offset prefix is ASCII: one byte per character.
          framedBytes = bytes! + framed.length - frame.length;
        }
        session.deliver(offset, framed, framedBytes);
      }
    }
  }
}
