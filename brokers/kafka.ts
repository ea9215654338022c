/**
 * The Kafka broker, on kafkajs. PRPC's topic layout, so PRPC raw clients and
 * PRPC servers work with it:
 *
 * - Requests: records on `prpc_{queue}` (native) and `prpc_raw_{queue}` (raw),
 *   value = the JSON text, no key (spread over the partitions in turn).
 *   Partitions: `PRPC_KAFKA_QUEUE_TOPIC_NUMBER_PARTITIONS`, default the
 *   server's `maxWorkers`. Servers read them in the consumer group
 *   `prpc_group_consumers`; a partition has one server at a time, so there
 *   should be at least as many partitions as servers.
 * - Results: records on `prpc_feedback_{queue}` and `prpc_feedback_raw_{queue}`
 *   keyed by `message_id` (partitions: `PRPC_KAFKA_FEEDBACK_TOPIC_NUMBER_PARTITIONS`,
 *   default 4). A native request names the partition its caller reads in the
 *   header `prpc_reply_partition`, and its result goes there with the caller's
 *   `reply_to` in the header `prpc_reply_to`: each client reads one partition
 *   from the time of its first call, not every result of every client.
 * - Dead letters: records on `prpc_dead_{queue}` (one partition): the request
 *   body unchanged, the reason in headers.
 * - Topics are created when missing (replication `PRPC_KAFKA_REPLICATION_FACTOR`,
 *   default 1) and grown when they have fewer partitions than asked, never shrunk.
 *
 * Delivery: the group's committed offset of a partition moves only past
 * requests whose result is produced, never past an unfinished one, while
 * requests of one partition run at once up to `maxWorkers`. The commit's
 * metadata carries each unfinished request's delivery count, written before
 * the request runs, so `attempt` and `maxDeliveries` hold across servers and
 * crashes. A server that dies mid-call leaves its requests to the server the
 * group gives its partitions to, once its session times out.
 *
 * `readResult` reads only the partitions of the feedback topic the result
 * can be on (its key's, and the reply partition of a redelivered native
 * request or of this connection's own calls), from `resultTtlSec` ago, and
 * `readDeadLetters` the dead-letter topic; both first catch up with what the
 * topic holds at the call. `close()` waits for calls under way; none leaves
 * a consumer behind.
 *
 * URL: `[kafka://][user:password@]host[:port][,host[:port]...][?key=value&...]`,
 * default `localhost:9092`. Every setting can be given as a `brokerSettings`
 * key or in the URL's query (`settings` win): SASL (`saslMechanism` `plain`,
 * `scram-sha-256`, `scram-sha-512`; `saslUsername`, `saslPassword`), TLS
 * (`ssl`, `sslCaFile`, `sslCertFile`, `sslKeyFile`, `sslRejectUnauthorized`),
 * partitions (`queueTopicPartitions`, `feedbackTopicPartitions`,
 * `replicationFactor`, over their variables), group timings
 * (`sessionTimeoutMs`, `heartbeatIntervalMs`, `rebalanceTimeoutMs`,
 * `maxWaitMs`), `metadataMaxAgeMs`, `offsetMetadataMaxChars`, `groupId`, `clientId`, `connectionTimeoutMs`,
 * `requestTimeoutMs`, `retries`, `maxMessageBytes` (default: the brokers'
 * `message.max.bytes`, read at connect) and `resultTtlSec` (600). The
 * README's section "Kafka" has them in a table with their defaults, and
 * `docs/PROTOCOL.md` the records, headers and commit metadata.
 *
 * @example A server and a client (needs a Kafka broker on localhost:9092)
 * ```ts ignore
 * import { AppServer, Client } from "@prpc/prpc";
 *
 * const app = new AppServer({ broker: "kafka", url: "localhost:9092", queue: "demo" });
 * app.register("summ", (a: number, b: number, z = 0.5) => a + b + z);
 * await app.start();
 *
 * const client = await Client.connect({ broker: "kafka", url: "localhost:9092", queue: "demo" });
 * console.log(await client.call("summ", [1, 2])); // 3.5
 * await client.close();
 * await app.stop();
 * ```
 *
 * @example SASL over TLS, with short group timings
 * ```ts ignore
 * import { AppServer } from "@prpc/prpc";
 *
 * const app = new AppServer({
 *   broker: "kafka",
 *   url: "kafka://alice:secret@k1:9093,k2:9093?ssl=true&saslMechanism=scram-sha-512",
 *   brokerSettings: { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000 },
 * });
 * ```
 *
 * @module
 */

import { type Admin, type Kafka, Partitioners, type Producer } from "kafkajs";
import type { QueueKind } from "../protocol/envelope.ts";
import { BrokerError, PayloadTooLargeError } from "../protocol/errors.ts";
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
  type Reply,
  requestQueueName,
  type Subscription,
} from "./types.ts";
import { brokerError, createKafka, errorText } from "./kafka/client.ts";
import { type Outbox, ServerConsumer } from "./kafka/consumer.ts";
import type { KafkaContext } from "./kafka/context.ts";
import { Inboxes } from "./kafka/inbox.ts";
import { RecordSender } from "./kafka/producer.ts";
import {
  deadLetterRecord,
  RECORD_OVERHEAD_BYTES,
  requestRecord,
  resultRecord,
} from "./kafka/records.ts";
import { type KafkaSettings, readKafkaSettings } from "./kafka/settings.ts";
import { DeadLetterStore, ResultStore } from "./kafka/stores.ts";
import { tooLargeResult } from "./kafka/refused.ts";
import { Topics } from "./kafka/topics.ts";
import { brokerRecordLimit } from "./kafka/limits.ts";

/** The parts of a connection, built by {@linkcode connect}. */
interface Parts {
  settings: KafkaSettings;
  /** The largest record, framing included: the setting, else the brokers' own limit. */
  recordLimit: number;
  logger: Logger;
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
}

/** A connection to Kafka: one admin client, one producer, and consumers as needed. */
class KafkaBroker implements Broker {
  readonly kind = "kafka" as const;
  readonly maxMessageBytes: number;
  readonly #parts: Parts;
  readonly #context: KafkaContext;
  readonly #sender: RecordSender;
  readonly #topics: Topics;
  readonly #inboxes: Inboxes;
  readonly #results: ResultStore;
  readonly #deadLetters: DeadLetterStore;
  readonly #consumers = new Set<ServerConsumer>();
  /** Calls under way; `close()` waits for them, so none leaves a consumer behind. */
  readonly #calls = new Set<Promise<unknown>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(parts: Parts) {
    this.#parts = parts;
    const { settings } = parts;
    this.maxMessageBytes = parts.recordLimit - RECORD_OVERHEAD_BYTES;
    this.#sender = new RecordSender(parts.producer, parts.recordLimit);
    this.#topics = new Topics(
      parts.admin,
      settings.replicationFactor,
      settings.metadataMaxAgeMs,
      settings.joinTimeoutMs,
    );
    const { kafka, admin, logger } = parts;
    this.#context = { kafka, admin, settings, logger, topics: this.#topics };
    this.#inboxes = new Inboxes(this.#context);
    this.#results = new ResultStore(this.#context);
    this.#deadLetters = new DeadLetterStore(this.#context);
  }

  #checkOpen(): void {
    if (this.#closed) throw new BrokerError("Cannot use a Kafka broker connection after close()");
  }

  /** Runs a call while open, so that `close()` waits for it. */
  #track<T>(call: () => Promise<T>): Promise<T> {
    try {
      this.#checkOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    const running = call();
    const settled = running.then(() => {}, () => {});
    this.#calls.add(settled);
    settled.then(() => this.#calls.delete(settled));
    return running;
  }

  consume(
    queue: string,
    handler: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<Subscription> {
    return this.#track(() => this.#consume(queue, handler, options));
  }

  async #consume(
    queue: string,
    handler: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<Subscription> {
    const { settings } = this.#parts;
    const requestPartitions = settings.queueTopicPartitions ?? options.prefetch;
    await this.#topics.ensure([
      { topic: requestQueueName(queue, "native"), partitions: requestPartitions },
      { topic: requestQueueName(queue, "raw"), partitions: requestPartitions },
      { topic: feedbackName(queue, "native"), partitions: settings.feedbackTopicPartitions },
      { topic: feedbackName(queue, "raw"), partitions: settings.feedbackTopicPartitions },
      { topic: deadLetterQueueName(queue), partitions: 1 },
    ]);
    // Checked after every wait: close() may have come meanwhile.
    this.#checkOpen();
    const consumer = new ServerConsumer({
      ...this.#context,
      queue,
      prefetch: options.prefetch,
      outbox: this.#outbox(queue),
      handler,
    });
    // Known before it starts, so that close() disconnects it (which ends its start).
    this.#consumers.add(consumer);
    try {
      await consumer.start();
      this.#checkOpen();
    } catch (err) {
      this.#consumers.delete(consumer);
      await consumer.disconnect();
      throw err;
    }
    return consumer;
  }

  /** Where the results and dead letters of `queue` go. */
  #outbox(queue: string): Outbox {
    return {
      sendResult: async (kind: QueueKind, reply: Reply, replyPartition: number | undefined) => {
        const topic = feedbackName(queue, kind);
        // A partition the topic does not have (a foreign header) falls back to the key.
        const routed = reply.replyTo !== undefined && replyPartition !== undefined &&
            await this.#topics.hasPartition(topic, replyPartition)
          ? replyPartition
          : undefined;
        try {
          await this.#sender.sendSoon(topic, resultRecord(reply, routed));
        } catch (err) {
          // Kafka's limit is below maxMessageBytes: running the call again would not help.
          const body = err instanceof PayloadTooLargeError
            ? tooLargeResult(reply.body, err)
            : undefined;
          if (body === undefined) throw err;
          this.#parts.logger.warn("Kafka refused a result as too large; sent an error instead", {
            messageId: reply.messageId,
            error: err instanceof Error ? err.message : String(err),
          });
          await this.#sender.send(topic, resultRecord({ ...reply, body }, routed));
        }
      },
      sendDeadLetter: (kind, body, reason, source, sent) =>
        this.#sender.sendSoon(
          deadLetterQueueName(queue),
          deadLetterRecord(kind, body, reason, source, sent),
        ),
    };
  }

  publish(queue: string, kind: QueueKind, body: string): Promise<void> {
    return this.#track(() => this.#publish(queue, kind, body));
  }

  async #publish(queue: string, kind: QueueKind, body: string): Promise<void> {
    assertWithinLimit(
      body,
      this.maxMessageBytes,
      "Kafka",
      ` (the record limit ${this.#parts.recordLimit} less ${RECORD_OVERHEAD_BYTES} ` +
        "for the record's key, headers and framing)",
    );
    const topic = requestQueueName(queue, kind);
    await this.#topics.ensure([
      { topic, partitions: this.#parts.settings.queueTopicPartitions ?? 1 },
    ]);
    const replyPartition = kind === "native" && this.#inboxes.open
      ? await this.#inboxes.replyPartition(queue)
      : undefined;
    this.#checkOpen();
    await this.#sender.send(topic, requestRecord(body, replyPartition));
  }

  openInbox(onReply: (body: string) => void): Promise<Inbox> {
    try {
      this.#checkOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve(this.#inboxes.add(onReply));
  }

  readResult(queue: string, kind: QueueKind, messageId: string): Promise<string | null> {
    return this.#track(async () => {
      // Native results go to the partition their request named: a redelivered request
      // running here names it, and this connection's own calls name its reply partition.
      const partitions: number[] = [];
      for (const consumer of this.#consumers) {
        const named = consumer.replyPartitionFor(queue, kind, messageId);
        if (named !== undefined) partitions.push(named);
      }
      const own = kind === "native" ? await this.#inboxes.partitionRead(queue) : undefined;
      if (own !== undefined) partitions.push(own);
      return await this.#results.read(feedbackName(queue, kind), messageId, partitions);
    });
  }

  readDeadLetters(queue: string, limit: number): Promise<DeadLetter[]> {
    return this.#track(() => this.#deadLetters.read(deadLetterQueueName(queue), limit));
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    // Closing the stores first ends the waits of calls under way; they stop what they
    // start afterwards themselves, and consume() disconnects a consumer it started late.
    await this.#inboxes.close();
    await this.#results.close();
    await this.#deadLetters.close();
    for (const consumer of [...this.#consumers]) await consumer.disconnect();
    this.#consumers.clear();
    await Promise.all(this.#calls);
    const { producer, admin, logger } = this.#parts;
    for (const client of [producer, admin]) {
      await client.disconnect().catch((err) =>
        logger.debug("cannot disconnect from Kafka cleanly", { error: errorText(err) })
      );
    }
  }
}

/**
 * Connects to Kafka: checks the settings, then connects an admin client and a
 * producer (consumers start when a server consumes or a client first calls).
 *
 * @param options `url` names the brokers (see the module docs), `settings`
 *   override the URL's query and the `PRPC_KAFKA_*` variables, `logger` gets
 *   kafkajs's log lines at `debug`.
 * @returns The broker connection.
 * @throws {ConfigError} When the URL or a setting is invalid.
 * @throws {BrokerError} When no broker of the list can be reached.
 */
export async function connect(options: BrokerConnectOptions): Promise<Broker> {
  const settings = readKafkaSettings(options.url, options.settings);
  const logger = options.logger ?? consoleLogger();
  const kafka = createKafka(settings, logger);
  const admin = kafka.admin();
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    // Partitions another process adds get requests within this time.
    metadataMaxAge: settings.metadataMaxAgeMs,
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: false,
  });
  try {
    await admin.connect();
    await producer.connect();
  } catch (err) {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    throw brokerError(`Cannot connect to Kafka at ${settings.brokers.join(",")}`, err);
  }
  const recordLimit = settings.maxMessageBytes ?? await brokerRecordLimit(admin, logger);
  return new KafkaBroker({ settings, recordLimit, logger, kafka, admin, producer });
}
