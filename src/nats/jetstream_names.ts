/**
 * The names of the JetStream streams and consumers that hold durable queues.
 *
 * JetStream names cannot hold `.`, `*`, `>`, `/`, `\` or white space, so a
 * name is a readable part and a hash: the readable part is the pattern's
 * subject tokens after the namespace (`*` written `any`, `>` written `all`,
 * every character but ASCII letters, digits, `-` and `_` written `_`), joined
 * by `_` and cut at 48 characters; the hash is FNV-1a (32 bits, 8 hex
 * digits) of the exact identity, so two patterns that read alike never
 * share a name.
 *
 * - Stream of durable pattern `p` in namespace `ns`:
 *   `<ns>_<readable(p)>-<fnv1a("<ns> <p>")>`.
 * - Consumer of a group: `g_<group>_<readable(pattern)>-<fnv1a("g <group>
 *   <pattern>")>`; of a service without a group, `s_<service>_…` with
 *   `fnv1a("s <service> <pattern>")` (group and service names readable as
 *   above).
 *
 * @module
 */
import { queueToSubject } from "./subject.ts";

const READABLE_LIMIT = 48;
const encoder = new TextEncoder();

/**
 * FNV-1a (32 bits) of the UTF-8 bytes of `text`, as 8 hex digits.
 *
 * @example
 * ```ts
 * import { fnv1a } from "./jetstream_names.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(fnv1a(""), "811c9dc5");
 * assert.equal(fnv1a("a"), "e40c292c");
 * ```
 */
export function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

/** A token or name as JetStream takes it in a name. */
function readable(text: string): string {
  if (text === "*") return "any";
  if (text === ">") return "all";
  return text.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** The readable part of a pattern: its subject tokens after the namespace. */
function readablePattern(pattern: string, namespace: string): string {
  const tokens = queueToSubject(pattern, namespace).split(".").slice(1);
  return tokens.map(readable).join("_").slice(0, READABLE_LIMIT);
}

/**
 * The JetStream stream of the durable pattern `pattern`.
 *
 * @example
 * ```ts
 * import { streamName } from "./jetstream_names.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(streamName("mf", "q://jobs/>"), /^mf_q_jobs_all-[0-9a-f]{8}$/);
 * assert.notEqual(streamName("mf", "q://a_b"), streamName("mf", "q://a/b"));
 * ```
 */
export function streamName(namespace: string, pattern: string): string {
  return `${namespace}_${readablePattern(pattern, namespace)}-${
    fnv1a(`${namespace} ${pattern}`)
  }`;
}

/**
 * The durable consumer of a subscription to `pattern`: one per (pattern,
 * group), else one per (pattern, service).
 *
 * @example
 * ```ts
 * import { consumerName } from "./jetstream_names.ts";
 * import assert from "node:assert/strict";
 *
 * assert.match(
 *   consumerName("mf", "q://jobs/>", "workers", "Worker"),
 *   /^g_workers_q_jobs_all-[0-9a-f]{8}$/,
 * );
 * assert.match(
 *   consumerName("mf", "q://jobs/*", undefined, "Mail sender"),
 *   /^s_Mail_sender_q_jobs_any-[0-9a-f]{8}$/,
 * );
 * ```
 */
export function consumerName(
  namespace: string,
  pattern: string,
  group: string | undefined,
  service: string,
): string {
  const [kind, name] = group !== undefined ? ["g", group] : ["s", service];
  return `${kind}_${readable(name).slice(0, READABLE_LIMIT)}_${
    readablePattern(pattern, namespace)
  }-${fnv1a(`${kind} ${name} ${pattern}`)}`;
}
