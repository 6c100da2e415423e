/**
 * A program's pools as declared: their type, and the check of their shape
 * that `main.run()` and the test bed both make before anything starts.
 *
 * @module
 */
import { Service, type ServiceEntry } from "./service.ts";

/** The pools of a program: pool name → its services (or factories). */
export type ServicePools = Record<string, ServiceEntry[]>;

/**
 * Checks the pools' shape; returns their names in declaration order.
 * `where` starts each error message.
 */
export function validatePools(pools: unknown, where = "Cannot run"): string[] {
  if (typeof pools !== "object" || pools === null) {
    throw new TypeError(
      `${where}: servicePools must be an object of pool name → services`,
    );
  }
  const entries = Object.entries(pools);
  if (entries.length === 0) {
    throw new TypeError(`${where}: servicePools declares no pool`);
  }
  return entries.map(([name, services]) => {
    if (name.trim() === "") {
      throw new TypeError(`${where}: a pool name is empty`);
    }
    if (isArrayIndex(name)) {
      throw new TypeError(
        `${where}: pool name "${name}" is an integer, and JavaScript lists integer keys before the others, which would change the start and stop order; use a name such as "p${name}"`,
      );
    }
    if (!Array.isArray(services)) {
      throw new TypeError(
        `${where}: pool "${name}" must be an array of services`,
      );
    }
    const names = new Set<string>();
    for (const service of services) {
      if (!(service instanceof Service) && typeof service !== "function") {
        throw new TypeError(
          `${where}: pool "${name}" holds ${
            String(service)
          }, not a Service or a function returning one`,
        );
      }
      if (service instanceof Service) {
        if (names.has(service.name)) {
          throw new TypeError(
            `${where}: pool "${name}" has two services named "${service.name}"`,
          );
        }
        names.add(service.name);
      }
    }
    return name;
  });
}

/**
 * Whether `key` is a property name that JavaScript orders before the others
 * (an array index: `"0"`, `"42"`, not `"01"` or `"-1"`).
 */
function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9][0-9]*)$/.test(key) && Number(key) < 2 ** 32 - 1;
}
