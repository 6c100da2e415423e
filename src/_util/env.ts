/**
 * The environment variable `name`, when it may be read without a permission
 * prompt and is not empty; `undefined` otherwise.
 */
export function readEnv(name: string): string | undefined {
  const state = Deno.permissions.querySync({ name: "env", variable: name })
    .state;
  if (state !== "granted") return undefined;
  const value = Deno.env.get(name)?.trim();
  return value === "" ? undefined : value;
}
