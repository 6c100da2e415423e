/**
 * Sessions in headless Chromium with the module's client (issue 25, one
 * process): a page in two rooms loses its network (a TCP proxy the test
 * cuts) and recovers everything sent to its rooms, its path and its
 * replyTo meanwhile, once and in order; then the server process is killed
 * with SIGKILL and restarted, and the page is told `recovered: false`,
 * "unknown session" (one process keeps the history in memory).
 */
import assert from "node:assert/strict";
import { findChromium, launchChromium, pageUntil } from "./_chromium.ts";
import {
  type RunningExample,
  startExample,
} from "./fixtures/websocket_example.ts";
import { freePort, TestClient } from "./fixtures/websocket_helpers.ts";
import { startProxy } from "./fixtures/tcp_proxy.ts";

const chromium = findChromium();
if (chromium === undefined) {
  // deno-lint-ignore no-console
  console.warn(
    "Skipping the sessions Chromium test: no chromium found (apt-get install chromium, or set CHROMIUM_BIN)",
  );
}

const PROGRAM = new URL("./fixtures/sessions_program.ts", import.meta.url);

Deno.test({
  name:
    "Sessions in headless Chromium: a page in two rooms recovers what it missed during a network drop; after SIGKILL and a restart it is told 'unknown session'",
  ignore: chromium === undefined,
  async fn(): Promise<void> {
    const port = freePort();
    const start = () => startExample({ example: PROGRAM, port, page: "/page" });
    let server: RunningExample | undefined = await start();
    await using proxy = startProxy(port);
    try {
      await using browser = await launchChromium(chromium!);
      const page = await browser.open(`http://127.0.0.1:${proxy.port}/page`);
      const until = (predicate: string) => page.evaluate(pageUntil(predicate));
      await until("window.opens?.length === 1");
      await page.evaluate(`(socket.send("join red"), socket.send("join blue"),
        socket.send("whoami"))`);
      await until("messages.length === 3");
      const me = await page.evaluate<string>(
        "messages.find((m) => m.startsWith('me '))",
      );
      const replyTo = me.slice(3);

      proxy.pause();
      proxy.cut();
      const sent: string[] = [];
      const control = await TestClient.open(`ws://127.0.0.1:${port}/ctl`);
      try {
        for (let i = 0; i < 40; i++) {
          const queues = ["ws://room/red", "ws://room/blue", "ws://outbound/s"];
          const queue = [...queues, replyTo][i % 4];
          control.send(`${queue} m${i}`);
          assert.equal(await control.next(), "ok");
          sent.push(`m${i}`);
        }
        proxy.resume();
        await until("opens.length === 2");
        control.send("ws://room/red live");
        assert.equal(await control.next(), "ok");
      } finally {
        await control.close();
      }
      await until("messages.at(-1) === 'live'");
      assert.deepEqual(await page.evaluate("opens"), [
        { recovered: false },
        { recovered: true },
      ]);
      // Sent one at a time, each acknowledged: the order is known.
      assert.deepEqual(
        await page.evaluate("messages.slice(3, -1)"),
        sent,
      );

      const killed = await server.stop("SIGKILL");
      assert.equal(killed.signal, "SIGKILL");
      server = undefined;
      server = await start();
      await until("opens.length === 3");
      assert.deepEqual(await page.evaluate("opens[2]"), {
        recovered: false,
        reason: "unknown session",
      });
      await browser.close();
      const status = await server.stop("SIGTERM");
      assert.equal(status.code, 0, server.output());
    } finally {
      await server?.stop("SIGKILL");
    }
  },
});
