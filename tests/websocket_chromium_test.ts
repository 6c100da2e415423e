/**
 * End to end in a real browser: headless Chromium opens the example's page,
 * clicks CONNECT and SEND, and sees the OK answer with its timestamp.
 */
import assert from "node:assert/strict";
import { findChromium, launchChromium } from "./_chromium.ts";
import { startExample } from "./fixtures/websocket_example.ts";

const chromium = findChromium();
if (chromium === undefined) {
  // deno-lint-ignore no-console
  console.warn(
    "Skipping the Chromium test: no chromium found (apt-get install chromium, or set CHROMIUM_BIN)",
  );
}

/** Page script: resolves once `#state` shows `state`. */
const stateIs = (state: string) => `
  new Promise((resolve, reject) => {
    const el = document.getElementById("state");
    const done = () => el.dataset.state === ${JSON.stringify(state)} &&
      (observer.disconnect(), clearTimeout(timer), resolve(true));
    const observer = new MutationObserver(done);
    const timer = setTimeout(() => (observer.disconnect(),
      reject(new Error("state is " + el.dataset.state))), 10000);
    observer.observe(el, { attributes: true });
    done();
  })`;

/** Page script: resolves with the log once a line starts with `prefix`. */
const logHas = (prefix: string) => `
  new Promise((resolve, reject) => {
    const el = document.getElementById("log");
    const has = () => el.textContent.split("\\n")
      .some((l) => l.slice(13).startsWith(${JSON.stringify(prefix)}));
    const done = () => has() &&
      (observer.disconnect(), clearTimeout(timer), resolve(el.textContent));
    const observer = new MutationObserver(done);
    const timer = setTimeout(() => (observer.disconnect(),
      reject(new Error("log: " + el.textContent))), 10000);
    observer.observe(el, { childList: true, characterData: true, subtree: true });
    done();
  })`;

Deno.test({
  name:
    "examples/websocket.ts in headless Chromium: CONNECT, SEND, OK with the timestamp, CLOSE",
  ignore: chromium === undefined,
  async fn(): Promise<void> {
    await using example = await startExample();
    await using browser = await launchChromium(chromium!);
    const page = await browser.open(example.url);
    assert.equal(
      await page.evaluate("document.title"),
      "magic-foundation WebSocket demo",
    );

    await page.evaluate(`document.getElementById("connect").click()`);
    await page.evaluate(stateIs("open"));
    await page.evaluate(`document.getElementById("send").click()`);
    const log = await page.evaluate<string>(logHas("RECEIVED "));
    const sent = /SENT (\{.*\})/.exec(log)?.[1];
    const received = /RECEIVED (\{.*\})/.exec(log)?.[1];
    assert.ok(sent && received, log);
    const { timestamp } = JSON.parse(sent) as { timestamp: number };
    assert.ok(Math.abs(timestamp - Date.now()) < 60_000);
    assert.deepEqual(JSON.parse(received), { status: "OK", timestamp });

    await page.evaluate(`document.getElementById("close").click()`);
    await page.evaluate(stateIs("closed"));
    assert.match(
      await page.evaluate<string>(logHas("CLOSED ")),
      /CLOSED 1000 bye/,
    );

    if (Deno.env.get("SCREENSHOT")) {
      await Deno.writeFile(
        Deno.env.get("SCREENSHOT")!,
        await page.screenshot(),
      );
    }
    await browser.close();
    const status = await example.stop("SIGTERM");
    assert.equal(status.code, 0, example.output());
  },
});
