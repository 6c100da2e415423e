/**
 * The NATS payload codec (`src/nats/encoding.ts`) against bare JSON, per
 * message: encode + decode of a small object, as a pool joined to NATS does for every
 * message it sends and receives. Run with
 * `deno bench bench/nats_encoding_bench.ts`.
 *
 * The baseline is what the raw-client yardstick of `bench/nats_bench.ts`
 * does: `JSON.stringify` + `TextEncoder.encode`, then `TextDecoder.decode` +
 * `JSON.parse`. Ours adds the exact-JSON walk (encode) and the strict UTF-8
 * check (decode, no header).
 */
import { decodePayload, encodePayload } from "../src/nats/encoding.ts";

const COUNT = 1024;
const small = Array.from(
  { length: COUNT },
  (_, i) => ({ id: i, text: "hello", at: 1733100000000 + i }),
);
const nested = Array.from({ length: COUNT }, (_, i) => ({
  id: i,
  name: "order",
  qty: 3,
  price: 9.5,
  tags: ["new", "paid"],
  ok: true,
  note: null,
  meta: { by: "web", at: 1_700_000_000_000 + i },
  items: [{ sku: "s1", n: 1 }],
}));
const dated = small.map((m) => ({ ...m, at: new Date(m.at) }));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let i = 0;
/** Keeps the results alive so the work cannot be optimized away. */
export let sink: unknown;

for (
  const [group, messages] of [["small", small], ["nested", nested]] as const
) {
  Deno.bench({
    group: `encode+decode ${group} object`,
    name: "JSON.stringify + TextEncoder (bare)",
    baseline: true,
    fn(): void {
      const bytes = encoder.encode(JSON.stringify(messages[i++ & (COUNT - 1)]));
      sink = JSON.parse(decoder.decode(bytes));
    },
  });
  Deno.bench({
    group: `encode+decode ${group} object`,
    name: "encodePayload + decodePayload (no header)",
    fn(): void {
      const { payload } = encodePayload(messages[i++ & (COUNT - 1)]);
      sink = decodePayload(payload, undefined);
    },
  });
  Deno.bench({
    group: `encode+decode ${group} object`,
    name: "encodePayload + decodePayload (json header)",
    fn(): void {
      const { payload, encoding } = encodePayload(messages[i++ & (COUNT - 1)]);
      sink = decodePayload(payload, encoding);
    },
  });
}

Deno.bench({
  group: "encode small object",
  name: "JSON.stringify + TextEncoder (bare)",
  baseline: true,
  fn(): void {
    sink = encoder.encode(JSON.stringify(small[i++ & (COUNT - 1)]));
  },
});
Deno.bench({
  group: "encode small object",
  name: "encodePayload",
  fn(): void {
    sink = encodePayload(small[i++ & (COUNT - 1)]);
  },
});

Deno.bench({
  group: "structured (a Date inside)",
  name: "structuredClone (for scale)",
  baseline: true,
  fn(): void {
    sink = structuredClone(dated[i++ & (COUNT - 1)]);
  },
});
Deno.bench({
  group: "structured (a Date inside)",
  name: "encodePayload + decodePayload",
  fn(): void {
    const { payload, encoding } = encodePayload(dated[i++ & (COUNT - 1)]);
    sink = decodePayload(payload, encoding);
  },
});
