// This example is the README's first program, kept as written: it prints with
// console and its hooks are async without awaiting anything.
// deno-lint-ignore-file no-console require-await
/**
 * Two services in one pool: the README's first example.
 *
 *     deno run -A examples/services.ts
 *
 * Ctrl-C stops it cleanly (terminate() runs, in reverse order).
 *
 * @module
 */
import {
  Main,
  Service,
  type ServiceContext,
  ServiceStatus,
} from "@magic/foundation";

class TestService extends Service {
  override async initialize(_ctx: ServiceContext): Promise<void> {
    console.info(`[${this.name}] initialize`);
  }

  override async run(ctx: ServiceContext): Promise<void> {
    let index = 0;
    while (this.status === ServiceStatus.running) {
      console.info(`[${this.name}] run ${index++}`);
      await ctx.sleep(1000); // returns early once the service is being stopped
    }
  }

  override async terminate(_ctx: ServiceContext): Promise<void> {
    console.info(`[${this.name}] terminate`);
  }
}

if (import.meta.main) {
  const main = Main.instance();
  main.servicePools = {
    th1: [new TestService("Service_1"), new TestService("Service_2")],
  };
  await main.run();
}
