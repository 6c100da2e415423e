/**
 * `--name=value` from the command line, for the distributed example.
 *
 * @module
 */

/** The value of `--<name>=…` on the command line, else `fallback`. */
export function option(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  return Deno.args.find((arg) => arg.startsWith(prefix))?.slice(
    prefix.length,
  ) ??
    fallback;
}
