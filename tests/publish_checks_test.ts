import assert from "node:assert/strict";
import { checkHeadersShape } from "../src/bus/headers.ts";
import { validateQueueName } from "../src/queue_name.ts";
import { checkReplyQueue } from "../src/bus/requests.ts";

Deno.test("checkHeadersShape() says what is wrong with headers that are not an object", () => {
  checkHeadersShape("q://a", undefined);
  checkHeadersShape("q://a", {});
  checkHeadersShape("q://a", Object.freeze({ a: "1" }));
  const cases: Array<[unknown, string]> = [
    [null, "null"],
    ["abc", 'string "abc"'],
    [42, 'number "42"'],
    [["a"], "an array"],
  ];
  for (const [headers, got] of cases) {
    assert.throws(() => checkHeadersShape("q://a", headers), {
      name: "TypeError",
      message:
        `Cannot publish on "q://a": headers must be an object of strings, got ${got}`,
    });
  }
});

Deno.test("checkReplyQueue() refuses a reply:// name no request made", () => {
  checkReplyQueue("reply://0/0/0");
  checkReplyQueue("reply://3/12/99");
  checkReplyQueue("q://reply/bogus");
  for (
    const bogus of [
      "reply://bogus",
      "reply://1/2",
      "reply://1/2/3/4",
      "reply://01/2/3",
      "reply://-1/2/3",
      "reply://a/b/c",
    ]
  ) {
    assert.throws(() => checkReplyQueue(bogus), {
      name: "QueueNameError",
      message: new RegExp(`reply:// is reserved for replies`),
    }, bogus);
  }
});

Deno.test("queue names refuse zero-width and other invisible characters", () => {
  for (
    const [char, code] of [
      ["\u200B", "U+200B"],
      ["\u200C", "U+200C"],
      ["\u200D", "U+200D"],
      ["\u2060", "U+2060"],
      ["\uFEFF", "U+FEFF"],
      ["\u00AD", "U+00AD"],
      ["\u202E", "U+202E"],
      [" ", "U+0020"],
      ["\u00A0", "U+00A0"],
      ["\t", "U+0009"],
      ["\u0000", "U+0000"],
    ]
  ) {
    assert.throws(
      () => validateQueueName(`q://a${char}b`, "publish"),
      (error: Error) =>
        error.name === "QueueNameError" &&
        error.message.endsWith(`(${code}) at index 5`),
    );
  }
  validateQueueName("q://orders/é/日本/🙂", "publish");
});
