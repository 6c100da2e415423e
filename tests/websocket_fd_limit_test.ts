/**
 * The WebSocketService of a user's program (in a folder outside the
 * repository) that runs out of file descriptors: it says so once, keeps its
 * port, and accepts again once the connections that took them are gone.
 */
import assert from "node:assert/strict";
import { outsideFolder } from "./_outside.ts";
import {
  deadline,
  freePort,
  TestClient,
} from "./fixtures/websocket_helpers.ts";

const PROGRAM = `
import { Main, Service, type ServiceContext } from "MOD/mod.ts";
import { WebSocketService } from "MOD/src/websocket/mod.ts";

class Echo extends Service {
  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe("ws://inbound/echo", async (data, meta) => {
      await ctx.publish(meta.replyTo!, data);
    });
  }
}

const main = Main.instance();
main.servicePools = {
  main: [
    new WebSocketService({ hostname: "127.0.0.1", port: Number(Deno.args[0]) }),
    new Echo("Echo"),
  ],
};
await main.run();
`;

const STOPPED = (line: string): boolean =>
  line.includes("Stopped accepting connections on");
const AGAIN = (line: string): boolean => line.includes("Listening again on");

/** The number of file descriptors `pid` has open. */
async function openFiles(pid: number): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) count++;
  return count;
}

/** Sets the soft and hard limit on open files of a running process. */
async function limitOpenFiles(pid: number, limit: number): Promise<void> {
  const { code, stderr } = await new Deno.Command("prlimit", {
    args: ["--pid", String(pid), `--nofile=${limit}:${limit}`],
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

Deno.test({
  name:
    "WebSocketService out of file descriptors logs once, listens again and accepts once they are freed",
  ignore: Deno.build.os !== "linux", // prlimit and /proc
  async fn(): Promise<void> {
    await using folder = await outsideFolder("file");
    await folder.write("prog.ts", PROGRAM);
    const port = freePort();
    const child = folder.start("prog.ts", { args: [String(port)] });
    await child.waitFor((l) => l.includes("Listening on"), 1, 60_000);
    const pid = child.process.pid;
    // Room for 40 more: the idle connections below take them.
    await limitOpenFiles(pid, (await openFiles(pid)) + 40);
    const conns: Deno.TcpConn[] = [];
    try {
      // Idle TCP connections until the server stops accepting: then a
      // connect is refused (the listener is gone) or the log says so.
      for (let i = 0; i < 200 && !child.lines.some(STOPPED); i++) {
        try {
          conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        } catch {
          break;
        }
      }
      await child.waitFor(STOPPED);
    } finally {
      for (const conn of conns) conn.close();
    }
    await child.waitFor(AGAIN);
    const client = await TestClient.open(`ws://127.0.0.1:${port}/echo`);
    try {
      client.send("still here");
      assert.equal(await client.next(), "still here");
    } finally {
      await client.close();
    }
    assert.equal(child.lines.filter(STOPPED).length, 1, child.lines.join("\n"));
    assert.equal(child.lines.filter(AGAIN).length, 1, child.lines.join("\n"));
    assert.match(child.lines.find(STOPPED)!, /Too many open files/);
    child.process.kill("SIGTERM");
    const status = await deadline(child.exit(), "the program's exit", 30_000);
    assert.equal(status.code, 0, child.lines.join("\n"));
  },
});
