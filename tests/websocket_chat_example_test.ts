/** examples/chat.ts run as a program, with Deno WebSocket clients (no browser). */
import assert from "node:assert/strict";
import { startExample } from "./fixtures/websocket_example.ts";
import {
  deadline,
  TestClient,
  upgradeStatus,
} from "./fixtures/websocket_helpers.ts";

const CHAT = new URL("../examples/chat.ts", import.meta.url);

Deno.test("examples/chat.ts keeps rooms apart, names senders from authorize, refuses bad names and exits 0", async () => {
  await using chat = await startExample({ example: CHAT, page: "/chat.html" });
  const page = await fetch(chat.url);
  assert.equal(page.status, 200);
  assert.match(
    await page.text(),
    /import \{ ReconnectingWebSocket \} from "\/_magic\/client\.js"/,
  );
  const script = await fetch(`http://127.0.0.1:${chat.port}/_magic/client.js`);
  assert.match(await script.text(), /export \{ ReconnectingWebSocket \};/);
  assert.equal(await upgradeStatus(chat.port, "/chat?name=a%20b"), 400);

  const url = (name: string) => `ws://127.0.0.1:${chat.port}/chat?name=${name}`;
  const ann = await TestClient.open(url("ann"));
  const bob = await TestClient.open(url("bob"));
  const cy = await TestClient.open(url("cy"));
  try {
    for (
      const [client, room] of [[ann, "red"], [bob, "blue"], [
        cy,
        "red",
      ]] as const
    ) {
      client.send(JSON.stringify({ join: room }));
      assert.deepEqual(await client.nextJson(), { joined: room });
    }
    ann.send(JSON.stringify({ say: "hi red", room: "red", from: "forged" }));
    for (const client of [ann, cy]) {
      assert.deepEqual(await client.nextJson(), {
        room: "red",
        from: "ann",
        text: "hi red",
      });
    }
    bob.send(JSON.stringify({ say: "hi blue", room: "blue" }));
    assert.deepEqual(await bob.nextJson(), {
      room: "blue",
      from: "bob",
      text: "hi blue",
    });
    // cy moves to blue: out of red, into blue.
    cy.send(JSON.stringify({ join: "blue" }));
    assert.deepEqual(await cy.nextJson(), { joined: "blue" });
    ann.send(JSON.stringify({ say: "red only", room: "red" }));
    assert.deepEqual(await ann.nextJson(), {
      room: "red",
      from: "ann",
      text: "red only",
    });
    bob.send(JSON.stringify({ say: "blue again", room: "blue" }));
    assert.deepEqual(await cy.nextJson(), {
      room: "blue",
      from: "bob",
      text: "blue again",
    }, "cy got a red line");
    ann.send(JSON.stringify({ join: "a b" }));
    assert.match(
      (await ann.nextJson() as { error: string }).error,
      /^Invalid room name "a b": /,
    );
    assert.equal(bob.pending + ann.pending, 1, "bob's own line only");

    const status = await chat.stop("SIGTERM");
    assert.equal(status.code, 0, chat.output());
    for (const client of [ann, bob, cy]) {
      assert.equal((await deadline(client.closed, "the close")).code, 1001);
    }
  } finally {
    await Promise.all([ann, bob, cy].map((c) => c.close()));
  }
});

Deno.test("examples/chat.ts refuses a say for a room the connection is not in; a new connection's say enters its room", async () => {
  await using chat = await startExample({ example: CHAT, page: "/chat.html" });
  const url = (name: string) => `ws://127.0.0.1:${chat.port}/chat?name=${name}`;
  const ann = await TestClient.open(url("ann"));
  const bob = await TestClient.open(url("bob"));
  try {
    ann.send(JSON.stringify({ join: "red" }));
    assert.deepEqual(await ann.nextJson(), { joined: "red" });
    ann.send(JSON.stringify({ say: "to blue?", room: "blue" }));
    assert.deepEqual(await ann.nextJson(), {
      error: 'Not in room "blue": send {"join": "blue"} first',
    });
    // bob, in no room yet (as after a reconnection), says into red: the
    // frame enters red, as the page's queued frames do.
    bob.send(JSON.stringify({ say: "back", room: "red" }));
    for (const client of [ann, bob]) {
      assert.deepEqual(await client.nextJson(), {
        room: "red",
        from: "bob",
        text: "back",
      });
    }
    ann.send(JSON.stringify({ say: "still red", room: "red" }));
    for (const client of [ann, bob]) {
      assert.deepEqual(await client.nextJson(), {
        room: "red",
        from: "ann",
        text: "still red",
      });
    }
    assert.equal(ann.pending + bob.pending, 0);
  } finally {
    await Promise.all([ann, bob].map((c) => c.close()));
  }
});
