/**
 * What `subscribe()` promises across pools: once it resolves, every pool's
 * table has the subscription, so whatever another pool publishes after
 * that reaches it (routing is decided by the publisher's table alone; see
 * `tests/routing_unit_test.ts` for "not before").
 */
import assert from "node:assert/strict";
import {
  Service,
  type ServiceContext,
  type TransportKind,
} from "@magic/foundation";
import { startServices } from "@magic/foundation/testing";

/** Subscribes in `run()`, then says so on `q://subscribed`. */
class Late extends Service {
  override async run(ctx: ServiceContext): Promise<void> {
    for (const group of [undefined, "g"]) {
      await ctx.subscribe<string>(
        "q://news",
        (data) => ctx.publish("q://got", { data, group: group ?? null }),
        { group },
      );
    }
    await ctx.publish("q://subscribed", ctx.pool);
  }
}

/** Publishes on `q://news` as soon as it hears of a new subscription. */
class Publisher extends Service {
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe<string>(
      "q://subscribed",
      (pool) => ctx.publish("q://news", `for ${pool}`),
    );
  }
}

for (const transport of ["ports", "broadcast"] as TransportKind[]) {
  Deno.test(`a subscription is reached from another pool as soon as subscribe() resolves [${transport}]`, async () => {
    await using bed = await startServices({
      pools: { pub: [new Publisher("p")], late: [new Late("l")] },
      watch: ["q://got"],
      transport,
    });
    const got = await bed.take<{ data: string; group: string | null }>(
      "q://got",
      2,
    );
    assert.deepEqual(
      got.map((m) => m.data).sort((x, y) =>
        String(x.group).localeCompare(String(y.group))
      ),
      [{ data: "for late", group: "g" }, { data: "for late", group: null }],
    );
  });
}
