/**
 * What our publishers say of a message on NATS (`src/nats/arrival.ts`): the
 * publisher and what its process got, in a header or the payload's first
 * line, read back exactly, and a plain client's bytes left whole.
 */
import assert from "node:assert/strict";
import type { Msg } from "../src/nats/client.ts";
import {
  fromOf,
  fromValue,
  handledHere,
  parseFrom,
} from "../src/nats/arrival.ts";

const encoder = new TextEncoder();

/** A message as the client hands it over, with `data` and no headers. */
function message(data: Uint8Array): Msg {
  return { data, headers: undefined } as unknown as Msg;
}

Deno.test("fromValue() and parseFrom() carry any pool and service name, and the mark", () => {
  for (
    const [pool, service] of [["web", "Api"], ["città 1", "a/b%c"], ["", ""]]
  ) {
    const value = fromValue("0123456789abcdef", "plain", pool!, service!);
    assert.doesNotMatch(value, /[\r\n]/);
    assert.deepEqual(parseFrom(value), {
      process: "0123456789abcdef",
      handled: "plain",
      pool,
      service,
    });
  }
  assert.equal(parseFrom("not ours"), undefined);
});

Deno.test("fromOf() reads the payload's first line, and leaves a plain client's bytes that start with NUL whole", () => {
  const line = `\u0000${fromValue("p1", "all", "a", "S")}\n`;
  const ours = fromOf(message(encoder.encode(`${line}{"x":1}`)));
  assert.equal(ours.from?.pool, "a");
  assert.equal(new TextDecoder().decode(ours.payload), '{"x":1}');
  assert.ok(handledHere(ours.from, "p1", "group"));
  assert.ok(!handledHere(ours.from, "p2", "plain"));
  const bytes = new Uint8Array([0, 1, 2, 10, 3]);
  const plain = fromOf(message(bytes));
  assert.equal(plain.from, undefined);
  assert.deepEqual(plain.payload, bytes);
});
