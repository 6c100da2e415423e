/**
 * One accepted WebSocket: publishes its frames in order, sends what the bus
 * addresses to it, applies the frame-size, pending and slow-client limits,
 * and announces its opening and closing.
 *
 * @module
 */

import { errorMessage } from "../_util/error_text.ts";
import type { PublishOptions } from "../service_context.ts";
import type { SlowClientPolicy } from "./options.ts";
import {
  connectedQueue,
  disconnectedQueue,
  inboundQueue,
  reconnectedQueue,
} from "./router.ts";
import { utf8Length, type WebSocketCounters } from "./counters.ts";
import type { Session, SessionRegistry } from "./sessions.ts";

/**
 * Close codes the service sends (besides those of the client).
 *
 * @example Tell why the server closed
 * ```ts
 * import { CloseCode } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * const why = (code: number) =>
 *   code === CloseCode.messageTooBig ? "frame too big" : "other";
 * assert.equal(why(1009), "frame too big");
 * ```
 */
export const CloseCode = {
  /** The server is stopping. */
  goingAway: 1001,
  /** The client was too slow to read (policy `"close"`). */
  policyViolation: 1008,
  /** A frame was bigger than `maxFrameSize`. */
  messageTooBig: 1009,
  /** Too many received frames wait for the bus. */
  tryAgainLater: 1013,
} as const;

/**
 * The payload of the `ws://connected/<path>` and `ws://disconnected/<path>`
 * events. Their `meta.replyTo` reaches the connection (greet it on
 * `connected`), and `meta.headers` is that of its messages.
 *
 * @example Count the clients of every path
 * ```ts ignore
 * import type { ServiceContext } from "@magic/foundation";
 * import type { ConnectionEvent } from "@magic/foundation/websocket";
 *
 * export async function countClients(ctx: ServiceContext): Promise<void> {
 *   const clients = new Map<string, number>();
 *   const change = (path: string, by: number) =>
 *     clients.set(path, (clients.get(path) ?? 0) + by);
 *   await ctx.subscribe<ConnectionEvent>("ws://connected/>", async (e, meta) => {
 *     change(e.path, 1);
 *     await ctx.publish(meta.replyTo!, { welcome: e.id });
 *   });
 *   await ctx.subscribe<ConnectionEvent>("ws://disconnected/>", (e) => {
 *     change(e.path, -1);
 *     ctx.log.info(`${e.id} left ${e.path}: ${e.code} ${e.reason}`);
 *   });
 * }
 * ```
 */
export interface ConnectionEvent {
  /** The connection id (also in `meta.headers.connectionId`). */
  id: string;
  /** The normalised path the client connected to, e.g. `/client`. */
  path: string;
  /** The query string without its leading `?`. */
  query: string;
  /** The close code; only in `disconnected` events. */
  code?: number;
  /** The close reason; only in `disconnected` events. */
  reason?: string;
  /** Messages skipped under the `"drop"` policy; only in `disconnected` events. */
  dropped?: number;
  /**
   * Messages sent again from the history because the client missed them;
   * only in `reconnected` events.
   */
  missed?: number;
}

/** Publishes on the bus, as `ctx.publish` does. */
export type PublishFn = (
  queue: string,
  data: unknown,
  options: PublishOptions,
) => Promise<void>;

/** What a connection needs from its service. */
export interface ConnectionSettings {
  id: string;
  path: string;
  query: string;
  /** The reply queue of this connection. */
  replyTo: string;
  /** Extra headers from `authorize`. */
  headers: Record<string, string> | undefined;
  maxFrameSize: number;
  maxBufferedAmount: number;
  slowClientPolicy: SlowClientPolicy;
  maxPendingMessages: number;
  publish: PublishFn;
  /** Logs a warning about this connection. */
  warn: (message: string) => void;
  /** Called once, after the close, when the `disconnected` event is published. */
  onFinished: (connection: Connection) => void;
  /** The service's frame, byte and close counters. */
  counters: WebSocketCounters;
  /** The client's session, when it opted in and recovery is on. */
  session?: { session: Session; registry: SessionRegistry };
  /** A first frame for a client that opted in while recovery is off. */
  greeting?: string;
}

/** What happened to a message handed to {@linkcode Connection.send}. */
export type SendOutcome = "sent" | "dropped" | "closed";

interface Pending {
  queue: string;
  data: unknown;
}

const encoder = new TextEncoder();

/** One accepted WebSocket and its ordered publishing. */
export class Connection {
  readonly id: string;
  readonly path: string;
  readonly query: string;
  /** The queue that reaches this connection alone. */
  readonly replyTo: string;
  readonly socket: WebSocket;
  /** The client's session, when it has one. */
  readonly session: Session | undefined;
  /** Messages skipped under the `"drop"` policy. */
  dropped = 0;
  /** Resolves once the socket closed and the `disconnected` event was published. */
  readonly finished: Promise<void>;

  readonly #settings: ConnectionSettings;
  readonly #options: PublishOptions;
  readonly #inbound: string;
  readonly #pending: Pending[] = [];
  #draining = false;
  #opened = false;
  #sent: { code: number; reason: string } | undefined;
  #closed = false;
  #closing = false;
  /** When the close began (ours, or one Deno began), for the deadline. */
  #closingSince: number | undefined;
  /** Since when `bufferedAmount` is above `maxBufferedAmount`. */
  #overSince: number | undefined;
  readonly #finished = Promise.withResolvers<void>();
  /** Resolves when Deno finally reports the socket closed. */
  readonly #released = Promise.withResolvers<void>();

  constructor(socket: WebSocket, settings: ConnectionSettings) {
    this.id = settings.id;
    this.path = settings.path;
    this.query = settings.query;
    this.replyTo = settings.replyTo;
    this.socket = socket;
    this.finished = this.#finished.promise;
    this.#settings = settings;
    this.session = settings.session?.session;
    this.#inbound = inboundQueue(settings.path);
    // One frozen object for every message of the connection.
    this.#options = Object.freeze({
      replyTo: settings.replyTo,
      headers: Object.freeze({
        ...settings.headers,
        connectionId: settings.id,
        path: settings.path,
        query: settings.query,
      }),
    });
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      this.#opened = true;
      const session = this.session;
      if (session === undefined) {
        if (settings.greeting !== undefined) this.sendFirst(settings.greeting);
        this.#enqueue(connectedQueue(this.path), this.#event());
        return;
      }
      // The hello and the missed messages go before any live one.
      const missed = session.open(this);
      if (session.resumed) {
        this.#enqueue(reconnectedQueue(this.path), {
          ...this.#event(),
          missed,
        });
      } else this.#enqueue(connectedQueue(this.path), this.#event());
    };
    socket.onmessage = (event) => this.#receive(event.data);
    // Deno may fire `close` twice (e.g. 1001 after a missed pong, then 1005).
    socket.onclose = (event) => {
      this.#released.resolve();
      this.#onClose(event.code, event.reason);
    };
    socket.onerror = () => {};
  }

  /** Resolves once Deno reports the socket closed (after a drop, too). */
  get released(): Promise<void> {
    return this.#released.promise;
  }

  /** Whether the socket is open and not being closed by the service. */
  get open(): boolean {
    return !this.#closing && this.socket.readyState === WebSocket.OPEN;
  }

  /** Whether the socket is opening or open, and no close has begun. */
  get alive(): boolean {
    return !this.#closing && this.socket.readyState <= WebSocket.OPEN;
  }

  /**
   * Sends one frame (see {@linkcode toFrame}) to the client, after the
   * slow-client check; `bytes` is its size, when the caller measured it.
   */
  send(frame: string | Uint8Array, bytes?: number): SendOutcome {
    if (!this.open) return "closed";
    const { maxBufferedAmount, slowClientPolicy } = this.#settings;
    const buffered = this.socket.bufferedAmount;
    if (buffered > maxBufferedAmount) {
      if (slowClientPolicy === "drop") {
        if (this.dropped++ === 0) {
          this.#settings.warn(
            `Dropping messages for slow client ${this.id} on "${this.path}": ${buffered} bytes buffered`,
          );
        }
        return "dropped";
      }
      this.#settings.warn(
        `Closing slow client ${this.id} on "${this.path}": ${buffered} bytes buffered`,
      );
      this.close(CloseCode.policyViolation, "Slow client");
      return "closed";
    }
    this.socket.send(frame);
    this.#settings.counters.sent(frame, bytes);
    return "sent";
  }

  /**
   * Sends a frame of the session protocol (the hello, the replay) whatever
   * the send buffer holds: a replay is bounded by the recovery limits.
   */
  sendFirst(frame: string | Uint8Array): void {
    if (!this.open) return;
    this.socket.send(frame);
    this.#settings.counters.sent(frame);
  }

  /** Starts the closing handshake (idempotent). */
  close(code: number, reason: string): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    this.#closingSince = performance.now();
    this.#sent = { code, reason };
    const state = this.socket.readyState;
    if (state === WebSocket.CONNECTING || state === WebSocket.OPEN) {
      try {
        this.socket.close(code, reason);
      } catch {
        // Already closing: the close event will come.
      }
    }
  }

  /**
   * Why this connection is overdue, at time `now` (`performance.now()`):
   * `"closing"` when its close began `closeTimeout` ms ago or more and Deno
   * has not reported it closed (a peer that never reads never receives the
   * close frame), `"slow"` when its unsent bytes stayed above
   * `maxBufferedAmount` for `slowClientTimeout` ms; else `undefined`.
   */
  overdue(
    now: number,
    closeTimeout: number,
    slowClientTimeout: number,
  ): "closing" | "slow" | undefined {
    if (this.#closed) return undefined;
    const state = this.socket.readyState;
    if (this.#closing || state === WebSocket.CLOSING) {
      // Deno begins a close of its own after a missed pong.
      this.#closingSince ??= now;
      return now - this.#closingSince >= closeTimeout ? "closing" : undefined;
    }
    if (state !== WebSocket.OPEN) return undefined;
    if (this.socket.bufferedAmount <= this.#settings.maxBufferedAmount) {
      this.#overSince = undefined;
      return undefined;
    }
    this.#overSince ??= now;
    return now - this.#overSince >= slowClientTimeout ? "slow" : undefined;
  }

  /**
   * Gives the connection up without waiting for its socket: starts a close
   * with `code` (if none began), then counts it closed and publishes its
   * `disconnected` event with the code the service sent (1006 when it sent
   * none). Deno offers no way to abort the TCP connection of an upgraded
   * socket, so the socket itself, with the bytes it still holds (at most
   * about `maxBufferedAmount` plus one frame, as nothing more is sent to
   * it), stays until its peer goes away; see {@linkcode released}.
   */
  drop(code: number, reason: string): void {
    if (this.#closed) return;
    this.close(code, reason);
    this.#onClose(0, "");
  }

  #receive(raw: unknown): void {
    if (this.#closing) return;
    const data = typeof raw === "string"
      ? raw
      : new Uint8Array(raw as ArrayBuffer);
    const { maxFrameSize, maxPendingMessages, counters } = this.#settings;
    const bytes = typeof data === "string" ? utf8Length(data) : data.byteLength;
    counters.received(bytes);
    if (bytes > maxFrameSize) {
      this.close(
        CloseCode.messageTooBig,
        `Frame larger than ${maxFrameSize} bytes`,
      );
      return;
    }
    if (this.#pending.length >= maxPendingMessages) {
      this.#settings.warn(
        `Closing client ${this.id} on "${this.path}": ${maxPendingMessages} messages wait for the bus`,
      );
      this.close(CloseCode.tryAgainLater, "Try again later");
      return;
    }
    this.#enqueue(this.#inbound, data);
  }

  #onClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    const link = this.#settings.session;
    if (!this.#opened) {
      this.#settings.counters.closed(code);
      const event = { ...this.#event(), code, reason };
      link?.registry.closed(link.session, this, event, this.#options, false);
      // Never announced, so no `disconnected` either.
      this.#finish();
      return;
    }
    // Deno reports 0 when the socket ended without a close frame, and it
    // ends a server socket that receives a data frame after close() was
    // called: report the code the service sent, then. A client's close
    // frame without a status code is 1005 (no status), not 1006.
    if (code === 0 || code === 1005 || code === 1006) {
      ({ code, reason } = this.#sent ??
        { code: code === 1005 ? 1005 : 1006, reason });
    }
    this.#settings.counters.closed(code);
    const event: ConnectionEvent = {
      ...this.#event(),
      code,
      reason,
      dropped: this.dropped,
    };
    // A session kept for its client is announced when its window ends.
    if (link?.registry.closed(link.session, this, event, this.#options, true)) {
      if (!this.#draining) this.#finish();
      return;
    }
    this.#enqueue(disconnectedQueue(this.path), event);
  }

  #finish(): void {
    this.#settings.onFinished(this);
    this.#finished.resolve();
  }

  #event(): ConnectionEvent {
    return { id: this.id, path: this.path, query: this.query };
  }

  #enqueue(queue: string, data: unknown): void {
    this.#pending.push({ queue, data });
    if (!this.#draining) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    let item: Pending | undefined;
    while ((item = this.#pending.shift()) !== undefined) {
      try {
        await this.#settings.publish(item.queue, item.data, this.#options);
      } catch (error) {
        this.#settings.warn(
          `Cannot publish on "${item.queue}" for ${this.id}: ${
            errorMessage(error)
          }`,
        );
      }
    }
    this.#draining = false;
    // The `disconnected` event is the last item ever queued.
    if (this.#closed) this.#finish();
  }
}

/** The frame for a bus message, or `undefined` when it cannot be sent. */
export function toFrame(data: unknown): string | Uint8Array | undefined {
  if (typeof data === "string") return data;
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  try {
    return JSON.stringify(data);
  } catch {
    return undefined;
  }
}

/**
 * The size of a frame in bytes. For long strings the UTF-8 length is
 * computed only when it could pass `limit`.
 */
export function byteLength(data: string | Uint8Array, limit: number): number {
  if (typeof data !== "string") return data.byteLength;
  if (data.length > limit) return data.length;
  if (data.length * 3 <= limit) return data.length;
  return encoder.encode(data).byteLength;
}
