import assert from "node:assert/strict";
import {
  queueToSubject,
  subjectToQueue,
  validateNamespace,
} from "../src/nats/subject.ts";
import { validateQueueName } from "../src/queue_name.ts";
import { ReplySubjects } from "../src/nats/replies.ts";
import { QueueNameError } from "../src/errors.ts";

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Pieces a generated segment is built from: the awkward ones often. */
const PIECES = [
  "a",
  "Z",
  "0",
  ".",
  "..",
  "%",
  "%2E",
  "%%",
  "*",
  ">",
  "a*b",
  ">x",
  ":",
  "-",
  "_",
  "~",
  "$",
  "é",
  "città",
  "東京",
  "😀",
  "👩‍👩‍👧",
  "\u0301",
  "ß",
  "Ω",
  "ﬁ",
  "\u{10FFFF}",
];
const SCHEMES = ["q", "ws", "reply", "a.b", "x+y-z", "Q1", "s.."];

function generateName(next: () => number): string {
  const pick = <T>(list: readonly T[]): T =>
    list[Math.floor(next() * list.length)] as T;
  const segments: string[] = [];
  const count = 1 + Math.floor(next() * 5);
  for (let i = 0; i < count; i++) {
    const roll = next();
    if (roll < 0.1) segments.push("");
    else if (roll < 0.15) segments.push("*");
    else if (roll < 0.18 && i === count - 1) segments.push(">");
    else {
      let segment = "";
      const pieces = 1 + Math.floor(next() * 4);
      for (let j = 0; j < pieces; j++) segment += pick(PIECES);
      segments.push(segment);
    }
  }
  return `${pick(SCHEMES)}://${segments.join("/")}`;
}

/** Whether `subject` is a well-formed NATS subject (tokens, wildcards). */
function isNatsSubject(subject: string): boolean {
  if (/[\s\p{Cc}]/u.test(subject)) return false;
  const tokens = subject.split(".");
  return tokens.every((token, i) =>
    token.length > 0 && (token !== ">" || i === tokens.length - 1)
  );
}

Deno.test("queueToSubject() maps the issue's examples and escapes what a token cannot hold", () => {
  assert.equal(queueToSubject("q://orders/eu", "mf"), "mf.q.orders.eu");
  assert.equal(queueToSubject("q://a/b/c", "mf"), "mf.q.a.b.c");
  assert.equal(queueToSubject("q://orders/*/x", "mf"), "mf.q.orders.*.x");
  assert.equal(queueToSubject("q://>", "mf"), "mf.q.>");
  assert.equal(queueToSubject("a.b://c", "mf"), "mf.a%2Eb.c");
  assert.equal(queueToSubject("q://%", "mf"), "mf.q.%25");
  assert.equal(queueToSubject("q:///", "mf"), "mf.q.%.%");
  assert.equal(queueToSubject("q://a*/>b", "mf"), "mf.q.a*.>b");
  assert.equal(queueToSubject("q://x", "prod-eu"), "prod-eu.q.x");
});

Deno.test("queueToSubject() refuses invalid names and lone surrogates", () => {
  assert.throws(() => queueToSubject("orders", "mf"), {
    name: "QueueNameError",
  });
  assert.throws(() => queueToSubject("q://a b", "mf"), {
    name: "QueueNameError",
  });
  assert.throws(() => queueToSubject("q://>/a", "mf"), {
    name: "QueueNameError",
  });
  assert.throws(() => queueToSubject("q://a\uD800", "mf"), {
    name: "TypeError",
    message: /lone surrogate/,
  });
  assert.throws(() => queueToSubject("q://a", ""), RangeError);
});

Deno.test("subjectToQueue() decodes only canonical subjects under its namespace", () => {
  assert.equal(subjectToQueue("mf.q.a.%.b", "mf"), "q://a//b");
  assert.equal(subjectToQueue("mf.a%2Eb.c%25", "mf"), "a.b://c%");
  assert.equal(subjectToQueue("mf.q.*.>", "mf"), "q://*/>");
  assert.equal(subjectToQueue("mf.q.東京", "mf"), "q://東京");
  for (
    const subject of [
      "mf",
      "mf.q",
      "mfx.q.a",
      "prod.q.a",
      "mf.q.%4",
      "mf.q.%zz",
      "mf.q.%e2%82%ac", // lower-case hex
      "mf.q.%E2%82", // cut UTF-8
      "mf.q.%FF",
      "mf.q.%2F", // needless escape ("/" needs none)
      "mf.q.%2A", // "*" needs none
      "mf.q.%09", // a tab: not in a queue name
      "mf.q.a\u00A0b", // raw white space from another client
      "mf.q.>.a",
      "mf.*.a",
      "mf.%.a",
      "mf.q.",
      "mf.q..a",
    ]
  ) {
    assert.equal(subjectToQueue(subject, "mf"), undefined, subject);
  }
  assert.equal(subjectToQueue("prod-eu.q.a", "prod-eu"), "q://a");
  assert.equal(subjectToQueue("prod-eu.q.a", "prod"), undefined);
  assert.equal(subjectToQueue("prod.eu.q.a", "prod"), "eu://q/a");
});

Deno.test("validateNamespace() accepts one NATS token and explains refusals", () => {
  for (const ns of ["mf", "prod-eu", "a-b_c", "名前", "X1", "_"]) {
    assert.equal(validateNamespace(ns), ns);
  }
  const refusals: Array<[unknown, string | RegExp]> = [
    ["", 'Invalid NATS namespace "": it is empty'],
    [
      "prod.eu",
      'Invalid NATS namespace "prod.eu": it holds "." at index 4 (a namespace is one NATS token: letters, digits, "-" and "_")',
    ],
    [".mf", /"\." at index 0/],
    ["a b", /" " at index 1/],
    ["a\tb", /"\\t" at index 1/],
    ["mf>", /">" at index 2/],
    ["a*", /"\*" at index 1/],
    ["$SYS", /"\$" at index 0/],
    ["a/b", /"\/" at index 1/],
  ];
  for (const [ns, message] of refusals) {
    assert.throws(() => validateNamespace(ns), { name: "RangeError", message });
  }
  assert.throws(() => validateNamespace(undefined), {
    name: "TypeError",
    message: "Invalid NATS namespace: it must be a string, not undefined",
  });
  assert.throws(() => validateNamespace(null), TypeError);
});

Deno.test("Two namespaces never share a subject: a dotted namespace is refused, not mapped onto another's queue", () => {
  // Before: namespace "mf.q" with queue orders://new and namespace "mf" with
  // q://orders/new were both subject mf.q.orders.new.
  assert.equal(queueToSubject("q://orders/new", "mf"), "mf.q.orders.new");
  assert.throws(() => queueToSubject("orders://new", "mf.q"), {
    name: "RangeError",
    message: /^Invalid NATS namespace "mf\.q": it holds "\."/,
  });
  assert.throws(() => subjectToQueue("mf.q.orders.new", "mf.q"), RangeError);
});

Deno.test("queueToSubject() and subjectToQueue() round-trip 20,000 generated names", () => {
  const next = random(9);
  let checked = 0;
  const seen = new Map<string, string>();
  for (let i = 0; i < 20_000; i++) {
    const name = generateName(next);
    try {
      validateQueueName(name, "subscribe");
    } catch {
      continue;
    }
    const namespace = i % 3 === 0 ? "prod-eu" : "mf";
    const subject = queueToSubject(name, namespace);
    assert.ok(isNatsSubject(subject), `${name} → ${subject}`);
    assert.equal(subjectToQueue(subject, namespace), name, subject);
    const earlier = seen.get(subject);
    assert.ok(earlier === undefined || earlier === name, "injective");
    seen.set(subject, name);
    checked++;
  }
  assert.ok(checked > 15_000, `only ${checked} generated names were valid`);
});

Deno.test("subjectToQueue() results map back to the same subject (generated subjects)", () => {
  const next = random(4);
  const tokens = ["q", "a", "%", "%25", "%2E", "%2e", "%41", "*", ">", "%20"];
  const extra = ["é", "%C3%A9", "%E6%9D%B1", "东", "x%", "%%"];
  const all = [...tokens, ...extra];
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    const count = 2 + Math.floor(next() * 4);
    const parts: string[] = ["mf"];
    for (let j = 0; j < count; j++) {
      parts.push(all[Math.floor(next() * all.length)] as string);
    }
    const subject = parts.join(".");
    const queue = subjectToQueue(subject, "mf");
    if (queue === undefined) continue;
    decoded++;
    assert.equal(queueToSubject(queue, "mf"), subject);
  }
  assert.ok(decoded > 300, `only ${decoded} generated subjects decoded`);
});

Deno.test("queueToSubject() is cached: 1,000,000 lookups of 100 names stay fast", () => {
  const names = Array.from({ length: 100 }, (_, i) => `q://orders/eu${i}`);
  for (const name of names) queueToSubject(name, "mf");
  const started = performance.now();
  let length = 0;
  for (let i = 0; i < 1_000_000; i++) {
    length += queueToSubject(names[i % 100] as string, "mf").length;
  }
  const ns = (performance.now() - started) * 1e6 / 1_000_000;
  assert.ok(length > 0);
  // About 20 ns here; a generous bound against a lost cache.
  assert.ok(ns < 500, `${ns.toFixed(0)} ns per cached lookup`);
});

// ---- the Python and Go pairs in docs/interop/ against ours -----------------

const INTEROP = new URL("../docs/interop/", import.meta.url);

/** Valid queue names and patterns that are awkward to map. */
const TRICKY_NAMES = [
  "q://orders/eu",
  "q://a//b",
  "q://a/",
  "q:///a",
  "q:////",
  "q://50%/%",
  "q://%",
  "q://%%/x%",
  "q://%25",
  "q://%2E",
  "q://%2e",
  "q://v1.2/a.b.",
  "q://./..",
  "a.b://x",
  "x+y-z://k",
  "q://orders/*",
  "q://orders/>",
  "q://*/x/>",
  "q://a*b/>x",
  "q://città/東京/😀",
  "q://e\u0301/ß/Ω",
  "ws://outbound/user:1/~x_y-z",
];

/** Names ours refuses (white space, a format character, an empty path). */
const REFUSED_NAMES = [
  "q://a b",
  "q://tab\tx",
  "q://nb\u00A0sp",
  "q://zw\u200Bsp",
  "q://",
];

/** Subjects we never write under `namespace`: no decoder reads a queue. */
function foreignSubjects(namespace: string): string[] {
  return [
    "%2e", // lower-case hex
    "%41", // a needless escape
    "citt%C3%A0", // what Python's quote() writes for "città"
    "%2A", // what quote() writes for "*"
    "%20",
    "%%",
    "50%",
    "%2",
    "%G1",
    "",
  ].map((token) => `${namespace}.q.${token}`).concat([
    `${namespace}.q..x`,
    `${namespace}.q.x.`,
    `${namespace}.q`,
    namespace,
    `${namespace}x.q.a`,
    "other.q.x",
  ]);
}

/** What a pair made of a job: subjects of `names`, queues of `subjects`. */
interface PairResult {
  encoded: string[];
  decoded: Array<string | null>;
}

/** One job for a pair, with the subjects ours writes for the valid names. */
function job(namespace: string): {
  namespace: string;
  names: string[];
  subjects: string[];
} {
  return {
    namespace,
    names: [...TRICKY_NAMES, ...REFUSED_NAMES],
    subjects: [
      ...TRICKY_NAMES.map((name) => queueToSubject(name, namespace)),
      ...foreignSubjects(namespace),
    ],
  };
}

/** Checks a pair's answers against ours, both ways. */
function checkPair(
  pair: string,
  { namespace, names, subjects }: ReturnType<typeof job>,
  result: PairResult,
): void {
  names.forEach((name, i) => {
    const theirs = result.encoded[i]!;
    if (TRICKY_NAMES.includes(name)) {
      assert.equal(theirs, queueToSubject(name, namespace), `${pair}: ${name}`);
    } else {
      assert.throws(() => queueToSubject(name, namespace), QueueNameError);
      assert.equal(subjectToQueue(theirs, namespace), undefined, theirs);
    }
  });
  subjects.forEach((subject, i) => {
    assert.equal(
      result.decoded[i],
      subjectToQueue(subject, namespace) ?? null,
      `${pair}: ${subject}`,
    );
  });
  assert.deepEqual(
    result.decoded.slice(0, TRICKY_NAMES.length),
    TRICKY_NAMES,
    pair,
  );
}

/** Runs `command` with `input` on stdin; its stdout, or throws with stderr. */
async function runWith(
  command: string,
  args: string[],
  input: string,
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const child = new Deno.Command(command, {
    args,
    ...options,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const output = await child.output();
  const decoder = new TextDecoder();
  assert.ok(output.success, decoder.decode(output.stderr));
  return decoder.decode(output.stdout);
}

/** Whether `command` runs (`<command> version`-style probe). */
async function installed(command: string, args: string[]): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(command, {
      args,
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/**
 * Runs docs/interop/subject.py on a job; also answers what Python's own
 * `quote()` writes for each name (the call the README warns against).
 */
const PYTHON_DRIVER = `
import json, sys
from urllib.parse import quote
sys.path.insert(0, sys.argv[1])
from subject import queue_to_subject, subject_to_queue

job = json.load(sys.stdin)
ns = job["namespace"]

def quoted(name):
    scheme, path = name.split("://", 1)
    return ".".join([ns, quote(scheme, safe=""), *(quote(s, safe="") for s in path.split("/"))])

json.dump({
    "encoded": [queue_to_subject(name, ns) for name in job["names"]],
    "decoded": [subject_to_queue(subject, ns) for subject in job["subjects"]],
    "quoted": [quoted(name) for name in job["names"]],
}, sys.stdout)
`;

const python = await installed("python3", ["--version"]);
Deno.test({
  name:
    "docs/interop/subject.py maps tricky names and foreign subjects as ours does, both ways; Python's quote() writes subjects that reach no one" +
    (python ? "" : " (skipped: python3 is not installed)"),
  ignore: !python,
}, async () => {
  for (const namespace of ["mf", "prod-eu"]) {
    const input = job(namespace);
    const result: PairResult & { quoted: string[] } = JSON.parse(
      await runWith(
        "python3",
        ["-B", "-c", PYTHON_DRIVER, INTEROP.pathname],
        JSON.stringify(input),
      ),
    );
    checkPair("Python", input, result);
    // quote() leaves "." as is, writes an empty segment as an empty token
    // and escapes what we write as is: those subjects are no queue of ours,
    // or another queue.
    let wrong = 0;
    TRICKY_NAMES.forEach((name, i) => {
      const subject = result.quoted[i]!;
      if (subject === queueToSubject(name, namespace)) return;
      wrong++;
      assert.notEqual(subjectToQueue(subject, namespace), name, subject);
    });
    // Right only for names with no ".", no empty segment and nothing else
    // quote() escapes ("*", ">", ":", "+", non-ASCII): 7 of the 22.
    assert.equal(wrong, 15, "names quote() gets wrong");
    const v12 = TRICKY_NAMES.indexOf("q://v1.2/a.b.");
    assert.equal(result.quoted[v12], `${namespace}.q.v1.2.a.b.`);
  }
});

/** Runs docs/interop/subject.go on a job (a module in a temporary folder). */
const GO_DRIVER = `package main

import (
	"encoding/json"
	"os"

	"interop/subject"
)

func main() {
	var job struct {
		Namespace string
		Names     []string
		Subjects  []string
	}
	if err := json.NewDecoder(os.Stdin).Decode(&job); err != nil {
		panic(err)
	}
	var result struct {
		Encoded []string  \`json:"encoded"\`
		Decoded []*string \`json:"decoded"\`
	}
	for _, name := range job.Names {
		result.Encoded = append(result.Encoded, subject.QueueToSubject(name, job.Namespace))
	}
	for _, s := range job.Subjects {
		queue, ok := subject.SubjectToQueue(s, job.Namespace)
		if !ok {
			result.Decoded = append(result.Decoded, nil)
			continue
		}
		result.Decoded = append(result.Decoded, &queue)
	}
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		panic(err)
	}
}
`;

const go = await installed("go", ["version"]);
Deno.test({
  name:
    "docs/interop/subject.go maps tricky names and foreign subjects as ours does, both ways" +
    (go ? "" : " (skipped: go is not installed)"),
  ignore: !go,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "mf-interop-go-" });
  try {
    await Deno.mkdir(`${dir}/subject`);
    await Deno.copyFile(
      new URL("subject.go", INTEROP),
      `${dir}/subject/subject.go`,
    );
    await Deno.writeTextFile(`${dir}/go.mod`, "module interop\n\ngo 1.20\n");
    await Deno.writeTextFile(`${dir}/main.go`, GO_DRIVER);
    for (const namespace of ["mf", "prod-eu"]) {
      const input = job(namespace);
      const output = await runWith("go", ["run", "."], JSON.stringify(input), {
        cwd: dir,
        env: { GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" },
      });
      checkPair("Go", input, JSON.parse(output));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ReplySubjects maps reply queues to subjects and back: this process's to its pool's address, another process's and a plain client's to a remote reply queue", () => {
  const here = new ReplySubjects("mf", "p1", 0, 0);
  const there = new ReplySubjects("mf", "p2", 3, 1);
  const subject = here.subjectOf("reply://3/1/42");
  assert.equal(subject, "mf._r.p1.3.1.42");
  // Back in this process: the requesting pool's reply queue.
  assert.equal(here.queueOf(subject), "reply://3/1/42");
  // In another process: a remote reply, answered over NATS.
  assert.equal(there.queueOf(subject), "reply://nats/mf._r.p1.3.1.42");
  assert.equal(there.subjectOf(there.queueOf(subject)), subject);
  assert.equal(there.queueOf("_INBOX.abc.1"), "reply://nats/_INBOX.abc.1");
  assert.equal(there.queueOf("mf.q.orders"), "q://orders");
});
