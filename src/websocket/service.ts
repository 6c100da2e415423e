/**
 * The WebSocket service: a `Deno.serve` server whose connections talk to the
 * rest of the program through the bus.
 *
 * @module
 */

import { errorMessage } from "../_util/error_text.ts";
import { hostPort } from "../_util/listen.ts";
import { settlesWithin } from "../_util/time.ts";
import { Service } from "../service.ts";
import type {
  MessageMeta,
  ServiceContext,
  Subscription,
} from "../service_context.ts";
import type { WebSocketMetrics } from "./metrics.ts";
import { textResponse } from "./admission.ts";
import { CloseCode, Connection, type PublishFn } from "./connection.ts";
import {
  type ResolvedWebSocketOptions,
  resolveWebSocketOptions,
  type WebSocketServiceOptions,
} from "./options.ts";
import {
  connectionPattern,
  connectionQueue,
  OUTBOUND_PREFIX,
} from "./router.ts";
import { WebSocketCounters } from "./counters.ts";
import { SERVICE_METRICS } from "../service_metrics.ts";
import { inNewTrace } from "../tracing.ts";
import {
  CONTROL_HEADER,
  controlQueue,
  isRoomControl,
  ROOM_PREFIX,
} from "./rooms.ts";
import { Reaper } from "./reaper.ts";
import { Listener } from "./listener.ts";
import { type AdmittedUpgrade, createHttpHandler } from "./http.ts";
import { Fanout } from "./fanout.ts";
import { MemoryHistory } from "./history.ts";
import {
  type ChosenSession,
  SessionRegistry,
  type SessionStats,
} from "./sessions.ts";
import type { SessionHello } from "./session_wire.ts";
import { SharedHistory } from "./shared_history.ts";
import { sharedStoreOf } from "../transport/remote.ts";

/** The first frame for a client that opted in while recovery is off. */
const RECOVERY_OFF = JSON.stringify(
  {
    mf: "session",
    session: null,
    offset: 0,
    recovered: false,
    reason: "recovery off",
  } satisfies SessionHello,
);

/**
 * Serves WebSocket clients and connects them to the bus, as the Python
 * original's `WebSocketService` does, with per-connection replies,
 * connection events and limits:
 *
 * - a frame received on a connection to `/client` is published on
 *   `ws://inbound/client` (text as `string`, binary as `Uint8Array`), with
 *   `meta.replyTo` addressing that connection alone and `meta.headers`
 *   holding `connectionId`, `path` and `query`;
 * - a message published on `ws://outbound/client` is sent to every
 *   connection on `/client` (a string as text, bytes as binary, anything
 *   else as JSON text); one published on a `replyTo` reaches one connection;
 * - opening and closing connections are announced on `ws://connected/<path>`
 *   and `ws://disconnected/<path>` (see {@linkcode ConnectionEvent});
 * - a consumer in any pool puts a connection into a room with `joinRoom`;
 *   a message published on `ws://room/<name>` is sent to every connection
 *   in that room (see `joinRoom` and `roomReport`);
 * - a client that opts in (`?mf-session`, as `ReconnectingWebSocket`
 *   does) gets a session: when it comes back within `recoveryWindow`, it
 *   gets what it missed, in order and once, keeps its rooms and its
 *   `replyTo`, and is announced on `ws://reconnected/<path>` (docs/websocket.md,
 *   "Reconnects");
 * - `GET /_magic/client.js` is the browser client, `ReconnectingWebSocket`;
 * - plain HTTP requests get a file from `staticDir`, the `fallback`
 *   handler's answer, 426 on a WebSocket path, or 404.
 *
 * The server listens once `initialize()` returns. When the program begins
 * to stop, new connections get 503 and open ones are closed with 1001 (in
 * `run()`, so their `disconnected` events reach consumers that still run);
 * `terminate()` shuts the server down once they closed or `closeTimeout`
 * passed.
 *
 * @example The original's timestamp echo
 * ```ts ignore
 * import { Main, Service, type ServiceContext } from "@magic/foundation";
 * import { WebSocketService } from "@magic/foundation/websocket";
 *
 * class Consumer extends Service {
 *   override async initialize(ctx: ServiceContext): Promise<void> {
 *     await ctx.subscribe<string>("ws://inbound/client", async (data) => {
 *       const { timestamp } = JSON.parse(data);
 *       await ctx.publish("ws://outbound/client", { status: "OK", timestamp });
 *     });
 *   }
 * }
 *
 * if (import.meta.main) {
 *   const main = Main.instance();
 *   main.servicePools = {
 *     main: [new WebSocketService({ port: 8765 }), new Consumer("Consumer")],
 *   };
 *   await main.run();
 * }
 * ```
 *
 * @example Options are checked when the service is created
 * ```ts
 * import { WebSocketService } from "@magic/foundation/websocket";
 * import assert from "node:assert/strict";
 *
 * const ws = new WebSocketService({ hostname: "127.0.0.1", port: 9000 });
 * assert.equal(ws.name, "WebSocketService");
 * assert.equal(ws.port, 9000);
 * assert.throws(() => new WebSocketService({ port: 70000 }), RangeError);
 * ```
 */
export class WebSocketService extends Service {
  /** The interface the server listens on. */
  readonly hostname: string;
  /** The configured port (`0`: a free one; see {@linkcode WebSocketService.addr}). */
  readonly port: number;

  readonly #options: ResolvedWebSocketOptions;
  #server: Listener | undefined;
  #subscriptions: Subscription[] = [];
  /** The open connections, by reply queue, path and room. */
  readonly #connections: Fanout;
  #stopping = false;
  /** `run()` has begun: every pool has initialized (the start barrier). */
  #started = false;
  #log: ServiceContext["log"] | undefined;
  #publish: PublishFn = () => Promise.resolve();
  /** This instance's control queue (rooms), set in `initialize()`. */
  #control = "";
  #pool = "";
  readonly #counters = new WebSocketCounters();
  /** Drops overdue connections while the server listens. */
  #reaper: Reaper | undefined;
  /** The sessions, while the service runs with recovery on. */
  #sessions: SessionRegistry | undefined;
  /** The history shared by the run's processes (`history: "jetstream"`). */
  #shared: SharedHistory | undefined;
  /** The history in this pool (`history: "memory"`). */
  #memory: MemoryHistory | undefined;

  /**
   * Creates the service; nothing listens before `initialize()`.
   *
   * @param options See {@linkcode WebSocketServiceOptions}.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When a number is out of range.
   */
  constructor(options: WebSocketServiceOptions = {}) {
    const resolved = resolveWebSocketOptions(options);
    super(resolved.name, resolved.service);
    this.#options = resolved;
    this.hostname = resolved.hostname;
    this.port = resolved.port;
    this.#connections = new Fanout(
      resolved.maxRoomsPerConnection,
      (message) => this.#log?.warn(message),
    );
  }

  /** The address the server is bound to, while it listens. */
  get addr(): Deno.NetAddr | undefined {
    return this.#server?.addr;
  }

  /** How many connections are open now. */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * This service's counters, as `main.metrics()` reports them in
   * `websockets` (internal: the pool calls it).
   *
   * @returns Connections, frames, bytes and closes so far.
   */
  [SERVICE_METRICS](): { websockets: WebSocketMetrics[] } {
    return {
      websockets: [
        this.#counters.snapshot(this.#pool, this.name, this.#connections.size),
      ],
    };
  }

  /**
   * The sessions of clients that opted in to recovery, and the history
   * kept for them (see docs/websocket.md, "Reconnects"); all zero when recovery is off.
   *
   * @example
   * ```ts
   * import { WebSocketService } from "@magic/foundation/websocket";
   * import assert from "node:assert/strict";
   *
   * const ws = new WebSocketService({ port: 0 });
   * assert.equal(ws.sessions.detached, 0);
   * ```
   */
  get sessions(): SessionStats {
    return this.#sessions?.stats() ??
      {
        connected: 0,
        detached: 0,
        expired: 0,
        streams: 0,
        messages: 0,
        bytes: 0,
      };
  }

  /**
   * Room name → number of this service's connections in it (rooms without
   * one are absent). From another pool, use `roomReport(ctx)`.
   */
  get rooms(): Record<string, number> {
    return this.#connections.rooms.sizes();
  }

  /**
   * Starts listening and subscribes to the outbound and reply queues.
   *
   * @param ctx The service's context.
   * @throws {Deno.errors.AddrInUse} When the port is taken; the message names host and port.
   * @throws {TypeError} With `history: "jetstream"`, when the program does
   * not join NATS.
   */
  override async initialize(ctx: ServiceContext): Promise<void> {
    this.#log = ctx.log;
    this.#publish = (queue, data, options) => ctx.publish(queue, data, options);
    this.#stopping = false;
    this.#started = false;
    // From the moment the program begins to stop, new clients get 503.
    ctx.signal.addEventListener("abort", () => this.#stopping = true, {
      once: true,
    });
    this.#pool = ctx.pool;
    this.#control = controlQueue(this.name);
    await this.#startSessions(ctx);
    try {
      this.#server = this.#listen(ctx.log);
    } catch (error) {
      await this.#stopSessions();
      throw error;
    }
    try {
      const connections = this.#connections;
      this.#subscriptions = await Promise.all([
        ctx.subscribe(
          `${OUTBOUND_PREFIX}/>`,
          (data: unknown, meta: MessageMeta) => connections.toPath(data, meta),
        ),
        ctx.subscribe(
          connectionPattern(this.name),
          (data: unknown, meta: MessageMeta) =>
            connections.toConnection(data, meta),
        ),
        ctx.subscribe(
          `${ROOM_PREFIX}*`,
          (data: unknown, meta: MessageMeta) => connections.toRoom(data, meta),
        ),
        ctx.subscribe(
          this.#control,
          (data: unknown, meta: MessageMeta) => this.#answer(data, meta),
        ),
      ]);
    } catch (error) {
      await this.#server.shutdown();
      this.#server = undefined;
      await this.#stopSessions();
      throw error;
    }
    this.#reaper = new Reaper({
      closeTimeout: this.#options.closeTimeout,
      slowClientTimeout: this.#options.slowClientTimeout,
      connections: () => this.#connections.values(),
      warn: (message) => ctx.log.warn(message),
    });
    const { hostname, port } = this.#server.address;
    ctx.log.info(`Listening on http://${hostPort(hostname, port)}/`);
  }

  /**
   * The server listens from `initialize()` to `terminate()` and takes
   * WebSocket connections once `run()` has begun (every pool has
   * initialized, so every consumer has subscribed; before that, 503 with
   * `Retry-After: 1`); `run()` waits for
   * the stop to begin, then closes every connection with 1001 and waits (up
   * to `closeTimeout`) until their `ws://disconnected/…` events are
   * published. The pool waits for `run()` before any service of it
   * terminates, so those events reach consumers that are still running.
   *
   * @param ctx The service's context.
   */
  override async run(ctx: ServiceContext): Promise<void> {
    // Every pool has initialized: consumers have subscribed.
    this.#started = true;
    if (!ctx.signal.aborted) {
      await new Promise((resolve) =>
        ctx.signal.addEventListener("abort", resolve, { once: true })
      );
    }
    await this.#closeAll(ctx);
  }

  /**
   * Stops accepting, closes every connection still open with 1001, waits
   * for them up to `closeTimeout`, then shuts the server down.
   *
   * @param ctx The service's context.
   */
  override async terminate(ctx: ServiceContext): Promise<void> {
    await this.#closeAll(ctx);
    const subscriptions = this.#subscriptions;
    this.#subscriptions = [];
    await Promise.allSettled(subscriptions.map((s) => s.unsubscribe()));
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) {
      // Ends the connections that did not close in time (close 1001).
      if (
        !await settlesWithin(server.shutdown(), this.#options.closeTimeout)
      ) {
        ctx.log.warn("The HTTP server did not shut down in time");
      }
    }
    const reaper = this.#reaper;
    this.#reaper = undefined;
    await reaper?.stop(this.#options.closeTimeout);
    await this.#stopSessions();
  }

  /** Sessions and their history, when recovery is on. */
  async #startSessions(ctx: ServiceContext): Promise<void> {
    const o = this.#options;
    if (o.recoveryWindow === 0) return;
    let history: MemoryHistory | SharedHistory;
    if (o.history === "jetstream") {
      const store = sharedStoreOf(ctx);
      if (store === undefined) {
        throw new TypeError(
          `Cannot start WebSocketService "${this.name}": history "jetstream" needs the program joined to NATS (main.run({ nats }))`,
        );
      }
      const connections = this.#connections;
      history = this.#shared = await SharedHistory.open(
        store,
        this.name,
        {
          window: o.recoveryWindow,
          maxPerStream: o.historyMaxMessages,
          maxTotalBytes: o.historyMaxTotalBytes,
        },
        (entry) => connections.toSessions(entry),
        (m) => ctx.log.warn(m),
      );
      this.#connections.shared = history;
    } else {
      history = this.#memory = new MemoryHistory({
        maxMessages: o.historyMaxMessages,
        maxBytes: o.historyMaxBytes,
        maxAge: o.recoveryWindow,
        maxTotalBytes: o.historyMaxTotalBytes,
      });
      this.#connections.history = history;
    }
    this.#sessions = new SessionRegistry({
      window: o.recoveryWindow,
      maxMessages: o.recoveryMaxMessages,
      maxBytes: o.recoveryMaxBytes,
      maxPerStream: o.historyMaxMessages,
      maxBytesPerStream: o.historyMaxBytes,
      history,
      warn: (message) => ctx.log.warn(message),
      publish: (queue, data, options) => this.#publish(queue, data, options),
    });
  }

  /** Ends the sessions and stops following the shared history. */
  async #stopSessions(): Promise<void> {
    await this.#sessions?.endAll();
    this.#sessions = undefined;
    this.#memory?.close();
    this.#memory = undefined;
    this.#connections.history = undefined;
    const shared = this.#shared;
    this.#shared = undefined;
    this.#connections.shared = undefined;
    await shared?.stop();
  }

  /**
   * Stops accepting and closes every connection; waits up to
   * `closeTimeout`. Sessions end: their `disconnected` events are published.
   */
  async #closeAll(ctx: ServiceContext): Promise<void> {
    this.#stopping = true;
    const connections = [...this.#connections.values()];
    const sessions = this.#sessions?.endAll();
    if (connections.length === 0) {
      await sessions;
      return;
    }
    for (const connection of connections) {
      connection.close(CloseCode.goingAway, "Server shutting down");
    }
    const closed = await settlesWithin(
      Promise.all([sessions, ...connections.map((c) => c.finished)]),
      this.#options.closeTimeout,
    );
    if (!closed) {
      ctx.log.warn(
        `${this.#connections.size} connection(s) did not close within ${this.#options.closeTimeout} ms`,
      );
    }
  }

  #listen(log: ServiceContext["log"]): Listener {
    const { hostname, port } = this.#options;
    const handle = createHttpHandler({
      options: this.#options,
      state: () => ({
        starting: !this.#started,
        stopping: this.#stopping,
        connections: this.#connections.size,
      }),
      upgrade: (admitted) => this.#upgrade(admitted),
      log,
    });
    return new Listener(
      `WebSocketService "${this.name}"`,
      {
        hostname,
        port,
        onListen(): void {},
        onError: (error) => {
          log.error(`HTTP handler failed: ${errorMessage(error)}`);
          return textResponse(500, "Internal server error");
        },
      },
      handle,
      log,
    );
  }

  /**
   * Upgrades; with the shared history, the session is found (maybe in
   * another server's record) and its replay read first, and what came
   * meanwhile is read once it is attached, before the response: the socket
   * opens after both.
   */
  #upgrade(admitted: AdmittedUpgrade): Response | Promise<Response> {
    const { session: asked, path, headers } = admitted;
    const sessions = this.#sessions;
    if (asked === undefined || sessions === undefined || !this.#shared) {
      const chosen = asked === undefined ? undefined : sessions?.sessionFor(
        asked,
        path,
        headers,
        (id) => connectionQueue(this.name, id),
      );
      return this.#accept(admitted, chosen);
    }
    return (async () => {
      const chosen = await sessions.sharedSessionFor(
        asked,
        path,
        headers,
        (id) => connectionQueue(this.name, id),
      );
      const response = this.#accept(admitted, chosen);
      if (chosen.readUntil !== undefined && response.status === 101) {
        await sessions.missedSince(chosen.session, chosen.readUntil).catch(
          (error) => {
            this.#log?.warn(
              `Cannot read what a session missed: ${errorMessage(error)}`,
            );
            chosen.session.unresume("history trimmed");
          },
        );
      }
      return response;
    })();
  }

  #accept(
    { request, path, query, headers, session: asked }: AdmittedUpgrade,
    chosen: ChosenSession | undefined,
  ): Response {
    let upgraded;
    try {
      upgraded = Deno.upgradeWebSocket(request, {
        idleTimeout: this.#options.idleTimeout / 1000,
      });
    } catch (error) {
      return textResponse(400, `Bad WebSocket request: ${errorMessage(error)}`);
    }
    // From the choice of the session to `add` below, all is synchronous:
    // nothing sent to a resumed session in between can be missed.
    const session = chosen?.session;
    const id = session?.connectionId ?? crypto.randomUUID();
    const options = this.#options;
    const connection = new Connection(upgraded.socket, {
      id,
      path,
      query,
      replyTo: connectionQueue(this.name, id),
      headers: { ...headers, [CONTROL_HEADER]: this.#control },
      maxFrameSize: options.maxFrameSize,
      maxBufferedAmount: options.maxBufferedAmount,
      slowClientPolicy: options.slowClientPolicy,
      maxPendingMessages: options.maxPendingMessages,
      // Each frame is a trace of its own, linked to the upgrade request's.
      publish: inNewTrace(this.#publish),
      warn: (message) => this.#log?.warn(message),
      onFinished: (c) => this.#connections.forget(c),
      counters: this.#counters,
      session: session && { session, registry: this.#sessions! },
      greeting: asked !== undefined && session === undefined
        ? RECOVERY_OFF
        : undefined,
    });
    session?.attach(connection, chosen?.resume);
    this.#connections.add(connection);
    return upgraded.response;
  }

  async #answer(data: unknown, meta: MessageMeta): Promise<void> {
    if (meta.replyTo === undefined || !isRoomControl(data)) {
      this.#log?.warn(`Ignoring a malformed request on "${meta.queue}"`);
      return;
    }
    const reply = this.#connections.rooms.answer(data, {
      service: this.name,
      pool: this.#pool,
      connections: this.#connections.size,
      find: (id) => this.#connections.get(connectionQueue(this.name, id)),
    });
    await this.#publish(meta.replyTo, reply, {});
  }
}
