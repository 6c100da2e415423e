import type { ServiceContext } from "./service_context.ts";
import { checkDuration } from "./_util/duration.ts";

/**
 * The states a service goes through, as in the Python original:
 * `uninitialized → initialized → running → terminated`, or `error` when any
 * phase throws.
 *
 * @example Loop while running
 * ```ts
 * import { ServiceStatus } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * assert.equal(ServiceStatus.running, "running");
 * ```
 */
export const ServiceStatus = {
  /** Constructed; `initialize()` has not finished yet. */
  uninitialized: "uninitialized",
  /** `initialize()` finished; waiting for every pool to be initialized. */
  initialized: "initialized",
  /** `run()` started. Stays so after `run()` returns, until stop. */
  running: "running",
  /** Stopping began (so `run` loops end), then `terminate()` ran. */
  terminated: "terminated",
  /** A phase threw or timed out; `service.error` says why. */
  error: "error",
} as const;

/** One of the values of {@linkcode ServiceStatus}. */
export type ServiceStatus = typeof ServiceStatus[keyof typeof ServiceStatus];

/**
 * When a service is started again after it ended:
 * - `never` (the default, as in the Python original): a failure leaves it in
 *   `error`;
 * - `on-failure`: when `initialize` or `run` throws;
 * - `always`: whenever `run` ends, by a throw or by returning.
 */
export type RestartPolicy = "never" | "on-failure" | "always";

/** How a service is supervised. All fields are optional. */
export interface ServiceOptions {
  /** When to restart the service. Default `"never"`. */
  restart?: RestartPolicy;
  /** The most restarts allowed within `restartWindow`. Default 5. */
  maxRestarts?: number;
  /** The window, in ms, in which restarts are counted. Default 60 000. */
  restartWindow?: number;
  /** Delay before the first restart, in ms; doubles each time. Default 100. */
  backoffInitial?: number;
  /** The longest delay between restarts, in ms. Default 10 000. */
  backoffMax?: number;
}

/** The defaults of {@linkcode ServiceOptions}. */
const DEFAULT_SERVICE_OPTIONS: Required<ServiceOptions> = {
  restart: "never",
  maxRestarts: 5,
  restartWindow: 60_000,
  backoffInitial: 100,
  backoffMax: 10_000,
};

/**
 * A long-running unit of work. Subclass it, implement what it needs of
 * `initialize()`, `run()` and `terminate()` (each is optional and does
 * nothing by default); then list it in a pool of
 * `Main.instance().servicePools`.
 *
 * @example A service that counts
 * ```ts
 * import { Service, ServiceStatus, type ServiceContext } from "@magic/foundation";
 * import assert from "node:assert/strict";
 *
 * class Counter extends Service {
 *   count = 0;
 *   override async run(ctx: ServiceContext): Promise<void> {
 *     while (this.status === ServiceStatus.running) {
 *       this.count++;
 *       await ctx.sleep(1000);
 *     }
 *   }
 * }
 *
 * const counter = new Counter("counter", { restart: "on-failure" });
 * assert.equal(counter.name, "counter");
 * assert.equal(counter.status, ServiceStatus.uninitialized);
 * ```
 */
export abstract class Service {
  /** The service's name, unique within its pool. */
  readonly name: string;
  /** Supervision settings, defaults filled in. */
  readonly options: Readonly<Required<ServiceOptions>>;
  /** The current state; the runtime sets it. */
  status: ServiceStatus = ServiceStatus.uninitialized;
  /** The last failure, when `status` is (or was) `error`. */
  error: Error | undefined = undefined;

  /**
   * Names the service and sets how it is supervised.
   *
   * @param name The service's name, unique within its pool.
   * @param options How the service is supervised.
   * @throws {TypeError} When the name is empty or an option is out of range.
   */
  constructor(name: string, options: ServiceOptions = {}) {
    if (typeof name !== "string" || name.trim() === "") {
      throw new TypeError(
        "Cannot create service: the name must be a non-empty string",
      );
    }
    this.name = name;
    this.options = resolveServiceOptions(name, options);
  }

  /**
   * Prepares the service. Every service in every pool finishes
   * `initialize()` before any `run()` starts, so subscribe here.
   *
   * @param _ctx The service's context.
   */
  initialize(_ctx: ServiceContext): void | Promise<void> {}

  /**
   * The service's work. It may loop while `this.status` is `running`, or
   * return at once. Optional: a service that only handles messages (it
   * subscribes in `initialize()`) leaves it out and stays running.
   *
   * @param _ctx The service's context.
   */
  run(_ctx: ServiceContext): void | Promise<void> {}

  /**
   * Releases what the service holds. Called once when the program stops,
   * bounded by the terminate timeout.
   *
   * @param _ctx The service's context.
   */
  terminate(_ctx: ServiceContext): void | Promise<void> {}
}

/** A service, or a function that builds one inside its pool's worker. */
export type ServiceEntry = Service | (() => Service);

function resolveServiceOptions(
  name: string,
  options: ServiceOptions,
): Required<ServiceOptions> {
  const resolved = { ...DEFAULT_SERVICE_OPTIONS, ...stripUndefined(options) };
  if (!["never", "on-failure", "always"].includes(resolved.restart)) {
    throw new TypeError(
      `Cannot create service "${name}": restart must be "never", "on-failure" or "always", got "${resolved.restart}"`,
    );
  }
  for (const key of ["backoffInitial", "backoffMax"] as const) {
    checkDuration(
      `Cannot create service "${name}"`,
      key,
      resolved[key],
      ">= 0",
    );
  }
  for (const key of ["maxRestarts", "restartWindow"] as const) {
    const value = resolved[key];
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(
        `Cannot create service "${name}": ${key} must be a number >= 0, got ${value}`,
      );
    }
  }
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}
