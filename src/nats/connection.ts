/**
 * One NATS connection of a pool, kept up: the first connection is retried
 * with backoff until it succeeds (or the pool closes), later outages are the
 * client's reconnects (with the same backoff). Outages and recoveries go to
 * the owner's events (the primary logs them once per process); the rest
 * (server errors, slow consumers) is logged here.
 *
 * @module
 */
import type { NatsConnection, Status } from "./client.ts";
import { loadNatsClient } from "./client.ts";
import { errorMessage } from "../_util/error_text.ts";
import { NatsAuthError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { authConnectOptions, refusalReason } from "./auth.ts";
import type { NatsSettings } from "./options.ts";

/** What a connection tells its owner. */
export interface ConnectionEvents {
  /** The connection is up (the first time, and after each reconnect). */
  up(server: string): void;
  /**
   * The connection is lost (or the first one cannot be made); what was
   * published since the last flush may be lost. `reason` says why.
   */
  down(reason: string): void;
  /**
   * The server refused the connection in a way no retry cures (credentials,
   * TLS): the link has closed for good.
   */
  refused(error: NatsAuthError): void;
}

/**
 * A NATS connection that comes back: `whenUp()` waits for it, `up` says
 * whether it is usable now.
 */
export class NatsLink {
  /** The client connection, once the first connection succeeded. */
  connection: NatsConnection | undefined;
  /** Why the server refused the connection for good, once it has. */
  refusal: NatsAuthError | undefined;
  #settings: NatsSettings;
  #log: Logger;
  #label: string;
  #echo: boolean;
  #events: ConnectionEvents;
  #up = false;
  #closed = false;
  #attempt = 0;
  #waiters: Array<() => void> = [];
  #retry: ReturnType<typeof setTimeout> | undefined;
  #retryWake: (() => void) | undefined;
  #watching: Promise<void> | undefined;

  /**
   * @param settings The run's NATS settings.
   * @param log Where the outage and recovery lines go.
   * @param label What this connection is for, in the log and its name.
   * @param ownPublishes `"echo"`: the server sends this connection's own
   * publishes back to its subscriptions; `"no-echo"`: it does not.
   * @param events Told when the connection comes up and goes down.
   */
  constructor(
    settings: NatsSettings,
    log: Logger,
    label: string,
    ownPublishes: "echo" | "no-echo",
    events: ConnectionEvents,
  ) {
    this.#settings = settings;
    this.#log = log;
    this.#label = label;
    this.#echo = ownPublishes === "echo";
    this.#events = events;
  }

  /** Whether the connection is usable now. */
  get up(): boolean {
    return this.#up;
  }

  /** Starts connecting (retried until it succeeds or `close()` is called). */
  start(): void {
    void this.#connectFirst();
  }

  /** Resolves once the connection is up (at once if it is); never rejects. */
  whenUp(): Promise<void> {
    if (this.#up || this.#closed) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push(resolve);
    return promise;
  }

  /** Whether the connection has closed for good. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Resolves once the server has processed everything published and
   * subscribed so far on this connection, retrying after reconnects;
   * resolves `false` when the link closes first.
   */
  async flush(): Promise<boolean> {
    while (!this.#closed) {
      await this.whenUp();
      const connection = this.connection;
      if (this.#closed || connection === undefined) break;
      try {
        await connection.flush();
        return true;
      } catch {
        // Lost meanwhile: wait for the reconnect and flush again.
        if (this.#up) this.#markDown("flush failed");
      }
    }
    return false;
  }

  /**
   * Drains (`"drain"`: what it holds is sent first) or closes the
   * connection, within `timeout` ms; stops the first connection's retries.
   */
  async close(how: "drain" | "close", timeout: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#retryWake?.();
    this.#release();
    const connection = this.connection;
    if (connection === undefined) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeout);
    });
    try {
      const ending = how === "drain" && this.#up
        ? connection.drain()
        : connection.close();
      await Promise.race([ending.catch(() => {}), expired]);
      if (!connection.isClosed()) await connection.close().catch(() => {});
      await this.#watching;
    } finally {
      clearTimeout(timer);
      this.#up = false;
    }
  }

  async #connectFirst(): Promise<void> {
    const settings = this.#settings;
    let logged = false;
    while (!this.#closed) {
      try {
        const client = await loadNatsClient();
        const connection = await client.connect({
          ...authConnectOptions(client, settings.auth, settings.tls),
          servers: settings.servers,
          name: `${settings.name} (${this.#label})`,
          noEcho: !this.#echo,
          maxReconnectAttempts: settings.reconnectAttempts === Infinity
            ? -1
            : settings.reconnectAttempts,
          reconnectDelayHandler: () => this.#backoff(),
          pingInterval: 10_000,
        });
        if (this.#closed) {
          await connection.close();
          return;
        }
        this.connection = connection;
        this.#watching = this.#watch(connection);
        this.#attempt = 0;
        this.#up = true;
        this.#log.debug(
          `NATS (${this.#label}): connected to ${connection.getServer()}`,
        );
        this.#release();
        this.#events.up(connection.getServer());
        return;
      } catch (error) {
        if (this.#refuse(error)) return;
        if (!logged) {
          logged = true;
          this.#events.down(
            `cannot connect to ${settings.servers.join(", ")} (${
              errorMessage(error)
            })`,
          );
        }
        await this.#pause(this.#backoff());
      }
    }
  }

  /** Follows the connection's status until it closes. */
  async #watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) this.#onStatus(status);
    // The client gives up at once on two refusals in a row after a reconnect.
    if (this.#refuse(await connection.closed())) return;
    if (!this.#closed) {
      this.#closed = true;
      this.#up = false;
      this.#log.error(
        `NATS (${this.#label}): gave up reconnecting after ${this.#settings.reconnectAttempts} attempts; messages for other processes are held and publishes to them will time out`,
      );
      this.#release();
      this.#events.down("gave up reconnecting");
    }
  }

  #onStatus(status: Status): void {
    switch (status.type) {
      case "disconnect":
        if (this.#up) this.#markDown(`lost the connection to ${status.server}`);
        break;
      case "reconnect":
        this.#up = true;
        this.#attempt = 0;
        this.#log.debug(
          `NATS (${this.#label}): connected again to ${status.server}`,
        );
        this.#release();
        this.#events.up(status.server);
        break;
      case "error":
        this.#log.error(
          `NATS (${this.#label}): the server reports ${
            errorMessage(status.error)
          }`,
        );
        break;
      case "slowConsumer":
        this.#log.warn(
          `NATS (${this.#label}): slow consumer on "${status.sub.getSubject()}" (${status.pending} pending)`,
        );
        break;
      case "staleConnection":
        this.#log.warn(
          `NATS (${this.#label}): the server stopped answering pings; reconnecting`,
        );
        break;
      default:
        break;
    }
  }

  /**
   * When `error` is a refusal no retry cures, closes the link for good and
   * tells the owner; returns whether it was one.
   */
  #refuse(error: unknown): boolean {
    const settings = this.#settings;
    const reason = refusalReason(error, settings.auth);
    if (reason === undefined || this.#closed) return false;
    this.#closed = true;
    this.#up = false;
    clearTimeout(this.#retry);
    this.refusal = new NatsAuthError(settings.servers.join(", "), reason, {
      cause: error,
    });
    this.#release();
    this.#events.refused(this.refusal);
    return true;
  }

  #markDown(reason: string): void {
    this.#up = false;
    this.#log.debug(`NATS (${this.#label}): ${reason}; reconnecting`);
    this.#events.down(reason);
  }

  /** The next reconnect wait: doubled per failed attempt, capped, jittered. */
  #backoff(): number {
    const { reconnectWait, reconnectWaitMax } = this.#settings;
    const base = Math.min(reconnectWaitMax, reconnectWait * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.round(base * (0.5 + Math.random() / 2));
  }

  #pause(ms: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#retryWake = resolve;
    this.#retry = setTimeout(resolve, ms);
    return promise;
  }

  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}
