/**
 * The HTTP side of the WebSocket service: a function from `Request` to
 * `Response` that admits, authorizes and upgrades WebSocket requests and
 * answers plain ones (the client script, static files, the fallback, 426,
 * 404). It opens no socket itself, so it can be tried with a bare
 * `Request`, as Hono's `app.request` is; what an accepted upgrade becomes is
 * the caller's `upgrade`.
 *
 * @module
 */

import { errorMessage } from "../_util/error_text.ts";
import type { Logger } from "../logger.ts";
import {
  type AdmissionState,
  isUpgradeRequest,
  isWebSocketPath,
  refuseUpgrade,
  textResponse,
  upgradeRequired,
} from "./admission.ts";
import { CLIENT_PATH, serveClient } from "./client_script.ts";
import type { ResolvedWebSocketOptions } from "./options.ts";
import { refusePath } from "./path_limit.ts";
import { routePath } from "./router.ts";
import { serveStatic } from "./static.ts";
import { type SessionRequest, sessionRequest } from "./session_wire.ts";

/** An admitted WebSocket request, for the caller to upgrade. */
export interface AdmittedUpgrade {
  request: Request;
  /** The routed path (`/client`). */
  path: string;
  /** The query string, without `?` and without the session parameters. */
  query: string;
  /** Headers `authorize` gave, for every frame of the connection. */
  headers: Record<string, string> | undefined;
  /** The session the client asked for, when it opted in. */
  session: SessionRequest | undefined;
}

/** What the HTTP side needs of the running service. */
export interface HttpSide {
  options: ResolvedWebSocketOptions;
  /** Whether the service takes connections now, and how many are open. */
  state(): AdmissionState;
  /** Turns an admitted request into a WebSocket connection. */
  upgrade(admitted: AdmittedUpgrade): Response | Promise<Response>;
  log: Pick<Logger, "warn" | "error">;
}

/** A request handler for `Deno.serve`. */
export type HttpHandler = (
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Promise<Response>;

/**
 * Makes the service's request handler.
 *
 * @param side The running service's part.
 * @returns The handler.
 *
 * @example A plain request on a WebSocket path gets 426; an upgrade before the start 503
 * ```ts
 * import { createHttpHandler } from "./http.ts";
 * import { resolveWebSocketOptions } from "./options.ts";
 * import assert from "node:assert/strict";
 *
 * const handle = createHttpHandler({
 *   options: resolveWebSocketOptions({}),
 *   state: () => ({ starting: true, stopping: false, connections: 0 }),
 *   upgrade: () => new Response(null, { status: 101 }),
 *   log: { warn() {}, error() {} },
 * });
 * const info = {
 *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
 *   completed: Promise.resolve(),
 * } as Deno.ServeHandlerInfo<Deno.NetAddr>;
 * const plain = await handle(new Request("http://localhost/client"), info);
 * assert.equal(plain.status, 426);
 * const early = await handle(
 *   new Request("http://localhost/client", {
 *     headers: { upgrade: "websocket", connection: "Upgrade" },
 *   }),
 *   info,
 * );
 * assert.equal(early.status, 503);
 * await plain.body?.cancel();
 * await early.body?.cancel();
 * ```
 */
export function createHttpHandler(side: HttpSide): HttpHandler {
  const { options, log } = side;
  /** Upgrades waiting for `authorize`: they count against `maxConnections`. */
  let admitting = 0;
  const state = (): AdmissionState => {
    const now = side.state();
    return { ...now, connections: now.connections + admitting };
  };

  async function authorize(
    request: Request,
    path: string,
    query: string,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response | { headers: Record<string, string> | undefined }> {
    if (options.authorize === undefined) return { headers: undefined };
    admitting++;
    let result;
    try {
      result = await options.authorize(request, {
        path,
        query,
        remoteAddr: info.remoteAddr,
      });
    } catch (error) {
      log.error(`authorize() failed for "${path}": ${errorMessage(error)}`);
      return textResponse(500, "Internal server error");
    } finally {
      admitting--;
    }
    if (result instanceof Response) return result;
    if (result === false) return textResponse(403, "Forbidden");
    if (typeof result !== "object" || result === null) {
      return { headers: undefined };
    }
    const headers = result.headers;
    const bad = Object.entries(headers ?? {}).find(([, v]) =>
      typeof v !== "string"
    );
    if (bad !== undefined) {
      log.error(`authorize() returned header "${bad[0]}" that is not a string`);
      return textResponse(500, "Internal server error");
    }
    return { headers };
  }

  async function plain(
    request: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    url: URL,
    path: string,
  ): Promise<Response> {
    const { staticDir, fallback, paths } = options;
    if (url.pathname === CLIENT_PATH) {
      const response = serveClient(request);
      if (response !== undefined) return response;
    }
    if (staticDir !== undefined) {
      const response = await serveStatic(staticDir, request, url.pathname);
      if (response !== undefined) return response;
    }
    if (fallback !== undefined) return await fallback(request, info);
    if (isWebSocketPath(path, paths)) return upgradeRequired();
    return textResponse(404, "Not found");
  }

  return async (request, info) => {
    const url = new URL(request.url);
    const path = routePath(url.pathname);
    if (!isUpgradeRequest(request)) {
      return await plain(request, info, url, path);
    }
    const refusal = refuseUpgrade(request, path, options, state());
    if (refusal !== undefined) return refusal;
    const badPath = refusePath(path);
    if (badPath !== undefined) {
      log.warn(
        `Refused a WebSocket upgrade to a path of ${path.length} characters (${badPath.response.status}): ${badPath.reason}`,
      );
      return badPath.response;
    }
    // The session id is the client's secret: consumers never see it.
    const { query, request: session } = sessionRequest(url.search.slice(1));
    const authorized = await authorize(request, path, query, info);
    if (authorized instanceof Response) return authorized;
    if (options.authorize !== undefined) {
      // The state may have changed while authorize() ran.
      const again = refuseUpgrade(request, path, options, state());
      if (again !== undefined) return again;
    }
    return await side.upgrade({
      request,
      path,
      query,
      headers: authorized.headers,
      session,
    });
  };
}
