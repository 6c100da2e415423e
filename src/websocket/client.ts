/**
 * A WebSocket for web pages that reconnects: exponential backoff with
 * jitter, frames sent while disconnected kept in a bounded queue and sent in
 * order once connected again, and `open` / `close` / `reconnecting` events.
 * Text and binary frames pass through unchanged.
 *
 * It has no dependency and uses only APIs that browsers and Deno share (it
 * type-checks with the DOM library alone). A WebSocketService serves it to
 * pages as JavaScript at `/_magic/client.js`:
 *
 * ```html
 * <script type="module">
 *   import { ReconnectingWebSocket } from "/_magic/client.js";
 *   const socket = new ReconnectingWebSocket("/chat");
 *   socket.addEventListener("message", (e) => console.log(e.data));
 *   socket.send("hello"); // queued until the socket is open
 * </script>
 * ```
 *
 * Pages built with a bundler import it as `@magic/foundation/client`.
 *
 * @example Echo through a server that is not there yet
 * ```ts ignore
 * import { ReconnectingWebSocket } from "@magic/foundation/client";
 *
 * const socket = new ReconnectingWebSocket("ws://localhost:8765/echo");
 * socket.addEventListener("reconnecting", (e) => {
 *   const { attempt, delay } = (e as CustomEvent).detail;
 *   console.log(`attempt ${attempt} in ${delay} ms`);
 * });
 * socket.addEventListener("message", (e) => console.log((e as MessageEvent).data));
 * socket.send("sent as soon as a connection opens");
 * ```
 *
 * @module
 */

/** Options of {@linkcode ReconnectingWebSocket}; durations in ms. */
export interface ReconnectingWebSocketOptions {
  /** Subprotocols, as for `new WebSocket(url, protocols)`. */
  protocols?: string | string[];
  /** Delay before the first reconnection attempt (before jitter). Default 500. */
  minDelay?: number;
  /** Largest delay between attempts: each failure doubles it up to this. Default 30 000. */
  maxDelay?: number;
  /**
   * Frames that may wait for a connection; `send()` past it throws a
   * `RangeError`. Default 1000.
   */
  maxQueued?: number;
  /** How binary frames arrive: `ArrayBuffer` (default) or `Blob`. */
  binaryType?: BinaryType;
  /**
   * Opt in to sessions (docs/websocket.md, "Reconnects"): after a drop, the server
   * replays what this client missed within its `recoveryWindow`, keeps its
   * rooms and its `meta.replyTo`, and `open` says whether it did. Default
   * `true`; `false` connects as a plain WebSocket.
   */
  recover?: boolean;
}

/**
 * What the `open` event carries in `detail`: whether the session was
 * recovered (everything missed was replayed, rooms and `meta.replyTo`
 * kept), and if not, why (`"unknown session"`, `"window passed"`,
 * `"history trimmed"`, `"session in use"`, `"recovery off"`); no reason on
 * the first connection.
 */
export interface OpenDetail {
  /** Whether the session was recovered. */
  recovered: boolean;
  /** Why a session presented was not recovered. */
  reason?: string;
}

/** What the `reconnecting` event carries in `detail`. */
export interface ReconnectingDetail {
  /** 1 for the first attempt after a connection was lost, then 2, 3, … */
  attempt: number;
  /** How long until that attempt, in ms (backoff with jitter). */
  delay: number;
}

/** A frame `send()` accepts (what `WebSocket.send` accepts). */
export type Frame = string | Blob | BufferSource;

/**
 * A WebSocket that reconnects, for pages. It connects when created; when the
 * connection drops it dispatches `close`, then `reconnecting` (with
 * {@linkcode ReconnectingDetail}) and tries again after `minDelay`, doubling
 * up to `maxDelay`, each delay drawn between half and all of that (jitter,
 * so clients that lost the same server do not all come back at once). A
 * successful `open` resets the backoff.
 *
 * `send()` sends at once while the socket is open; otherwise the frame waits
 * in a queue of at most `maxQueued` frames, sent in order as soon as the next
 * connection opens, before any later frame. A frame sent just before the
 * connection dropped may be lost: delivery is at most once, as with a plain
 * WebSocket.
 *
 * Events: `open`, `message` (a `MessageEvent` whose `data` is a string, or
 * an `ArrayBuffer`/`Blob` per `binaryType`), `close` (a `CloseEvent`),
 * `reconnecting` (a `CustomEvent`) and `error`.
 *
 * @example Queue while the server is away
 * ```ts ignore
 * import { ReconnectingWebSocket } from "@magic/foundation/client";
 *
 * const socket = new ReconnectingWebSocket("/client", { maxQueued: 100 });
 * socket.addEventListener("open", () => console.log("open"));
 * socket.addEventListener("close", (e) => console.log((e as CloseEvent).code));
 * try {
 *   socket.send(JSON.stringify({ timestamp: Date.now() }));
 * } catch (error) {
 *   // RangeError: 100 frames wait for the connection already
 * }
 * ```
 */
export class ReconnectingWebSocket extends EventTarget {
  /** The socket's URL (`ws:` or `wss:`), resolved against the page. */
  readonly url: string;
  readonly #protocols: string | string[] | undefined;
  readonly #minDelay: number;
  readonly #maxDelay: number;
  readonly #maxQueued: number;
  readonly #binaryType: BinaryType;
  readonly #recover: boolean;
  readonly #queue: Frame[] = [];
  /** The session's secret, and the offset of the last frame received. */
  #session: string | undefined;
  #offset = 0;
  /** This socket's frames carry offsets (the server's hello said so). */
  #offsets = false;
  #socket: WebSocket | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  #stopped = false;

  /**
   * Connects to `url`.
   *
   * @param url A `ws:`/`wss:` URL, an `http:`/`https:` one (mapped to
   * `ws:`/`wss:`), or a path such as `/chat` (resolved against the page).
   * @param options See {@linkcode ReconnectingWebSocketOptions}.
   * @throws {TypeError} When `url` cannot be resolved.
   * @throws {RangeError} When an option is out of range.
   */
  constructor(url: string | URL, options: ReconnectingWebSocketOptions = {}) {
    super();
    let base: string | undefined;
    try {
      base = globalThis.location?.href;
    } catch {
      // Deno without --location
    }
    const resolved = new URL(url, base);
    if (resolved.protocol === "http:") resolved.protocol = "ws:";
    if (resolved.protocol === "https:") resolved.protocol = "wss:";
    this.url = resolved.href;
    const count = (name: string, value: number, min: number): number => {
      if (!(value >= min && value <= 2 ** 31 - 1)) {
        throw new RangeError(
          `Cannot create ReconnectingWebSocket: ${name} must be a number from ${min} to ${
            2 ** 31 - 1
          }, got ${value}`,
        );
      }
      return value;
    };
    this.#protocols = options.protocols;
    this.#minDelay = count("minDelay", options.minDelay ?? 500, 1);
    this.#maxDelay = count(
      "maxDelay",
      options.maxDelay ?? 30_000,
      this.#minDelay,
    );
    this.#maxQueued = count("maxQueued", options.maxQueued ?? 1000, 0);
    this.#binaryType = options.binaryType ?? "arraybuffer";
    this.#recover = options.recover ?? true;
    this.#connect();
  }

  /**
   * `WebSocket.OPEN` while connected, `WebSocket.CLOSED` after `close()`,
   * `WebSocket.CONNECTING` otherwise (also while waiting to reconnect).
   */
  get readyState(): number {
    if (this.#stopped) return WebSocket.CLOSED;
    return this.#socket?.readyState === WebSocket.OPEN
      ? WebSocket.OPEN
      : WebSocket.CONNECTING;
  }

  /** Frames waiting for a connection. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Sends `data` now if the socket is open, or queues it for the next
   * connection. Bytes in a view or buffer are copied when queued, so the
   * caller may reuse them.
   *
   * @param data Text or binary.
   * @throws {RangeError} When `maxQueued` frames wait already.
   * @throws {DOMException} `InvalidStateError` after `close()`.
   */
  send(data: Frame): void {
    if (this.#stopped) {
      throw new DOMException(
        "Cannot send: the socket was closed with close()",
        "InvalidStateError",
      );
    }
    const socket = this.#socket;
    if (socket?.readyState === WebSocket.OPEN && this.#queue.length === 0) {
      socket.send(data);
      return;
    }
    if (this.#queue.length >= this.#maxQueued) {
      throw new RangeError(
        `Cannot send: ${this.#maxQueued} frames wait for the connection already`,
      );
    }
    if (ArrayBuffer.isView(data)) {
      data = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        .slice();
    } else if (typeof data !== "string" && !(data instanceof Blob)) {
      data = data.slice(0);
    }
    this.#queue.push(data);
  }

  /**
   * Closes the socket for good: no more reconnection, queued frames are
   * dropped, and a `close` event follows (at once if no socket was open).
   *
   * @param code The close code. Default 1000.
   * @param reason The close reason.
   */
  close(code = 1000, reason = ""): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#session = undefined;
    this.#queue.length = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const socket = this.#socket;
    if (
      socket !== undefined &&
      (socket.readyState === WebSocket.CONNECTING ||
        socket.readyState === WebSocket.OPEN)
    ) {
      socket.close(code, reason);
    } else {
      this.#socket = undefined;
      this.dispatchEvent(
        new CloseEvent("close", { code, reason, wasClean: true }),
      );
    }
  }

  #connect(): void {
    this.#timer = undefined;
    const url = new URL(this.url);
    if (this.#recover) {
      url.searchParams.set("mf-session", this.#session ?? "");
      if (this.#session !== undefined) {
        url.searchParams.set("mf-offset", String(this.#offset));
      }
    }
    const socket = new WebSocket(url, this.#protocols);
    socket.binaryType = this.#recover ? "arraybuffer" : this.#binaryType;
    this.#socket = socket;
    let greeted = !this.#recover;
    const opened = (detail: OpenDetail): void => {
      this.#attempt = 0;
      // Queued frames go first, in order, before anything sent from here on.
      const queued = this.#queue.splice(0);
      for (const data of queued) socket.send(data);
      this.dispatchEvent(new CustomEvent<OpenDetail>("open", { detail }));
    };
    socket.onopen = () => {
      if (greeted) opened({ recovered: false });
    };
    socket.onmessage = (event) => {
      let data = event.data;
      if (!greeted) {
        // The server's first frame: {"mf":"session",...}.
        greeted = true;
        let hello;
        try {
          hello = typeof data === "string" ? JSON.parse(data) : undefined;
        } catch {
          // not a hello
        }
        if (hello?.mf === "session") {
          this.#offsets = typeof hello.session === "string";
          this.#session = this.#offsets ? hello.session : undefined;
          this.#offset = hello.offset ?? 0;
          const detail: OpenDetail = { recovered: hello.recovered === true };
          if (typeof hello.reason === "string") detail.reason = hello.reason;
          opened(detail);
          return;
        }
        this.#offsets = false;
        opened({ recovered: false, reason: "recovery off" });
      }
      if (this.#offsets) {
        // `<offset>:<text>`, or 8 bytes of offset (big-endian) then bytes.
        if (typeof data === "string") {
          const colon = data.indexOf(":");
          this.#offset = Number(data.slice(0, colon));
          data = data.slice(colon + 1);
        } else {
          const view = new DataView(data as ArrayBuffer);
          this.#offset = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
          data = (data as ArrayBuffer).slice(8);
        }
      }
      if (typeof data !== "string" && this.#binaryType === "blob") {
        data = new Blob([data]);
      }
      this.dispatchEvent(
        new MessageEvent("message", { data, origin: event.origin }),
      );
    };
    socket.onerror = () => this.dispatchEvent(new Event("error"));
    socket.onclose = (event) => {
      socket.onopen =
        socket.onmessage =
        socket.onerror =
        socket.onclose =
          null;
      if (this.#socket === socket) this.#socket = undefined;
      this.dispatchEvent(
        new CloseEvent("close", {
          code: event.code,
          reason: event.reason,
          wasClean: event.wasClean,
        }),
      );
      if (this.#stopped) return;
      const attempt = ++this.#attempt;
      const ceiling = Math.min(
        this.#maxDelay,
        this.#minDelay * 2 ** Math.min(attempt - 1, 30),
      );
      const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
      this.#timer = setTimeout(() => this.#connect(), delay);
      this.dispatchEvent(
        new CustomEvent<ReconnectingDetail>("reconnecting", {
          detail: { attempt, delay },
        }),
      );
    };
  }
}
