/**
 * Opens and closes the ioredis connections of the Redis broker. ioredis
 * reconnects by itself; this module reports losing and regaining a connection
 * once each, and turns a failed first connect into a {@linkcode BrokerError}.
 *
 * @module
 */

import { Redis } from "ioredis";
import { BrokerError } from "../../protocol/errors.ts";
import type { Logger } from "../../server/logger.ts";
import type { RedisEndpoint } from "./url.ts";

/**
 * What a connection is for:
 * - `commands`: every short command, shared by a broker's servers and clients;
 * - `consumer`: a server's blocking `XREADGROUP`;
 * - `inbox`: a client's pub/sub subscription.
 */
export type ConnectionRole = "commands" | "consumer" | "inbox";

/** Longest a blocking read waits before it is issued again (also a guard against dead sockets). */
export const BLOCK_MS = 5_000;

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
): Promise<Redis> {
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
    // Commands issued in the same tick go out in one write.
    enableAutoPipelining: role === "commands",
    // Without a connection, short commands wait for it and fail after 20 reconnect attempts
    // (the first time after about ten seconds); blocking reads wait as long as it takes.
    maxRetriesPerRequest: role === "commands" ? 20 : null,
    // A blocking read whose reply never comes (a dead socket) resolves empty after BLOCK_MS.
    blockingTimeout: role === "consumer" ? BLOCK_MS : undefined,
    // The inbox subscribes again itself, so that it knows when the subscription is back.
    autoResubscribe: false,
  });
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
    await closeConnection(redis);
    const why = lastError || (err instanceof Error ? err.message : String(err));
    throw new BrokerError(`Cannot connect to Redis at ${endpoint.display}: ${why}`, {
      cause: err,
    });
  }
  return redis;
}

/**
 * Closes a connection at once (pending commands fail) and waits until its
 * socket is gone.
 *
 * @param redis The connection.
 */
export async function closeConnection(redis: Redis): Promise<void> {
  if (redis.status === "end") return;
  // Between reconnect attempts there is no socket: disconnect() only cancels the next attempt.
  const hasSocket = redis.status !== "reconnecting";
  const ended = new Promise<void>((resolve) => redis.once("end", () => resolve()));
  redis.disconnect();
  if (hasSocket) await ended;
}
