/**
 * A Python `websockets` client recovers its session using only the wire
 * format README's "Reconnects" section documents (the venv is made by the
 * test; skipped with a one-line reason without python3 or the package).
 */
import assert from "node:assert/strict";
import { joinRoom } from "../src/websocket/mod.ts";
import { startService } from "./fixtures/websocket_harness.ts";
import { deadline } from "./fixtures/websocket_helpers.ts";
import { pythonWith } from "./_python.ts";

/** The client: every step as README describes it, nothing else. */
const CLIENT = `
import asyncio, json, sys
import websockets

url = sys.argv[1]
offset = 0

def data(frame):
    """Takes the offset off a frame: '<offset>:<text>', or 8 bytes then bytes."""
    global offset
    if isinstance(frame, str):
        head, _, text = frame.partition(":")
        offset = int(head)
        return text
    offset = int.from_bytes(frame[:8], "big")
    return "bytes " + frame[8:].hex()

def say(**fields):
    print(json.dumps(fields), flush=True)

async def main():
    global offset
    ws = await websockets.connect(url + "?mf-session")
    hello = json.loads(await ws.recv())
    offset = hello["offset"]
    await ws.send("join red")
    say(hello=hello, joined=data(await ws.recv()))
    await ws.close(code=4000)  # any code but 1000 keeps the session
    say(dropped=offset)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    ws = await websockets.connect(
        url + "?mf-session=" + hello["session"] + "&mf-offset=" + str(offset))
    again = json.loads(await ws.recv())
    missed = [data(await ws.recv()) for _ in range(int(sys.argv[2]))]
    say(hello=again, missed=missed)
    await ws.close()

asyncio.run(main())
`;

const dir = await Deno.makeTempDir({ prefix: "mf-sessions-py-" });
const venv = await pythonWith(dir, ["websockets"]);
const python = "python" in venv ? venv.python : undefined;
if (python === undefined) await Deno.remove(dir, { recursive: true });

Deno.test({
  name:
    "Sessions: a Python websockets client recovers using only the documented wire format" +
    ("reason" in venv ? ` (skipped: ${venv.reason})` : ""),
  ignore: python === undefined,
  async fn(): Promise<void> {
    try {
      await using h = await startService();
      const ctx = h.bed.context;
      await ctx.subscribe<string>("ws://inbound/s", async (text, meta) => {
        await joinRoom(ctx, meta, text.slice(5));
        await ctx.publish(meta.replyTo!, `joined ${text.slice(5)}`);
      });
      await Deno.writeTextFile(`${dir}/client.py`, CLIENT);
      const child = new Deno.Command(python as string, {
        args: [`${dir}/client.py`, h.ws("/s"), "4"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const lines: Array<Record<string, unknown>> = [];
      const stderr = new Response(child.stderr).text();
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let rest = "";
      const line = async (): Promise<Record<string, unknown>> => {
        while (!rest.includes("\n")) {
          const { value, done } = await deadline(
            reader.read(),
            "a line from the Python client",
          );
          if (done) throw new Error(`The client ended: ${await stderr}`);
          rest += value;
        }
        const end = rest.indexOf("\n");
        const parsed = JSON.parse(rest.slice(0, end));
        rest = rest.slice(end + 1);
        lines.push(parsed);
        return parsed;
      };
      const writer = child.stdin.getWriter();
      try {
        const first = await line();
        assert.equal(first.joined, "joined red");
        assert.equal((first.hello as { recovered: boolean }).recovered, false);
        await line(); // dropped
        const replyTo = h.bed.seen("ws://inbound/s")[0]!.meta.replyTo!;
        await ctx.publish("ws://room/red", "red while away");
        await ctx.publish("ws://outbound/s", { path: "while away" });
        await ctx.publish(replyTo, new Uint8Array([0xca, 0xfe]));
        await ctx.publish("ws://room/red", "red again");
        await writer.write(new TextEncoder().encode("go\n"));
        const back = await line();
        assert.deepEqual(
          (back.hello as { recovered: boolean }).recovered,
          true,
        );
        const missed = back.missed as string[];
        assert.deepEqual([...missed].sort(), [
          "bytes cafe",
          "red again",
          "red while away",
          '{"path":"while away"}',
        ]);
        assert.ok(
          missed.indexOf("red while away") < missed.indexOf("red again"),
        );
      } finally {
        await writer.close().catch(() => {});
        reader.releaseLock();
        await child.stdout.cancel().catch(() => {});
        const status = await deadline(child.status, "the client's exit");
        await stderr;
        assert.equal(status.code, 0, JSON.stringify(lines));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
