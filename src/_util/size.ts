/** Values a size estimate looks at before it guesses the rest. */
const NODE_BUDGET = 64;
/** What a value counts for beyond its strings and bytes. */
const VALUE_BYTES = 16;
const stack: unknown[] = [];

/**
 * About how many bytes `value` takes on the wire: string lengths (two bytes
 * a character at worst) and binary byte lengths, plus a little per value,
 * looking at no more than 64 values. It bounds batches between pools, so
 * that a run of large messages never becomes one huge batch; it is not a
 * measure of memory.
 *
 * @example
 * ```ts
 * import { approximateSize } from "./size.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(approximateSize({ body: "x".repeat(1 << 20) }) >= 1 << 20);
 * assert.ok(approximateSize({ id: 1 }) < 100);
 * ```
 */
export function approximateSize(value: unknown): number {
  if (typeof value === "string") return VALUE_BYTES + 2 * value.length;
  if (typeof value !== "object" || value === null) return VALUE_BYTES;
  let bytes = 0;
  let budget = NODE_BUDGET;
  // One stack for every call: sizing a message allocates nothing.
  stack.length = 0;
  stack.push(value);
  while (stack.length > 0 && budget-- > 0) {
    const node = stack.pop();
    bytes += VALUE_BYTES;
    if (typeof node === "string") bytes += 2 * node.length;
    else if (typeof node !== "object" || node === null) continue;
    else if (ArrayBuffer.isView(node)) bytes += node.byteLength;
    else if (node instanceof ArrayBuffer) bytes += node.byteLength;
    else if (Array.isArray(node)) {
      for (let i = 0; i < node.length && stack.length < budget; i++) {
        stack.push(node[i]);
      }
    } else if (node instanceof Map || node instanceof Set) {
      for (const entry of node) {
        if (stack.length >= budget) break;
        stack.push(entry);
      }
    } else {
      for (const key in node) {
        if (stack.length >= budget) break;
        stack.push((node as Record<string, unknown>)[key]);
      }
    }
  }
  stack.length = 0;
  return bytes;
}
