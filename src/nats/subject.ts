/**
 * Queue names ↔ NATS subjects.
 *
 * Queue `scheme://a/b/c` is subject `<namespace>.<scheme>.a.b.c`: the scheme
 * and each path segment become one token. A segment that is exactly `*` is
 * NATS's `*` and a last segment `>` is NATS's `>`, so a subscription pattern
 * maps to the subject pattern that matches the same names.
 *
 * **The escape rule.** A NATS token cannot be empty and cannot hold `.` (nor
 * white space, which no queue name holds), so in the scheme and in every
 * segment:
 *
 * - `%` is `%25` and `.` is `%2E`; nothing else is escaped (Unicode, `*` or
 *   `>` inside a longer segment, `:`, `~` … stay as they are);
 * - an empty segment (`q://a//b`) is the token `%` alone;
 * - a segment that is exactly `*` or `>` is a wildcard on both sides and is
 *   never escaped: a concrete queue name cannot hold one
 *   (`validateQueueName` refuses it), and NATS refuses to publish to one.
 *
 * So `q://orders/eu` is `mf.q.orders.eu`, `q://v1.2/50%` is
 * `mf.q.v1%2E2.50%25`, and `q://a//b` is `mf.q.a.%.b`. Decoding is the
 * inverse and strict: after the namespace, the first token is the scheme and
 * the others the segments; `%` alone is the empty text, otherwise `%2E` is
 * `.` and `%25` is `%`; a token that is not exactly the escape of its text
 * (any other `%`, `%2e`, an empty token) or a result that is not a valid
 * queue name or pattern decodes to nothing. So every queue has one subject
 * and every subject at most one queue. `docs/interop/subject.py` and
 * `subject.go` do the same in Python and Go.
 *
 * The namespace is one NATS token of letters, digits, `-` and `_` (`mf`,
 * `prod-eu`), never escaped: decoding strips it. It cannot hold a `.`: with
 * namespace `mf.q`, queue `orders://new` would be subject `mf.q.orders.new`,
 * which is queue `q://orders/new` of namespace `mf`. NATS's default control line (4 KiB) bounds a
 * subject: a queue name of at most 1,024 characters stays under it unless
 * most of them are escaped or outside the BMP.
 *
 * @module
 */

import { validateQueueName } from "../queue_name.ts";

/** Entries kept by each cache before it is cleared. */
const CACHE_LIMIT = 10_000;
/** Namespaces kept (each with its two caches) before all are dropped. */
const NAMESPACE_LIMIT = 100;
/** What a token cannot hold literally. */
const NEEDS_ESCAPE = /[.%]/;
/** The two escapes. */
const ESCAPES = /%2E|%25/g;
/** The first character a namespace cannot hold. */
const BAD_NAMESPACE_CHAR = /[^\p{L}\p{M}\p{Nd}_-]/u;

/** The two caches of one namespace. */
interface NamespaceCache {
  /** `namespace + "."`. */
  readonly prefix: string;
  /** Queue name or pattern → subject. */
  readonly subjects: Map<string, string>;
  /** Subject → queue name or pattern (`null`: it does not decode). */
  readonly queues: Map<string, string | null>;
}

const namespaces = new Map<string, NamespaceCache>();

/**
 * Checks that `namespace` can prefix our subjects and returns it.
 *
 * A namespace is one NATS token made of letters (of any script), digits,
 * `-` and `_` (`mf`, `prod-eu`): no `.` (two namespaces would then share
 * subjects), no wildcard, no white space, not empty, and no `$` (NATS keeps
 * `$SYS`, `$JS`, … for itself).
 *
 * @param namespace The namespace to check (any value).
 * @returns `namespace`, unchanged.
 * @throws {TypeError} When `namespace` is not a string.
 * @throws {RangeError} When the string is not a valid namespace; the message
 * says why.
 *
 * @example Accept one token, refuse the rest
 * ```ts
 * import { validateNamespace } from "./subject.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(validateNamespace("mf"), "mf");
 * assert.equal(validateNamespace("prod-eu"), "prod-eu");
 * assert.throws(() => validateNamespace("prod.eu"), {
 *   name: "RangeError",
 *   message:
 *     'Invalid NATS namespace "prod.eu": it holds "." at index 4 (a namespace is one NATS token: letters, digits, "-" and "_")',
 * });
 * assert.throws(() => validateNamespace("mf*"), RangeError);
 * assert.throws(() => validateNamespace(42), TypeError);
 * ```
 */
export function validateNamespace(namespace: unknown): string {
  if (typeof namespace !== "string") {
    throw new TypeError(
      `Invalid NATS namespace: it must be a string, not ${
        namespace === null ? "null" : typeof namespace
      }`,
    );
  }
  const reason = invalidNamespaceReason(namespace);
  if (reason !== undefined) {
    throw new RangeError(`Invalid NATS namespace "${namespace}": ${reason}`);
  }
  return namespace;
}

/**
 * The NATS subject of a queue name or subscription pattern.
 *
 * Results are cached per namespace (up to 10,000 names, then the cache is
 * cleared), so mapping a name again costs two `Map` lookups.
 *
 * @param queue A queue name (`q://orders/eu`) or pattern (`q://orders/*`).
 * @param namespace The subject prefix (see {@linkcode validateNamespace}).
 * @returns The subject, such as `mf.q.orders.eu` or `mf.q.orders.*`.
 * @throws {QueueNameError} When `queue` is not a valid name or pattern.
 * @throws {TypeError} When `queue` holds a lone surrogate (UTF-8, and so
 * NATS, cannot carry it), or `namespace` is not a string.
 * @throws {RangeError} When `namespace` is not a valid namespace.
 *
 * @example Map names, patterns and names that need escapes
 * ```ts
 * import { queueToSubject } from "./subject.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(queueToSubject("q://orders/eu", "mf"), "mf.q.orders.eu");
 * assert.equal(queueToSubject("q://orders/*", "mf"), "mf.q.orders.*");
 * assert.equal(queueToSubject("ws://outbound/>", "prod-eu"), "prod-eu.ws.outbound.>");
 * assert.equal(queueToSubject("q://v1.2/50%", "mf"), "mf.q.v1%2E2.50%25");
 * assert.equal(queueToSubject("q://a//b", "mf"), "mf.q.a.%.b");
 * assert.equal(queueToSubject("q://città/東京", "mf"), "mf.q.città.東京");
 * ```
 */
export function queueToSubject(queue: string, namespace: string): string {
  const cache = namespaces.get(namespace) ?? addNamespace(namespace);
  const cached = cache.subjects.get(queue);
  if (cached !== undefined) return cached;
  validateQueueName(queue, "subscribe");
  if (!queue.isWellFormed()) {
    throw new TypeError(
      `Cannot map queue "${queue}" to a NATS subject: it holds a lone surrogate`,
    );
  }
  const separator = queue.indexOf("://");
  let subject = cache.prefix + escapeToken(queue.slice(0, separator));
  for (const segment of queue.slice(separator + 3).split("/")) {
    subject += "." + escapeToken(segment);
  }
  if (cache.subjects.size >= CACHE_LIMIT) cache.subjects.clear();
  cache.subjects.set(queue, subject);
  return subject;
}

/**
 * The queue name or pattern of a NATS subject: the inverse of
 * {@linkcode queueToSubject}.
 *
 * Results are cached per namespace (up to 10,000 subjects, then the cache is
 * cleared).
 *
 * @param subject A NATS subject, from us or from any other client.
 * @param namespace The subject prefix (see {@linkcode validateNamespace}).
 * @returns The queue name or pattern, or `undefined` when `subject` is not
 * under `namespace` or is not exactly the encoding of a valid queue name or
 * pattern (a bad escape, lower-case hex, a needless escape, a raw character
 * that must be escaped, an empty token, invalid UTF-8, no path, …).
 * @throws {TypeError} When `namespace` is not a string.
 * @throws {RangeError} When `namespace` is not a valid namespace.
 *
 * @example Map subjects back, refuse foreign ones
 * ```ts
 * import { subjectToQueue } from "./subject.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(subjectToQueue("mf.q.orders.eu", "mf"), "q://orders/eu");
 * assert.equal(subjectToQueue("prod-eu.q.orders.>", "prod-eu"), "q://orders/>");
 * assert.equal(subjectToQueue("mf.q.v1%2E2.%.x", "mf"), "q://v1.2//x");
 * assert.equal(subjectToQueue("other.q.orders", "mf"), undefined);
 * assert.equal(subjectToQueue("mf.q", "mf"), undefined); // no path
 * assert.equal(subjectToQueue("mf.q.%2e", "mf"), undefined); // lower-case hex
 * assert.equal(subjectToQueue("mf.q.%41", "mf"), undefined); // needless escape
 * assert.equal(subjectToQueue("mf.q.a%20b", "mf"), undefined); // not an escape we write
 * ```
 */
export function subjectToQueue(
  subject: string,
  namespace: string,
): string | undefined {
  const cache = namespaces.get(namespace) ?? addNamespace(namespace);
  const cached = cache.queues.get(subject);
  if (cached !== undefined) return cached ?? undefined;
  const queue = decode(subject, cache.prefix);
  if (cache.queues.size >= CACHE_LIMIT) cache.queues.clear();
  cache.queues.set(subject, queue ?? null);
  return queue;
}

/** Validates `namespace` and makes its caches. */
function addNamespace(namespace: string): NamespaceCache {
  validateNamespace(namespace);
  if (namespaces.size >= NAMESPACE_LIMIT) namespaces.clear();
  const cache: NamespaceCache = {
    prefix: namespace + ".",
    subjects: new Map(),
    queues: new Map(),
  };
  namespaces.set(namespace, cache);
  return cache;
}

/** Why `namespace` is not valid, or `undefined` if it is. */
function invalidNamespaceReason(namespace: string): string | undefined {
  if (namespace.length === 0) return "it is empty";
  const bad = BAD_NAMESPACE_CHAR.exec(namespace);
  if (bad === null) return undefined;
  return `it holds ${
    JSON.stringify(bad[0])
  } at index ${bad.index} (a namespace is one NATS token: letters, digits, "-" and "_")`;
}

/** One scheme or segment as a token (see the escape rule above). */
function escapeToken(text: string): string {
  if (text.length === 0) return "%";
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replaceAll("%", "%25").replaceAll(".", "%2E");
}

/** The text of one token, or `undefined` if it is not a canonical token. */
function unescapeToken(token: string): string | undefined {
  if (token === "%") return "";
  const text = token.indexOf("%") === -1
    ? token
    : token.replace(ESCAPES, (escape) => escape === "%2E" ? "." : "%");
  // Canonical only: exactly what escapeToken() would have written.
  return escapeToken(text) === token ? text : undefined;
}

/** The queue of `subject` under `prefix`, or `undefined`. */
function decode(subject: string, prefix: string): string | undefined {
  if (!subject.startsWith(prefix)) return undefined;
  const tokens = subject.slice(prefix.length).split(".");
  if (tokens.length < 2) return undefined;
  const texts: string[] = [];
  for (const token of tokens) {
    const text = unescapeToken(token);
    if (text === undefined) return undefined;
    texts.push(text);
  }
  const queue = texts[0] + "://" + texts.slice(1).join("/");
  try {
    validateQueueName(queue, "subscribe");
  } catch {
    return undefined;
  }
  return queue;
}
