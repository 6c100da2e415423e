/**
 * A small static file server for the WebSocket service's `staticDir`:
 * `GET` and `HEAD`, `index.html` for folders, no path can leave the folder.
 *
 * @module
 */

import { join, resolve, sep } from "node:path";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".wasm": "application/wasm",
  ".woff2": "font/woff2",
};

/** The `Content-Type` for a file name, by extension. */
export function contentType(name: string): string {
  const dot = name.lastIndexOf(".");
  const ext = dot < 0 ? "" : name.slice(dot).toLowerCase();
  return CONTENT_TYPES[ext] ?? "application/octet-stream";
}

/**
 * The file path under `root` that `pathname` names, or `undefined` when the
 * path is malformed or tries to leave `root`.
 */
export function resolveStaticPath(
  root: string,
  pathname: string,
): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  const segments = decoded.split("/").filter((s) => s !== "");
  if (
    segments.some((s) =>
      s === ".." || s === "." || s.includes("\\") || s.includes("\0")
    )
  ) {
    return undefined;
  }
  const base = resolve(root);
  const path = join(base, ...segments);
  return path === base || path.startsWith(base + sep) ? path : undefined;
}

/**
 * Answers a `GET` or `HEAD` request from the files under `root`, or resolves
 * `undefined` when no file matches (so the caller can fall back).
 */
export async function serveStatic(
  root: string,
  request: Request,
  pathname: string,
): Promise<Response | undefined> {
  if (request.method !== "GET" && request.method !== "HEAD") return undefined;
  let path = resolveStaticPath(root, pathname);
  if (path === undefined) return undefined;
  let info = await statOrUndefined(path);
  if (info?.isDirectory) {
    path = join(path, "index.html");
    info = await statOrUndefined(path);
  }
  if (info === undefined || !info.isFile) return undefined;
  // A symbolic link may point outside the folder.
  const [real, realRoot] = await Promise.all([
    Deno.realPath(path),
    Deno.realPath(root),
  ]);
  if (real !== realRoot && !real.startsWith(realRoot + sep)) return undefined;
  const headers = {
    "content-type": contentType(path),
    "content-length": String(info.size),
    "cache-control": "no-cache",
  };
  if (request.method === "HEAD") return new Response(null, { headers });
  const file = await Deno.open(path, { read: true });
  return new Response(file.readable, { headers });
}

async function statOrUndefined(
  path: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (
      error instanceof Deno.errors.NotFound ||
      error instanceof Deno.errors.NotADirectory
    ) {
      return undefined;
    }
    throw error;
  }
}
