/**
 * The WebSocket service's HTTP side alone (`src/websocket/http.ts`): bare
 * `Request`s in, `Response`s out, no socket.
 */
import assert from "node:assert/strict";
import {
  type AdmittedUpgrade,
  createHttpHandler,
  type HttpSide,
} from "../src/websocket/http.ts";
import {
  resolveWebSocketOptions,
  type WebSocketServiceOptions,
} from "../src/websocket/options.ts";
import type { AdmissionState } from "../src/websocket/admission.ts";

const INFO = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
  completed: Promise.resolve(),
} as Deno.ServeHandlerInfo<Deno.NetAddr>;

const UPGRADE = { upgrade: "websocket", connection: "Upgrade" };

/** A handler over `options`, its state and the upgrades it asked for. */
function side(
  options: WebSocketServiceOptions,
  state: Partial<AdmissionState> = {},
): {
  handle: ReturnType<typeof createHttpHandler>;
  upgrades: AdmittedUpgrade[];
  state: AdmissionState;
  lines: string[];
} {
  const now: AdmissionState = {
    starting: false,
    stopping: false,
    connections: 0,
    ...state,
  };
  const upgrades: AdmittedUpgrade[] = [];
  const lines: string[] = [];
  const http: HttpSide = {
    options: resolveWebSocketOptions(options),
    state: () => now,
    upgrade(admitted): Response {
      upgrades.push(admitted);
      return new Response(null, { status: 200, statusText: "upgraded" });
    },
    log: {
      warn: (line: string) => lines.push(line),
      error: (line: string) => lines.push(line),
    },
  };
  return { handle: createHttpHandler(http), upgrades, state: now, lines };
}

async function statusOf(response: Response): Promise<number> {
  await response.body?.cancel();
  return response.status;
}

Deno.test("WebSocket HTTP side: plain requests get the client script, 426 on a WebSocket path, 404 elsewhere", async () => {
  const { handle } = side({ paths: ["/chat"] });
  const script = await handle(
    new Request("http://localhost/_magic/client.js"),
    INFO,
  );
  assert.equal(script.status, 200);
  assert.match(await script.text(), /ReconnectingWebSocket/);
  assert.equal(
    await statusOf(await handle(new Request("http://localhost/chat"), INFO)),
    426,
  );
  assert.equal(
    await statusOf(await handle(new Request("http://localhost/x"), INFO)),
    404,
  );
});

Deno.test("WebSocket HTTP side: an upgrade is refused while starting, stopping or full, and admitted with its path and query otherwise", async () => {
  const { handle, upgrades, state } = side({ maxConnections: 1 });
  const ask = (): Promise<Response> =>
    handle(new Request("http://localhost/a/b?x=1", { headers: UPGRADE }), INFO);
  state.starting = true;
  assert.equal(await statusOf(await ask()), 503);
  state.starting = false;
  state.connections = 1;
  assert.equal(await statusOf(await ask()), 503);
  state.connections = 0;
  assert.equal(await statusOf(await ask()), 200);
  assert.deepEqual(
    upgrades.map(({ path, query, headers }) => ({ path, query, headers })),
    [{ path: "/a/b", query: "x=1", headers: undefined }],
  );
  state.stopping = true;
  assert.equal(await statusOf(await ask()), 503);
  assert.equal(upgrades.length, 1);
});

Deno.test("WebSocket HTTP side: authorize() refuses, answers, or gives headers; a pending one counts against maxConnections", async () => {
  const gate = Promise.withResolvers<void>();
  const { handle, upgrades, lines } = side({
    maxConnections: 1,
    async authorize(
      request,
    ): Promise<Response | false | { headers: Record<string, string> }> {
      const who = new URL(request.url).searchParams.get("who");
      if (who === "slow") await gate.promise;
      if (who === "nobody") return false;
      if (who === "teapot") return new Response("no", { status: 418 });
      if (who === "bad") {
        return { headers: { user: 7 as unknown as string } };
      }
      return { headers: { user: who ?? "" } };
    },
  });
  const ask = (who: string): Promise<Response> =>
    handle(
      new Request(`http://localhost/c?who=${who}`, { headers: UPGRADE }),
      INFO,
    );
  assert.equal(await statusOf(await ask("nobody")), 403);
  assert.equal(await statusOf(await ask("teapot")), 418);
  assert.equal(await statusOf(await ask("bad")), 500);
  assert.match(lines.at(-1)!, /header "user" that is not a string/);
  const slow = ask("slow");
  // While "slow" is being authorized, it holds the one slot.
  assert.equal(await statusOf(await ask("ada")), 503);
  gate.resolve();
  assert.equal(await statusOf(await slow), 200);
  assert.equal(await statusOf(await ask("ada")), 200);
  assert.deepEqual(upgrades.map((u) => u.headers), [{ user: "slow" }, {
    user: "ada",
  }]);
});
