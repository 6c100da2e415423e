/**
 * The JetStream carrier's publish path, against a private `nats-server -js`:
 * the headers it shares between plain publishes never carry another
 * publish's id.
 */
import assert from "node:assert/strict";
import { jetStreamCarrier } from "../src/nats/jetstream_carrier.ts";
import { resolveNats } from "../src/nats/options.ts";
import { loadJetStream, loadNatsClient } from "../src/nats/client.ts";
import { natsSkipReason, startNatsServer } from "./_nats.ts";
import { quietLog } from "./_quiet_log.ts";

const NATS_SKIP = await natsSkipReason();

Deno.test({
  name:
    "JetStreamCarrier: plain publishes around publishes with an id are all stored, each id once",
  ignore: NATS_SKIP !== undefined,
  async fn(): Promise<void> {
    const store = await Deno.makeTempDir({ prefix: "jetstream_carrier_" });
    const server = await startNatsServer(["-js", "-sd", store]);
    if (typeof server === "string") throw new Error(server);
    const settings = resolveNats({ servers: server.url })!;
    const open = await jetStreamCarrier(
      { ...settings, processId: "test", closeTimeout: 2000 },
      {
        streams: ["q://jobs/>"],
        groupOnly: [],
        dedupeWindow: 60_000,
        ackWait: 30_000,
      },
    );
    const carrier = open({ pool: "p", log: quietLog, status: () => {} });
    const { connect } = await loadNatsClient();
    const nc = await connect({ servers: server.url });
    try {
      const publish = (n: number, id?: string): Promise<void> =>
        carrier.publish({
          queue: `q://jobs/${n}`,
          pool: "p",
          service: "S",
          publishedAt: 0,
          id,
          data: { n },
        });
      await publish(1);
      await publish(2, "two");
      await publish(3);
      await publish(4);
      await publish(5, "two"); // A duplicate: not stored.
      await publish(6, "six");
      await publish(7);
      const { jetstreamManager } = await loadJetStream();
      const jsm = await jetstreamManager(nc);
      const [stream] = await jsm.streams.list().next();
      assert.equal(stream!.state.messages, 6);
    } finally {
      await carrier.close();
      await nc.close();
      await server.stop();
      await Deno.remove(store, { recursive: true });
    }
  },
});
