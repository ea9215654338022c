/**
 * A client's inbox on Redis: a pub/sub channel of its own, `prpc_inbox_{uuid}`,
 * on a connection of its own. Servers `PUBLISH` each result to the request's
 * `reply_to` in the same script that stores it, so a result is either pushed to
 * a subscribed inbox or stored before the subscription exists.
 *
 * Pub/sub drops what is published while the connection is down. After every
 * reconnect the inbox subscribes again and, once the subscription is back,
 * tells its owner (`onMissed`), who reads the stored results of the calls it
 * still waits for: nothing is lost.
 *
 * @module
 */

import type { Logger } from "../../protocol/logger.ts";
import type { Inbox } from "../types.ts";
import { openConnection } from "./connection.ts";
import type { RedisEndpoint } from "./url.ts";

/** Prefix of inbox channel names. */
const INBOX_PREFIX = "prpc_inbox_";

/**
 * Opens an inbox and waits until it is subscribed.
 *
 * @param endpoint Where Redis is.
 * @param logger Where trouble is reported.
 * @param onReply Receives each result body published to the inbox.
 * @param onMissed Called once the subscription is back after a reconnect.
 * @returns The inbox.
 * @throws {BrokerError} When Redis cannot be reached.
 */
export async function openRedisInbox(
  endpoint: RedisEndpoint,
  logger: Logger,
  onReply: (body: string) => void,
  onMissed: (() => void) | undefined,
): Promise<Inbox> {
  const id = crypto.randomUUID();
  const address = `${INBOX_PREFIX}${id}`;
  const connection = await openConnection(endpoint, "inbox", id, logger);
  const redis = connection.redis;
  redis.on("message", (channel: string, message: string) => {
    if (channel === address) onReply(message);
  });
  try {
    await redis.subscribe(address);
  } catch (err) {
    await connection.close();
    throw err;
  }
  // Registered after the first connect: "ready" from now on means a reconnect.
  redis.on("ready", () => {
    redis.subscribe(address).then(
      () => onMissed?.(),
      // The connection dropped again; the next "ready" subscribes again.
      (err) => logger.debug("cannot subscribe the inbox again yet", { error: String(err) }),
    );
  });
  return { address, close: () => connection.close() };
}
