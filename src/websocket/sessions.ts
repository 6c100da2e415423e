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

import { errorMessage } from "../_util/error_text.ts";
import type { PublishOptions } from "../service_context.ts";
import type { Connection, ConnectionEvent } from "./connection.ts";
import type { HistoryCursor, HistoryStore, StreamCursor } from "./history.ts";
import type { HistoryEntry } from "./history_ring.ts";
import {
  type SessionRecord,
  type SharedEntry,
  SharedHistory,
} from "./shared_history.ts";
import { frameBytes, utf8Length } from "./counters.ts";
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
  /** In this process, or shared by the run's processes. */
  history: HistoryStore | SharedHistory;
  /** Most messages kept per stream (a shared replay that reaches it is trimmed). */
  maxPerStream: number;
  /**
   * Most payload bytes kept per stream: a shared replay with more on one
   * stream is trimmed, as the memory history would have dropped its oldest
   * (JetStream bounds a subject by count only).
   */
  maxBytesPerStream: number;
  /** Logs a warning. */
  warn(message: string): void;
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
  /** Messages in the history (0 with `history: "jetstream"`). */
  messages: number;
  /** Payload bytes in the history (0 with `history: "jetstream"`). */
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
  readonly #history: HistoryCursor;
  readonly #changed: (session: Session) => void;
  #connection: Connection | undefined;
  /** The offset of the last frame sent to (or presented by) the client. */
  #offset: number;
  /**
   * Frames to send once the socket opens: the replay (bare frames, from the
   * history) and live ones (`framed`, with their offset already).
   */
  #waiting: Array<HistoryEntry & { framed: boolean }> | undefined = [];
  #resumed = false;
  #reason: NotRecoveredReason | undefined;
  /** The `disconnected` event of the last drop, and its meta. */
  closed: { event: ConnectionEvent; options: PublishOptions } | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The last write of its shared record (they go in order). */
  writing: Promise<void> = Promise.resolve();

  /**
   * @param init A new session's parts, or (`id` and `follows`) those of a
   * session restored from its shared record.
   * @param changed Told when the session's rooms change.
   */
  constructor(
    history: HistoryCursor,
    init: {
      connectionId: string;
      path: string;
      replyTo: string;
      authorized: string;
      reason: NotRecoveredReason | undefined;
      id?: string;
      follows?: Array<[string, number]>;
    },
    changed: (session: Session) => void = () => {},
  ) {
    this.#history = history;
    this.#changed = changed;
    this.id = init.id ?? secret();
    this.connectionId = init.connectionId;
    this.path = init.path;
    this.replyTo = init.replyTo;
    this.authorized = init.authorized;
    this.#reason = init.reason;
    this.#offset = history.last;
    if (init.follows === undefined) {
      this.follow(outboundQueue(init.path));
      this.follow(init.replyTo);
    }
    for (const [stream, since] of init.follows ?? []) {
      this.#follows.set(stream, since);
      history.retain(stream);
    }
  }

  /** Stream → the offset from which the session follows it. */
  follows(): Array<[string, number]> {
    return [...this.#follows];
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
    this.#changed(this);
  }

  /** Stops following `stream` (a room left). */
  unfollow(stream: string): void {
    if (!this.#follows.delete(stream)) return;
    this.#history.release(stream);
    this.#changed(this);
  }

  /** Stops following every stream (the session ended). */
  unfollowAll(): void {
    for (const stream of this.#follows.keys()) this.#history.release(stream);
    this.#follows.clear();
  }

  /** Where the history of each stream resumes for a client at `offset`. */
  cursors(offset: number): StreamCursor[] {
    return [...this.#follows].map(([stream, since]) => ({
      stream,
      after: Math.max(since, offset),
    }));
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
    this.#waiting = [];
    this.addReplay(resume?.replay ?? []);
  }

  /** More missed messages, read after the attach (before the socket opens). */
  addReplay(replay: readonly HistoryEntry[]): void {
    for (const { offset, frame } of replay) {
      this.#waiting?.push({ offset, frame, framed: false });
    }
  }

  /**
   * The replay could not be completed (before the socket opened): the
   * client is told `reason` instead, and gets live frames only.
   */
  unresume(reason: NotRecoveredReason): void {
    this.#resumed = false;
    this.#reason = reason;
    this.#offset = this.#history.last;
    this.#waiting = this.#waiting?.filter((entry) => entry.framed);
  }

  /** Forgets the connection (it closed). */
  detach(): void {
    this.#connection = undefined;
    this.#waiting = [];
  }

  /**
   * A frame at `offset` for this session's client (already enveloped), of
   * `bytes` bytes when the caller knows.
   */
  deliver(offset: number, framed: string | Uint8Array, bytes?: number): void {
    if (this.#connection === undefined) return;
    if (this.#waiting !== undefined) {
      this.#waiting.push({ offset, frame: framed, framed: true });
    } else if (offset > this.#offset) {
      this.#offset = offset;
      this.#connection.send(framed, bytes);
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
    // Replay and live frames may overlap, and (read in parts) interleave.
    const waiting = (this.#waiting ?? []).sort((a, b) => a.offset - b.offset);
    this.#waiting = undefined;
    this.closed = undefined;
    let replayed = 0;
    for (const { offset, frame, framed } of waiting) {
      if (offset <= this.#offset) continue;
      this.#offset = offset;
      if (!framed) replayed++;
      connection.sendFirst(framed ? frame : offsetFrame(offset, frame));
    }
    return replayed;
  }
}

/** What a resume hands to the caller: the session, and what it missed. */
export interface ChosenSession {
  session: Session;
  resume?: { offset: number; replay: HistoryEntry[] };
  /**
   * Shared history only: the offset up to which `replay` was read; the
   * caller reads the rest (`missedSince`) once the session is attached.
   */
  readUntil?: number;
}

/** The sessions of one service. */
export class SessionRegistry {
  readonly #settings: SessionSettings;
  readonly #shared: SharedHistory | undefined;
  readonly #sessions = new Map<string, Session>();
  /** Expired session id → when it expired. */
  readonly #expired = new Map<string, number>();
  /** Refreshes the shared records of connected sessions. */
  readonly #refresh: ReturnType<typeof setInterval> | undefined;
  #detached = 0;
  #stopping = false;

  constructor(settings: SessionSettings) {
    this.#settings = settings;
    const { history } = settings;
    this.#shared = history instanceof SharedHistory ? history : undefined;
    if (this.#shared !== undefined) {
      // A server that dies stops refreshing: its sessions' window counts
      // from the last refresh.
      this.#refresh = setInterval(() => {
        for (const session of this.#sessions.values()) {
          if (session.connection !== undefined) this.#write(session);
        }
      }, settings.window / 4);
    }
  }

  /**
   * The session for a client that opted in: the one it presented, resumed
   * with what it missed, or else a new one (whose hello gives the reason).
   * The caller attaches it (`attach(connection, resume)`) synchronously, so
   * nothing sent in between is missed. In memory only (see
   * {@linkcode SessionRegistry.sharedSessionFor}).
   *
   * @param replyTo The reply queue of a connection id.
   */
  sessionFor(
    request: SessionRequest,
    path: string,
    authorized: Record<string, string> | undefined,
    replyTo: (connectionId: string) => string,
  ): ChosenSession {
    const resumed = this.#resume(request, path, authorized);
    if ("session" in resumed) {
      const { session, replay } = resumed;
      return { session, resume: { offset: request.offset, replay } };
    }
    return {
      session: this.#create(request, resumed.reason, path, authorized, replyTo),
    };
  }

  /**
   * {@linkcode SessionRegistry.sessionFor} with the shared history: the
   * session may come from another server (its record), and the replay is
   * read from the shared log up to `readUntil`; once the caller attached
   * the session, it adds what came since with `missedSince`.
   */
  async sharedSessionFor(
    request: SessionRequest,
    path: string,
    authorized: Record<string, string> | undefined,
    replyTo: (connectionId: string) => string,
  ): Promise<ChosenSession> {
    const resumed = await this.#resumeShared(request, path, authorized);
    if ("session" in resumed) {
      const { session, replay, until } = resumed;
      this.#write(session);
      return {
        session,
        resume: { offset: request.offset, replay },
        readUntil: until,
      };
    }
    const session = this.#create(
      request,
      resumed.reason,
      path,
      authorized,
      replyTo,
    );
    this.#write(session);
    return { session };
  }

  /**
   * What `session` (attached, not yet open) missed after `until`, read from
   * the shared log; added to its replay.
   */
  async missedSince(session: Session, until: number): Promise<void> {
    const shared = this.#shared!;
    const { last } = await shared.bounds();
    const follows = new Map(session.follows());
    session.addReplay(
      (await shared.read(until, last)).filter(({ stream, offset }) =>
        offset > (follows.get(stream) ?? Infinity)
      ),
    );
  }

  #create(
    request: SessionRequest,
    reason: NotRecoveredReason,
    path: string,
    authorized: Record<string, string> | undefined,
    replyTo: (connectionId: string) => string,
  ): Session {
    const id = crypto.randomUUID();
    const session = new Session(this.#settings.history, {
      connectionId: id,
      path,
      replyTo: replyTo(id),
      authorized: JSON.stringify(authorized ?? {}),
      reason: request.session === undefined ? undefined : reason,
    }, (changed) => this.#write(changed));
    this.#sessions.set(session.id, session);
    return session;
  }

  #resume(
    request: SessionRequest,
    path: string,
    authorized: Record<string, string> | undefined,
  ):
    | { session: Session; replay: HistoryEntry[] }
    | { reason: NotRecoveredReason } {
    const found = this.#presented(request, path, authorized);
    if ("reason" in found) return found;
    const { session } = found;
    const history = this.#settings.history as HistoryStore;
    // An offset never sent: not this session's client.
    if (request.offset > history.last) return { reason: "unknown session" };
    session.detach();
    const replay = history.read(session.cursors(request.offset));
    if (replay === "trimmed" || this.#tooMuch(replay)) {
      void this.end(session);
      return { reason: "history trimmed" };
    }
    this.#take(session);
    return { session, replay };
  }

  async #resumeShared(
    request: SessionRequest,
    path: string,
    authorized: Record<string, string> | undefined,
  ): Promise<
    | { session: Session; replay: HistoryEntry[]; until: number }
    | { reason: NotRecoveredReason }
  > {
    const shared = this.#shared!;
    const id = request.session;
    if (id === undefined) return { reason: "unknown session" };
    const record = await shared.record(id);
    let local = this.#sessions.get(id);
    if (
      local !== undefined && record !== undefined &&
      record.owner !== shared.owner
    ) {
      // Taken over by another server since: its record is newer.
      this.#take(local);
      this.#forget(local);
      local = undefined;
    }
    let adopted = false;
    if (local === undefined && record !== undefined) {
      if (
        record.path !== path ||
        record.authorized !== JSON.stringify(authorized ?? {})
      ) return { reason: "unknown session" };
      if (Date.now() - record.seen >= this.#settings.window) {
        return { reason: "window passed" };
      }
      local = this.#adopt(id, record);
      adopted = true;
    }
    const found = this.#presented(request, path, authorized);
    if ("reason" in found) return found;
    const { session } = found;
    const { first, last } = await shared.bounds();
    if (request.offset > last) {
      // Not this session's client; the record stays with its holder.
      if (adopted) this.#forget(session);
      return { reason: "unknown session" };
    }
    session.detach();
    const cursors = session.cursors(request.offset);
    const after = Math.min(...cursors.map((c) => c.after));
    const follows = new Map(cursors.map((c) => [c.stream, c.after]));
    const replay = first > after + 1 && last > after
      ? "trimmed"
      : (await shared.read(after, last)).filter(({ stream, offset }) =>
        offset > (follows.get(stream) ?? Infinity)
      );
    if (replay === "trimmed" || this.#tooMuch(replay, largestStream(replay))) {
      void this.end(session);
      return { reason: "history trimmed" };
    }
    this.#take(session);
    return { session, replay, until: last };
  }

  /** A session restored from another server's record. */
  #adopt(id: string, record: SessionRecord): Session {
    const session = new Session(this.#settings.history, {
      id,
      connectionId: record.connectionId,
      path: record.path,
      replyTo: record.replyTo,
      authorized: record.authorized,
      reason: undefined,
      follows: record.follows,
    }, (changed) => this.#write(changed));
    this.#sessions.set(id, session);
    return session;
  }

  /** The session presented, if it may resume here. */
  #presented(
    request: SessionRequest,
    path: string,
    authorized: Record<string, string> | undefined,
  ): { session: Session } | { reason: NotRecoveredReason } {
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
    return { session };
  }

  /** Whether a replay passes the recovery bounds (and, shared, the history's per stream). */
  #tooMuch(
    replay: HistoryEntry[],
    largest = { messages: 0, bytes: 0 },
  ): boolean {
    const { maxMessages, maxBytes, maxPerStream, maxBytesPerStream } =
      this.#settings;
    // A stream that holds as many as it may keep may have lost older ones.
    return replay.length > maxMessages || largest.messages >= maxPerStream ||
      largest.bytes > maxBytesPerStream || bytesOf(replay, maxBytes) > maxBytes;
  }

  /** Stops the window of a detached session (it resumes). */
  #take(session: Session): void {
    if (session.timer === undefined) return;
    clearTimeout(session.timer);
    session.timer = undefined;
    this.#detached--;
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
    const keep = event.code !== 1000 && (opened || session.resumed) &&
      // A stopping server leaves shared sessions to the other servers.
      (!this.#stopping || this.#shared !== undefined);
    if (!keep) {
      this.#forget(session);
      if (this.#shared !== undefined) this.#unwrite(session);
      return false;
    }
    // Announced at the end of the window, with the code of this drop.
    session.closed ??= { event, options };
    this.#write(session);
    if (this.#stopping) return true;
    this.#detached++;
    session.timer = setTimeout(
      () => this.#expire(session),
      this.#settings.window,
    );
    return true;
  }

  /**
   * Ends a session for good, announcing it if its connection had dropped.
   * Its shared record goes, unless its window `expired` (then the record
   * stays until its TTL, so other servers answer "window passed").
   */
  async end(session: Session, expired = false): Promise<void> {
    if (this.#sessions.get(session.id) !== session) return;
    this.#take(session);
    this.#forget(session);
    const closed = session.closed;
    if (this.#shared !== undefined) {
      // Another server resumed it meanwhile: nothing ended.
      const record = await this.#shared.record(session.id).catch(() => {});
      if (record !== undefined && record.owner !== this.#shared.owner) return;
      if (!expired) this.#unwrite(session);
    }
    if (closed === undefined) return;
    await this.#settings.publish(
      disconnectedQueue(session.path),
      closed.event,
      closed.options,
    ).catch(() => {});
  }

  /**
   * The service stops: no more detaching; ends every detached session (a
   * shared one stays in its record, for another server).
   */
  async endAll(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#refresh);
    const all = [...this.#sessions.values()];
    const detached = all.filter((s) => s.connection === undefined);
    if (this.#shared === undefined) {
      await Promise.all(detached.map((s) => this.end(s)));
    } else {
      for (const session of detached) {
        this.#take(session);
        this.#forget(session);
      }
    }
    await Promise.all(all.map((s) => s.writing));
    this.#expired.clear();
  }

  /** The counts, with the history's (shared: the streams followed here). */
  stats(): SessionStats {
    const { history } = this.#settings;
    return {
      connected: this.#sessions.size - this.#detached,
      detached: this.#detached,
      expired: this.#expired.size,
      ...(history instanceof SharedHistory
        ? { streams: history.streams, messages: 0, bytes: 0 }
        : history.stats()),
    };
  }

  #expire(session: Session): void {
    session.timer = undefined;
    this.#detached--;
    void this.end(session, true);
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

  /** Writes the shared record of `session` (after its earlier writes). */
  #write(session: Session): void {
    const shared = this.#shared;
    if (shared === undefined || this.#sessions.get(session.id) !== session) {
      return;
    }
    const record: SessionRecord = {
      connectionId: session.connectionId,
      path: session.path,
      replyTo: session.replyTo,
      authorized: session.authorized,
      follows: session.follows(),
      seen: Date.now(),
      owner: shared.owner,
    };
    session.writing = session.writing.then(() =>
      shared.write(session.id, record)
    ).catch((error) =>
      this.#settings.warn(
        `Cannot write the record of a session: ${errorMessage(error)}`,
      )
    );
  }

  /** Deletes the shared record of `session`. */
  #unwrite(session: Session): void {
    const shared = this.#shared!;
    session.writing = session.writing.then(() => shared.forget(session.id))
      .catch((error) =>
        this.#settings.warn(
          `Cannot delete the record of a session: ${errorMessage(error)}`,
        )
      );
  }
}

/** The most entries, and the most payload bytes, of one stream in `replay`. */
function largestStream(
  replay: SharedEntry[],
): { messages: number; bytes: number } {
  const sums = new Map<string, { messages: number; bytes: number }>();
  const largest = { messages: 0, bytes: 0 };
  for (const { stream, frame } of replay) {
    let sum = sums.get(stream);
    if (sum === undefined) sums.set(stream, sum = { messages: 0, bytes: 0 });
    sum.messages++;
    sum.bytes += frameBytes(frame);
    largest.messages = Math.max(largest.messages, sum.messages);
    largest.bytes = Math.max(largest.bytes, sum.bytes);
  }
  return largest;
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
