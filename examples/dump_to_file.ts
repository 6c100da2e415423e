/**
 * The Python original's `dump_to_file` example: a producer in pool `main`
 * publishes a record every 100 ms on `log://dump.jsonl`; a `LogFileService`
 * in pool `background` appends each one to `dump.jsonl` as a JSON line.
 *
 *     deno run -A examples/dump_to_file.ts [path]
 *
 * (`--allow-read=. --allow-write=dump.jsonl` is enough.) Ctrl-C stops it:
 * every record the producer published is in the file, and the producer says
 * how many there were.
 *
 * @module
 */
import {
  Main,
  Service,
  type ServiceContext,
  ServiceStatus,
} from "@magic/foundation";
import { LogFileService, logQueue } from "@magic/foundation/log-file";

/** Where the records go: the first argument, or `dump.jsonl`. */
const path = Deno.args[0] ?? "dump.jsonl";

class Producer extends Service {
  #published = 0;

  override async run(ctx: ServiceContext): Promise<void> {
    while (this.status === ServiceStatus.running) {
      await ctx.publish(logQueue(path), {
        index: this.#published,
        at: new Date().toISOString(),
        message: `hello from ${ctx.pool}/${ctx.service}`,
      });
      this.#published++;
      await ctx.sleep(100);
    }
  }

  override terminate(ctx: ServiceContext): void {
    ctx.log.info(`published ${this.#published} records to ${path}`);
  }
}

if (import.meta.main) {
  const main = Main.instance();
  // The log's pool comes first: pools stop in reverse order, so it stops
  // last and writes everything the producer published.
  main.servicePools = {
    background: [() => new LogFileService({ path, flushInterval: 1000 })],
    main: [() => new Producer("Producer")],
  };
  await main.run();
}
