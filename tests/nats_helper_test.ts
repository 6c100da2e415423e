import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsSkipReason, startNatsServer } from "./_nats.ts";

const skip = await natsSkipReason();

/** Resolves with the first status of `type` the connection reports. */
async function nextStatus(nc: NatsConnection, type: string): Promise<void> {
  for await (const status of nc.status()) {
    if (status.type === type) return;
  }
  throw new Error(`connection closed before a "${type}" status`);
}

/** Publishes `text` on `subject` and resolves with what a subscriber got. */
async function echo(nc: NatsConnection, subject: string): Promise<string> {
  const sub = nc.subscribe(subject, { max: 1 });
  await nc.flush();
  nc.publish(subject, "hello");
  for await (const msg of sub) return msg.string();
  throw new Error("subscription ended without a message");
}

/** Rejects after `ms` with `what`; the timer is cleared when `promise` settles. */
async function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no result within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: `startNatsServer() starts a private server a raw client can use${
    skip ? ` (skipped: ${skip})` : ""
  }`,
  ignore: skip !== undefined,
  async fn(): Promise<void> {
    const started = await startNatsServer();
    assert.ok(typeof started !== "string");
    await using nats = started;
    assert.notEqual(nats.port, 4222);
    assert.equal(nats.url, `nats://127.0.0.1:${nats.port}`);
    const nc = await connect({ servers: nats.url });
    try {
      assert.equal(
        await within(echo(nc, "helper.start"), 5000, "echo"),
        "hello",
      );
    } finally {
      await nc.close();
    }
  },
});

Deno.test({
  name:
    `NatsServer.kill() and restart(): a raw client sees the outage and reconnects on the same port${
      skip ? ` (skipped: ${skip})` : ""
    }`,
  ignore: skip !== undefined,
  async fn(): Promise<void> {
    const started = await startNatsServer();
    assert.ok(typeof started !== "string");
    await using nats = started;
    const nc = await connect({
      servers: nats.url,
      reconnectTimeWait: 50,
      maxReconnectAttempts: -1,
    });
    try {
      assert.equal(await echo(nc, "helper.before"), "hello");
      const port = nats.port;

      const disconnected = nextStatus(nc, "disconnect");
      await nats.kill();
      assert.equal(nats.running, false);
      await within(disconnected, 5000, "disconnect status");

      const reconnected = nextStatus(nc, "reconnect");
      await nats.restart();
      assert.equal(nats.running, true);
      assert.equal(nats.port, port);
      await within(reconnected, 10_000, "reconnect status");
      assert.equal(
        await within(echo(nc, "helper.after"), 5000, "echo"),
        "hello",
      );

      // A restart of a running server stops it first.
      const again = nextStatus(nc, "reconnect");
      await nats.restart();
      await within(again, 10_000, "second reconnect");
      assert.equal(
        await within(echo(nc, "helper.again"), 5000, "echo"),
        "hello",
      );
    } finally {
      await nc.close();
    }
    await nats.stop();
    assert.equal(nats.running, false);
    await nats.stop(); // a second stop does nothing
  },
});
