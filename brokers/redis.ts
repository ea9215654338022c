/**
 * The Redis broker: the production default. Requests are entries of Redis
 * Streams read in a consumer group, results are string keys with a TTL, and
 * prpc clients get their results pushed over pub/sub. The wire contract is
 * PRPC's, so PRPC raw clients and PRPC servers work with it.
 *
 * - Requests: `XADD prpc_{queue} * message <json>` (native) and
 *   `XADD prpc_raw_{queue} * message <json>` (raw); a client adds the requests
 *   it sends in one turn with one script run that makes these `XADD`s. Servers
 *   read them in the group
 *   `prpc_group_consumers` (created with `MKSTREAM` at id `0`, so requests sent
 *   before the first server ever started are kept). The consumer name is the
 *   server's instance name (`PRPC_INSTANCE_NAME`, else a fresh UUID per start).
 * - Results: `SET prpc_feedback_{queue}_{message_id}` (raw:
 *   `prpc_feedback_raw_{queue}_{message_id}`) with a TTL, published to the
 *   request's `reply_to` channel, then `XACK` and `XDEL` of the request: one Lua
 *   script, so a request is never acknowledged before its result is stored.
 * - Heartbeat and recovery: every heartbeat interval a server re-claims the
 *   messages it holds, and takes over (`XAUTOCLAIM`) messages idle longer than
 *   the recover interval, whose server died. A message delivered more than
 *   `maxDeliveries` times goes to the stream `prpc_dead_{queue}`.
 * - Connections: one for commands, one per serving queue for the blocking
 *   read, one per client inbox. ioredis reconnects by itself; blocking reads,
 *   the consumer group and inbox subscriptions come back after a Redis restart.
 *   A blocking read with no reply 5 s after its `BLOCK` (a socket that stays
 *   open and carries nothing) is given up, and the server reads on a new
 *   connection.
 *   A request whose `XADD` reply is lost with a connection is not sent again
 *   (it may have been added): its call waits for a result until its timeout.
 * - Needs Redis 6.2 or later; Redis Cluster is not supported (the scripts use
 *   keys of several hash slots).
 *
 * URL: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS;
 * default `redis://localhost:6379/0`. Settings (`brokerSettings`, each over its
 * variable): `resultTtlSec` (`PRPC_REDIS_EXPIRE_MESSAGE_FEEDBACK_SEC`, 21600),
 * `heartbeatIntervalMs` (`PRPC_REDIS_HEARTBEAT_INTERVAL_SEC`, 15 s),
 * `recoverIntervalMs` (`PRPC_REDIS_RECOVER_INTERVAL_SEC`, 45 s; must be longer
 * than the heartbeat interval, and a warning is logged below twice the
 * heartbeat), `deadLetterLimit` (10000), `maxMessageBytes` (16 MiB) and
 * `readCount` (32, the most entries one read takes).
 * `docs/PROTOCOL.md` describes every key and field.
 *
 * @example A server and a client (needs a Redis server on localhost)
 * ```ts ignore
 * import { AppServer, Client } from "@prpc/prpc";
 *
 * const app = new AppServer({ broker: "redis", url: "redis://localhost:6379/0", queue: "demo" });
 * app.register("summ", (a: number, b: number, z = 0.5) => a + b + z);
 * await app.start();
 *
 * const client = await Client.connect({ broker: "redis", url: "redis://localhost:6379/0", queue: "demo" });
 * console.log(await client.call("summ", [1, 2])); // 3.5
 * await client.close();
 * await app.stop();
 * ```
 *
 * @module
 */

import type { QueueKind } from "../protocol/envelope.ts";
import { BrokerError } from "../protocol/errors.ts";
import { consoleLogger, type Logger } from "../protocol/logger.ts";
import {
  assertWithinLimit,
  type Broker,
  type BrokerConnectOptions,
  type ConsumeOptions,
  type DeadLetter,
  deadLetterQueueName,
  type Delivery,
  feedbackName,
  type Inbox,
  requestQueueName,
  type Subscription,
} from "./types.ts";
import { openConnection, type RedisConnection, ReplyLostError } from "./redis/connection.ts";
import { StreamConsumer } from "./redis/consumer.ts";
import { openRedisInbox } from "./redis/inbox.ts";
import { RequestBatcher } from "./redis/requests.ts";
import {
  checkRecoverAfterHeartbeat,
  readRedisSettings,
  recoverMarginWarning,
  type RedisSettings,
} from "./redis/settings.ts";
import { parseRedisUrl, type RedisEndpoint } from "./redis/url.ts";

/** A connection to Redis, shared by the servers and clients a process builds on it. */
class RedisBroker implements Broker {
  readonly kind = "redis" as const;
  readonly maxMessageBytes: number;
  readonly #commands: RedisConnection;
  /** Requests sent in one turn leave together. */
  readonly #requests: RequestBatcher;
  readonly #endpoint: RedisEndpoint;
  readonly #settings: RedisSettings;
  readonly #instanceName: string | undefined;
  readonly #logger: Logger;
  readonly #consumers = new Set<StreamConsumer>();
  readonly #inboxes = new Set<Inbox>();
  #closed = false;

  constructor(parts: {
    commands: RedisConnection;
    endpoint: RedisEndpoint;
    settings: RedisSettings;
    instanceName: string | undefined;
    logger: Logger;
  }) {
    this.#commands = parts.commands;
    this.#requests = new RequestBatcher(parts.commands, parts.logger);
    this.#endpoint = parts.endpoint;
    this.#settings = parts.settings;
    this.#instanceName = parts.instanceName;
    this.#logger = parts.logger;
    this.maxMessageBytes = parts.settings.maxMessageBytes;
  }

  #checkOpen(): void {
    if (this.#closed) throw new BrokerError("Cannot use a Redis broker connection after close()");
  }

  async consume(
    queue: string,
    handler: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<Subscription> {
    this.#checkOpen();
    checkRecoverAfterHeartbeat(this.#settings);
    const margin = recoverMarginWarning(this.#settings);
    if (margin !== undefined) this.#logger.warn(margin, { queue });
    const consumerName = this.#instanceName ?? crypto.randomUUID();
    const blocking = await openConnection(this.#endpoint, "consumer", consumerName, this.#logger);
    const consumer = new StreamConsumer({
      commands: this.#commands,
      blocking,
      queue,
      consumerName,
      prefetch: options.prefetch,
      handler,
      settings: this.#settings,
      logger: this.#logger,
    });
    try {
      await consumer.start();
    } catch (err) {
      await consumer.stop();
      throw failure(`start consuming ${requestQueueName(queue, "native")}`, err);
    }
    this.#consumers.add(consumer);
    return consumer;
  }

  async publish(queue: string, kind: QueueKind, body: string): Promise<void> {
    this.#checkOpen();
    assertWithinLimit(body, this.maxMessageBytes, "Redis");
    const stream = requestQueueName(queue, kind);
    try {
      await this.#requests.add(stream, body);
    } catch (err) {
      if (!(err instanceof ReplyLostError)) throw failure(`add a request to ${stream}`, err);
      // Redis may have added it: failing the call could make its caller send it again, and
      // sending it again here could run it twice. The call waits for its result instead, which
      // comes if the request was added, and otherwise fails at its timeout.
      this.#logger.warn(
        "the connection to Redis dropped before Redis confirmed a request; it may have been " +
          "added, and its call waits for a result until its timeout",
        { stream, error: err.message },
      );
    }
  }

  async openInbox(onReply: (body: string) => void, onMissed?: () => void): Promise<Inbox> {
    this.#checkOpen();
    const inbox = await openRedisInbox(this.#endpoint, this.#logger, onReply, onMissed);
    this.#inboxes.add(inbox);
    return {
      address: inbox.address,
      close: async () => {
        if (!this.#inboxes.delete(inbox)) return;
        await inbox.close();
      },
    };
  }

  async readResult(queue: string, kind: QueueKind, messageId: string): Promise<string | null> {
    this.#checkOpen();
    const key = `${feedbackName(queue, kind)}_${messageId}`;
    try {
      return await this.#commands.sendRepeatable((redis) => redis.get(key));
    } catch (err) {
      throw failure(`read the result ${key}`, err);
    }
  }

  /** Reads the stored results of many calls with one `MGET`. */
  async readResults(
    queue: string,
    kind: QueueKind,
    messageIds: readonly string[],
  ): Promise<(string | null)[]> {
    this.#checkOpen();
    if (messageIds.length === 0) return [];
    const keys = messageIds.map((messageId) => `${feedbackName(queue, kind)}_${messageId}`);
    try {
      return await this.#commands.sendRepeatable((redis) => redis.mget(keys));
    } catch (err) {
      throw failure(`read ${keys.length} results of ${feedbackName(queue, kind)}`, err);
    }
  }

  async readDeadLetters(queue: string, limit: number): Promise<DeadLetter[]> {
    this.#checkOpen();
    const stream = deadLetterQueueName(queue);
    let entries: [string, string[]][];
    try {
      entries = await this.#commands.sendRepeatable((redis) =>
        redis.xrange(stream, "-", "+", "COUNT", limit)
      );
    } catch (err) {
      throw failure(`read ${stream}`, err);
    }
    return entries.map(([, fields]) => {
      const value = (name: string) => fields[fields.indexOf(name) + 1] ?? "";
      return {
        kind: value("kind") === "native" ? "native" : "raw",
        body: value("body"),
        reason: value("reason"),
        date: value("date"),
      };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const consumer of this.#consumers) await consumer.stop();
    this.#consumers.clear();
    for (const inbox of this.#inboxes) await inbox.close();
    this.#inboxes.clear();
    await this.#commands.close();
  }
}

function failure(what: string, err: unknown): BrokerError {
  if (err instanceof BrokerError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new BrokerError(`Cannot ${what} in Redis: ${why}`, { cause: err });
}

/**
 * Connects to Redis.
 *
 * @param options `url` (see the module docs), `instanceName` (the consumer name
 *   of servers), `settings` (see the module docs) and `logger`.
 * @returns The broker connection.
 * @throws {ConfigError} When the URL or a setting is invalid.
 * @throws {BrokerError} When Redis cannot be reached.
 */
export async function connect(options: BrokerConnectOptions): Promise<Broker> {
  const endpoint = parseRedisUrl(options.url);
  const settings = readRedisSettings(options.settings);
  const logger = options.logger ?? consoleLogger();
  const name = options.instanceName ?? crypto.randomUUID();
  const commands = await openConnection(endpoint, "commands", name, logger);
  return new RedisBroker({
    commands,
    endpoint,
    settings,
    instanceName: options.instanceName,
    logger,
  });
}
