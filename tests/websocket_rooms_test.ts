/**
 * Rooms in real pools: two WebSocketServices (same name, pools `web1` and
 * `web2`) and the consumer that joins, leaves and publishes in a third pool.
 */
import assert from "node:assert/strict";
import { startProgram } from "./_helpers.ts";
import {
  pools,
  type RoomsProgramConfig,
} from "./fixtures/websocket_rooms_program.ts";
import {
  deadline,
  freePort,
  TestClient,
} from "./fixtures/websocket_helpers.ts";

const FIXTURE = new URL(
  "./fixtures/websocket_rooms_program.ts",
  import.meta.url,
);
/** The first start type-checks the worker module (about 5 s when cold). */
const START = 60_000;

interface Report {
  service: string;
  pool: string;
  connections: number;
  rooms: Record<string, number>;
}

Deno.test("Rooms across two pools and two WebSocketServices: join, publish, leave, close, limit, report", async (t) => {
  const config: RoomsProgramConfig = {
    ports: [freePort(), freePort()],
    maxRoomsPerConnection: 3,
  };
  const program = startProgram(FIXTURE, pools(config), config);
  const clients: TestClient[] = [];
  /** A client of service 1 or 2 on `path`. */
  const open = async (service: 1 | 2, path: string) => {
    const port = config.ports[service - 1];
    const client = await TestClient.open(`ws://127.0.0.1:${port}${path}`);
    clients.push(client);
    return client;
  };
  const ask = async (client: TestClient, command: unknown) => {
    client.send(JSON.stringify(command));
    return await client.nextJson() as Record<string, unknown>;
  };
  const connectionIdOf = async (client: TestClient) => {
    const { headers } = await ask(client, { whoami: true });
    return (headers as Record<string, string>).connectionId!;
  };
  const report = async (client: TestClient) =>
    (await ask(client, { report: true })).report as Report[];
  try {
    await deadline(program.main.ready, "main.ready", START);
    const a = await open(1, "/chat");
    const b = await open(2, "/chat");
    const c = await open(1, "/other/path");
    const d = await open(2, "/chat");
    const monitor = await open(1, "/monitor");

    await t.step(
      "a room publish reaches its members on both services and paths, and no one else",
      async () => {
        for (const member of [a, b, c]) {
          assert.deepEqual(await ask(member, { join: "lobby" }), {
            joined: "lobby",
          });
        }
        assert.deepEqual(await ask(a, { join: "lobby" }), { joined: "lobby" });
        a.send(JSON.stringify({ say: "lobby", text: "hello lobby" }));
        for (const member of [a, b, c]) {
          assert.equal(await member.next(), "hello lobby");
        }
        assert.deepEqual(await ask(d, { join: "marker" }), {
          joined: "marker",
        });
        d.send(JSON.stringify({ say: "marker", text: "marker" }));
        assert.equal(await d.next(), "marker", "d got nothing before");
        assert.equal(a.pending + b.pending + c.pending, 0, "joined twice");
      },
    );

    await t.step(
      "the report shows each service's rooms and sizes",
      async () => {
        assert.deepEqual(await report(a), [
          {
            service: "WebSocketService",
            pool: "web1",
            connections: 3,
            rooms: { lobby: 2 },
          },
          {
            service: "WebSocketService",
            pool: "web2",
            connections: 2,
            rooms: { lobby: 1, marker: 1 },
          },
        ]);
      },
    );

    await t.step("a connection that left gets nothing more", async () => {
      assert.deepEqual(await ask(b, { leave: "lobby" }), {
        left: "lobby",
        was: true,
      });
      assert.deepEqual(await ask(b, { leave: "lobby" }), {
        left: "lobby",
        was: false,
      });
      a.send(JSON.stringify({ say: "lobby", text: "after b left" }));
      assert.equal(await a.next(), "after b left");
      assert.equal(await c.next(), "after b left");
      b.send(JSON.stringify({ say: "marker", text: "b's marker" }));
      d.send(JSON.stringify({ say: "marker", text: "d's marker" }));
      assert.equal(await d.next(), "b's marker");
      assert.equal(await d.next(), "d's marker");
      assert.equal(b.pending, 0, "b got a lobby message");
    });

    await t.step(
      "a closed connection has left its rooms, and cannot join one",
      async () => {
        const gone = await open(1, "/chat");
        const id = await connectionIdOf(gone);
        assert.deepEqual(await ask(gone, { join: "lobby" }), {
          joined: "lobby",
        });
        assert.deepEqual((await report(a))[0]!.rooms, { lobby: 3 });
        assert.deepEqual(await ask(gone, { join: "solo" }), { joined: "solo" });
        await gone.close(1000, "bye");
        assert.deepEqual(await monitor.nextJson(), { disconnected: id });
        assert.deepEqual((await report(a))[0], {
          service: "WebSocketService",
          pool: "web1",
          connections: 3,
          rooms: { lobby: 2 },
        });
      },
    );

    await t.step(
      `joining past maxRoomsPerConnection fails with a RoomError naming the limit`,
      async () => {
        const e = await open(2, "/chat");
        const connectionId = await connectionIdOf(e);
        for (const room of ["r1", "r2", "r3"]) {
          assert.deepEqual(await ask(e, { join: room }), { joined: room });
        }
        assert.deepEqual(await ask(e, { join: "r4" }), {
          error: {
            name: "RoomError",
            reason: "limit",
            message:
              `Cannot join room "r4": connection ${connectionId} is in 3 rooms already`,
          },
        });
        assert.deepEqual(await ask(e, { join: "r1" }), { joined: "r1" });
        assert.deepEqual(await ask(e, { leave: "r1" }), {
          left: "r1",
          was: true,
        });
        assert.deepEqual(await ask(e, { join: "r4" }), { joined: "r4" });
        await e.close();
        assert.deepEqual(await monitor.nextJson(), {
          disconnected: connectionId,
        });
        assert.deepEqual(await ask(d, { joinAs: connectionId, room: "r5" }), {
          error: {
            name: "RoomError",
            reason: "closed",
            message:
              `Cannot join room "r5": connection ${connectionId} is closed`,
          },
        });
      },
    );

    await t.step(
      "authorize's headers arrive in meta: the consumer joins each user's tabs to the user's room",
      async () => {
        const tab1 = await open(1, "/chat?user=ann");
        const tab2 = await open(2, "/chat?user=ann");
        const bob = await open(1, "/chat?user=bob");
        for (
          const [client, room] of [[tab1, "ann"], [tab2, "ann"], [
            bob,
            "bob",
          ]] as const
        ) {
          assert.deepEqual(await client.nextJson(), {
            welcome: `user-${room}`,
          });
        }
        const { headers } = await ask(tab2, { whoami: true });
        const { user, controlQueue } = headers as Record<string, string>;
        assert.equal(user, "ann");
        assert.match(
          controlQueue!,
          /^ws:\/\/control\/WebSocketService\/[0-9a-f-]{36}$/,
        );
        bob.send(JSON.stringify({ say: "user-ann", text: "for ann's tabs" }));
        bob.send(JSON.stringify({ say: "user-bob", text: "for bob" }));
        assert.equal(await tab1.next(), "for ann's tabs");
        assert.equal(await tab2.next(), "for ann's tabs");
        assert.equal(await bob.next(), "for bob", "bob got ann's first");
      },
    );

    await t.step("stopping the program closes every client", async () => {
      const stopped = await deadline(program.stop(), "the program's stop");
      assert.deepEqual(stopped.failures, []);
    });
  } finally {
    await program.stop();
    await Promise.all(clients.map((c) => c.close()));
  }
});
