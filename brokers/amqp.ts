/**
 * The RabbitMQ broker (AMQP 0-9-1, through `npm:amqplib`):
 * `PRPC_TYPE_BROKER=amqp`, `PRPC_URL_BROKER=amqp://user:password@host:5672/vhost`
 * (or `amqps://`; default `amqp://guest:guest@localhost:5672`).
 *
 * - Requests go to the durable queues `prpc_{queue}` (prpc clients) and
 *   `prpc_raw_{queue}` (other languages) as persistent, `mandatory` messages;
 *   clients wait for RabbitMQ's publisher confirm, and declare a queue again
 *   when RabbitMQ returns a request because the queue is gone.
 * - A server consumes both with one prefetch of `maxWorkers` shared by the two
 *   (on classic queues; see `amqp/request_consumer.ts`) and acknowledges a
 *   request only after its result is published and confirmed, so a request of
 *   a server that dies is delivered to another one. A result or dead letter
 *   that RabbitMQ refuses ends the request instead of running it again.
 * - A result goes to the request's `reply_to` (the AMQP property, else the JSON
 *   field), with `correlation_id` = the request's `correlation_id`, else its
 *   `message_id`. A raw request without `reply_to` gets its result on the
 *   durable queue `prpc_feedback_raw_{queue}`, kept for `resultTtlMs`.
 * - Each client has one reply queue, `prpc_reply_{uuid}`, consumed by one
 *   consumer for all its calls; it survives a lost connection and is deleted
 *   by `close()` (see `amqp/reply_inbox.ts`).
 * - Deliveries are counted in the header `x-prpc-delivery`, on any queue type
 *   (see `amqp/request_consumer.ts`); poison messages and unreadable ones go to
 *   the durable queue `prpc_dead_{queue}`, the reason in `x-prpc-dead-reason`.
 * - Lost connections come back by themselves (see `amqp/connection.ts`):
 *   queues are declared again and consumers restarted; operations wait for the
 *   connection up to `operationTimeoutMs`.
 *
 * Settings (`brokerSettings` of `AppServer` and `Client`, else the variable,
 * else the default):
 *
 * | Setting               | Variable                           | Default        |
 * | --------------------- | ---------------------------------- | -------------- |
 * | `heartbeatSec`        | `PRPC_AMQP_HEARTBEAT_SEC`          | 30 (0 = off)   |
 * | `connectTimeoutMs`    | `PRPC_AMQP_CONNECT_TIMEOUT_MS`     | 10 000         |
 * | `reconnectMinMs`      | `PRPC_AMQP_RECONNECT_MIN_MS`       | 100            |
 * | `reconnectMaxMs`      | `PRPC_AMQP_RECONNECT_MAX_MS`       | 30 000         |
 * | `operationTimeoutMs`  | `PRPC_AMQP_OPERATION_TIMEOUT_MS`   | 30 000         |
 * | `resultTtlMs`         | `PRPC_AMQP_RESULT_TTL_MS`          | 600 000        |
 * | `queueExpiresMs`      | `PRPC_AMQP_QUEUE_EXPIRES_MS`       | off            |
 * | `replyQueueExpiresMs` | `PRPC_AMQP_REPLY_QUEUE_EXPIRES_MS` | 60 000         |
 * | `maxMessageBytes`     | `PRPC_AMQP_MAX_MESSAGE_BYTES`      | 134 217 728    |
 * | `connectionName`      | `PRPC_AMQP_CONNECTION_NAME`        | `prpc {name}`  |
 *
 * `maxMessageBytes` defaults to RabbitMQ's default `max_message_size` (128 MiB)
 * and may be raised to 512 MiB along with it; a message RabbitMQ refuses for
 * its size fails with `PayloadTooLargeError` without being retried.
 *
 * The URL may carry `heartbeat`, `connection_timeout`, `frame_max` and
 * `channel_max`; `brokerSettings` win over them, and they win over variables.
 *
 * @example A server and a client on RabbitMQ
 * ```ts ignore
 * import { AppServer, Client } from "@prpc/prpc";
 *
 * const url = "amqp://guest:guest@localhost:5672";
 * const app = new AppServer({ broker: "amqp", url, queue: "orders", maxWorkers: 8 });
 * app.register("add", (a: number, b: number) => a + b);
 * await app.start();
 *
 * const client = await Client.connect({ broker: "amqp", url, queue: "orders" });
 * console.log(await client.call("add", [1, 2])); // 3
 * await client.close();
 * await app.stop();
 * ```
 *
 * @example The broker interface, as a raw client without reply_to
 * ```ts ignore
 * import { connect } from "@prpc/prpc/brokers/amqp";
 *
 * const broker = await connect({ url: "amqp://guest:guest@localhost:5672" });
 * const messageId = crypto.randomUUID();
 * await broker.publish("orders", "raw", JSON.stringify({
 *   func_name: "add",
 *   func_args: [1, 2],
 *   message_id: messageId,
 * }));
 * // Poll: the first read starts a consumer on prpc_feedback_raw_orders.
 * let result = await broker.readResult("orders", "raw", messageId);
 * while (result === null) {
 *   await new Promise((resolve) => setTimeout(resolve, 50));
 *   result = await broker.readResult("orders", "raw", messageId);
 * }
 * console.log(JSON.parse(result).result); // 3
 * await broker.close();
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
  type Inbox,
  requestQueueName,
  type Subscription,
} from "./types.ts";
import { AmqpLink, type LinkContext } from "./amqp/connection.ts";
import { LostError } from "./amqp/failures.ts";
import { FeedbackReader } from "./amqp/feedback_reader.ts";
import { ReplyInbox } from "./amqp/reply_inbox.ts";
import { RequestConsumer } from "./amqp/request_consumer.ts";
import { type AmqpSettings, readAmqpSettings } from "./amqp/settings.ts";
import { durableQueueOptions, readDeadLetter, requestProperties } from "./amqp/wire.ts";

/** Something the broker closes when it closes. */
interface Closable {
  close(): Promise<void>;
}

/** A connection to RabbitMQ. */
class AmqpBroker implements Broker {
  readonly kind = "amqp" as const;
  readonly maxMessageBytes: number;
  readonly #context: LinkContext;
  readonly #parts = new Set<Closable>();
  readonly #readers = new Map<string, Promise<FeedbackReader>>();
  #serving = false;
  #closed = false;

  constructor(link: AmqpLink, settings: AmqpSettings, logger: Logger) {
    this.#context = { link, settings, logger };
    this.maxMessageBytes = settings.maxMessageBytes;
  }

  #assertOpen(): void {
    if (this.#closed) throw new BrokerError("Cannot use an AMQP broker connection after close()");
  }

  async consume(
    queue: string,
    handler: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<Subscription> {
    this.#assertOpen();
    const consumer = new RequestConsumer(this.#context, queue, handler, options.prefetch);
    await this.#context.link.register(consumer);
    this.#parts.add(consumer);
    this.#serving = true;
    return consumer;
  }

  async publish(queue: string, kind: QueueKind, body: string): Promise<void> {
    this.#assertOpen();
    assertWithinLimit(body, this.maxMessageBytes, "AMQP");
    const name = requestQueueName(queue, kind);
    const giveUpAt = Date.now() + this.#context.settings.operationTimeoutMs;
    while (true) {
      const session = await this.#context.link.session();
      try {
        await session.publishToQueue(
          name,
          body,
          requestProperties(),
          durableQueueOptions(this.#context.settings),
        );
        return;
      } catch (err) {
        // Lost with its connection before RabbitMQ confirmed it: send it again on the next
        // one (at-least-once; a server skips a request whose deadline has passed). A request
        // RabbitMQ refused fails at once.
        const lost = err instanceof LostError || !session.alive;
        if (!lost || this.#closed || Date.now() >= giveUpAt) throw err;
      }
    }
  }

  /**
   * Opens the client's reply queue. Its results are never lost to a reconnect
   * (they wait in the queue), and RabbitMQ keeps no native results to read
   * back, so the `onMissed` callback of the interface is not taken.
   */
  async openInbox(onReply: (body: string) => void): Promise<Inbox> {
    this.#assertOpen();
    const inbox = new ReplyInbox(this.#context, onReply);
    await this.#context.link.register(inbox);
    this.#parts.add(inbox);
    return inbox;
  }

  /**
   * Native results go only to `reply_to`, so they are never found here. Raw
   * results without `reply_to` are found once this connection has taken them
   * off `prpc_feedback_raw_{queue}` (the first call starts that consumer; poll).
   * A connection that serves requests never takes them (they belong to raw
   * clients): it finds nothing, and a redelivered raw request runs again.
   */
  async readResult(queue: string, kind: QueueKind, messageId: string): Promise<string | null> {
    this.#assertOpen();
    if (kind === "native" || this.#serving) return null;
    let reader = this.#readers.get(queue);
    if (reader === undefined) {
      reader = this.#startReader(queue);
      this.#readers.set(queue, reader);
      reader.catch(() => this.#readers.delete(queue));
    }
    return (await reader).read(messageId);
  }

  async #startReader(queue: string): Promise<FeedbackReader> {
    const reader = new FeedbackReader(this.#context, queue);
    await this.#context.link.register(reader);
    this.#parts.add(reader);
    return reader;
  }

  async readDeadLetters(queue: string, limit: number): Promise<DeadLetter[]> {
    this.#assertOpen();
    const session = await this.#context.link.session();
    const name = deadLetterQueueName(queue);
    if (!(await session.queueExists(name))) return [];
    return (await session.peek(name, limit)).map(readDeadLetter);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const part of this.#parts) {
      await part.close().catch((err) =>
        this.#context.logger.debug("cannot close part of an AMQP connection", {
          error: err instanceof Error ? err.message : String(err),
        })
      );
    }
    this.#parts.clear();
    await this.#context.link.close();
  }
}

/**
 * Connects to RabbitMQ.
 *
 * @param options `url` (default `amqp://guest:guest@localhost:5672`), the
 *   server's `instanceName` (used in the connection name), `settings` (see the
 *   module docs) and the `logger` for reconnects.
 * @returns The broker connection.
 * @throws {ConfigError} When the URL, a setting or a `PRPC_AMQP_*` variable is invalid.
 * @throws {BrokerError} When RabbitMQ cannot be reached or refuses the login.
 */
export async function connect(options: BrokerConnectOptions): Promise<Broker> {
  const settings = readAmqpSettings(options.url, options.settings, options.instanceName);
  const logger = options.logger ?? consoleLogger();
  const link = await AmqpLink.open(settings, logger);
  return new AmqpBroker(link, settings, logger);
}
