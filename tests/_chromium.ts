/**
 * Headless Chromium for end-to-end tests, driven over the DevTools protocol
 * from Deno's own WebSocket client (no npm dependency).
 *
 * ```ts ignore
 * await using browser = await launchChromium(findChromium()!);
 * const page = await browser.open("http://127.0.0.1:8765/");
 * await page.evaluate("document.title");
 * ```
 *
 * @module
 */

import { withTimeout } from "../src/_util/time.ts";

const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
];

/** How long one browser step may take. */
const STEP = 15_000;

/**
 * The Chromium executable: `$CHROMIUM_BIN` or a usual Debian path, or
 * `undefined` when there is none (the caller skips its test).
 */
export function findChromium(): string | undefined {
  const fromEnv = Deno.env.get("CHROMIUM_BIN");
  for (const path of fromEnv ? [fromEnv, ...CANDIDATES] : CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** A DevTools protocol error answer. */
export class CdpError extends Error {
  constructor(method: string, message: string) {
    super(`${method} failed: ${message}`);
    this.name = "CdpError";
  }
}

type Json = Record<string, unknown>;

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Json;
  result?: Json;
  error?: { message: string };
  sessionId?: string;
}

/** One DevTools protocol connection (browser-level, with flat sessions). */
class Cdp {
  readonly #ws: WebSocket;
  readonly closed: Promise<void>;
  #nextId = 1;
  readonly #calls = new Map<
    number,
    { method: string; resolve: (r: Json) => void; reject: (e: Error) => void }
  >();
  readonly #waiters = new Set<
    { test: (m: CdpMessage) => boolean; resolve: (p: Json) => void }
  >();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", () => {
        for (const call of this.#calls.values()) {
          call.reject(new Error(`${call.method}: DevTools connection closed`));
        }
        this.#calls.clear();
        resolve();
      }, { once: true });
    });
    ws.onmessage = (event) => this.#receive(JSON.parse(String(event.data)));
  }

  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error(`Cannot connect to ${url}`));
      }),
      "the DevTools connection",
    );
    return new Cdp(ws);
  }

  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<Json>();
    this.#calls.set(id, { method, resolve, reject });
    this.#ws.send(JSON.stringify({ id, method, params, sessionId }));
    return withDeadline(promise, method);
  }

  /** The params of the next event `method` (of `sessionId`, if given). */
  event(method: string, sessionId?: string): Promise<Json> {
    const { promise, resolve } = Promise.withResolvers<Json>();
    const waiter = {
      test: (m: CdpMessage) =>
        m.method === method &&
        (sessionId === undefined || m.sessionId === sessionId),
      resolve,
    };
    this.#waiters.add(waiter);
    return withDeadline(promise, `the event ${method}`).finally(() =>
      this.#waiters.delete(waiter)
    );
  }

  async close(): Promise<void> {
    if (this.#ws.readyState <= WebSocket.OPEN) this.#ws.close();
    await withDeadline(this.closed, "the DevTools connection's close");
  }

  #receive(message: CdpMessage): void {
    if (message.id !== undefined) {
      const call = this.#calls.get(message.id);
      if (call === undefined) return;
      this.#calls.delete(message.id);
      if (message.error) {
        call.reject(new CdpError(call.method, message.error.message));
      } else call.resolve(message.result ?? {});
      return;
    }
    for (const waiter of this.#waiters) {
      if (waiter.test(message)) {
        this.#waiters.delete(waiter);
        waiter.resolve(message.params ?? {});
      }
    }
  }
}

/** A tab of the browser. */
export class Page {
  readonly #cdp: Cdp;
  readonly #session: string;

  constructor(cdp: Cdp, session: string) {
    this.#cdp = cdp;
    this.#session = session;
  }

  /** Navigates and waits for the `load` event. */
  async goto(url: string): Promise<void> {
    const loaded = this.#cdp.event("Page.loadEventFired", this.#session);
    const result = await this.#cdp.send(
      "Page.navigate",
      { url },
      this.#session,
    );
    if (typeof result.errorText === "string") {
      throw new Error(`Cannot open ${url}: ${result.errorText}`);
    }
    await loaded;
  }

  /**
   * Evaluates `expression` in the page (awaiting a returned promise) and
   * returns its value as JSON.
   */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const result = await this.#cdp.send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    }, this.#session);
    const details = result.exceptionDetails as
      | { text: string; exception?: { description?: string } }
      | undefined;
    if (details !== undefined) {
      throw new Error(
        `Page script failed: ${details.exception?.description ?? details.text}`,
      );
    }
    return (result.result as { value?: T }).value as T;
  }

  /** Sets the page's viewport, in CSS pixels (for screenshots). */
  async viewport(width: number, height: number): Promise<void> {
    await this.#cdp.send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: 1,
      mobile: false,
    }, this.#session);
  }

  /** A PNG screenshot of the page. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.#cdp.send(
      "Page.captureScreenshot",
      { format: "png" },
      this.#session,
    );
    return Uint8Array.from(atob(data as string), (c) => c.charCodeAt(0));
  }
}

/** A running headless Chromium; `await using` (or `close()`) ends it. */
export class Browser implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #cdp: Cdp;
  readonly #profile: string;
  readonly #stderr: Promise<void>;
  #closing: Promise<void> | undefined;

  constructor(
    child: Deno.ChildProcess,
    cdp: Cdp,
    profile: string,
    stderr: Promise<void>,
  ) {
    this.#child = child;
    this.#cdp = cdp;
    this.#profile = profile;
    this.#stderr = stderr;
  }

  /** Opens a new tab on `url` and waits for it to load. */
  async open(url: string): Promise<Page> {
    const { targetId } = await this.#cdp.send("Target.createTarget", {
      url: "about:blank",
    });
    const { sessionId } = await this.#cdp.send("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    const page = new Page(this.#cdp, sessionId as string);
    await this.#cdp.send("Page.enable", {}, sessionId as string);
    await page.goto(url);
    return page;
  }

  /** Closes the browser (killing it if it does not exit) and removes its profile. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    try {
      await this.#cdp.send("Browser.close").catch(() => {});
      await this.#cdp.close().catch(() => {});
      const exited = await withDeadline(
        this.#child.status,
        "Chromium's exit",
        5000,
      )
        .then(() => true, () => false);
      if (!exited) {
        try {
          this.#child.kill("SIGKILL");
        } catch {
          // already gone
        }
        await this.#child.status;
      }
      await this.#stderr;
    } finally {
      await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
    }
  }
}

/** Starts headless Chromium with a throw-away profile and connects to it. */
export async function launchChromium(executable: string): Promise<Browser> {
  const profile = await Deno.makeTempDir({ prefix: "mf_chromium_" });
  const child = new Deno.Command(executable, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-quic",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const endpoint = Promise.withResolvers<string>();
  // Read stderr to its end (a full pipe would block Chromium).
  const stderr = (async () => {
    let text = "";
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(text);
      if (match) endpoint.resolve(match[1]!);
      if (text.length > 65_536) text = text.slice(-4096);
    }
    endpoint.reject(
      new Error(`Chromium exited before listening: ${text.slice(-2000)}`),
    );
  })();
  try {
    const url = await withDeadline(endpoint.promise, "Chromium's DevTools URL");
    const cdp = await Cdp.connect(url);
    return new Browser(child, cdp, profile, stderr);
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    await stderr;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    throw error;
  }
}

function withDeadline<T>(
  promise: Promise<T>,
  what: string,
  ms = STEP,
): Promise<T> {
  return withTimeout(
    promise,
    ms,
    () => new Error(`Timed out after ${ms} ms waiting for ${what}`),
  );
}

/**
 * Page script that resolves once `predicate` (a JavaScript expression) is
 * true, checked at every change of the page, and rejects after 10 s with
 * the page's text. `helpers` declares names the predicate may use.
 */
export function pageUntil(predicate: string, helpers = ""): string {
  return `
  new Promise((resolve, reject) => {
    ${helpers}
    const test = () => (${predicate});
    const done = () => test() &&
      (observer.disconnect(), clearTimeout(timer), resolve(true));
    const observer = new MutationObserver(done);
    const timer = setTimeout(() => (observer.disconnect(),
      reject(new Error("not yet: " + ${JSON.stringify(predicate)} +
        " in " + document.body.innerText))), 10000);
    observer.observe(document.body, {
      attributes: true, childList: true, characterData: true, subtree: true,
    });
    done();
  })`;
}
