/**
 * The metrics service: `GET /metrics` serves the whole program's counters
 * in the Prometheus text format, `GET /metrics.json` the same snapshot as
 * JSON, and `GET /` a live page drawn from it, on a `Deno.serve` server of
 * its own.
 */
import { errorMessage } from "../_util/error_text.ts";
import { hostPort, listen } from "../_util/listen.ts";
import { Service, type ServiceOptions } from "../service.ts";
import type { Logger, ServiceContext } from "../types.ts";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
import { METRICS_PAGE } from "./page.ts";

/**
 * The options of {@linkcode MetricsService}.
 *
 * @example On every interface, a port of its own
 * ```ts
 * import {
 *   MetricsService,
 *   type MetricsServiceOptions,
 * } from "@magic/foundation/metrics";
 * import assert from "node:assert/strict";
 *
 * const options: MetricsServiceOptions = { hostname: "0.0.0.0", port: 9464 };
 * assert.equal(new MetricsService(options).port, 9464);
 * ```
 */
export interface MetricsServiceOptions {
  /** The interface to listen on. Default `127.0.0.1`. */
  hostname?: string;
  /** The port; `0` takes a free one (see {@linkcode MetricsService.addr}). Default 9464. */
  port?: number;
  /** The service's name. Default `MetricsService`. */
  name?: string;
  /** How the service is supervised. */
  service?: ServiceOptions;
}

/**
 * Serves `GET /metrics`: one snapshot of every pool's counters (as
 * `ctx.metrics()` returns it), rendered for Prometheus
 * (`text/plain; version=0.0.4`); `GET /metrics.json`: the same snapshot as
 * JSON; `GET /`: a live page (one self-contained HTML document) that reads
 * `/metrics.json` every second and draws the pools, their services and
 * subscriptions with rates, buffered counts, handler p99 and stuck or
 * stalled flags. Add it to any pool; it listens from `initialize()` to
 * `terminate()`. Other paths answer 404, other methods 405.
 *
 * @example Serving the metrics
 * ```ts ignore
 * import { Main } from "@magic/foundation";
 * import { MetricsService } from "@magic/foundation/metrics";
 *
 * if (import.meta.main) {
 *   const main = Main.instance();
 *   main.servicePools = {
 *     metrics: [new MetricsService({ hostname: "0.0.0.0", port: 9464 })],
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

  /**
   * Creates the service; nothing listens before `initialize()`.
   *
   * @param options See {@linkcode MetricsServiceOptions}.
   * @throws {TypeError} When `hostname` or `name` is not a non-empty string.
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
