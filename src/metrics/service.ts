/**
 * The metrics service: `GET /metrics` serves the whole program's counters
 * in the Prometheus text format, `GET /metrics.json` the same snapshot as
 * JSON, and `GET /` a live page drawn from it, on a `Deno.serve` server of
 * its own.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { errorMessage } from "../_util/error_text.ts";
import { hostPort, listen } from "../_util/listen.ts";
import { Service, type ServiceOptions } from "../service.ts";
import type { Logger } from "../logger.ts";
import type { ServiceContext } from "../service_context.ts";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
import { METRICS_PAGE } from "./page.ts";

/**
 * The options of {@linkcode MetricsService}.
 *
 * @example A port of its own, and a token Prometheus sends
 * ```ts
 * import {
 *   MetricsService,
 *   type MetricsServiceOptions,
 * } from "@magic/foundation/metrics";
 * import assert from "node:assert/strict";
 *
 * const options: MetricsServiceOptions = {
 *   hostname: "127.0.0.1",
 *   port: 9464,
 *   bearerToken: "a long random token",
 * };
 * assert.equal(new MetricsService(options).port, 9464);
 * ```
 */
export interface MetricsServiceOptions {
  /**
   * The interface to listen on. Default `127.0.0.1`; anything wider
   * (`0.0.0.0`) lets every host that reaches it read the metrics: give
   * `bearerToken` or `basicAuth` then.
   */
  hostname?: string;
  /** The port; `0` takes a free one (see {@linkcode MetricsService.addr}). Default 9464. */
  port?: number;
  /** The service's name. Default `MetricsService`. */
  name?: string;
  /** How the service is supervised. */
  service?: ServiceOptions;
  /**
   * When set, every request must carry `Authorization: Bearer <token>`
   * (Prometheus: `authorization: { credentials: … }` in the scrape config);
   * others get 401. A browser cannot send it: for the live page, use
   * `basicAuth`.
   */
  bearerToken?: string;
  /**
   * When set, every request must carry these credentials as HTTP Basic
   * authentication (Prometheus: `basic_auth`; a browser asks for them);
   * others get 401. Not with `bearerToken`.
   */
  basicAuth?: { username: string; password: string };
}

/**
 * Serves `GET /metrics`: one snapshot of every pool's counters (as
 * `ctx.metrics()` returns it), rendered for Prometheus
 * (`text/plain; version=0.0.4`); `GET /metrics.json`: the same snapshot as
 * JSON; `GET /`: a live page (one self-contained HTML document) that reads
 * `/metrics.json` every second and draws the pools, their services and
 * subscriptions with rates, buffered counts, handler p99 and stuck or
 * stalled flags. Add it to any pool; it listens from `initialize()` to
 * `terminate()`. Other paths answer 404, other methods 405. With
 * `bearerToken` or `basicAuth`, a request without those credentials gets
 * 401 and a `WWW-Authenticate` challenge (compared in constant time).
 *
 * @example Serving the metrics
 * ```ts ignore
 * import { Main } from "@magic/foundation";
 * import { MetricsService } from "@magic/foundation/metrics";
 *
 * if (import.meta.main) {
 *   const main = Main.instance();
 *   main.servicePools = {
 *     metrics: [new MetricsService({ hostname: "127.0.0.1", port: 9464 })],
 *   };
 *   await main.run();
 * }
 * ```
 *
 * @example Options are checked when the service is created
 * ```ts
 * import { MetricsService } from "@magic/foundation/metrics";
 * import assert from "node:assert/strict";
 *
 * const metrics = new MetricsService({ port: 0 });
 * assert.equal(metrics.name, "MetricsService");
 * assert.equal(metrics.hostname, "127.0.0.1");
 * assert.throws(() => new MetricsService({ port: 70000 }), RangeError);
 * ```
 */
export class MetricsService extends Service {
  /** The interface the server listens on. */
  readonly hostname: string;
  /** The configured port (`0`: a free one; see {@linkcode MetricsService.addr}). */
  readonly port: number;
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;
  #auth: Credentials | undefined;

  /**
   * Creates the service; nothing listens before `initialize()`.
   *
   * @param options See {@linkcode MetricsServiceOptions}.
   * @throws {TypeError} When `hostname` or `name` is not a non-empty string,
   * `bearerToken` is empty, `basicAuth`'s username is empty or holds a `:`,
   * or both `bearerToken` and `basicAuth` are given.
   * @throws {RangeError} When `port` is not an integer from 0 to 65535.
   */
  constructor(options: MetricsServiceOptions = {}) {
    const name = options.name ?? "MetricsService";
    super(name, options.service);
    const hostname = options.hostname ?? "127.0.0.1";
    if (typeof hostname !== "string" || hostname === "") {
      throw new TypeError(
        `Cannot create MetricsService "${name}": hostname must be a non-empty string`,
      );
    }
    const port = options.port ?? 9464;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new RangeError(
        `Cannot create MetricsService "${name}": port must be an integer from 0 to 65535, got ${port}`,
      );
    }
    this.hostname = hostname;
    this.port = port;
    this.#auth = credentials(name, options);
  }

  /** The address the server is bound to, while it listens. */
  get addr(): Deno.NetAddr | undefined {
    return this.#server?.addr;
  }

  /**
   * Starts listening.
   *
   * @param ctx The service's context.
   * @throws {Deno.errors.AddrInUse} When the port is taken; the message names host and port.
   */
  override initialize(ctx: ServiceContext): void {
    this.#server = this.#listen(ctx);
    const { hostname, port } = this.#server.addr;
    ctx.log.info(
      `Serving metrics on http://${hostPort(hostname, port)}/metrics`,
    );
  }

  /**
   * Shuts the server down.
   *
   * @param _ctx The service's context.
   */
  override async terminate(_ctx: ServiceContext): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await server?.shutdown();
  }

  #listen(ctx: ServiceContext): Deno.HttpServer<Deno.NetAddr> {
    const { hostname, port } = this;
    return listen(`MetricsService "${this.name}"`, {
      hostname,
      port,
      onListen(): void {},
      onError: (error) => {
        ctx.log.error(`Metrics request failed: ${errorMessage(error)}`);
        return new Response("Internal server error\n", { status: 500 });
      },
    }, (request) => this.#handle(request, ctx, ctx.log));
  }

  async #handle(
    request: Request,
    ctx: ServiceContext,
    log: Logger,
  ): Promise<Response> {
    if (this.#auth !== undefined && !this.#auth.accepts(request)) {
      await request.body?.cancel();
      return new Response("Unauthorized\n", {
        status: 401,
        headers: { "www-authenticate": this.#auth.challenge },
      });
    }
    const { pathname } = new URL(request.url);
    if (
      pathname !== "/metrics" && pathname !== "/metrics.json" &&
      pathname !== "/"
    ) {
      return new Response("Not found\n", { status: 404 });
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method not allowed\n", {
        status: 405,
        headers: { allow: "GET, HEAD" },
      });
    }
    const body = (text: string): string | null =>
      request.method === "HEAD" ? null : text;
    if (pathname === "/") {
      return new Response(body(METRICS_PAGE), {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
        },
      });
    }
    try {
      const snapshot = await ctx.metrics();
      if (pathname === "/metrics.json") {
        return new Response(body(JSON.stringify(snapshot)), {
          headers: {
            "content-type": "application/json",
            "cache-control": "no-store",
          },
        });
      }
      return new Response(body(renderPrometheus(snapshot)), {
        headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
      });
    } catch (error) {
      log.warn(`Cannot gather the metrics: ${errorMessage(error)}`);
      return new Response("Cannot gather the metrics\n", { status: 503 });
    }
  }
}

/** The credentials every request must carry, and the 401's challenge. */
interface Credentials {
  /** The `WWW-Authenticate` header of a 401. */
  challenge: string;
  /** Whether `request`'s `Authorization` header is the expected one. */
  accepts(request: Request): boolean;
}

/** The credentials the options ask for, checked; `undefined`: none. */
function credentials(
  name: string,
  options: MetricsServiceOptions,
): Credentials | undefined {
  const { bearerToken, basicAuth } = options;
  const refuse = (reason: string): never => {
    throw new TypeError(`Cannot create MetricsService "${name}": ${reason}`);
  };
  if (bearerToken !== undefined && basicAuth !== undefined) {
    refuse("give bearerToken or basicAuth, not both");
  }
  if (bearerToken !== undefined) {
    if (typeof bearerToken !== "string" || bearerToken === "") {
      refuse("bearerToken must be a non-empty string");
    }
    return expecting(`Bearer ${bearerToken}`, 'Bearer realm="metrics"');
  }
  if (basicAuth === undefined) return undefined;
  const { username, password } = basicAuth;
  if (
    typeof username !== "string" || username === "" || username.includes(":")
  ) {
    refuse('basicAuth.username must be a non-empty string without ":"');
  }
  if (typeof password !== "string") {
    refuse("basicAuth.password must be a string");
  }
  const pair = new TextEncoder().encode(`${username}:${password}`);
  return expecting(
    `Basic ${btoa(String.fromCharCode(...pair))}`,
    'Basic realm="metrics", charset="UTF-8"',
  );
}

/**
 * Credentials that accept exactly `authorization`. The header and the
 * expected value are compared as SHA-256 digests with `timingSafeEqual`:
 * the time taken says nothing about how much of a guess was right, nor
 * about the expected value's length.
 */
function expecting(authorization: string, challenge: string): Credentials {
  const digest = (text: string): Uint8Array =>
    createHash("sha256").update(text).digest();
  const expected = digest(authorization);
  return {
    challenge,
    accepts: (request) =>
      timingSafeEqual(
        digest(request.headers.get("authorization") ?? ""),
        expected,
      ),
  };
}
