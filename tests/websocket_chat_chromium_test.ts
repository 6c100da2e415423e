/**
 * examples/chat.ts end to end in headless Chromium: two pages in different
 * rooms see only their room's lines; the server restarts, and a page that
 * sent lines meanwhile reconnects and delivers them, in order.
 */
import assert from "node:assert/strict";
import {
  findChromium,
  launchChromium,
  type Page,
  pageUntil,
} from "./_chromium.ts";
import {
  type RunningExample,
  startExample,
} from "./fixtures/websocket_example.ts";
import { freePort } from "./fixtures/websocket_helpers.ts";

const chromium = findChromium();
if (chromium === undefined) {
  // deno-lint-ignore no-console
  console.warn(
    "Skipping the chat Chromium test: no chromium found (apt-get install chromium, or set CHROMIUM_BIN)",
  );
}

const CHAT = new URL("../examples/chat.ts", import.meta.url);

/**
 * Page script: resolves once `predicate` (an expression) holds, checked at
 * every change of the document; rejects after 10 s with the page's text.
 */
function until(predicate: string): string {
  return pageUntil(
    predicate,
    `const $ = (id) => document.getElementById(id);
    const lines = () => [...document.querySelectorAll("#messages li")]
      .map((li) => li.textContent);`,
  );
}

/** The chat lines shown on `page`, e.g. `#red ann hello`. */
function lines(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(`[...document.querySelectorAll("#messages li")]
    .map((li) => [...li.children].map((s) => s.textContent).join(" "))`);
}

async function join(page: Page, room: string): Promise<void> {
  await page.evaluate(`(() => {
    document.getElementById("room").value = ${JSON.stringify(room)};
    document.getElementById("join").click();
  })()`);
  await page.evaluate(
    until(`$("joined").dataset.room === ${JSON.stringify(room)}`),
  );
}

async function say(page: Page, text: string): Promise<void> {
  await page.evaluate(`(() => {
    document.getElementById("text").value = ${JSON.stringify(text)};
    document.getElementById("send").click();
  })()`);
}

/** Resolves once `page` shows a line ending in `text`. */
function shows(page: Page, text: string): Promise<unknown> {
  return page.evaluate(
    until(`lines().some((l) => l.endsWith(${JSON.stringify(text)}))`),
  );
}

Deno.test({
  name:
    "examples/chat.ts in headless Chromium: rooms keep lines apart; a page queues while the server restarts and delivers after",
  ignore: chromium === undefined,
  async fn(): Promise<void> {
    const port = freePort();
    const start = () =>
      startExample({ example: CHAT, port, page: "/chat.html" });
    let server: RunningExample | undefined = await start();
    try {
      await using browser = await launchChromium(chromium!);
      const bob = await browser.open(`${server.url}?name=bob`);
      // Opened last, ann's tab is in front: only that one can be captured.
      const ann = await browser.open(`${server.url}?name=ann`);
      assert.equal(
        await ann.evaluate("document.title"),
        "magic-foundation chat",
      );
      for (const page of [ann, bob]) {
        await page.evaluate(until(`$("state").dataset.state === "open"`));
      }
      await join(ann, "red");
      await join(bob, "blue");

      await say(ann, "hello red");
      await shows(ann, "hello red");
      await say(bob, "hello blue");
      await shows(bob, "hello blue");
      // bob's line came after ann's: had bob been in red, he would have it.
      assert.deepEqual(await lines(ann), ["#red ann hello red"]);
      assert.deepEqual(await lines(bob), ["#blue bob hello blue"]);

      // The server goes away; ann keeps talking.
      const stopped = await server.stop("SIGTERM");
      assert.equal(stopped.code, 0, server.output());
      server = undefined;
      for (const page of [ann, bob]) {
        await page.evaluate(
          until(`$("state").dataset.state === "reconnecting"`),
        );
      }
      await say(ann, "while away 1");
      await say(ann, "while away 2");
      await ann.evaluate(until(`$("queued").dataset.queued === "2"`));

      server = await start();
      await shows(ann, "while away 2");
      await ann.evaluate(until(`$("queued").dataset.queued === "0"`));
      await bob.evaluate(until(`$("state").dataset.state === "open"`));
      await say(bob, "blue again");
      await shows(bob, "blue again");
      assert.deepEqual(await lines(ann), [
        "#red ann hello red",
        "#red ann while away 1",
        "#red ann while away 2",
      ]);
      assert.deepEqual(await lines(bob), [
        "#blue bob hello blue",
        "#blue bob blue again",
      ]);

      const screenshot = Deno.env.get("SCREENSHOT_CHAT");
      if (screenshot) await Deno.writeFile(screenshot, await ann.screenshot());
      await browser.close();
      const status = await server.stop("SIGTERM");
      assert.equal(status.code, 0, server.output());
    } finally {
      await server?.stop("SIGKILL");
    }
  },
});
