/**
 * A worker process of the distributed example: two consumers (in two pools)
 * of the WebSocket frames of `/client`, members of the group `consumers`,
 * which spans every worker process. Each frame reaches exactly one of them,
 * chosen by the NATS server; the answer goes back on the frame's
 * `meta.replyTo`, which reaches the connection in the web process.
 *
 *     deno run -A examples/distributed/worker.ts [--nats=nats://127.0.0.1:4222]
 *
 * @module
 */
import { Main, Service, type ServiceContext } from "@magic/foundation";
import { option } from "./options.ts";

/** Answers `{timestamp}` with `{status: "OK", timestamp, by}`. */
class Consumer extends Service {
  override async initialize(ctx: ServiceContext): Promise<void> {
    const by = `${ctx.service} in process ${Deno.pid}`;
    await ctx.subscribe<string>("ws://inbound/client", async (data, meta) => {
      let timestamp: unknown;
      try {
        timestamp = (JSON.parse(data) as { timestamp?: unknown }).timestamp;
      } catch {
        ctx.log.warn(`Not JSON: ${data.slice(0, 80)}`);
        return;
      }
      ctx.log.info(`Answering ${data}`);
      await ctx.publish(
        meta.replyTo!,
        JSON.stringify({ status: "OK", timestamp, by }),
      );
    }, { group: "consumers" });
  }

  override run(ctx: ServiceContext): void {
    // Every pool has subscribed, and NATS has the subscriptions.
    ctx.log.info("Answering the frames of /client");
  }
}

if (import.meta.main) {
  const main = Main.instance();
  main.servicePools = {
    one: [new Consumer("Consumer-1")],
    two: [new Consumer("Consumer-2")],
  };
  await main.run({
    nats: { servers: option("nats", "nats://127.0.0.1:4222") },
  });
}
