/**
 * How durable patterns relate to subscription patterns: a durable pattern
 * is a stream (like a JetStream stream's subject), and a subscription is
 * durable when its pattern lies inside one stream's pattern.
 *
 * @module
 */

/** Splits `scheme://a/b` into the scheme and its path segments. */
function split(name: string): { scheme: string; segments: string[] } {
  const separator = name.indexOf("://");
  return {
    scheme: name.slice(0, separator),
    segments: name.slice(separator + 3).split("/"),
  };
}

/**
 * Whether every queue `inner` matches is matched by `outer` (both valid
 * names or patterns, `*` one segment, a last `>` one or more).
 *
 * @example
 * ```ts
 * import { patternCovers } from "./patterns.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(patternCovers("q://jobs/>", "q://jobs/*"), true);
 * assert.equal(patternCovers("q://jobs/>", "q://jobs/a/b"), true);
 * assert.equal(patternCovers("q://jobs/*", "q://jobs/>"), false);
 * assert.equal(patternCovers("q://jobs/>", "q://>"), false);
 * ```
 */
export function patternCovers(outer: string, inner: string): boolean {
  const a = split(outer);
  const b = split(inner);
  if (a.scheme !== b.scheme) return false;
  for (let i = 0; i < a.segments.length; i++) {
    const segment = a.segments[i]!;
    const other = b.segments[i];
    if (other === undefined) return false;
    if (segment === ">") return true;
    if (other === ">") return false;
    if (segment !== "*" && (other === "*" || other !== segment)) return false;
  }
  return a.segments.length === b.segments.length;
}

/**
 * Whether some concrete queue name matches both `a` and `b`.
 *
 * @example
 * ```ts
 * import { patternsOverlap } from "./patterns.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(patternsOverlap("q://jobs/>", "q://*"), false);
 * assert.equal(patternsOverlap("q://jobs/>", "q://>"), true);
 * assert.equal(patternsOverlap("q://jobs/a", "q://*"), false);
 * assert.equal(patternsOverlap("q://jobs/a", "q://*\/a"), true);
 * ```
 */
export function patternsOverlap(a: string, b: string): boolean {
  const x = split(a);
  const y = split(b);
  if (x.scheme !== y.scheme) return false;
  const length = Math.max(x.segments.length, y.segments.length);
  for (let i = 0; i < length; i++) {
    const s = x.segments[i];
    const t = y.segments[i];
    if (s === undefined || t === undefined) return false;
    if (s === ">" || t === ">") return true;
    if (s !== "*" && t !== "*" && s !== t) return false;
  }
  return true;
}

/**
 * The dead-letter queue of `queue` (a name or a pattern):
 * `dlq://<scheme>/<path>`.
 *
 * @example
 * ```ts
 * import { deadLetterQueue } from "./patterns.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(deadLetterQueue("q://jobs/a"), "dlq://q/jobs/a");
 * ```
 */
export function deadLetterQueue(queue: string): string {
  const { scheme, segments } = split(queue);
  return `dlq://${scheme}/${segments.join("/")}`;
}
