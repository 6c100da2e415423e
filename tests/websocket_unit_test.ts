import assert from "node:assert/strict";
import { join } from "node:path";
import {
  connectedQueue,
  connectionQueue,
  disconnectedQueue,
  inboundQueue,
  outboundQueue,
  routePath,
} from "../src/websocket/mod.ts";
import { connectionPattern, pathOfOutbound } from "../src/websocket/router.ts";
import {
  resolveWebSocketOptions,
  WEBSOCKET_DEFAULTS,
} from "../src/websocket/options.ts";
import {
  isOriginAllowed,
  isUpgradeRequest,
  isWebSocketPath,
  refuseUpgrade,
  upgradeRequired,
} from "../src/websocket/admission.ts";
import {
  contentType,
  resolveStaticPath,
  serveStatic,
} from "../src/websocket/static.ts";
import { byteLength, toFrame } from "../src/websocket/connection.ts";
import { matchesQueue as matches } from "../src/queue_name.ts";

Deno.test("routePath() normalises slashes and escapes wildcards", () => {
  assert.equal(routePath("/"), "/");
  assert.equal(routePath(""), "/");
  assert.equal(routePath("/client"), "/client");
  assert.equal(routePath("/client/"), "/client");
  assert.equal(routePath("//a///b/"), "/a/b");
  assert.equal(routePath("/a/*/b"), "/a/%2A/b");
  assert.equal(routePath("/a/>"), "/a/%3E");
});

Deno.test("queue helpers map paths to the original's queue names", () => {
  assert.equal(inboundQueue("/client"), "ws://inbound/client");
  assert.equal(outboundQueue("/client"), "ws://outbound/client");
  assert.equal(connectedQueue("/chat/room1"), "ws://connected/chat/room1");
  assert.equal(disconnectedQueue("/"), "ws://disconnected/");
  assert.equal(inboundQueue("/"), "ws://inbound/");
});

Deno.test("outbound queues map back to paths; reply queues match their pattern only", () => {
  assert.equal(pathOfOutbound("ws://outbound/client"), "/client");
  assert.equal(pathOfOutbound("ws://outbound/a/b"), "/a/b");
  assert.equal(pathOfOutbound("ws://outbound/"), "/");
  assert.equal(pathOfOutbound("ws://outboundx/a"), undefined);
  assert.equal(pathOfOutbound("ws://inbound/a"), undefined);
  const reply = connectionQueue("My WS", "id-1");
  assert.equal(reply, "ws://connection/My%20WS/id-1");
  assert.ok(matches(connectionPattern("My WS"), reply));
  assert.ok(!matches(connectionPattern("Other"), reply));
});

Deno.test("resolveWebSocketOptions() fills in the defaults", () => {
  const o = resolveWebSocketOptions();
  assert.equal(o.name, "WebSocketService");
  assert.equal(o.hostname, "localhost");
  assert.equal(o.port, 8765);
  assert.equal(o.maxFrameSize, WEBSOCKET_DEFAULTS.maxFrameSize);
  assert.equal(o.idleTimeout, 30_000);
  assert.equal(o.maxConnections, 10_000);
  assert.equal(o.slowClientPolicy, "close");
  assert.equal(o.allowedOrigins, "same-origin");
  assert.equal(o.paths, undefined);
  assert.equal(o.staticDir, undefined);
});

Deno.test("resolveWebSocketOptions() refuses bad options with clear errors", () => {
  assert.throws(() => resolveWebSocketOptions({ port: -1 }), {
    name: "RangeError",
    message:
      'Cannot create WebSocketService "WebSocketService": port must be an integer from 0 to 65535, got -1',
  });
  assert.throws(() => resolveWebSocketOptions({ port: 1.5 }), RangeError);
  assert.throws(() => resolveWebSocketOptions({ name: "" }), TypeError);
  assert.throws(() => resolveWebSocketOptions({ hostname: "" }), TypeError);
  assert.throws(
    () => resolveWebSocketOptions({ maxFrameSize: 65 * 1024 * 1024 }),
    RangeError,
  );
  assert.throws(
    () => resolveWebSocketOptions({ maxConnections: 0 }),
    RangeError,
  );
  assert.throws(() => resolveWebSocketOptions({ idleTimeout: -5 }), RangeError);
  assert.throws(
    // @ts-expect-error: checked at run time too
    () => resolveWebSocketOptions({ slowClientPolicy: "block" }),
    /slowClientPolicy must be "close" or "drop", got "block"/,
  );
  assert.throws(
    () => resolveWebSocketOptions({ paths: ["client"] }),
    TypeError,
  );
  assert.throws(
    () => resolveWebSocketOptions({ allowedOrigins: ["not a url"] }),
    /invalid origin "not a url"/,
  );
  assert.throws(
    () => resolveWebSocketOptions({ staticDir: new URL("https://x.y/") }),
    TypeError,
  );
  assert.throws(
    // @ts-expect-error: checked at run time too
    () => resolveWebSocketOptions({ authorize: "yes" }),
    /authorize must be a function/,
  );
});

Deno.test("resolveWebSocketOptions() accepts file URLs, origins and patterns", () => {
  const o = resolveWebSocketOptions({
    staticDir: new URL("file:///srv/my%20site/"),
    allowedOrigins: ["https://example.com/", "http://localhost:8765"],
    paths: ["/client", "/chat/:room"],
    port: 0,
  });
  assert.equal(o.staticDir, "/srv/my site/");
  assert.deepEqual(
    o.allowedOrigins,
    new Set(["https://example.com", "http://localhost:8765"]),
  );
  assert.equal(o.port, 0);
  assert.ok(isWebSocketPath("/chat/room1", o.paths));
  assert.ok(isWebSocketPath("/client", o.paths));
  assert.ok(!isWebSocketPath("/other", o.paths));
  assert.ok(isWebSocketPath("/anything", undefined));
});

function upgrade(
  url = "http://127.0.0.1:8765/client",
  headers: Record<string, string> = {},
  method = "GET",
): Request {
  return new Request(url, {
    method,
    headers: { upgrade: "websocket", host: new URL(url).host, ...headers },
  });
}

Deno.test("isUpgradeRequest() looks for the websocket token", () => {
  assert.ok(isUpgradeRequest(upgrade()));
  assert.ok(isUpgradeRequest(upgrade(undefined, { upgrade: "WebSocket" })));
  assert.ok(!isUpgradeRequest(new Request("http://x/")));
  assert.ok(!isUpgradeRequest(upgrade(undefined, { upgrade: "h2c" })));
});

Deno.test("isOriginAllowed() applies same-origin, * and lists", () => {
  const same = "same-origin" as const;
  assert.ok(isOriginAllowed(upgrade(), same), "no Origin: not a browser");
  assert.ok(
    isOriginAllowed(
      upgrade(undefined, { origin: "http://127.0.0.1:8765" }),
      same,
    ),
  );
  assert.ok(
    !isOriginAllowed(upgrade(undefined, { origin: "http://evil.test" }), same),
  );
  assert.ok(
    !isOriginAllowed(upgrade(undefined, { origin: "null" }), same),
  );
  assert.ok(
    isOriginAllowed(upgrade(undefined, { origin: "http://evil.test" }), "*"),
  );
  const list = new Set(["https://app.test"]);
  assert.ok(
    isOriginAllowed(upgrade(undefined, { origin: "https://app.test" }), list),
  );
  assert.ok(
    !isOriginAllowed(upgrade(undefined, { origin: "https://b.test" }), list),
  );
  assert.ok(!isOriginAllowed(upgrade(), list), "a list needs an Origin");
});

Deno.test("refuseUpgrade() decides 405, 404, 503 (starting, stopping), 403 and 503 in that order", async () => {
  const options = resolveWebSocketOptions({
    paths: ["/client"],
    maxConnections: 2,
  });
  const idle = { starting: false, stopping: false, connections: 0 };
  assert.equal(refuseUpgrade(upgrade(), "/client", options, idle), undefined);
  // Before every pool has started, a frame could be published before its
  // consumer subscribed: the client is asked to come back.
  const starting = refuseUpgrade(upgrade(), "/client", options, {
    ...idle,
    starting: true,
  });
  assert.equal(starting?.status, 503);
  assert.equal(await starting?.text(), "Server starting\n");
  assert.equal(starting?.headers.get("retry-after"), "1");
  assert.equal(
    refuseUpgrade(upgrade(undefined, {}, "POST"), "/client", options, idle)
      ?.status,
    405,
  );
  assert.equal(refuseUpgrade(upgrade(), "/other", options, idle)?.status, 404);
  assert.equal(
    refuseUpgrade(upgrade(), "/client", options, { ...idle, stopping: true })
      ?.status,
    503,
  );
  assert.equal(
    refuseUpgrade(
      upgrade(undefined, { origin: "http://evil.test" }),
      "/client",
      options,
      idle,
    )?.status,
    403,
  );
  const full = refuseUpgrade(upgrade(), "/client", options, {
    starting: false,
    stopping: false,
    connections: 2,
  });
  assert.equal(full?.status, 503);
  assert.equal(full?.headers.get("retry-after"), "1");
  const required = upgradeRequired();
  assert.equal(required.status, 426);
  assert.equal(required.headers.get("upgrade"), "websocket");
});

Deno.test("toFrame() keeps strings and bytes and JSON-encodes the rest", () => {
  assert.equal(toFrame("hi"), "hi");
  const bytes = new Uint8Array([1, 2, 3]);
  assert.equal(toFrame(bytes), bytes);
  assert.deepEqual(
    toFrame(new Uint8Array([4, 5]).buffer),
    new Uint8Array([4, 5]),
  );
  assert.deepEqual(
    toFrame(new Uint16Array([1])),
    new Uint8Array(new Uint16Array([1]).buffer),
  );
  assert.equal(toFrame({ status: "OK", n: 1 }), '{"status":"OK","n":1}');
  assert.equal(toFrame(undefined), undefined);
  assert.equal(toFrame(10n), undefined);
});

Deno.test("byteLength() counts UTF-8 bytes near the limit", () => {
  assert.equal(byteLength("abc", 100), 3);
  assert.equal(byteLength("ééé", 4), 6);
  assert.equal(byteLength("x".repeat(50), 10), 50);
  assert.equal(byteLength(new Uint8Array(7), 1), 7);
});

Deno.test("resolveStaticPath() never leaves the folder", () => {
  assert.equal(resolveStaticPath("/srv", "/"), "/srv");
  assert.equal(resolveStaticPath("/srv", "/a/b.html"), "/srv/a/b.html");
  assert.equal(
    resolveStaticPath("/srv", "/my%20page.html"),
    "/srv/my page.html",
  );
  assert.equal(resolveStaticPath("/srv", "/../etc/passwd"), undefined);
  assert.equal(resolveStaticPath("/srv", "/%2e%2e/etc/passwd"), undefined);
  assert.equal(resolveStaticPath("/srv", "/a/..%2f..%2fetc"), undefined);
  assert.equal(resolveStaticPath("/srv", "/a%5c..%5cb"), undefined);
  assert.equal(resolveStaticPath("/srv", "/%E0%A4%A"), undefined);
  assert.equal(contentType("index.HTML"), "text/html; charset=utf-8");
  assert.equal(contentType("x.bin"), "application/octet-stream");
});

Deno.test("serveStatic() serves files, index.html, HEAD, and nothing else", async () => {
  const root = await Deno.makeTempDir({ prefix: "ws_static_" });
  const outside = await Deno.makeTempDir({ prefix: "ws_outside_" });
  try {
    await Deno.writeTextFile(join(root, "index.html"), "<h1>hi</h1>");
    await Deno.mkdir(join(root, "css"));
    await Deno.writeTextFile(join(root, "css", "a.css"), "body{}");
    await Deno.writeTextFile(join(outside, "secret.txt"), "secret");
    await Deno.symlink(join(outside, "secret.txt"), join(root, "link.txt"));
    const get = (path: string, method = "GET") =>
      serveStatic(root, new Request(`http://x${path}`, { method }), path);

    const index = await get("/");
    assert.equal(index?.status, 200);
    assert.equal(
      index?.headers.get("content-type"),
      "text/html; charset=utf-8",
    );
    assert.equal(await index?.text(), "<h1>hi</h1>");

    const css = await get("/css/a.css");
    assert.equal(css?.headers.get("content-type"), "text/css; charset=utf-8");
    assert.equal(await css?.text(), "body{}");

    const head = await get("/index.html", "HEAD");
    assert.equal(head?.headers.get("content-length"), "11");
    assert.equal(head?.body, null);

    assert.equal(await get("/missing.html"), undefined);
    assert.equal(await get("/css"), undefined, "a folder without index.html");
    assert.equal(
      await get("/link.txt"),
      undefined,
      "a link leaving the folder",
    );
    assert.equal(await get("/index.html", "POST"), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});
