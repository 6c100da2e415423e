import { errorMessage } from "./error_text.ts";

/** `host:port`, with brackets around an IPv6 host. */
export function hostPort(hostname: string, port: number): string {
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/**
 * `Deno.serve`, failing with an error that names who could not listen and
 * where: `AddrInUse` stays `AddrInUse` (`Cannot start WebSocketService "ws":
 * 127.0.0.1:8765 is already in use`), anything else becomes an `Error`.
 *
 * @param who Who listens, for the message (`WebSocketService "ws"`).
 */
export function listen(
  who: string,
  options: Deno.ServeTcpOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Deno.HttpServer<Deno.NetAddr> {
  try {
    return Deno.serve(options, handler);
  } catch (error) {
    const where = hostPort(options.hostname ?? "0.0.0.0", options.port ?? 0);
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Deno.errors.AddrInUse(
        `Cannot start ${who}: ${where} is already in use`,
        { cause: error },
      );
    }
    throw new Error(
      `Cannot start ${who}: cannot listen on ${where}: ${errorMessage(error)}`,
      { cause: error },
    );
  }
}
