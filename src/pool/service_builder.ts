/**
 * Builds a pool's services from their entries (instances, or factories
 * called here, in the pool's worker), each with its context and runner. An
 * entry that cannot become a service (a factory that throws or returns
 * something else, a second service of the same name) is logged and
 * reported as a service in `error`, so the run fails.
 *
 * @module
 */
import type { PoolBus } from "../bus/bus.ts";
import { serializeError } from "../errors.ts";
import {
  createLogger,
  type Logger,
  type LogLevel,
  type LogSink,
} from "../logger.ts";
import { Service, type ServiceEntry } from "../service.ts";
import { PoolServiceContext } from "./context.ts";
import type { ServiceReport } from "./protocol.ts";
import { type RunnerHost, ServiceRunner } from "./service_runner.ts";

/** What building a pool's services needs. */
export interface BuildSettings {
  pool: string;
  bus: PoolBus;
  host: RunnerHost;
  signal: AbortSignal;
  sink: LogSink;
  logLevel: LogLevel;
  /** The pool's own log, for the misconfigurations. */
  log: Logger;
}

/** A pool's services: their runners, and the entries that failed. */
export interface BuiltServices {
  runners: ServiceRunner[];
  misconfigured: ServiceReport[];
}

/** Builds the services of `entries`, in order. */
export function buildServices(
  entries: readonly ServiceEntry[],
  settings: BuildSettings,
): BuiltServices {
  const built: BuiltServices = { runners: [], misconfigured: [] };
  const refuse = (service: string, message: string): void => {
    settings.log.error(message);
    built.misconfigured.push(misconfiguredReport(service, message));
  };
  for (const entry of entries) {
    const position = built.runners.length + built.misconfigured.length + 1;
    let service: Service;
    try {
      service = entry instanceof Service ? entry : entry();
      if (!(service instanceof Service)) {
        throw new TypeError(
          `its factory returned ${describeValue(service)}, not a Service`,
        );
      }
    } catch (error) {
      refuse(
        `#${position}`,
        `Cannot build service #${position} of pool "${settings.pool}": ${
          serializeError(error).message
        }`,
      );
      continue;
    }
    if (built.runners.some((runner) => runner.service.name === service.name)) {
      refuse(
        `${service.name} (#${position})`,
        `Pool "${settings.pool}" has two services named "${service.name}"; the second is not started`,
      );
      continue;
    }
    const log = createLogger(
      settings.sink,
      settings.logLevel,
      settings.pool,
      service.name,
    );
    const ctx = new PoolServiceContext(
      settings.bus,
      settings.pool,
      service.name,
      settings.signal,
      log,
    );
    built.runners.push(new ServiceRunner(settings.host, service, ctx));
  }
  return built;
}

/** The report of an entry that could not be added: a service in `error`. */
function misconfiguredReport(service: string, message: string): ServiceReport {
  return {
    name: service,
    status: "error",
    error: serializeError(new TypeError(message)),
    restart: "never",
    maxRestarts: 0,
    restartWindow: 0,
    backoffInitial: 0,
    backoffMax: 0,
  };
}

/** A short description of a value that is not a service. */
function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "object") {
    return `an object (${value.constructor?.name ?? "no prototype"})`;
  }
  return `${typeof value} ${String(value)}`;
}
