/**
 * The ioredis connections of the Redis broker. ioredis reconnects by itself;
 * this module reports losing and regaining a connection once each, turns a
 * failed first connect into a {@linkcode BrokerError}, and makes every command
 * settle.
 *
 * Commands are not sent twice behind the caller's back: ioredis would send the
 * commands whose reply was lost with a dropped connection again after
 * reconnecting, and an `XADD` would then add a request twice. Without that,
 * ioredis 5 leaves such a command waiting forever, so
 * {@linkcode RedisConnection.send} fails it with a {@linkcode ReplyLostError}
 * as soon as the connection drops: it may or may not have run, and the caller
 * decides what that means ({@linkcode RedisConnection.sendRepeatable} sends
 * commands that may run twice again).
 *
 * @module
 */

import { Redis } from "ioredis";
import { BrokerError } from "../../protocol/errors.ts";
import { ChurnSet } from "../../protocol/churn.ts";
import type { Logger } from "../../protocol/logger.ts";
import { timeouts } from "../../protocol/timeouts.ts";
import type { RedisEndpoint } from "./url.ts";

/**
 * What a connection is for:
 * - `commands`: every short command, shared by a broker's servers and clients;
 *   commands given while it is down wait for it (at most 20 reconnect attempts);
 * - `consumer`: a server's blocking `XREADGROUP`; commands fail at once while it is down;
 * - `inbox`: a client's pub/sub subscription.
 */
export type ConnectionRole = "commands" | "consumer" | "inbox";

/** Longest a blocking read waits before it is issued again (also a guard against dead sockets). */
export const BLOCK_MS = 5_000;

/** How much longer than {@linkcode BLOCK_MS} a blocking read waits for its reply before giving up. */
export const BLOCKING_GRACE_MS = 5_000;

/** The connection dropped after a command may have reached Redis: it may or may not have run. */
export class ReplyLostError extends Error {
  override readonly name: string = "ReplyLostError";
}

/**
 * No reply came within a command's time limit although the connection is up
 * (Redis is frozen or overloaded): the command may still run later.
 */
export class NoReplyError extends ReplyLostError {
  override readonly name = "NoReplyError";
}

/** A command that needs the connection up was not sent: it certainly did not run. */
export class NotConnectedError extends Error {
  override readonly name = "NotConnectedError";
}

/** One ioredis connection whose commands always settle; see the module docs. */
export class RedisConnection {
  /** The ioredis client, for events and pub/sub. Send commands with {@linkcode send}. */
  readonly redis: Redis;
  /** Rejects each command sent and not answered yet. */
  readonly #unanswered = new ChurnSet<(error: Error) => void>();
  readonly #onReconnect = new Set<() => void>();
  #sessions = 0;
  #up = false;
  /** The socket whose writes are held until the queued microtasks have run, if any. */
  #corked: { uncork(): void } | undefined;

  constructor(redis: Redis) {
    this.redis = redis;
    redis.on("ready", () => {
      this.#up = true;
      if (++this.#sessions === 1) return;
      for (const listener of this.#onReconnect) listener();
    });
    redis.on("close", () => {
      // Commands given while the connection was down wait in ioredis's queue: they were not
      // sent, and fail there when reconnecting gives up.
      if (!this.#up) return;
      this.#up = false;
      for (const fail of this.#unanswered.values()) {
        fail(new ReplyLostError("the connection to Redis dropped before Redis answered"));
      }
    });
  }

  /** Whether the connection is up: commands sent now go out at once. */
  get ready(): boolean {
    return this.redis.status === "ready";
  }

  /** How many times the connection has become ready (1 after the first connect). */
  get sessions(): number {
    return this.#sessions;
  }

  /**
   * Calls `listener` each time the connection is back after it dropped.
   *
   * @param listener Called on each reconnect.
   * @returns A function that removes the listener.
   */
  onReconnect(listener: () => void): () => void {
    this.#onReconnect.add(listener);
    return () => this.#onReconnect.delete(listener);
  }

  /**
   * Sends a command. While the connection is down, a `commands` connection
   * sends it once it is back; other connections fail it at once.
   *
   * @param command Gives the command to the ioredis client.
   * @returns The reply.
   * @throws {ReplyLostError} When the connection dropped before the reply came.
   */
  send<T>(command: (redis: Redis) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const settle = (outcome: () => void) => {
        if (!unanswered.remove()) return;
        outcome();
      };
      const fail = (error: Error) => settle(() => reject(error));
      const unanswered = this.#unanswered.add(fail);
      let reply: Promise<T>;
      try {
        this.#coalesceWrites();
        reply = command(this.redis);
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      reply.then(
        (value) => settle(() => resolve(value)),
        (err: unknown) => {
          // ioredis aborts the rest of a pipeline that was cut off midway.
          const lost = err instanceof Error && err.name === "AbortError";
          fail(lost ? new ReplyLostError(err.message) : toError(err));
        },
      );
    });
  }

  /**
   * Runs `send`, which sends commands, and writes them out in one write
   * (commands pipelined on one connection reach Redis together).
   *
   * @param send Sends the commands.
   * @returns What `send` returns.
   */
  together<T>(send: () => T): T {
    const socket = this.redis.stream as unknown as { cork?(): void; uncork(): void } | undefined;
    if (socket?.cork === undefined || this.#corked !== undefined) return send();
    socket.cork();
    this.#corked = socket; // no second, later uncork for the commands sent now
    try {
      return send();
    } finally {
      this.#corked = undefined;
      socket.uncork();
    }
  }

  /**
   * Holds the socket's writes until the microtasks queued so far have run, so
   * that the commands given together (the calls a burst of results set going,
   * say) leave in one write, one system call, instead of one each. A lone
   * command is written before the event loop's next turn: nothing waits for a
   * timer or for I/O.
   */
  #coalesceWrites(): void {
    if (this.#corked !== undefined) return;
    const socket = this.redis.stream as unknown as { cork?(): void; uncork(): void } | undefined;
    if (socket?.cork === undefined || this.redis.status !== "ready") return;
    socket.cork();
    this.#corked = socket;
    queueMicrotask(() => {
      this.#corked = undefined;
      socket.uncork();
    });
  }

  /**
   * Sends a command that does no harm when it runs twice (a read, or a script
   * that checks before it writes), and sends it again when its reply was lost
   * with the connection, as often as `attempts` in all.
   *
   * @param command Gives the command to the ioredis client.
   * @param options `attempts`: how often to send it at most (3); `timeoutMs`: how long to
   *   wait for a reply in all, while the connection is down too (without it, as long as
   *   ioredis keeps the command).
   * @returns The reply.
   * @throws {ReplyLostError} When the reply was lost every time, or no reply came within `timeoutMs`.
   */
  sendRepeatable<T>(
    command: (redis: Redis) => Promise<T>,
    options: { attempts?: number; timeoutMs?: number } = {},
  ): Promise<T> {
    const attempts = options.attempts ?? 3;
    const repeat = async () => {
      for (let attempt = 1;; attempt++) {
        try {
          return await this.send(command);
        } catch (err) {
          if (!(err instanceof ReplyLostError) || attempt >= attempts) throw err;
        }
      }
    };
    return withinTime(repeat(), options.timeoutMs);
  }

  /**
   * Sends a command only while the connection is up, and stops waiting for its
   * reply after `timeoutMs`: for work that is better skipped than delayed
   * (heartbeats, and handing messages back while stopping).
   *
   * @param command Gives the command to the ioredis client.
   * @param timeoutMs How long to wait for the reply; without it, as long as the connection lasts.
   * @returns The reply.
   * @throws {NotConnectedError} When the connection is down (the command was not sent).
   * @throws {ReplyLostError} When the connection dropped ({@linkcode NoReplyError} when no
   *   reply came within `timeoutMs`).
   */
  sendNow<T>(command: (redis: Redis) => Promise<T>, timeoutMs?: number): Promise<T> {
    if (!this.ready) {
      return Promise.reject(new NotConnectedError("there is no connection to Redis"));
    }
    return withinTime(this.send(command), timeoutMs);
  }

  /**
   * Drops the socket and connects again, for a socket that stopped answering
   * while it stays open. Commands waiting fail with {@linkcode ReplyLostError}.
   */
  reconnect(): void {
    if (this.redis.status === "ready") this.redis.disconnect(true);
  }

  /** Closes the connection at once (commands waiting fail) and waits until its socket is gone. */
  async close(): Promise<void> {
    const redis = this.redis;
    if (redis.status === "end") return;
    // Between reconnect attempts there is no socket: disconnect() only cancels the next attempt.
    const hasSocket = redis.status !== "reconnecting";
    const ended = new Promise<void>((resolve) => redis.once("end", () => resolve()));
    redis.disconnect();
    if (hasSocket) await ended;
  }
}

/**
 * Opens a connection and waits until it is ready.
 *
 * @param endpoint Where to connect.
 * @param role What the connection is for (sets its retry and timeout behaviour).
 * @param clientName Shown by `CLIENT LIST` as `prpc_{role}_{clientName}`.
 * @param logger Where losing and regaining the connection is reported.
 * @returns The ready connection.
 * @throws {BrokerError} When the first connect fails (nothing is left running then).
 */
export async function openConnection(
  endpoint: RedisEndpoint,
  role: ConnectionRole,
  clientName: string,
  logger: Logger,
): Promise<RedisConnection> {
  const redis = new Redis({
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.username,
    password: endpoint.password,
    db: endpoint.db,
    tls: endpoint.tls ? {} : undefined,
    lazyConnect: true,
    connectionName: `prpc_${role}_${clientName}`.replace(/[^A-Za-z0-9._:-]/g, "_"),
    keepAlive: 10_000,
    // No auto-pipelining: it sends a batch only once the previous one is answered, and a batch
    // whose replies were lost with a connection is never answered (ioredis 5 leaves the commands
    // it does not send again waiting), so every later command would wait forever. Commands are
    // still pipelined: each is written at once, without waiting for earlier replies.
    enableAutoPipelining: false,
    // Without a connection, short commands wait for it and fail after 20 reconnect attempts
    // (the first time after about ten seconds). The blocking read fails at once instead and
    // tries again itself: a read queued while disconnected would be sent late, and its reply
    // (the entries it took) would go to nobody.
    enableOfflineQueue: role !== "consumer",
    maxRetriesPerRequest: role === "commands" ? 20 : null,
    // Never send a command twice (see the module docs); the inbox subscribes again itself.
    autoResendUnfulfilledCommands: role === "inbox",
    // No blockingTimeout: it starts a runtime timer for every read. The consumer gives up on
    // a read whose reply never comes with emptyAfter(), on the process's shared timer.
    autoResubscribe: false,
  });
  const connection = new RedisConnection(redis);
  let lastError = "";
  // Losing a connection that was up, and getting it back, are reported once each; a failed
  // first connect is reported by throwing.
  let state: "connecting" | "up" | "down" = "connecting";
  redis.on("error", (err: Error) => {
    lastError = err.message;
    logger.debug("Redis connection error", { url: endpoint.display, role, error: err.message });
  });
  redis.on("reconnecting", () => {
    if (state !== "up") return;
    state = "down";
    logger.warn("lost the Redis connection; reconnecting", {
      url: endpoint.display,
      role,
      error: lastError,
    });
  });
  redis.on("ready", () => {
    if (state === "down") {
      logger.info("the Redis connection is back", { url: endpoint.display, role });
    }
    state = "up";
    lastError = "";
  });
  try {
    await redis.connect();
  } catch (err) {
    await connection.close();
    const why = lastError || (err instanceof Error ? err.message : String(err));
    throw new BrokerError(`Cannot connect to Redis at ${endpoint.display}: ${why}`, {
      cause: err,
    });
  }
  return connection;
}

/**
 * The reply, or a {@linkcode NoReplyError} once `timeoutMs` has passed without
 * it (a frozen Redis keeps the connection open and answers nothing).
 */
function withinTime<T>(reply: Promise<T>, timeoutMs: number | undefined): Promise<T> {
  if (timeoutMs === undefined) return reply;
  return raceTimeout(reply, timeoutMs, (_resolve, reject) => {
    reject(new NoReplyError(`Redis did not answer within ${timeoutMs} ms`));
  });
}

/**
 * The reply, or `null` (an empty read) once `timeoutMs` has passed without it:
 * a blocking read whose reply never comes (a dead socket, a frozen Redis). A
 * reply that comes later is thrown away; the entries it carried stay pending
 * for the consumer, which hands them back. A grace of seconds over the read's
 * `BLOCK` keeps a slow reply.
 *
 * @param reply The blocking read's reply.
 * @param timeoutMs How long to wait for it.
 * @returns The reply, or `null`.
 */
export function emptyAfter<T>(reply: Promise<T>, timeoutMs: number): Promise<T | null> {
  return raceTimeout<T | null>(reply, timeoutMs, (resolve) => resolve(null));
}

/**
 * Settles with the reply, or as `expire` says once `timeoutMs` has passed
 * first, on the shared timer. A reply settled after that is ignored.
 */
function raceTimeout<T>(
  reply: Promise<T>,
  timeoutMs: number,
  expire: (resolve: (value: T) => void, reject: (error: Error) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timeout = timeouts.start(timeoutMs, () => expire(resolve, reject));
    reply.then(
      (value) => {
        timeout.cancel();
        resolve(value);
      },
      (err) => {
        timeout.cancel();
        reject(err);
      },
    );
  });
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
