/**
 * The shared history without NATS: two servers' `SharedHistory` over one
 * recording log that keeps an id once (as JetStream's dedupe does) append
 * every message they both receive, and the log holds each once, in the
 * publishers' order; messages alike are kept apart; frames keep their kind.
 */
import assert from "node:assert/strict";
import type {
  SharedLog,
  SharedLogEntry,
  SharedStore,
  SharedTable,
} from "../src/transport/remote.ts";
import type { MessageMeta } from "../src/service_context.ts";
import {
  type SharedEntry,
  SharedHistory,
} from "../src/websocket/shared_history.ts";

/** A log and a table in memory; the log keeps an id once. */
function memoryStore(): SharedStore & { entries: SharedLogEntry[] } {
  const entries: SharedLogEntry[] = [];
  const ids = new Map<string, number>();
  const followers = new Set<(entry: SharedLogEntry) => void>();
  const records = new Map<string, Uint8Array>();
  const log: SharedLog = {
    append(key, data, id): Promise<number> {
      const known = ids.get(id);
      if (known !== undefined) return Promise.resolve(known);
      const entry = { seq: entries.length + 1, key, data };
      entries.push(entry);
      ids.set(id, entry.seq);
      for (const each of followers) each(entry);
      return Promise.resolve(entry.seq);
    },
    bounds: () => Promise.resolve({ first: 1, last: entries.length }),
    read: (after, until) =>
      Promise.resolve(
        entries.filter(({ seq }) => seq > after && seq <= until),
      ),
    follow(_after, each): { stop(): Promise<void> } {
      followers.add(each);
      return {
        stop: () => Promise.resolve(void followers.delete(each)),
      };
    },
  };
  const table: SharedTable = {
    get: (key) => Promise.resolve(records.get(key)),
    put: (key, value) => Promise.resolve(void records.set(key, value)),
    delete: (key) => Promise.resolve(void records.delete(key)),
  };
  return {
    entries,
    log: () => Promise.resolve(log),
    table: () => Promise.resolve(table),
  };
}

const LIMITS = { window: 60_000, maxPerStream: 100, maxTotalBytes: 1 << 20 };
const ignore = (): void => {};

function meta(queue: string, service = "Chat"): MessageMeta {
  return { queue, from: { pool: "web", service }, publishedAt: Date.now() };
}

Deno.test("SharedHistory: two servers appending what they both receive leave each message once, in the publisher's order; messages alike stay apart", async () => {
  const store = memoryStore();
  const seen: SharedEntry[] = [];
  const a = await SharedHistory.open(
    store,
    "ws",
    LIMITS,
    (e) => seen.push(e),
    ignore,
  );
  const b = await SharedHistory.open(store, "ws", LIMITS, ignore, ignore);
  try {
    const sent: Array<[string, string, MessageMeta]> = [
      ["ws://room/red", "hello", meta("ws://room/red")],
      ["ws://room/red", "hello", meta("ws://room/red")], // alike: kept too
      ["ws://outbound/s", "tick", meta("ws://outbound/s", "Clock")],
      ["ws://room/red", "bye", meta("ws://room/red")],
    ];
    // Server b receives them later than a (its appends are duplicates).
    for (const [, frame, m] of sent) await a.append(frame, m);
    for (const [, frame, m] of sent) await b.append(frame, m);
    assert.equal(store.entries.length, 4);
    assert.deepEqual(
      seen.map(({ offset, stream, frame }) => [offset, stream, frame]),
      sent.map(([stream, frame], i) => [i + 1, stream, frame]),
    );
    assert.equal(a.last, 4);
    assert.deepEqual(
      (await b.read(2, 4)).map((e) => e.frame),
      ["tick", "bye"],
    );
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("SharedHistory: binary frames come back as bytes, text as text; records round-trip", async () => {
  const store = memoryStore();
  const history = await SharedHistory.open(store, "ws", LIMITS, ignore, ignore);
  try {
    await history.append(new Uint8Array([0, 1, 255]), meta("ws://room/r"));
    await history.append("0", meta("ws://room/r"));
    assert.deepEqual(
      (await history.read(0, 2)).map((e) => e.frame),
      [new Uint8Array([0, 1, 255]), "0"],
    );
    const record = {
      connectionId: "c",
      path: "/s",
      replyTo: "ws://connection/ws/c",
      authorized: "{}",
      follows: [["ws://room/r", 0]] as Array<[string, number]>,
      seen: 1,
      owner: history.owner,
    };
    await history.write("id", record);
    assert.deepEqual(await history.record("id"), record);
    await history.forget("id");
    assert.equal(await history.record("id"), undefined);
  } finally {
    await history.stop();
  }
});
