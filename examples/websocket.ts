/**
 * The Python original's WebSocket demo: a page with CONNECT / SEND / CLOSE
 * buttons sends `{"timestamp": …}` on `/client`; a consumer service answers
 * `{"status": "OK", "timestamp": …}` to every client of `/client`. The
 * service also serves the page (`examples/public/index.html`).
 *
 *     deno run -A examples/websocket.ts [--hostname=localhost] [--port=8765]
 *
 * It prints the page's address once the server listens. Ctrl-C (or SIGTERM)
 * closes the clients with 1001 and ends the program with exit code 0.
 *
 * @module
 */
import { Main, Service, type ServiceContext } from "@magic/foundation";
import { WebSocketService } from "@magic/foundation/websocket";

const decoder = new TextDecoder();

/**
 * Answers each `{timestamp}` frame of `/client` (text, or binary holding
 * UTF-8 text) with `{status: "OK", timestamp}`.
 */
class Consumer extends Service {
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe<string | Uint8Array>(
      "ws://inbound/client",
      async (frame) => {
        const data = typeof frame === "string" ? frame : decoder.decode(frame);
        let timestamp: unknown;
        try {
          timestamp = (JSON.parse(data) as { timestamp?: unknown }).timestamp;
        } catch {
          ctx.log.warn(`Not JSON: ${data.slice(0, 80)}`);
          return;
        }
        ctx.log.info(`Received ${data}`);
        await ctx.publish(
          "ws://outbound/client",
          JSON.stringify({ status: "OK", timestamp }),
        );
      },
    );
  }
}

/** `--hostname=…` and `--port=…` from the command line. */
function address(args: string[]): { hostname: string; port: number } {
  const value = (name: string) =>
    args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return {
    hostname: value("hostname") ?? "localhost",
    port: Number(value("port") ?? 8765),
  };
}

if (import.meta.main) {
  const { hostname, port } = address(Deno.args);
  const main = Main.instance();
  main.servicePools = {
    main: [
      new WebSocketService({
        hostname,
        port,
        staticDir: new URL("./public/", import.meta.url),
      }),
      new Consumer("Consumer"),
    ],
  };
  if (Main.isPrimary) {
    main.addEventListener("status", (event) => {
      const { service, status } = event.detail;
      if (service !== "WebSocketService") return;
      if (status === "running") {
        // deno-lint-ignore no-console
        console.log(`http://${hostname}:${port}/`);
      } else if (status === "error") {
        void main.stop(); // e.g. the port is in use: nothing to serve
      }
    });
  }
  await main.run();
}
