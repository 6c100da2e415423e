/**
 * snapshot() against structuredClone() on the messages a bus carries most.
 * Run with `deno bench bench/snapshot_bench.ts`.
 */
import { snapshot } from "../src/_util/snapshot.ts";

const COUNT = 1024;
const small = Array.from(
  { length: COUNT },
  (_, i) => ({ index: i, s: "hello" }),
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
  extra: undefined,
}));

let i = 0;
/** Keeps the copies alive so the work cannot be optimized away. */
export let sink: unknown;

Deno.bench({
  group: "clone small object",
  name: "structuredClone",
  baseline: true,
  fn(): void {
    sink = structuredClone(small[i++ & (COUNT - 1)]);
  },
});

Deno.bench({
  group: "clone small object",
  name: "snapshot",
  fn(): void {
    sink = snapshot(small[i++ & (COUNT - 1)]);
  },
});

Deno.bench({
  group: "clone nested object (10 fields)",
  name: "structuredClone",
  baseline: true,
  fn(): void {
    sink = structuredClone(nested[i++ & (COUNT - 1)]);
  },
});

Deno.bench({
  group: "clone nested object (10 fields)",
  name: "snapshot",
  fn(): void {
    sink = snapshot(nested[i++ & (COUNT - 1)]);
  },
});
