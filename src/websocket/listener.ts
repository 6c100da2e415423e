/**
 * The WebSocketService's HTTP server, kept listening: when `Deno.serve`
 * stops accepting (its accept loop fails, e.g. `Too many open files` once
 * the process is out of file descriptors, and the port is closed for good),
 * it says so once and listens again on the same port with backoff, until
 * a request is served again.
 *
 * @module
 */

import { errorMessage } from "../_util/error_text.ts";
import { hostPort, listen } from "../_util/listen.ts";
import { abortableDelay } from "../_util/time.ts";

/** The first wait before listening again, in ms; it doubles up to the next. */
const FIRST_RETRY = 100;
/** The longest wait between two attempts to listen again, in ms. */
const LAST_RETRY = 5000;

/** Where the listener logs. */
export interface ListenerLog {
  warn(message: string): void;
  error(message: string): void;
}

/** A `Deno.serve` server that listens again after its accept loop failed. */
export class Listener {
  readonly #who: string;
  readonly #options: Deno.ServeTcpOptions;
  readonly #handler: Deno.ServeHandler<Deno.NetAddr>;
  readonly #log: ListenerLog;
  readonly #stopped = new AbortController();
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;
  /** Set from the failure until a request is served again. */
  #outage: { where: string; logged: boolean } | undefined;
  readonly #serve: Deno.ServeHandler<Deno.NetAddr> = (request, info) => {
    // A request served: whatever stopped the accept loop has passed.
    this.#outage = undefined;
    return this.#handler(request, info);
  };

  /**
   * Listens at once.
   *
   * @param who Who listens, for messages (`WebSocketService "ws"`).
   * @throws {Deno.errors.AddrInUse} When the port is taken.
   */
  constructor(
    who: string,
    options: Deno.ServeTcpOptions,
    handler: Deno.ServeHandler<Deno.NetAddr>,
    log: ListenerLog,
  ) {
    this.#who = who;
    this.#handler = handler;
    this.#log = log;
    const server = listen(who, options, this.#serve);
    this.address = server.addr;
    // Listening again takes the port actually bound (`port: 0` too).
    this.#options = { ...options, port: server.addr.port };
    this.#watch(server);
  }

  /** The address bound first, and bound again after a failure. */
  readonly address: Deno.NetAddr;

  /** The bound address, while listening. */
  get addr(): Deno.NetAddr | undefined {
    return this.#server?.addr;
  }

  /** Stops listening for good; resolves once the server shut down. */
  async shutdown(): Promise<void> {
    this.#stopped.abort();
    const server = this.#server;
    this.#server = undefined;
    await server?.shutdown();
  }

  #watch(server: Deno.HttpServer<Deno.NetAddr>): void {
    this.#server = server;
    server.finished.catch((error) => this.#listenAgain(server, error));
  }

  async #listenAgain(
    failed: Deno.HttpServer<Deno.NetAddr>,
    error: unknown,
  ): Promise<void> {
    if (this.#server !== failed) return;
    this.#server = undefined;
    if (this.#outage === undefined) {
      const where = hostPort(this.address.hostname, this.address.port);
      this.#outage = { where, logged: false };
      this.#log.error(
        `Stopped accepting connections on ${where}: ${
          errorMessage(error)
        }; listening again with backoff`,
      );
    }
    const outage = this.#outage;
    const signal = this.#stopped.signal;
    for (let attempt = 1, wait = FIRST_RETRY;; attempt++) {
      await abortableDelay(wait, signal);
      if (signal.aborted) return;
      wait = Math.min(wait * 2, LAST_RETRY);
      let server;
      try {
        server = listen(this.#who, this.#options, this.#serve);
      } catch {
        continue; // Still out of descriptors, most likely: wait longer.
      }
      this.#watch(server);
      // Once per outage, however often the new server fails again before
      // it serves a request.
      if (!outage.logged) {
        outage.logged = true;
        this.#log.warn(
          `Listening again on http://${outage.where}/ (${this.#who}, after ${attempt} attempt(s))`,
        );
      }
      return;
    }
  }
}
