// deno-lint-ignore-file no-console
/**
 * WebSocket echo through the framework (WebSocket in → consumer service →
 * WebSocket out, the consumer answering on `meta.replyTo`) against a bare
 * `Deno.serve` echo server measured in the same run. All servers run in
 * workers, one setup at a time; the load client runs in the main thread.
 * Each connection sends a small JSON frame and waits for its echo before
 * sending the next.
 *
 * Setups: raw / raw relayed through a second worker over a bare
 * BroadcastChannel / raw relayed through a second worker over a
 * `MessagePort`, the frames of one turn coalesced as the framework does /
 * consumer in the service's pool / consumer in another pool (default
 * transport, `ports`) / consumer in another pool on the `broadcast`
 * transport; 1 and 50 connections. The setups are measured in interleaved
 * rounds (raw, relays, framework, raw, …, each started for its round and
 * stopped after it) so that drift on a shared machine hits them alike; a
 * row gives the median rate of its rounds and the p50 and p99 latency over
 * all of them, and its ratios to raw and to the port relay: the median of
 * the per-round ratios (the setups of a round run back to back, so a load
 * that comes and goes hits them alike).
 *
 * The framework rows run with sessions off (`recoveryWindow: 0`), except
 * "sessions on": the same echo in the service's pool with the default
 * recovery window and every client opted in (`?mf-session`), so each reply
 * is recorded in the history and carries its offset (issue 25). Sessions on
 * and its yardstick (the same echo, sessions off) run side by side: both
 * servers up, the load switched between them in slices of a tenth of the
 * round (on, off, off, on, …), so that a load that comes and goes on a
 * shared machine hits both alike (measured one after the other, 1 s each,
 * three quiet runs gave 0.70×, 0.93× and 0.79×). Besides the rates, it
 * prints the process CPU time per round trip of both (all threads, from
 * `/proc/self/task/<tid>/schedstat`; load client included), which a
 * passing load hardly moves.
 *
 * Targets: ≥ 0.8× raw in the service's pool; in another pool (default
 * transport) ≥ 0.8× the port relay, which is the carrier's own cost for a
 * consumer in another worker (two port hops per round trip, batched per
 * turn like the bus); sessions on ≥ 0.9× sessions off. The BroadcastChannel
 * rows are for information.
 *
 * Then, per round, the time a session takes to recover 10,000 messages it
 * missed (from its reconnect to the last replayed frame) against the time
 * the same 10,000 take live (from the request that publishes them to the
 * last frame); target ≤ 2×.
 *
 * Run: `deno run -A bench/websocket_bench.ts` (about 90 s; `--rounds=N`,
 * default 5, `--seconds=S` per round, default 1; `--only=sessions` measures
 * only sessions on and off and the recovery rows; `--json` also prints the
 * figures as JSON).
 *
 * @module
 */
import { Main } from "../mod.ts";
import { type EchoConfig, pools } from "./fixtures/websocket_echo_app.ts";
import { withTimeout } from "../src/_util/time.ts";

const APP = new URL("./fixtures/websocket_echo_app.ts", import.meta.url);
const RAW = new URL("./fixtures/websocket_raw_echo.ts", import.meta.url);

const arg = (name: string): string | undefined =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const ROUNDS = Number(arg("rounds") ?? 5);
const SECONDS = Number(arg("seconds") ?? 1);
const WARMUP_MS = 300;
const CONNECTIONS = [1, 50];
const SAME = "framework, consumer in the service's pool";
const OTHER = "framework, consumer in another pool (ports)";
const OTHER_BC = "framework, consumer in another pool (broadcast)";
const SESSIONS = "framework, consumer in the service's pool, sessions on";
/** Sessions off, measured beside sessions on (its yardstick). */
const SESSIONS_OFF =
  "framework, consumer in the service's pool, sessions off (beside sessions on)";
const RAW_SETUP = "raw Deno.serve echo";
const RELAY_SETUP =
  "raw echo relayed by a second worker (bare BroadcastChannel)";
const PORT_RELAY_SETUP =
  "raw echo relayed by a second worker (bare MessagePort, batched per turn)";
/** Setup → the yardstick setup and the least ratio to it. */
const TARGETS: Record<string, { of: string; at: number }> = {
  [SAME]: { of: RAW_SETUP, at: 0.8 },
  [OTHER]: { of: PORT_RELAY_SETUP, at: 0.8 },
  [SESSIONS]: { of: SESSIONS_OFF, at: 0.9 },
};
/** How a target's yardstick is named in the table. */
const YARDSTICK: Record<string, string> = {
  [RAW_SETUP]: "raw",
  [PORT_RELAY_SETUP]: "port relay",
  [SESSIONS_OFF]: "sessions off",
};
/** `--only=sessions`: only the issue 25 rows (sessions on and off, recovery). */
const ONLY_SESSIONS = arg("only") === "sessions";
/** Messages missed, then recovered, in the recovery rows. */
const MISSED = 10_000;

interface Server {
  setup: string;
  port: number;
  stop(): Promise<void>;
  /** Clients opt in to sessions. */
  sessions?: boolean;
}

interface Round {
  rate: number;
  latencies: number[];
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

function withDeadline<T>(
  promise: Promise<T>,
  what: string,
  ms = 60_000,
): Promise<T> {
  return withTimeout(
    promise,
    ms,
    () => new Error(`Timed out after ${ms} ms waiting for ${what}`),
  );
}

const sleep = (ms: number): Promise<void> =>
  new Promise((r) => setTimeout(r, ms));

/**
 * Opens a WebSocket; with a session (`?mf-session` in `url`), resolves
 * after the server's hello, whose text comes along.
 */
function connect(
  url: string,
): Promise<{ ws: WebSocket; hello: string | undefined }> {
  const session = url.includes("mf-session");
  return withDeadline(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => session || resolve({ ws, hello: undefined });
      ws.onmessage = (e) => resolve({ ws, hello: e.data });
      ws.onerror = () => reject(new Error(`Cannot connect to ${url}`));
    }),
    "a connection",
  );
}

/** Runs `connections` echo loops on `url` for the warm-up plus SECONDS. */
async function load(url: string, connections: number): Promise<Round> {
  const sockets = (await Promise.all(
    Array.from({ length: connections }, () => connect(url)),
  )).map(({ ws }) => ws);
  const latencies: number[] = [];
  let measuring = false;
  let running = true;
  let count = 0;
  const finished = sockets.map((ws, index) => {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    let sentAt = 0;
    let sequence = 0;
    const send = (): void => {
      sentAt = performance.now();
      ws.send(
        `{"connection":${index},"sequence":${sequence++},"payload":"hello"}`,
      );
    };
    ws.onmessage = () => {
      const now = performance.now();
      if (measuring) {
        latencies.push(now - sentAt);
        count++;
      }
      if (running) send();
      else resolve();
    };
    ws.onclose = (e) => reject(new Error(`Closed during the run: ${e.code}`));
    send();
    return promise;
  });
  await sleep(WARMUP_MS);
  measuring = true;
  const started = performance.now();
  await sleep(SECONDS * 1000);
  measuring = false;
  const elapsed = (performance.now() - started) / 1000;
  running = false;
  await withDeadline(Promise.all(finished), "the last echoes", 10_000);
  await Promise.all(sockets.map((ws) => {
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    return closed;
  }));
  return { rate: count / elapsed, latencies };
}

/** Slices per round of a paired measurement (sessions on vs off). */
const SLICES = 10;

/** CPU time of this process so far, all threads, in ns (Linux only). */
function cpuNanoseconds(): number | undefined {
  try {
    let ns = 0;
    for (const task of Deno.readDirSync("/proc/self/task")) {
      const stat = Deno.readTextFileSync(
        `/proc/self/task/${task.name}/schedstat`,
      );
      ns += Number(stat.split(" ")[0]);
    }
    return ns;
  } catch {
    return undefined;
  }
}

/**
 * `connections` echo loops on `url`, started and stopped in bursts: a
 * burst sends until its time is up, then waits for the echoes in flight.
 */
async function loader(url: string, connections: number): Promise<{
  burst(ms: number, measured: Round & { cpu: number }): Promise<void>;
  close(): Promise<void>;
}> {
  const sockets = (await Promise.all(
    Array.from({ length: connections }, () => connect(url)),
  )).map(({ ws }) => ws);
  let running = false;
  let measured: (Round & { cpu: number }) | undefined;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const sequences = sockets.map(() => 0);
  const sentAt = sockets.map(() => 0);
  const send = (index: number): void => {
    sentAt[index] = performance.now();
    inFlight++;
    sockets[index]!.send(
      `{"connection":${index},"sequence":${sequences[
        index
      ]!++},"payload":"hello"}`,
    );
  };
  sockets.forEach((ws, index) => {
    ws.onmessage = () => {
      inFlight--;
      const now = performance.now();
      if (running && measured !== undefined) {
        measured.latencies.push(now - sentAt[index]!);
        measured.rate++;
      }
      if (running) send(index);
      else if (inFlight === 0) drained?.();
    };
    ws.onclose = (e) => {
      throw new Error(`Closed during the run: ${e.code}`);
    };
  });
  return {
    async burst(ms, into): Promise<void> {
      measured = into;
      running = true;
      const cpu = cpuNanoseconds();
      sockets.forEach((_, index) => send(index));
      await sleep(ms);
      running = false;
      const after = cpuNanoseconds();
      if (cpu !== undefined && after !== undefined) into.cpu += after - cpu;
      if (inFlight > 0) {
        const { promise, resolve } = Promise.withResolvers<void>();
        drained = resolve;
        await withDeadline(promise, "the last echoes", 10_000);
      }
      measured = undefined;
    },
    async close(): Promise<void> {
      await Promise.all(sockets.map((ws) => {
        const closed = new Promise((r) => (ws.onclose = r));
        ws.close();
        return closed;
      }));
    },
  };
}

/**
 * Two servers measured side by side: warmed up, then the load switched
 * between them, SLICES slices each (a b b a a b …), SECONDS in all each.
 */
async function loadPair(
  urls: [string, string],
  connections: number,
): Promise<[Round & { cpu: number }, Round & { cpu: number }]> {
  const loaders = await Promise.all(urls.map((u) => loader(u, connections)));
  const warm = { rate: 0, latencies: [], cpu: 0 };
  for (const l of loaders) await l.burst(WARMUP_MS, warm);
  const rounds: [Round & { cpu: number }, Round & { cpu: number }] = [
    { rate: 0, latencies: [], cpu: 0 },
    { rate: 0, latencies: [], cpu: 0 },
  ];
  const slice = (SECONDS * 1000) / SLICES;
  for (let i = 0; i < SLICES; i++) {
    // a b, b a, a b, …: neither always goes first.
    const first = i % 2;
    for (const which of [first, 1 - first]) {
      await loaders[which]!.burst(slice, rounds[which]!);
    }
  }
  await Promise.all(loaders.map((l) => l.close()));
  for (const round of rounds) {
    // Count → rate; CPU → ns per round trip.
    round.cpu = round.cpu / round.rate;
    round.rate = round.rate / SECONDS;
  }
  return rounds;
}

/** A raw worker and a way to wait for its answers. */
function rawWorker(name: string): {
  worker: Worker;
  message(kind: string): Promise<{ port: number }>;
  stop(): Promise<void>;
} {
  const worker = new Worker(RAW, { type: "module", name });
  const message = (kind: string): Promise<{ port: number }> =>
    withDeadline(
      new Promise((resolve) => {
        worker.onmessage = (e) => e.data.kind === kind && resolve(e.data);
      }),
      kind,
    );
  return {
    worker,
    message,
    async stop(): Promise<void> {
      const stopped = message("stopped");
      worker.postMessage({ kind: "stop" });
      await stopped.finally(() => worker.terminate());
    },
  };
}

/** The bare echo server; with `relay`, its frames go through a second worker. */
async function startRaw(
  relay: "none" | "channel" | "port",
): Promise<Server> {
  const server = rawWorker("raw-echo");
  const channel = `raw-relay-${crypto.randomUUID()}`;
  const ports = relay === "port" ? new MessageChannel() : undefined;
  const second = relay === "none" ? undefined : rawWorker("raw-relay");
  if (second !== undefined) {
    const relaying = second.message("relaying");
    if (ports !== undefined) {
      second.worker.postMessage({ kind: "relay", relayPort: ports.port2 }, [
        ports.port2,
      ]);
    } else second.worker.postMessage({ kind: "relay", relay: channel });
    await relaying;
  }
  const listening = server.message("listening");
  if (ports !== undefined) {
    server.worker.postMessage(
      { kind: "start", port: 0, relayPort: ports.port1 },
      [ports.port1],
    );
  } else {
    server.worker.postMessage({
      kind: "start",
      port: 0,
      relay: relay === "channel" ? channel : undefined,
    });
  }
  const { port } = await listening;
  return {
    setup: relay === "port"
      ? PORT_RELAY_SETUP
      : relay === "channel"
      ? RELAY_SETUP
      : RAW_SETUP,
    port,
    async stop(): Promise<void> {
      await server.stop();
      await second?.stop();
    },
  };
}

const failures: unknown[] = [];

async function startFramework(
  split: boolean,
  transport: "ports" | "broadcast" = "ports",
  recovery = false,
): Promise<Server> {
  const config: EchoConfig = { port: freePort(), split, recovery };
  const main = new Main();
  main.servicePools = pools(config);
  const done = main.run({
    module: APP,
    workerData: config,
    transport,
    signals: false,
    setExitCode: false,
    logLevel: "warn",
  });
  await withDeadline(main.ready, "main.ready");
  return {
    setup: recovery
      ? SESSIONS
      : !split
      ? SAME
      : transport === "ports"
      ? OTHER
      : OTHER_BC,
    sessions: recovery,
    port: config.port,
    async stop(): Promise<void> {
      await main.stop();
      failures.push(
        ...(await withDeadline(done, "the program's stop")).failures,
      );
    },
  };
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ??
    NaN;
}

function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 0.5);
}

// Deno's BroadcastChannel wakes every isolate that has a channel open for
// every message, whatever its name: a setup's workers would tax the others'
// rounds. So only one setup runs at a time.
const allSetups: Array<{ setup: string; start(): Promise<Server> }> = [
  { setup: RAW_SETUP, start: () => startRaw("none") },
  { setup: RELAY_SETUP, start: () => startRaw("channel") },
  { setup: PORT_RELAY_SETUP, start: () => startRaw("port") },
  { setup: SAME, start: () => startFramework(false) },
  // Sessions off and on, side by side (see `loadPair`).
  { setup: SESSIONS_OFF, start: () => startFramework(false) },
  { setup: SESSIONS, start: () => startFramework(false, "ports", true) },
  { setup: OTHER, start: () => startFramework(true) },
  { setup: OTHER_BC, start: () => startFramework(true, "broadcast") },
];
const setups = ONLY_SESSIONS
  ? allSetups.filter(({ setup }) =>
    setup === SESSIONS_OFF || setup === SESSIONS
  )
  : allSetups;
/**
 * Opens a WebSocket that counts its frames from the first (a session's
 * hello included) and keeps the first and the last.
 */
function counted(url: string): {
  ws: WebSocket;
  first(): string;
  /** The offset of the last frame (`<offset>:…`). */
  offset(): number;
  until(count: number): Promise<void>;
} {
  const ws = new WebSocket(url);
  let seen = 0;
  let first = "";
  let last = "";
  let wanted: { count: number; resolve(): void } | undefined;
  const opened = Promise.withResolvers<void>();
  ws.onopen = () => opened.resolve();
  ws.onerror = () => opened.reject(new Error(`Cannot connect to ${url}`));
  ws.onmessage = (e) => {
    if (seen++ === 0) first = e.data;
    last = e.data;
    if (wanted !== undefined && seen >= wanted.count) wanted.resolve();
  };
  return {
    ws,
    first: () => first,
    offset: () => Number(last.slice(0, last.indexOf(":"))),
    async until(count: number): Promise<void> {
      await withDeadline(opened.promise, "a connection");
      if (seen >= count) return;
      const { promise, resolve } = Promise.withResolvers<void>();
      wanted = { count, resolve };
      await withDeadline(promise, `${count} frames`);
    },
  };
}

/**
 * Milliseconds for MISSED messages live (from the request that publishes
 * them to the last frame) and recovered (from the reconnect to the last
 * replayed frame), on a server with sessions.
 */
async function recoveryTimes(
  port: number,
): Promise<{ live: number; recover: number }> {
  const base = `ws://127.0.0.1:${port}/burst`;
  const watcher = counted(base);
  await watcher.until(0);
  const first = counted(`${base}?mf-session`);
  await first.until(1); // the hello
  const { session } = JSON.parse(first.first());
  let started = performance.now();
  watcher.ws.send(String(MISSED));
  await first.until(1 + MISSED);
  const live = performance.now() - started;
  await watcher.until(MISSED);
  const offset = first.offset();
  const closed = new Promise((r) => (first.ws.onclose = r));
  first.ws.close(4000, "away");
  await closed;
  watcher.ws.send(String(MISSED));
  // The watcher has them all: the service has recorded them all.
  await watcher.until(2 * MISSED);
  started = performance.now();
  const back = counted(`${base}?mf-session=${session}&mf-offset=${offset}`);
  await back.until(1 + MISSED);
  const recover = performance.now() - started;
  if (!JSON.parse(back.first()).recovered) {
    throw new Error(`Not recovered: ${back.first()}`);
  }
  await Promise.all([watcher.ws, back.ws].map((ws) => {
    const done = new Promise((r) => (ws.onclose = r));
    ws.close();
    return done;
  }));
  return { live, recover };
}

const rounds = new Map<string, Round[]>();
/** CPU ns per round trip of the paired rows, by `setup|connections`. */
const cpuPerTrip = new Map<string, number[]>();

/** Sessions off and on, side by side, for each number of connections. */
async function measurePair(): Promise<void> {
  const off = await startFramework(false);
  const on = await startFramework(false, "ports", true).catch(async (e) => {
    await off.stop();
    throw e;
  });
  try {
    for (const connections of CONNECTIONS) {
      const pair = await loadPair([
        `ws://127.0.0.1:${off.port}/echo`,
        `ws://127.0.0.1:${on.port}/echo?mf-session`,
      ], connections);
      [SESSIONS_OFF, SESSIONS].forEach((setup, i) => {
        const key = `${setup}|${connections}`;
        rounds.set(key, [...rounds.get(key) ?? [], pair[i]!]);
        cpuPerTrip.set(key, [...cpuPerTrip.get(key) ?? [], pair[i]!.cpu]);
      });
    }
  } finally {
    await on.stop();
    await off.stop();
  }
}
const recoveries: Array<{ live: number; recover: number }> = [];
for (let round = 0; round < ROUNDS; round++) {
  const server = await startFramework(false, "ports", true);
  try {
    recoveries.push(await recoveryTimes(server.port));
  } finally {
    await server.stop();
  }
  for (const { setup, start } of setups) {
    if (setup === SESSIONS_OFF) {
      await measurePair();
      continue;
    }
    if (setup === SESSIONS) continue;
    const server = await start();
    try {
      for (const connections of CONNECTIONS) {
        const key = `${server.setup}|${connections}`;
        const result = await load(
          `ws://127.0.0.1:${server.port}/echo${
            server.sessions ? "?mf-session" : ""
          }`,
          connections,
        );
        rounds.set(key, [...rounds.get(key) ?? [], result]);
      }
    } finally {
      await server.stop();
    }
  }
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
const lines = [
  `WebSocket echo: ${ROUNDS} interleaved rounds of ${SECONDS} s (+${WARMUP_MS} ms warm-up) per row, ` +
  `${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}, ${
    new Date().toISOString()
  }, ` +
  `load ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
  "",
  "| setup | conns | round trips/s | p50 ms | p99 ms | × raw | × port relay | target |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
];
const results = [];
for (const connections of CONNECTIONS) {
  const rateOf = (setup: string): number =>
    median(rounds.get(`${setup}|${connections}`)!.map((r) => r.rate));
  // Setups of one round run back to back, so the load hits them alike: a
  // ratio is the median of the rounds' ratios.
  const ratioOf = (setup: string, to: string): number => {
    const mine = rounds.get(`${setup}|${connections}`)!;
    const theirs = rounds.get(`${to}|${connections}`);
    // Not measured (`--only`): no ratio.
    if (theirs === undefined) return NaN;
    return median(mine.map((r, i) => r.rate / theirs[i]!.rate));
  };
  for (const { setup } of setups) {
    const list = rounds.get(`${setup}|${connections}`)!;
    const rate = rateOf(setup);
    const all = list.flatMap((r) => r.latencies).sort((a, b) => a - b);
    const p50 = percentile(all, 0.5);
    const p99 = percentile(all, 0.99);
    const ratio = ratioOf(setup, RAW_SETUP);
    const ofRelay = ratioOf(setup, PORT_RELAY_SETUP);
    const target = TARGETS[setup];
    const reached = target === undefined
      ? undefined
      : ratioOf(setup, target.of);
    const verdict = target === undefined
      ? ""
      : `≥ ${target.at}× ${YARDSTICK[target.of]}: ${
        reached! >= target.at ? "met" : "MISSED"
      }`;
    results.push({
      setup,
      connections,
      rate,
      p50,
      p99,
      ratio,
      ofRelay,
      target: target?.at,
      reached,
      met: target === undefined ? undefined : reached! >= target.at,
      rates: list.map((r) => r.rate),
    });
    lines.push(
      `| ${setup} | ${connections} | ${fmt(rate)} | ${fmt(p50, 3)} | ${
        fmt(p99, 3)
      } | ${fmt(ratio, 2)} | ${fmt(ofRelay, 2)} | ${verdict} |`,
    );
  }
}
lines.push("");
for (const connections of CONNECTIONS) {
  const rates = (setup: string): string =>
    rounds.get(`${setup}|${connections}`)!.map((r) => fmt(r.rate)).join(", ");
  lines.push(
    `Rounds, ${connections} conn${connections === 1 ? "" : "s"}: ` +
      setups.map(({ setup }) => `${setup}: ${rates(setup)}`).join("; "),
  );
}
const recoverRatio = median(recoveries.map((r) => r.recover / r.live));
const sessionsRatio = results.find((r) =>
  r.setup === SESSIONS && r.connections === 50
)!;
const cpuOf = (setup: string): number =>
  median(cpuPerTrip.get(`${setup}|50`) ?? []) / 1000;
lines.push(
  "",
  "| row (issue 25) | ratio | target |",
  "| --- | ---: | --- |",
  `| echo, consumer in the service's pool, 50 connections, recovery on vs off | ${
    fmt(sessionsRatio.reached!, 2)
  } | ≥ 0.9×: ${sessionsRatio.met ? "met" : "MISSED"} |`,
  `| the same, process CPU per round trip, off / on (median ${
    fmt(cpuOf(SESSIONS_OFF), 1)
  } µs vs ${fmt(cpuOf(SESSIONS), 1)} µs) | ${
    fmt(
      median(
        cpuPerTrip.get(`${SESSIONS_OFF}|50`)!.map((off, i) =>
          off / cpuPerTrip.get(`${SESSIONS}|50`)![i]!
        ),
      ),
      2,
    )
  } | for information |`,
  `| time to recover ${
    fmt(MISSED)
  } missed messages vs sending them live (median ${
    fmt(median(recoveries.map((r) => r.recover)), 1)
  } ms vs ${fmt(median(recoveries.map((r) => r.live)), 1)} ms) | ${
    fmt(recoverRatio, 2)
  } | ≤ 2×: ${recoverRatio <= 2 ? "met" : "MISSED"} |`,
  `Recovery rounds (live/recovered ms): ${
    recoveries.map((r) => `${fmt(r.live, 1)}/${fmt(r.recover, 1)}`).join(", ")
  }`,
);
console.log(lines.join("\n"));
if (Deno.args.includes("--json")) {
  console.log(JSON.stringify(results));
  console.log(JSON.stringify({ recoveries }));
}
if (failures.length > 0) {
  console.error(`The echo program failed: ${JSON.stringify(failures)}`);
  Deno.exitCode = 1;
}
