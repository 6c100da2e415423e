/**
 * The web process of the distributed example: a WebSocketService serving the
 * page of `examples/public/` (the page sends `{timestamp}` frames on
 * `/client`). It has no consumer of its own: the worker processes answer,
 * through NATS.
 *
 *     nats-server -p 4222 &
 *     deno run -A examples/distributed/web.ts        # http://localhost:8765/
 *     deno run -A examples/distributed/worker.ts     # as many as you like
 *
 * Options: `--port=8765`, `--nats=nats://127.0.0.1:4222`.
 *
 * @module
 */
import { Main } from "@magic/foundation";
import { WebSocketService } from "@magic/foundation/websocket";
import { option } from "./options.ts";

if (import.meta.main) {
  const port = Number(option("port", "8765"));
  const main = Main.instance();
  main.servicePools = {
    web: [
      new WebSocketService({
        hostname: "localhost",
        port,
        staticDir: new URL("../public/", import.meta.url),
      }),
    ],
  };
  if (Main.isPrimary) {
    // Printed once WebSocket clients are taken (run() has begun); before
    // that, upgrades get 503 with Retry-After.
    main.addEventListener("status", (event) => {
      const { service, status } = event.detail;
      if (service === "WebSocketService" && status === "running") {
        // deno-lint-ignore no-console
        console.log(`http://localhost:${port}/`);
      }
    });
  }
  await main.run({
    nats: { servers: option("nats", "nats://127.0.0.1:4222") },
  });
}
