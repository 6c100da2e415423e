/**
 * The module's client (ReconnectingWebSocket) with sessions, in Deno,
 * through a TCP proxy the test cuts: a network drop without a server
 * restart recovers (rooms, replyTo, everything missed once and in order);
 * a server without the session's history (a new process) says why not.
 */
import assert from "node:assert/strict";
import { Recorder } from "./_recorder.ts";
import { ReconnectingWebSocket } from "../src/websocket/client.ts";
import { joinRoom } from "../src/websocket/mod.ts";
import { type Harness, startService } from "./fixtures/websocket_harness.ts";
import { deadline } from "./fixtures/websocket_helpers.ts";
import { startProxy } from "./fixtures/tcp_proxy.ts";

/** A service whose `/s` clients send `join <room>` (answered `joined <room>`). */
async function start(): Promise<Harness> {
  const h = await startService();
  const ctx = h.bed.context;
  await ctx.subscribe<string>("ws://inbound/s", async (text, meta) => {
    const room = text.slice("join ".length);
    await joinRoom(ctx, meta, room);
    await ctx.publish(meta.replyTo!, `joined ${room}`);
  });
  return h;
}

Deno.test("ReconnectingWebSocket recovers its session after a network drop: rooms, replyTo and every missed message once, in order; a server without the session says 'unknown session'", async () => {
  await using h = await start();
  await using proxy = startProxy(h.port);
  const ctx = h.bed.context;
  const client = new ReconnectingWebSocket(`ws://127.0.0.1:${proxy.port}/s`, {
    minDelay: 1,
    maxDelay: 5,
  });
  const seen = new Recorder(client);
  const closed = Promise.withResolvers<void>();
  try {
    await seen.until(() => seen.opens.length === 1, "the first open");
    assert.deepEqual(seen.opens[0], { recovered: false });
    client.send("join red");
    client.send("join blue");
    await seen.until(() => seen.messages.length === 2, "the joins");
    const replyTo = h.bed.seen("ws://inbound/s")[0]!.meta.replyTo!;

    proxy.pause();
    proxy.cut();
    const missed: string[] = [];
    for (let i = 0; i < 50; i++) {
      const [queue, text] = [
        ["ws://room/red", `red ${i}`],
        ["ws://room/blue", `blue ${i}`],
        ["ws://outbound/s", `path ${i}`],
        [replyTo, `direct ${i}`],
      ][i % 4]!;
      await ctx.publish(queue!, text);
      missed.push(text!);
    }
    proxy.resume();
    await seen.until(() => seen.opens.length === 2, "the recovery");
    assert.deepEqual(seen.opens[1], { recovered: true });
    await ctx.publish("ws://room/red", "live");
    await seen.until(() => seen.messages.at(-1) === "live", "live traffic");
    const after = seen.messages.slice(2, -1);
    assert.deepEqual([...after].sort(), [...missed].sort(), "each once");
    for (const prefix of ["red", "blue", "path", "direct"]) {
      assert.deepEqual(
        after.filter((m) => m.startsWith(prefix)),
        missed.filter((m) => m.startsWith(prefix)),
        `${prefix} in order`,
      );
    }
    assert.deepEqual(h.service.rooms, { red: 1, blue: 1 });

    // A server that never had this session (a restarted process).
    await using fresh = await start();
    proxy.target = fresh.port;
    proxy.cut();
    await seen.until(
      () => seen.opens.length === 3,
      "the open on the new server",
    );
    assert.deepEqual(seen.opens[2], {
      recovered: false,
      reason: "unknown session",
    });
    client.addEventListener("close", () => closed.resolve());
    client.close();
    await deadline(closed.promise, "the client's close");
  } finally {
    client.close();
  }
});
