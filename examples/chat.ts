/**
 * A chat with rooms: the page `examples/public/chat.html` connects to
 * `/chat?name=<name>` with the reconnecting browser client; JOIN puts the
 * connection into a room (leaving the one it was in), and what it says goes
 * to that room only. The WebSocketService runs in pool `web`, the chat in
 * pool `chat`: rooms work across pools.
 *
 *     deno run -A examples/chat.ts [--hostname=localhost] [--port=8765]
 *
 * Frames are JSON: `{join: room}` and `{say: text, room}` from the page
 * (a `say` names its room, so that frames the client queued while the
 * server was away still land in the right room after it reconnects: a
 * connection in no room enters the room of its first `say`; one in another
 * room gets an error, as it must join first);
 * `{joined: room}`, `{room, from, text}` and `{error}` from the server. The
 * sender's name comes from `authorize`, which puts it in `meta.headers`, so
 * a page cannot speak for someone else.
 *
 * It prints the page's address once the server listens. Ctrl-C (or
 * SIGTERM) closes the clients with 1001 and ends the program with exit
 * code 0.
 *
 * @module
 */
import {
  Main,
  type MessageMeta,
  Service,
  type ServiceContext,
} from "@magic/foundation";
import {
  type AuthorizeHook,
  type ConnectionEvent,
  joinRoom,
  leaveRoom,
  RoomError,
  roomQueue,
  validateRoomName,
  WebSocketService,
} from "@magic/foundation/websocket";

/** One chat line, as the pages receive it. */
interface Line {
  room: string;
  from: string;
  text: string;
}

/** A name: 1 to 32 letters, digits, `_` or `-`. */
const NAME = /^[\w-]{1,32}$/;

/** Accepts `/chat?name=<name>` and puts the name in `meta.headers.user`. */
const authorize: AuthorizeHook = (_request, { query }) => {
  const name = new URLSearchParams(query).get("name") ?? "";
  if (!NAME.test(name)) {
    return new Response("A name of 1 to 32 letters, digits, _ or -\n", {
      status: 400,
    });
  }
  return { headers: { user: name } };
};

/** Joins rooms and relays what is said in them. */
class Chat extends Service {
  /** Connection id → the room it is in. */
  readonly #roomOf = new Map<string, string>();

  override async initialize(ctx: ServiceContext): Promise<void> {
    await ctx.subscribe<string>("ws://inbound/chat", async (frame, meta) => {
      let message: { join?: unknown; say?: unknown; room?: unknown };
      try {
        message = JSON.parse(frame);
      } catch {
        return await ctx.publish(meta.replyTo!, { error: "Not JSON" });
      }
      const room = message.join ?? message.room;
      if (typeof room !== "string") {
        return await ctx.publish(meta.replyTo!, { error: "No room named" });
      }
      const current = this.#roomOf.get(meta.headers!.connectionId!);
      if (
        message.join === undefined && current !== undefined && current !== room
      ) {
        return await ctx.publish(meta.replyTo!, {
          error: `Not in room ${JSON.stringify(room)}: send {"join": ${
            JSON.stringify(room)
          }} first`,
        });
      }
      if (!await this.#enter(ctx, meta, room)) return;
      if (message.join !== undefined) {
        return await ctx.publish(meta.replyTo!, { joined: room });
      }
      if (typeof message.say === "string" && message.say !== "") {
        const line: Line = {
          room,
          from: meta.headers!.user!,
          text: message.say.slice(0, 1000),
        };
        await ctx.publish(roomQueue(room), line);
      }
    });
    await ctx.subscribe<ConnectionEvent>("ws://disconnected/chat", (event) => {
      this.#roomOf.delete(event.id); // its rooms it left by closing
    });
  }

  /** Puts the sender into `room` (out of its last one); false if refused. */
  async #enter(
    ctx: ServiceContext,
    meta: MessageMeta,
    room: string,
  ): Promise<boolean> {
    const id = meta.headers!.connectionId!;
    const before = this.#roomOf.get(id);
    if (before === room) return true;
    try {
      validateRoomName(room);
      await joinRoom(ctx, meta, room);
    } catch (error) {
      if (!(error instanceof RoomError || error instanceof TypeError)) {
        throw error;
      }
      await ctx.publish(meta.replyTo!, { error: error.message });
      return false;
    }
    this.#roomOf.set(id, room);
    if (before !== undefined) await leaveRoom(ctx, meta, before);
    return true;
  }
}

/** `--hostname=…` and `--port=…` from the command line. */
function address(args: string[]): { hostname: string; port: number } {
  const value = (name: string) =>
    args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return {
    hostname: value("hostname") ?? "localhost",
    port: Number(value("port") ?? 8765),
  };
}

if (import.meta.main) {
  const { hostname, port } = address(Deno.args);
  const main = Main.instance();
  main.servicePools = {
    web: [
      new WebSocketService({
        hostname,
        port,
        paths: ["/chat"],
        authorize,
        staticDir: new URL("./public/", import.meta.url),
      }),
    ],
    chat: [new Chat("Chat")],
  };
  if (Main.isPrimary) {
    main.addEventListener("status", (event) => {
      const { service, status } = (event as CustomEvent<
        { service: string; status: string }
      >).detail;
      if (service !== "WebSocketService") return;
      if (status === "running") {
        // deno-lint-ignore no-console
        console.log(`http://${hostname}:${port}/chat.html`);
      } else if (status === "error") {
        void main.stop(); // e.g. the port is in use: nothing to serve
      }
    });
  }
  await main.run();
}
