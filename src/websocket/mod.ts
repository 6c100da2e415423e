/**
 * The WebSocket service of magic-foundation: WebSocket clients on
 * `Deno.serve`, connected to the bus by path.
 *
 * A frame on a connection to `/client` is published on `ws://inbound/client`
 * with a `replyTo` that reaches that connection alone; whatever is published
 * on `ws://outbound/client` goes to every connection on `/client`; opening
 * and closing connections are announced on `ws://connected/client` and
 * `ws://disconnected/client`. {@linkcode joinRoom} puts a connection into a
 * room, and `ws://room/<name>` reaches every connection in it. A client
 * that opts in to sessions gets what it missed when it reconnects within
 * `recoveryWindow` (`ws://reconnected/<path>`). Pages get a
 * reconnecting client at `/_magic/client.js` (`@magic/foundation/client`).
 *
 * @example A consumer that answers every client of `/client`
 * ```ts ignore
 * import { Main, Service, type ServiceContext } from "@magic/foundation";
 * import { WebSocketService } from "@magic/foundation/websocket";
 *
 * class Consumer extends Service {
 *   override async initialize(ctx: ServiceContext): Promise<void> {
 *     await ctx.subscribe<string>("ws://inbound/client", async (data, meta) => {
 *       // Only the sender gets this one; publish on ws://outbound/client to
 *       // reach every client on the path.
 *       await ctx.publish(meta.replyTo!, `echo: ${data}`);
 *     });
 *   }
 * }
 *
 * if (import.meta.main) {
 *   const main = Main.instance();
 *   main.servicePools = {
 *     web: [() => new WebSocketService({ port: 8765 })],
 *     work: [() => new Consumer("Consumer")],
 *   };
 *   await main.run();
 * }
 * ```
 *
 * @module
 */

export { WebSocketService } from "./service.ts";
export type {
  AuthorizeHook,
  AuthorizeInfo,
  AuthorizeResult,
  FallbackHandler,
  SlowClientPolicy,
  WebSocketServiceOptions,
} from "./options.ts";
export { CloseCode, type ConnectionEvent } from "./connection.ts";
export {
  connectedQueue,
  connectionQueue,
  disconnectedQueue,
  inboundQueue,
  outboundQueue,
  reconnectedQueue,
  routePath,
} from "./router.ts";
export type { SessionStats } from "./sessions.ts";
export type { WebSocketMetrics } from "./metrics.ts";
export {
  joinRoom,
  leaveRoom,
  RoomError,
  type RoomErrorReason,
  type RoomOptions,
  roomQueue,
  type RoomReport,
  roomReport,
  validateRoomName,
} from "./rooms.ts";
