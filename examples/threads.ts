/**
 * Two pools, each in its own Web Worker, talking over a queue: a producer
 * publishes a counter every second, a consumer in the other pool prints it
 * and answers requests.
 *
 *     deno run -A examples/threads.ts
 *
 * Ctrl-C stops it cleanly.
 *
 * @module
 */
import {
  Main,
  type MessageMeta,
  Service,
  type ServiceContext,
  ServiceStatus,
} from "@magic/foundation";

interface Tick {
  index: number;
  at: string;
}

class Producer extends Service {
  override async run(ctx: ServiceContext): Promise<void> {
    let index = 0;
    while (this.status === ServiceStatus.running) {
      await ctx.publish("q://ticks", {
        index: index++,
        at: new Date().toISOString(),
      });
      const sum = await ctx.request<number>("q://math/add", {
        a: index,
        b: 100,
      });
      ctx.log.info(`asked ${index} + 100, got ${sum}`);
      await ctx.sleep(1000);
    }
  }
}

class Consumer extends Service {
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe<Tick>("q://ticks", (tick, meta: MessageMeta) => {
      ctx.log.info(
        `tick ${tick.index} from ${meta.from.pool}/${meta.from.service}`,
      );
    });
    await ctx.subscribe<{ a: number; b: number }>(
      "q://math/add",
      async ({ a, b }, meta) => {
        if (meta.replyTo !== undefined) await ctx.publish(meta.replyTo, a + b);
      },
    );
  }

  override async run(ctx: ServiceContext): Promise<void> {
    await ctx.dumpQueueTree();
  }
}

if (import.meta.main) {
  const main = Main.instance();
  main.servicePools = {
    producer: [new Producer("Producer")],
    consumer: [new Consumer("Consumer")],
  };
  await main.run();
}
