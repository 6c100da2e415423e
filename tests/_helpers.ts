/**
 * Test helpers: run a fixture program in real workers, collect its logs and
 * status changes, and wait for events with a deadline (never a sleep).
 */
import {
  Main,
  type RunOptions,
  type RunReport,
  type StatusChange,
} from "../mod.ts";
import type {
  LogRecord,
  Service,
  ServicePools,
  ServiceStatus,
  TransportKind,
} from "../mod.ts";
import { TRANSPORT_KINDS } from "../src/transport/kinds.ts";
import {
  type Report,
  REPORT_PREFIX,
  type ReportKind,
  type ReportOf,
  type ScenarioData,
  type ScenarioFixture,
  scenarioPools,
  type Scenarios,
} from "./fixtures/scenario.ts";

/**
 * The one parser of report lines: the `Report` in a `REPORT {json}` log
 * message (or in a child's output line), or `undefined` for other lines.
 */
export function parseReport(line: string): Report | undefined {
  const at = line.indexOf(REPORT_PREFIX);
  if (at === -1 || (at > 0 && line[at - 1] !== " ")) return undefined;
  const value: unknown = JSON.parse(line.slice(at + REPORT_PREFIX.length));
  if (
    typeof value !== "object" || value === null ||
    typeof (value as { kind?: unknown }).kind !== "string"
  ) {
    throw new TypeError(`Cannot parse report: no kind in ${line}`);
  }
  return value as Report;
}

/** The transport of the test `testEachTransport` is running, if any. */
let transportOfTest: TransportKind | undefined;

/**
 * Registers a test once per transport, named `<name> [<transport>]`;
 * programs it starts with `startProgram` run on that transport.
 */
export function testEachTransport(
  name: string,
  fn: (transport: TransportKind) => Promise<void>,
): void {
  for (const transport of TRANSPORT_KINDS) {
    Deno.test(`${name} [${transport}]`, async () => {
      transportOfTest = transport;
      try {
        await fn(transport);
      } finally {
        transportOfTest = undefined;
      }
    });
  }
}

/** A running fixture program. */
export interface Program {
  main: Main;
  logs: LogRecord[];
  statuses: StatusChange[];
  /** Resolves with the report once the program stopped. */
  done: Promise<RunReport>;
  /** Resolves with the first log record (past or future) that matches. */
  waitForLog(
    match: (record: LogRecord) => boolean,
    timeout?: number,
  ): Promise<LogRecord>;
  /** Resolves once `check()` holds (checked at every log line and status change). */
  waitUntil(check: () => boolean, timeout?: number): Promise<void>;
  /** Records whose message starts with `REPORT `, parsed (untyped). */
  reports<T>(): T[];
  /** Every typed report so far, in log order. */
  scenarioReports(): Report[];
  /** The typed reports of `kind` so far, in log order. */
  reportsOf<K extends ReportKind>(kind: K): ReportOf<K>[];
  /**
   * Resolves with the reports of `kind` once `count` of them (past or
   * future) pass `filter`.
   */
  waitForReport<K extends ReportKind>(
    kind: K,
    filter?: (report: ReportOf<K>) => boolean,
    count?: number,
    timeout?: number,
  ): Promise<ReportOf<K>[]>;
  /** Resolves once `count` reports (past or future) matched. */
  waitForReports<T>(
    count: number,
    filter?: (report: T) => boolean,
    timeout?: number,
  ): Promise<T[]>;
  /** Stops the program and resolves with its report. */
  stop(): Promise<RunReport>;
}

/** Starts `fixture` with `pools` (as the fixture builds them from `config`). */
export function startProgram(
  fixture: URL,
  pools: ServicePools,
  config: unknown,
  options: RunOptions = {},
): Program {
  const main = new Main();
  main.servicePools = pools;
  const logs: LogRecord[] = [];
  const statuses: StatusChange[] = [];
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of [...listeners]) listener();
  };
  main.addEventListener("status", (event) => {
    statuses.push(event.detail);
    notify();
  });
  const done = main.run({
    module: fixture,
    workerData: config,
    signals: false,
    setExitCode: false,
    logLevel: "info",
    terminateTimeout: 2000,
    transport: transportOfTest,
    logSink: (record) => {
      logs.push(record);
      if (Deno.env.get("TEST_LOG") === "1") {
        // deno-lint-ignore no-console
        console.log(
          `[${record.pool ?? "main"}/${
            record.service ?? ""
          }] ${record.message}`,
        );
      }
      notify();
    },
    ...options,
  });
  const until = <T>(
    check: () => T | undefined,
    timeout: number,
    what: string,
  ): Promise<T> => {
    const found = check();
    if (found !== undefined) return Promise.resolve(found);
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const listener = (): void => {
      const value = check();
      if (value === undefined) return;
      cleanup();
      resolve(value);
    };
    const timer = setTimeout(() => {
      cleanup();
      const recent = logs.slice(-30).map((r) =>
        `  ${r.level} [${r.pool ?? "main"}/${r.service ?? ""}] ${r.message}`
      );
      reject(
        new Error(
          `Timed out after ${timeout} ms waiting for ${what}; last log lines:\n${
            recent.join("\n")
          }`,
        ),
      );
    }, timeout);
    const cleanup = (): void => {
      clearTimeout(timer);
      listeners.delete(listener);
    };
    listeners.add(listener);
    return promise;
  };
  const reports = <T>(): T[] =>
    logs.filter((r) => r.message.startsWith("REPORT ")).map((r) =>
      JSON.parse(r.message.slice("REPORT ".length)) as T
    );
  const scenarioReports = (): Report[] =>
    logs.flatMap((r) => {
      if (!r.message.startsWith(REPORT_PREFIX)) return [];
      const parsed = parseReport(r.message);
      return parsed === undefined ? [] : [parsed];
    });
  const reportsOf = <K extends ReportKind>(kind: K): ReportOf<K>[] =>
    scenarioReports().filter((r): r is ReportOf<K> => r.kind === kind);
  return {
    main,
    logs,
    scenarioReports,
    reportsOf,
    waitForReport: <K extends ReportKind>(
      kind: K,
      filter: (report: ReportOf<K>) => boolean = () => true,
      count = 1,
      timeout = 60_000,
    ) =>
      until(
        () => {
          const found = reportsOf(kind).filter(filter);
          return found.length >= count ? found : undefined;
        },
        timeout,
        `${count} "${kind}" reports`,
      ),
    statuses,
    done,
    waitForLog: (match, timeout = 30_000) =>
      until(() => logs.find(match), timeout, "a log line"),
    reports,
    waitUntil: (check, timeout = 30_000) =>
      until(() => (check() ? true : undefined), timeout, "a condition").then(
        () => {},
      ),
    waitForReports: <T>(
      count: number,
      filter: (r: T) => boolean = () => true,
      timeout = 60_000,
    ) =>
      until(
        () => {
          const found = reports<T>().filter(filter);
          return found.length >= count ? found : undefined;
        },
        timeout,
        `${count} reports`,
      ),
    stop: async () => {
      await main.stop();
      return await done;
    },
  };
}

/**
 * Starts `scenario` of a scenario fixture (`fixtures/*_scenarios.ts`) on
 * real workers, with typed `params` (leave them out for a scenario that
 * takes none): the primary builds the same pools in this thread.
 */
export function start<S extends Scenarios, N extends keyof S & string>(
  fixture: ScenarioFixture<S>,
  scenario: N,
  params?: Parameters<S[N]>[0],
  options: RunOptions = {},
): Program {
  const data: ScenarioData = { scenario, params };
  return startProgram(
    fixture.url,
    scenarioPools(fixture.scenarios, scenario, params),
    data,
    options,
  );
}

/**
 * Records each status `service` is set to, in order, as `main.run()`'s
 * `status` events tell them; for a service run in this thread by
 * `startServices`, which sets the status on the instance it was given.
 */
export function recordStatuses(service: Service): ServiceStatus[] {
  const seen: ServiceStatus[] = [];
  let status = service.status;
  Object.defineProperty(service, "status", {
    get: () => status,
    set: (value: ServiceStatus) => {
      status = value;
      seen.push(value);
    },
  });
  return seen;
}

/** The statuses one service went through, in order. */
export function statusesOf(
  statuses: StatusChange[],
  pool: string,
  service: string,
): string[] {
  return statuses.filter((s) => s.pool === pool && s.service === service).map((
    s,
  ) => s.status);
}
