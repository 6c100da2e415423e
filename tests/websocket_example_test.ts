/** examples/websocket.ts run as a program, with a Deno WebSocket client. */
import assert from "node:assert/strict";
import { startExample } from "./fixtures/websocket_example.ts";
import { deadline, TestClient } from "./fixtures/websocket_helpers.ts";

Deno.test("examples/websocket.ts serves its page, answers {timestamp} with OK and exits 0 on SIGTERM", async () => {
  await using example = await startExample();
  const page = await fetch(example.url);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  const html = await page.text();
  for (const button of ["CONNECT", "SEND", "CLOSE"]) {
    assert.ok(html.includes(`>${button}</button>`), button);
  }
  const client = await TestClient.open(`ws://127.0.0.1:${example.port}/client`);
  const other = await TestClient.open(`ws://127.0.0.1:${example.port}/client`);
  client.send(JSON.stringify({ timestamp: 1700000000000 }));
  const answer = { status: "OK", timestamp: 1700000000000 };
  assert.deepEqual(await client.nextJson(), answer);
  assert.deepEqual(await other.nextJson(), answer, "every /client gets it");
  const status = await example.stop("SIGTERM");
  assert.equal(status.code, 0, example.output());
  for (const c of [client, other]) {
    assert.equal((await deadline(c.closed, "the close")).code, 1001);
  }
});

Deno.test("examples/websocket.ts exits 0 on Ctrl-C (SIGINT)", async () => {
  await using example = await startExample();
  const status = await example.stop("SIGINT");
  assert.equal(status.code, 0, example.output());
  assert.match(example.output(), /Stopping: SIGINT received/);
});

Deno.test("examples/websocket.ts answers a binary frame holding JSON, and logs a bad frame as text", async () => {
  await using example = await startExample();
  const client = await TestClient.open(`ws://127.0.0.1:${example.port}/client`);
  try {
    client.send("not json");
    client.send(new TextEncoder().encode(JSON.stringify({ timestamp: 42 })));
    assert.deepEqual(await client.nextJson(), { status: "OK", timestamp: 42 });
  } finally {
    await client.close();
  }
  const status = await example.stop("SIGTERM");
  assert.equal(status.code, 0, example.output());
  assert.match(example.output(), /Not JSON: not json/);
  assert.doesNotMatch(example.output(), /Not JSON: 123,34/);
});
