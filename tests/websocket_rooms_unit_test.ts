/**
 * Rooms without workers: room names, the registry, and one WebSocketService
 * on the real bus in the test's thread answering joinRoom / leaveRoom /
 * roomReport. The same across worker pools is in websocket_rooms_test.ts.
 */
import assert from "node:assert/strict";
import type { MessageMeta } from "../src/service_context.ts";
import type { Connection } from "../src/websocket/connection.ts";
import {
  joinRoom,
  leaveRoom,
  RoomError,
  roomQueue,
  roomReport,
  validateRoomName,
} from "../src/websocket/mod.ts";
import { RoomRegistry } from "../src/websocket/room_registry.ts";
import { SERVICE_POOL, startService } from "./fixtures/websocket_harness.ts";

Deno.test("validateRoomName() accepts one queue segment and refuses the rest", () => {
  for (const room of ["lobby", "a*b", "user:ann", "table-7", "é", ">x"]) {
    assert.equal(validateRoomName(room), room);
  }
  const refused: Array<[unknown, RegExp]> = [
    ["", /may not be empty/],
    ["*", /may not be "\*" or ">"/],
    [">", /may not be "\*" or ">"/],
    ["a/b", /one segment: no "\/"/],
    ["a b", /white space or a control or invisible character \(at index 1\)/],
    ["a\u0001", /a control or invisible character/],
    ["a\u200Bb", /a control or invisible character \(at index 1\)/],
    [42, /must be a string/],
    ["x".repeat(1015), /at most 1014 characters, got 1015/],
  ];
  for (const [room, message] of refused) {
    assert.throws(() => validateRoomName(room), {
      name: "QueueNameError",
      message,
    }, String(room));
  }
  assert.equal(validateRoomName("x".repeat(1014)).length, 1014);
  assert.throws(() => roomQueue("a b"), {
    message:
      'Invalid room name "a b": a room name may not contain white space or a control or invisible character (at index 1)',
  });
  assert.throws(() => validateRoomName(42), {
    message: "Invalid room name 42: a room name must be a string",
  });
});

Deno.test("RoomRegistry joins, leaves, counts, and holds a connection to its limit", () => {
  const registry = new RoomRegistry(2);
  const a = { id: "a", open: true } as Connection;
  const b = { id: "b", open: true } as Connection;
  assert.deepEqual(registry.join(a, "x"), { kind: "joined" });
  assert.deepEqual(registry.join(a, "x"), { kind: "joined" });
  assert.deepEqual(registry.join(b, "x"), { kind: "joined" });
  assert.deepEqual(registry.join(a, "y"), { kind: "joined" });
  assert.deepEqual(registry.join(a, "z"), {
    kind: "refused",
    connectionId: "a",
    reason: "limit",
    message: 'Cannot join room "z": connection a is in 2 rooms already',
  });
  assert.deepEqual(registry.join(a, "y"), { kind: "joined" }, "already in");
  assert.deepEqual(registry.sizes(), { x: 2, y: 1 });
  assert.deepEqual([...registry.members("x")!], [a, b]);
  assert.deepEqual([...registry.membersOfQueue("ws://room/y")!], [a]);
  assert.equal(registry.membersOfQueue("ws://room/none"), undefined);
  assert.equal(registry.leave(a, "y"), true);
  assert.equal(registry.leave(a, "y"), false);
  assert.deepEqual(registry.sizes(), { x: 2 });
  registry.leaveAll(a);
  registry.leaveAll(b);
  assert.deepEqual(registry.sizes(), {});
  assert.deepEqual([...registry.roomsOf(a)], []);
});

Deno.test("WebSocketService answers joinRoom and leaveRoom: a room publish after the join reaches the connection", async () => {
  await using h = await startService({
    maxRoomsPerConnection: 2,
    authorize: () => ({ headers: { user: "ann", controlQueue: "forged" } }),
  });
  const a = await h.connect("/chat");
  const b = await h.connect("/chat");
  a.send("hi");
  const { meta } = await h.bed.next("ws://inbound/chat");
  const ctx = h.bed.context; // the test's own service: real request/reply
  assert.equal(meta.headers!.user, "ann");
  assert.match(meta.headers!.controlQueue!, /^ws:\/\/control\//, "not forged");

  await joinRoom(ctx, meta, "lobby");
  await ctx.publish(roomQueue("lobby"), "in the lobby");
  await ctx.publish("ws://outbound/chat", "marker");
  assert.equal(await a.next(), "in the lobby");
  assert.equal(await a.next(), "marker");
  assert.equal(await b.next(), "marker", "b is in no room");
  assert.deepEqual(h.service.rooms, { lobby: 1 });

  await joinRoom(ctx, meta, "second");
  await assert.rejects(joinRoom(ctx, meta, "third"), (error: unknown) => {
    assert.ok(error instanceof RoomError);
    assert.equal(error.reason, "limit");
    assert.equal(error.room, "third");
    assert.equal(error.connectionId, meta.headers!.connectionId);
    assert.equal(
      error.message,
      `Cannot join room "third": connection ${
        meta.headers!.connectionId
      } is in 2 rooms already`,
    );
    return true;
  });
  assert.equal(await leaveRoom(ctx, meta, "lobby"), true);
  assert.equal(await leaveRoom(ctx, meta, "lobby"), false);
  assert.deepEqual(await roomReport(ctx), [{
    service: "WebSocketService",
    pool: SERVICE_POOL,
    connections: 2,
    rooms: { second: 1 },
  }]);

  await a.close();
  await h.bed.next("ws://disconnected/chat");
  assert.deepEqual(h.service.rooms, {}, "a left its rooms when it closed");
  await assert.rejects(joinRoom(ctx, meta, "lobby"), {
    name: "RoomError",
    reason: "closed",
    message: `Cannot join room "lobby": connection ${
      meta.headers!.connectionId
    } is closed`,
  });
  assert.equal(await leaveRoom(ctx, meta, "second"), false);
});

Deno.test("joinRoom() refuses a bad room or a meta that is not from a connection, before asking", async () => {
  const ctx = {
    request: () => Promise.reject(new Error("must not be asked")),
  };
  const meta = {
    headers: { connectionId: "c", controlQueue: "ws://control/x/y" },
  };
  await assert.rejects(joinRoom(ctx, meta, "a/b"), { name: "QueueNameError" });
  await assert.rejects(
    joinRoom(
      ctx,
      { headers: { connectionId: "c" } } as Pick<MessageMeta, "headers">,
      "lobby",
    ),
    {
      name: "TypeError",
      message:
        'Cannot join room "lobby": the message does not come from a WebSocket connection (no connectionId or controlQueue in meta.headers)',
    },
  );
  await assert.rejects(leaveRoom(ctx, {}, "lobby"), { name: "TypeError" });
});

Deno.test("WebSocketService ignores a malformed request on its control queue", async () => {
  await using h = await startService();
  const client = await h.connect("/chat");
  client.send("hi");
  const { meta } = await h.bed.next("ws://inbound/chat");
  const control = meta.headers!.controlQueue!;
  await h.bed.watch("test://reply/>");
  await h.bed.publish(
    control,
    { kind: "join", connectionId: "x", room: "a/b" },
    { replyTo: "test://reply/1" },
  );
  await h.bed.publish(control, { kind: "report" }, {
    replyTo: "test://reply/2",
  });
  const { data } = await h.bed.next("test://reply/2");
  assert.equal((data as { kind: string }).kind, "report");
  assert.deepEqual(h.bed.seen("test://reply/1"), [], "no reply to it");
  assert.deepEqual(h.warnings, [
    `Ignoring a malformed request on "${control}"`,
  ]);
});
