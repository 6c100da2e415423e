/**
 * Serves the browser client (`client.ts`) to pages as JavaScript.
 *
 * The script is the source text of the {@linkcode ReconnectingWebSocket}
 * class as the runtime loaded it: Deno strips the types when it loads a
 * TypeScript module, so `Function.prototype.toString` gives plain
 * JavaScript. This needs no bundler, no build step and no file read (it
 * works the same from a local checkout and from JSR), and the served code is
 * exactly the code the tests type-check and run. It holds because the class
 * refers to nothing outside itself but web platform globals; the client's
 * test imports the served script and runs it.
 *
 * @module
 */

import { ReconnectingWebSocket } from "./client.ts";

/** Where the WebSocketService serves the client. */
export const CLIENT_PATH = "/_magic/client.js";

let script: string | undefined;

/** The client as an ES module: `export { ReconnectingWebSocket }`. */
export function clientScript(): string {
  return script ??= [
    "// magic-foundation browser client: a WebSocket that reconnects.",
    "// Served by WebSocketService; source: src/websocket/client.ts.",
    ReconnectingWebSocket.toString(),
    "export { ReconnectingWebSocket };",
    "",
  ].join("\n");
}

/** The response to a `GET`/`HEAD` of {@linkcode CLIENT_PATH}, or `undefined` for other methods. */
export function serveClient(request: Request): Response | undefined {
  if (request.method !== "GET" && request.method !== "HEAD") return undefined;
  const body = clientScript();
  return new Response(request.method === "HEAD" ? null : body, {
    headers: {
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "no-cache",
    },
  });
}
