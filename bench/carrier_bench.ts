/**
 * Issue 23's two carriers for the bytes of a port link, bare (no bus), in
 * the same run: batches of 1,000 small messages encoded with the bus's
 * `DataEncoder` from a sender worker to a receiver worker that decodes them,
 * (1) in an `ArrayBuffer` transferred with `postMessage` per batch (what
 * `ports` does), (2) in a `SharedArrayBuffer` ring with
 * `Atomics.waitAsync` / `notify` (see `fixtures/carrier_worker.ts`).
 * Each carrier runs `--repeat=N` times (default 3), alternating; the table
 * gives the best rate of each and the median CPU time per message of each
 * thread (`/proc/thread-self/schedstat`, Linux).
 *
 * Run: `deno run -A bench/carrier_bench.ts` (`--messages=N`, default
 * 2,000,000; `--ring-kib=N`, default 1024).
 *
 * @module
 */
import { markdownTable } from "./_table.ts";
import {
  BATCH,
  type CarrierReport,
  type CarrierSetup,
} from "./fixtures/carrier_worker.ts";

const arg = (name: string): string | undefined =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const MESSAGES = Number(arg("messages") ?? 2_000_000);
const REPEAT = Number(arg("repeat") ?? 3);
const RING_BYTES = 1024 * Number(arg("ring-kib") ?? 1024);
const WORKER = new URL("./fixtures/carrier_worker.ts", import.meta.url);

type Carrier = "transfer" | "ring";

interface Run {
  rate: number;
  sendCpu: number;
  receiveCpu: number;
  errors: number;
}

function report(worker: Worker): Promise<CarrierReport> {
  return new Promise((resolve) => {
    worker.onmessage = (event: MessageEvent<CarrierReport>) =>
      resolve(event.data);
  });
}

async function run(carrier: Carrier): Promise<Run> {
  const sender = new Worker(WORKER, { type: "module" });
  const receiver = new Worker(WORKER, { type: "module" });
  try {
    const batches = Math.ceil(MESSAGES / BATCH);
    const total = batches * BATCH;
    const received = report(receiver);
    const sent = report(sender);
    if (carrier === "transfer") {
      const { port1, port2 } = new MessageChannel();
      receiver.postMessage(
        { role: "receive", carrier, port: port2, total } satisfies CarrierSetup,
        [port2],
      );
      sender.postMessage(
        { role: "send", carrier, port: port1, batches } satisfies CarrierSetup,
        [port1],
      );
    } else {
      const ring = new SharedArrayBuffer(8 + RING_BYTES);
      receiver.postMessage(
        { role: "receive", carrier, ring, total } satisfies CarrierSetup,
      );
      sender.postMessage(
        { role: "send", carrier, ring, batches } satisfies CarrierSetup,
      );
    }
    const [start, end] = await Promise.all([sent, received]);
    return {
      rate: total / ((end.at - start.at) / 1000),
      sendCpu: (start.cpu ?? NaN) / total,
      receiveCpu: (end.cpu ?? NaN) / total,
      errors: (end.errors ?? 0) + (end.received === total ? 0 : 1),
    };
  } finally {
    sender.terminate();
    receiver.terminate();
  }
}

const median = (values: number[]): number =>
  values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

if (import.meta.main) {
  const runs: Record<Carrier, Run[]> = { transfer: [], ring: [] };
  for (let i = 0; i < REPEAT; i++) {
    for (const carrier of ["transfer", "ring"] as const) {
      runs[carrier].push(await run(carrier));
    }
  }
  const best = (c: Carrier): number => Math.max(...runs[c].map((r) => r.rate));
  const rows = (["transfer", "ring"] as const).map((c) => [
    c === "transfer"
      ? "ArrayBuffer transferred per batch"
      : `SharedArrayBuffer ring (${RING_BYTES / 1024} KiB)`,
    `${(best(c) / 1e6).toFixed(2)}M/s`,
    `${(best(c) / best("transfer")).toFixed(2)}×`,
    `${median(runs[c].map((r) => r.sendCpu)).toFixed(0)} / ${
      median(runs[c].map((r) => r.receiveCpu)).toFixed(0)
    }`,
    runs[c].every((r) => r.errors === 0) ? "ok" : "ERRORS",
  ]);
  // deno-lint-ignore no-console
  console.log(
    `carriers: ${
      MESSAGES.toLocaleString("en")
    } small messages in batches of ${BATCH}, best of ${REPEAT}, Deno ${Deno.version.deno}, load ${
      Deno.loadavg().map((l) => l.toFixed(2)).join(" ")
    }`,
  );
  for (
    const line of markdownTable(
      [
        "carrier",
        "messages/s",
        "vs transfer",
        "CPU ns/message, sender / receiver",
        "counts",
      ],
      rows,
    )
  ) {
    // deno-lint-ignore no-console
    console.log(line);
  }
}
