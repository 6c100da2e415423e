/**
 * Sessions that survive a reconnect: a client that opted in (see
 * `session_wire.ts`) gets a secret session id; when its connection drops,
 * the session keeps its connection id (so its `meta.replyTo`), its path and
 * its rooms for `recoveryWindow`, and the history keeps what was sent to
 * them. A reconnect that presents the session and its last offset gets, in
 * order and once, what it missed, then live traffic.
 *
 * @module
 */

import type { PublishOptions } from "../service_context.ts";
import type { Connection, ConnectionEvent } from "./connection.ts";
import type { HistoryEntry, HistoryStore } from "./history.ts";
import { utf8Length } from "./counters.ts";
import { disconnectedQueue, outboundQueue } from "./router.ts";
import { ROOM_PREFIX } from "./rooms.ts";
import {
  type NotRecoveredReason,
  offsetFrame,
  type SessionHello,
  type SessionRequest,
} from "./session_wire.ts";

/** Expired session ids remembered to answer "window passed", at most. */
export const MAX_EXPIRED_REMEMBERED = 10_000;

/** What the registry needs from its service. */
export interface SessionSettings {
  /** How long a dropped session waits for its client, in ms (> 0). */
  window: number;
  /** Most messages one recovery may replay; more: "history trimmed". */
  maxMessages: number;
  /** Most bytes one recovery may replay; more: "history trimmed". */
  maxBytes: number;
  history: HistoryStore;
  /** Publishes on the bus, as `ctx.publish`. */
  publish(queue: string, data: unknown, options: PublishOptions): Promise<void>;
}

/**
 * The sessions of a WebSocketService, as `service.sessions` reports them
 * (for tests and dashboards).
 *
 * @example Nothing is left of sessions that never came back
 * ```ts
 * import type { SessionStats } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * const idle: SessionStats = {
 *   connected: 0,
 *   detached: 0,
 *   expired: 12,
 *   streams: 0,
 *   messages: 0,
 *   bytes: 0,
 * };
 * assert.equal(idle.streams + idle.messages + idle.bytes, 0);
 * ```
 */
export interface SessionStats {
  /** Sessions with an open (or opening) connection. */
  connected: number;
  /** Sessions whose connection dropped, waiting for their client. */
  detached: number;
  /**
   * Expired session ids remembered (to answer "window passed"), at most
   * 10,000 and each for one more window.
   */
  expired: number;
  /** Streams (paths, rooms, connections) whose history is kept. */
  streams: number;
  /** Messages in the history. */
  messages: number;
  /** Payload bytes in the history. */
  bytes: number;
}

/** One client's session. */
export class Session {
  /** The secret the client presents to resume. */
  readonly id: string;
  /** The connection id, the same across reconnects. */
  readonly connectionId: string;
  readonly path: string;
  /** The reply queue of the connection, the same across reconnects. */
  readonly replyTo: string;
  /** `authorize`'s headers, as JSON: a resume must get the same. */
  readonly authorized: string;
  /** Stream → the offset from which this session follows it. */
  readonly #follows = new Map<string, number>();
  readonly #history: HistoryStore;
  #connection: Connection | undefined;
  /** The offset of the last frame sent to (or presented by) the client. */
  #offset: number;
  /** Frames to send once the socket opens: the replay, then live ones. */
  #waiting: HistoryEntry[] | undefined = [];
  /** How many of `#waiting` are the replay (bare frames, from the history). */
  #replay = 0;
  #resumed = false;
  #reason: NotRecoveredReason | undefined;
  /** The `disconnected` event of the last drop, and its meta. */
  closed: { event: ConnectionEvent; options: PublishOptions } | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    history: HistoryStore,
    init: {
      connectionId: string;
      path: string;
      replyTo: string;
      authorized: string;
      reason: NotRecoveredReason | undefined;
    },
  ) {
    this.#history = history;
    this.id = secret();
    this.connectionId = init.connectionId;
    this.path = init.path;
    this.replyTo = init.replyTo;
    this.authorized = init.authorized;
    this.#reason = init.reason;
    this.#offset = history.last;
    this.follow(outboundQueue(init.path));
    this.follow(init.replyTo);
  }

  /** Whether the last attach resumed the session (vs. a new one). */
  get resumed(): boolean {
    return this.#resumed;
  }

  /** The connection the session is attached to, if any. */
  get connection(): Connection | undefined {
    return this.#connection;
  }

  /** The rooms the session is in. */
  rooms(): string[] {
    return [...this.#follows.keys()].filter((s) => s.startsWith(ROOM_PREFIX))
      .map((s) => s.slice(ROOM_PREFIX.length));
  }

  /** Keeps the history of `stream` for this session, from now on. */
  follow(stream: string): void {
    if (this.#follows.has(stream)) return;
    this.#follows.set(stream, this.#history.last);
    this.#history.retain(stream);
  }

  /** Stops following `stream` (a room left). */
  unfollow(stream: string): void {
    if (this.#follows.delete(stream)) this.#history.release(stream);
  }

  /** Stops following every stream (the session ended). */
  unfollowAll(): void {
    for (const stream of this.#follows.keys()) this.#history.release(stream);
    this.#follows.clear();
  }

  /**
   * What the client is missing after `offset`, in order, or `"trimmed"`.
   */
  missed(offset: number): HistoryEntry[] | "trimmed" {
    return this.#history.read(
      [...this.#follows].map(([stream, since]) => ({
        stream,
        after: Math.max(since, offset),
      })),
    );
  }

  /** Attaches a new connection; `replay` is sent first once it opens. */
  attach(
    connection: Connection,
    resume?: { offset: number; replay: HistoryEntry[] },
  ): void {
    this.#connection = connection;
    this.#resumed = resume !== undefined;
    if (resume !== undefined) {
      this.#offset = resume.offset;
      this.#reason = undefined;
    }
    this.#waiting = resume?.replay ?? [];
    this.#replay = this.#waiting.length;
  }

  /** Forgets the connection (it closed). */
  detach(): void {
    this.#connection = undefined;
    this.#waiting = [];
    this.#replay = 0;
  }

  /** A frame at `offset` for this session's client (already enveloped). */
  deliver(offset: number, framed: string | Uint8Array): void {
    if (this.#connection === undefined) return;
    if (this.#waiting !== undefined) {
      this.#waiting.push({ offset, frame: framed });
    } else if (offset > this.#offset) {
      this.#offset = offset;
      this.#connection.send(framed);
    }
  }

  /**
   * The socket opened: sends the hello, then the replay and what came
   * meanwhile, once each and in order.
   *
   * @returns How many missed messages were sent.
   */
  open(connection: Connection): number {
    if (connection !== this.#connection) return 0;
    const hello: SessionHello = {
      mf: "session",
      session: this.id,
      offset: this.#offset,
      recovered: this.#resumed,
    };
    if (this.#reason !== undefined) hello.reason = this.#reason;
    connection.sendFirst(JSON.stringify(hello));
    const waiting = this.#waiting ?? [];
    const replayed = this.#replay;
    this.#waiting = undefined;
    this.#replay = 0;
    this.closed = undefined;
    // The replay holds bare frames; what came since the attach is enveloped.
    waiting.forEach(({ offset, frame }, i) => {
      if (offset <= this.#offset) return;
      this.#offset = offset;
      connection.sendFirst(i < replayed ? offsetFrame(offset, frame) : frame);
    });
    return replayed;
  }
}

/** The sessions of one service. */
export class SessionRegistry {
  readonly #settings: SessionSettings;
  readonly #sessions = new Map<string, Session>();
  /** Expired session id → when it expired. */
  readonly #expired = new Map<string, number>();
  #detached = 0;
  #stopping = false;

  constructor(settings: SessionSettings) {
    this.#settings = settings;
  }

  /**
   * The session for a client that opted in: the one it presented, resumed
   * with what it missed, or else a new one (whose hello gives the reason).
   * The caller attaches it (`attach(connection, resume)`) synchronously, so
   * nothing sent in between is missed.
   *
   * @param replyTo The reply queue of a connection id.
   */
  sessionFor(
    request: SessionRequest,
    path: string,
    authorized: Record<string, string> | undefined,
    replyTo: (connectionId: string) => string,
  ): {
    session: Session;
    resume?: { offset: number; replay: HistoryEntry[] };
  } {
    const resumed = this.#resume(request, path, authorized);
    if ("session" in resumed) {
      const { session, replay } = resumed;
      return { session, resume: { offset: request.offset, replay } };
    }
    const id = crypto.randomUUID();
    const session = new Session(this.#settings.history, {
      connectionId: id,
      path,
      replyTo: replyTo(id),
      authorized: JSON.stringify(authorized ?? {}),
      reason: request.session === undefined ? undefined : resumed.reason,
    });
    this.#sessions.set(session.id, session);
    return { session };
  }

  #resume(
    request: SessionRequest,
    path: string,
    authorized: Record<string, string> | undefined,
  ):
    | { session: Session; replay: HistoryEntry[] }
    | { reason: NotRecoveredReason } {
    const id = request.session;
    if (id === undefined) return { reason: "unknown session" };
    const session = this.#sessions.get(id);
    if (
      session === undefined || session.path !== path ||
      session.authorized !== JSON.stringify(authorized ?? {})
    ) {
      return {
        reason: this.#expired.has(id) ? "window passed" : "unknown session",
      };
    }
    // A connection that is closing (its close not yet handled) is gone.
    if (session.connection?.alive) return { reason: "session in use" };
    // An offset never sent: not this session's client.
    if (request.offset > this.#settings.history.last) {
      return { reason: "unknown session" };
    }
    session.detach();
    const replay = session.missed(request.offset);
    const { maxMessages, maxBytes } = this.#settings;
    if (
      replay === "trimmed" || replay.length > maxMessages ||
      bytesOf(replay, maxBytes) > maxBytes
    ) {
      void this.end(session);
      return { reason: "history trimmed" };
    }
    if (session.timer !== undefined) {
      clearTimeout(session.timer);
      session.timer = undefined;
      this.#detached--;
    }
    return { session, replay };
  }

  /**
   * The session's connection closed with `event`: keeps the session for
   * the window (`true`), or ends it (`false`: the client closed with 1000,
   * or the service stops; the connection announces the close itself).
   */
  closed(
    session: Session,
    connection: Connection,
    event: ConnectionEvent,
    options: PublishOptions,
    opened: boolean,
  ): boolean {
    // Ended already: the connection announces its close.
    if (this.#sessions.get(session.id) !== session) return false;
    // The client is back on a new connection already: nothing to announce.
    if (session.connection !== connection) return true;
    session.detach();
    const keep = !this.#stopping && event.code !== 1000 &&
      (opened || session.resumed);
    if (!keep) {
      this.#forget(session);
      return false;
    }
    // Announced at the end of the window, with the code of this drop.
    session.closed ??= { event, options };
    this.#detached++;
    session.timer = setTimeout(
      () => this.#expire(session),
      this.#settings.window,
    );
    return true;
  }

  /** Ends a session for good, announcing it if its connection had dropped. */
  end(session: Session): Promise<void> {
    if (this.#sessions.get(session.id) !== session) return Promise.resolve();
    if (session.timer !== undefined) {
      clearTimeout(session.timer);
      session.timer = undefined;
      this.#detached--;
    }
    this.#forget(session);
    const closed = session.closed;
    if (closed === undefined) return Promise.resolve();
    return this.#settings.publish(
      disconnectedQueue(session.path),
      closed.event,
      closed.options,
    ).catch(() => {});
  }

  /** The service stops: no more detaching; ends every detached session. */
  async endAll(): Promise<void> {
    this.#stopping = true;
    const detached = [...this.#sessions.values()].filter((s) =>
      s.connection === undefined
    );
    await Promise.all(detached.map((s) => this.end(s)));
    this.#expired.clear();
  }

  /** The counts, with the history's. */
  stats(): SessionStats {
    return {
      connected: this.#sessions.size - this.#detached,
      detached: this.#detached,
      expired: this.#expired.size,
      ...this.#settings.history.stats(),
    };
  }

  #expire(session: Session): void {
    session.timer = undefined;
    this.#detached--;
    void this.end(session);
    const now = performance.now();
    // Remember the id for one more window, and at most so many ids.
    for (const [id, at] of this.#expired) {
      if (
        now - at < this.#settings.window &&
        this.#expired.size < MAX_EXPIRED_REMEMBERED
      ) break;
      this.#expired.delete(id);
    }
    this.#expired.set(session.id, now);
  }

  #forget(session: Session): void {
    this.#sessions.delete(session.id);
    session.unfollowAll();
  }
}

function bytesOf(entries: HistoryEntry[], limit: number): number {
  let bytes = 0;
  for (const { frame } of entries) {
    bytes += typeof frame === "string" ? utf8Length(frame) : frame.byteLength;
    if (bytes > limit) break;
  }
  return bytes;
}

/** 128 random bits, base64url (22 characters). */
function secret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-")
    .replaceAll("/", "_").replace(/=+$/, "");
}
