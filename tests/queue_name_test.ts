import assert from "node:assert/strict";
import { QueueNameError } from "../src/errors.ts";
import {
  isPattern,
  matchesQueue,
  QueueIndex,
  validateQueueName,
} from "../src/queue_name.ts";

// ---------------------------------------------------------------------------
// Matching

/** [pattern, queue, matches] */
const MATCHES: readonly [string, string, boolean][] = [
  ["q://orders", "q://orders", true],
  ["q://orders", "q://orders/eu", false],
  ["q://orders/eu", "q://orders", false],
  ["q://orders", "q://Orders", false],
  ["q://orders", "ws://orders", false],
  ["Q://orders", "q://orders", false],
  ["q://*", "q://orders", true],
  ["q://*", "ws://orders", false],
  ["q://*", "q://orders/eu", false],
  ["q://orders/*", "q://orders/eu", true],
  ["q://orders/*", "q://orders", false],
  ["q://orders/*", "q://orders/", true], // * matches the empty segment
  ["q://orders/*", "q://orders//", false],
  ["q://*/paid", "q://orders/paid", true],
  ["q://*/paid", "q://orders/open", false],
  ["q://*/*", "q://a/b", true],
  ["q://*/*", "q://a", false],
  ["q://>", "q://orders", true],
  ["q://>", "q://orders/eu/paid", true],
  ["q://>", "ws://orders", false],
  ["q://orders/>", "q://orders", false], // > needs at least one segment
  ["q://orders/>", "q://orders/eu", true],
  ["q://orders/>", "q://orders/eu/paid", true],
  ["q://orders/>", "q://orders/", true], // one (empty) segment
  ["q://*/>", "q://orders", false],
  ["q://*/>", "q://orders/eu/x", true],
  ["q://a*b", "q://a*b", true], // literal
  ["q://a*b", "q://axb", false],
  ["q://a>", "q://a>", true], // literal
  ["q://a>", "q://ab", false],
  ["q://orders/>x", "q://orders/eu", false],
  ["q://*", "q://*", true],
  ["q://orders", "q://orders/", false],
  ["q://orders/", "q://orders/", true],
  ["q:///a", "q:///a", true],
  ["q://*/a", "q:///a", true], // * matches the empty first segment
  ["reply://th1/*", "reply://th1/42", true],
  ["reply://th1/*", "reply://th2/42", false],
  ["ws://inbound/>", "ws://inbound/client/7", true],
  ["ws+tls.v1-2://x", "ws+tls.v1-2://x", true],
  ["q://*", "q://", false], // empty path
  ["orders", "orders", false], // no scheme
  ["q://orders", "orders", false],
];

for (const [pattern, queue, expected] of MATCHES) {
  Deno.test(`matchesQueue("${pattern}", "${queue}") is ${expected}`, () => {
    assert.equal(matchesQueue(pattern, queue), expected);
    // QueueIndex agrees, for patterns it accepts.
    let valid = true;
    try {
      validateQueueName(pattern, "subscribe");
      validateQueueName(queue, "subscribe");
    } catch {
      valid = false;
    }
    if (valid) {
      const index = new QueueIndex<string>();
      index.add(pattern, "v");
      assert.deepEqual(index.match(queue), expected ? ["v"] : []);
    }
  });
}

Deno.test("isPattern() finds wildcard segments only", () => {
  const cases: [string, boolean][] = [
    ["q://orders", false],
    ["q://*", true],
    ["q://>", true],
    ["q://orders/*", true],
    ["q://orders/>", true],
    ["q://*/eu", true],
    ["q://a*b", false],
    ["q://a>", false],
    ["q://**", false],
    ["q://orders/", false],
    ["q://", false],
    ["*://orders", false], // the scheme is not a path
    ["*", true], // no scheme: the whole name is the path
    ["a/>", true],
  ];
  for (const [name, expected] of cases) {
    assert.equal(isPattern(name), expected, name);
  }
});

// ---------------------------------------------------------------------------
// Validation

Deno.test("validateQueueName() accepts valid names and returns them", () => {
  const names = [
    "q://orders",
    "ws://inbound/client",
    "reply://th1/42",
    "ws://inbound/",
    "q:///",
    "a+b.c-d://x",
    "Q1://Ünïcödé/✓",
    "q://" + "x".repeat(1020),
  ];
  for (const name of names) {
    assert.equal(validateQueueName(name, "publish"), name);
    assert.equal(validateQueueName(name, "subscribe"), name);
  }
  for (const pattern of ["q://*", "q://>", "q://a/*/b/>", "q://*/*"]) {
    assert.equal(validateQueueName(pattern, "subscribe"), pattern);
  }
});

/** [name, use, message] */
const INVALID: readonly [unknown, "publish" | "subscribe", string][] = [
  ["", "publish", 'Invalid queue name "": it is empty'],
  [
    "orders",
    "publish",
    'Invalid queue name "orders": it has no scheme (expected scheme://path)',
  ],
  [
    "q:/orders",
    "subscribe",
    'Invalid queue name "q:/orders": it has no scheme (expected scheme://path)',
  ],
  [
    "://orders",
    "publish",
    'Invalid queue name "://orders": its scheme "" is invalid (expected a letter, then letters, digits, "+", "-" or ".")',
  ],
  [
    "1q://orders",
    "publish",
    'Invalid queue name "1q://orders": its scheme "1q" is invalid (expected a letter, then letters, digits, "+", "-" or ".")',
  ],
  [
    "q_x://orders",
    "subscribe",
    'Invalid queue name "q_x://orders": its scheme "q_x" is invalid (expected a letter, then letters, digits, "+", "-" or ".")',
  ],
  [
    "*://orders",
    "subscribe",
    'Invalid queue name "*://orders": its scheme "*" is invalid (expected a letter, then letters, digits, "+", "-" or ".")',
  ],
  [
    "q://",
    "publish",
    'Invalid queue name "q://": its path is empty (expected scheme://path)',
  ],
  [
    "q://my orders",
    "publish",
    'Invalid queue name "q://my orders": it contains white space or a control or invisible character (U+0020) at index 6',
  ],
  [
    "q://orders\n",
    "subscribe",
    'Invalid queue name "q://orders\n": it contains white space or a control or invisible character (U+000A) at index 10',
  ],
  [
    "q://a\u0000b",
    "publish",
    'Invalid queue name "q://a\u0000b": it contains white space or a control or invisible character (U+0000) at index 5',
  ],
  [
    "q://a\u00a0b",
    "publish",
    'Invalid queue name "q://a\u00a0b": it contains white space or a control or invisible character (U+00A0) at index 5',
  ],
  [
    "q://a\u0085",
    "publish",
    'Invalid queue name "q://a\u0085": it contains white space or a control or invisible character (U+0085) at index 5',
  ],
  [
    "q://orders/*",
    "publish",
    'Invalid queue name "q://orders/*": it contains a wildcard segment ("*" or ">"), which only a subscription may use',
  ],
  [
    "q://>",
    "publish",
    'Invalid queue name "q://>": it contains a wildcard segment ("*" or ">"), which only a subscription may use',
  ],
  [
    "q://>/orders",
    "subscribe",
    'Invalid queue name "q://>/orders": it has ">" before the last segment (">" may only end a pattern)',
  ],
  [
    "q://a/>/",
    "subscribe",
    'Invalid queue name "q://a/>/": it has ">" before the last segment (">" may only end a pattern)',
  ],
  [
    "q://>/a",
    "publish",
    'Invalid queue name "q://>/a": it has ">" before the last segment (">" may only end a pattern)',
  ],
  [42, "publish", 'Invalid queue name "42": it must be a string, not a number'],
  [
    undefined,
    "subscribe",
    'Invalid queue name "undefined": it must be a string, not undefined',
  ],
  [null, "publish", 'Invalid queue name "null": it must be a string, not null'],
  [
    Symbol("q"),
    "publish",
    'Invalid queue name "Symbol(q)": it must be a string, not a symbol',
  ],
  [
    { toString: (): string => "q://orders" },
    "publish",
    'Invalid queue name "q://orders": it must be a string, not an object',
  ],
  [
    Object.create(null),
    "publish",
    'Invalid queue name "[object Object]": it must be a string, not an object',
  ],
  [
    new String("q://orders"),
    "publish",
    'Invalid queue name "q://orders": it must be a string, not an object',
  ],
];

for (const [name, use, message] of INVALID) {
  const reason = message.slice(message.indexOf('": ') + 3);
  const label = typeof name === "string"
    ? JSON.stringify(name)
    : Object.prototype.toString.call(name);
  Deno.test(`validateQueueName(${label}, "${use}") throws: ${reason}`, () => {
    const error = (() => {
      try {
        validateQueueName(name, use);
      } catch (e) {
        return e;
      }
      assert.fail("expected a QueueNameError");
    })();
    assert.ok(error instanceof QueueNameError);
    assert.ok(error instanceof TypeError);
    assert.equal(error.name, "QueueNameError");
    assert.equal(error.message, message);
  });
}

Deno.test("validateQueueName() refuses names over 1024 characters", () => {
  const longest = "q://" + "x".repeat(1020);
  assert.equal(validateQueueName(longest, "publish"), longest);
  const tooLong = longest + "x";
  assert.throws(() => validateQueueName(tooLong, "subscribe"), (error) => {
    assert.ok(error instanceof QueueNameError);
    assert.equal(error.queue, tooLong);
    assert.match(error.message, /: it has 1025 characters \(at most 1024\)$/);
    return true;
  });
});

Deno.test("validateQueueName() keeps refusing a cached name's wildcard form", () => {
  assert.equal(validateQueueName("q://cached/a", "publish"), "q://cached/a");
  assert.equal(validateQueueName("q://cached/a", "publish"), "q://cached/a");
  assert.equal(validateQueueName("q://cached/a", "subscribe"), "q://cached/a");
  assert.throws(
    () => validateQueueName("q://cached/*", "publish"),
    QueueNameError,
  );
  // A pattern accepted for subscribing is not remembered as publishable.
  assert.equal(validateQueueName("q://sub/*", "subscribe"), "q://sub/*");
  assert.throws(
    () => validateQueueName("q://sub/*", "publish"),
    QueueNameError,
  );
});

Deno.test("validateQueueName() still validates after its cache fills up", () => {
  for (let i = 0; i < 10_050; i++) {
    const name = `q://many/${i}`;
    assert.equal(validateQueueName(name, "publish"), name);
  }
  assert.equal(validateQueueName("q://many/0", "publish"), "q://many/0");
  assert.throws(
    () => validateQueueName("q://many/*", "publish"),
    QueueNameError,
  );
});

// ---------------------------------------------------------------------------
// QueueIndex

Deno.test("QueueIndex.match() returns exact and wildcard values in add order", () => {
  const index = new QueueIndex<string>();
  index.add("q://orders/>", "1 tail");
  index.add("q://orders/eu", "2 exact");
  index.add("q://*/eu", "3 star");
  index.add("ws://orders/eu", "4 other scheme");
  index.add("q://orders/eu", "5 exact again");
  index.add("q://orders/*", "6 star");
  index.add("q://orders/us", "7 other name");
  assert.deepEqual(index.match("q://orders/eu"), [
    "1 tail",
    "2 exact",
    "3 star",
    "5 exact again",
    "6 star",
  ]);
  assert.deepEqual(index.match("q://orders/us"), [
    "1 tail",
    "6 star",
    "7 other name",
  ]);
  assert.deepEqual(index.match("q://orders/eu/x"), ["1 tail"]);
  assert.deepEqual(index.match("ws://orders/eu"), ["4 other scheme"]);
  assert.deepEqual(index.match("q://nothing"), []);
  assert.equal(index.size, 7);
});

Deno.test("QueueIndex.match() with only exact names", () => {
  const index = new QueueIndex<number>();
  index.add("q://a", 1);
  index.add("q://b", 2);
  index.add("q://a", 3);
  assert.deepEqual(index.match("q://a"), [1, 3]);
  assert.deepEqual(index.match("q://b"), [2]);
  assert.deepEqual(index.match("q://c"), []);
  assert.deepEqual(index.match("not a name"), []);
});

Deno.test("QueueIndex.match() returns the same frozen array until a change", () => {
  const index = new QueueIndex<string>();
  index.add("q://a/*", "x");
  const first = index.match("q://a/b");
  assert.equal(index.match("q://a/b"), first);
  assert.ok(Object.isFrozen(first));
  assert.ok(Object.isFrozen(index.match("q://none")));
  assert.throws(() => (first as string[]).push("y"), TypeError);
});

Deno.test("QueueIndex cache is invalidated by add() and remove()", () => {
  const index = new QueueIndex<string>();
  index.add("q://a", "exact");
  assert.deepEqual(index.match("q://a"), ["exact"]);
  assert.deepEqual(index.match("q://b"), []);

  index.add("q://*", "star");
  assert.deepEqual(index.match("q://a"), ["exact", "star"]);
  assert.deepEqual(index.match("q://b"), ["star"]);

  index.add("q://b", "exact b");
  assert.deepEqual(index.match("q://b"), ["star", "exact b"]);
  assert.deepEqual(index.match("q://a"), ["exact", "star"]);

  assert.equal(index.remove("q://*", "star"), true);
  assert.deepEqual(index.match("q://a"), ["exact"]);
  assert.deepEqual(index.match("q://b"), ["exact b"]);

  assert.equal(index.remove("q://a", "exact"), true);
  assert.deepEqual(index.match("q://a"), []);
  assert.deepEqual(index.match("q://b"), ["exact b"]);
  assert.equal(index.size, 1);
});

Deno.test("QueueIndex.match() stays right past its cache limit", () => {
  const index = new QueueIndex<string>();
  index.add("q://n/*", "star");
  index.add("q://n/5", "five");
  for (let i = 0; i < 10_050; i++) {
    const expected = i === 5 ? ["star", "five"] : ["star"];
    assert.deepEqual(index.match(`q://n/${i}`), expected);
  }
  assert.deepEqual(index.match("q://n/5"), ["star", "five"]);
  index.add("q://n/7", "seven");
  assert.deepEqual(index.match("q://n/7"), ["star", "seven"]);
});

Deno.test("QueueIndex counts duplicates and remove() takes one, the latest", () => {
  const index = new QueueIndex<string>();
  index.add("q://a", "h");
  index.add("q://a", "other");
  index.add("q://a", "h");
  assert.equal(index.size, 3);
  assert.deepEqual(index.match("q://a"), ["h", "other", "h"]);
  assert.equal(index.remove("q://a", "h"), true);
  assert.deepEqual(index.match("q://a"), ["h", "other"]);
  assert.equal(index.remove("q://a", "h"), true);
  assert.deepEqual(index.match("q://a"), ["other"]);
  assert.equal(index.remove("q://a", "h"), false);
  assert.equal(index.size, 1);

  index.add("q://*", "w");
  index.add("q://a", "x");
  index.add("q://*", "w");
  assert.deepEqual(index.match("q://a"), ["other", "w", "x", "w"]);
  assert.equal(index.remove("q://*", "w"), true);
  assert.deepEqual(index.match("q://a"), ["other", "w", "x"]);
  assert.equal(index.remove("q://*", "w"), true);
  assert.equal(index.remove("q://*", "w"), false);
  assert.deepEqual(index.match("q://a"), ["other", "x"]);
  assert.equal(index.size, 2);
});

Deno.test("QueueIndex.remove() needs the same pattern and value", () => {
  const handler = (): void => {};
  const index = new QueueIndex<() => void>();
  index.add("q://a/*", handler);
  assert.equal(index.remove("q://a/>", handler), false);
  assert.equal(index.remove("q://a/*", () => {}), false);
  assert.equal(index.remove("q://a/b", handler), false);
  assert.equal(index.remove("not valid", handler), false);
  assert.equal(index.size, 1);
  assert.equal(index.remove("q://a/*", handler), true);
  assert.equal(index.size, 0);
  assert.deepEqual(index.match("q://a/b"), []);

  const numbers = new QueueIndex<number>();
  numbers.add("q://n", NaN);
  assert.equal(numbers.remove("q://n", NaN), true);
});

Deno.test("QueueIndex.patterns() lists distinct names and patterns", () => {
  const index = new QueueIndex<number>();
  index.add("q://a", 1);
  index.add("q://*", 2);
  index.add("q://a", 3);
  index.add("q://b/>", 4);
  assert.deepEqual([...index.patterns()], ["q://a", "q://*", "q://b/>"]);
  index.remove("q://a", 1);
  assert.deepEqual([...index.patterns()], ["q://a", "q://*", "q://b/>"]);
  index.remove("q://a", 3);
  assert.deepEqual([...index.patterns()], ["q://*", "q://b/>"]);
  index.add("q://a", 5);
  assert.deepEqual([...index.patterns()], ["q://*", "q://b/>", "q://a"]);
});

Deno.test("QueueIndex.add() refuses invalid patterns and changes nothing", () => {
  const index = new QueueIndex<number>();
  for (const bad of ["", "orders", "q://>/a", "q://a b", "q://"]) {
    assert.throws(() => index.add(bad, 1), QueueNameError, bad);
  }
  assert.equal(index.size, 0);
  assert.deepEqual([...index.patterns()], []);
});

Deno.test("validateQueueName() checks a reply:// name each time, valid or not (reply names are not remembered)", () => {
  const reply = "reply://nats/mf._r.p1.0.1.7";
  for (let i = 0; i < 2; i++) {
    assert.equal(validateQueueName(reply, "publish"), reply);
    assert.equal(
      validateQueueName("reply://0/1/7", "publish"),
      "reply://0/1/7",
    );
    assert.throws(
      () => validateQueueName("reply://nats/>", "publish"),
      { name: "QueueNameError", message: /wildcard/ },
    );
    assert.throws(() => validateQueueName("reply://0/1/\u200b7", "publish"), {
      name: "QueueNameError",
      message: /U\+200B/,
    });
  }
});
