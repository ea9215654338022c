/**
 * Client side of reply routing. A connection with an open inbox reads one
 * partition of `prpc_feedback_{queue}` (chosen at random when it first calls
 * that queue), from the end the partition had at that moment: never from the
 * beginning, and never the other partitions. Its native requests name that
 * partition in the header `prpc_reply_partition`; servers produce the result
 * to it, keyed by `message_id`, with the caller's `reply_to` in the header
 * `prpc_reply_to`, by which the connection hands each result to its inbox
 * and skips the results of other callers that share the partition.
 *
 * Why a partition rather than a topic or a key per client (the README's
 * section "Kafka" has the measurement): a topic per client would carry only
 * that client's results, but costs a CreateTopics on every client start
 * (about 100 ms through kafkajs, which waits for the new topic's leader) and
 * leaves the topics of departed clients behind; a key per client lands in
 * one partition just the same, and results would lose the `message_id` key
 * by which other Kafka clients find them. A partition shared by about 1/N of
 * the clients (N = `PRPC_KAFKA_FEEDBACK_TOPIC_NUMBER_PARTITIONS`) costs
 * nothing per client; a larger N makes each client's share smaller.
 *
 * @module
 */

import type { KafkaMessage } from "kafkajs";
import type { Inbox } from "../types.ts";
import { feedbackName } from "../types.ts";
import { BrokerError } from "../../protocol/errors.ts";
import { brokerError } from "./client.ts";
import type { KafkaContext } from "./context.ts";
import { header, REPLY_TO_HEADER } from "./records.ts";
import { TopicReader } from "./reader.ts";
import { topicOffsets } from "./offsets.ts";

/** The partition a connection reads in one feedback topic, and its reader. */
interface ReplyReader {
  partition: number;
  reader: TopicReader;
}

/** The inboxes of one broker connection and the readers of their partitions. */
export class Inboxes {
  readonly #context: KafkaContext;
  readonly #handlers = new Map<string, (body: string) => void>();
  readonly #readers = new Map<string, Promise<ReplyReader>>();
  #closed = false;

  /**
   * Creates the (empty) set of inboxes of a connection.
   *
   * @param context The connection's parts.
   */
  constructor(context: KafkaContext) {
    this.#context = context;
  }

  /** Whether any inbox is open, i.e. whether native requests need a reply partition. */
  get open(): boolean {
    return this.#handlers.size > 0;
  }

  /**
   * Opens an inbox. Nothing is read until the connection first calls a queue.
   *
   * @param onReply Called with each result sent to the inbox.
   * @returns The inbox; its address is the `reply_to` of requests.
   */
  add(onReply: (body: string) => void): Inbox {
    const address = `kafka-inbox-${crypto.randomUUID()}`;
    this.#handlers.set(address, onReply);
    return {
      address,
      close: async () => {
        this.#handlers.delete(address);
        if (this.#handlers.size === 0) await this.stop();
      },
    };
  }

  /**
   * The partition of `prpc_feedback_{queue}` this connection reads, starting
   * its reader (and creating the topic when missing) on the first call.
   *
   * @param queue The queue name.
   * @returns The partition to name in requests.
   */
  async replyPartition(queue: string): Promise<number> {
    if (this.#closed) throw closedError();
    const topic = feedbackName(queue, "native");
    let reader = this.#readers.get(topic);
    if (reader === undefined) {
      reader = this.#start(topic);
      this.#readers.set(topic, reader);
      reader.catch(() => this.#readers.delete(topic));
    }
    return (await reader).partition;
  }

  /**
   * The partition of `prpc_feedback_{queue}` this connection reads, if it
   * reads one (it has called the queue), without starting anything.
   *
   * @param queue The queue name.
   * @returns The partition, or `undefined`.
   */
  async partitionRead(queue: string): Promise<number | undefined> {
    const reader = this.#readers.get(feedbackName(queue, "native"));
    return reader === undefined
      ? undefined
      : await reader.then((r) => r.partition, () => undefined);
  }

  /** Stops every reader for good (the connection closes); a reader starting meanwhile stops at once. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.stop();
  }

  /** Stops every reader; inboxes stay open and start reading again on the next call. */
  async stop(): Promise<void> {
    const readers = [...this.#readers.values()];
    this.#readers.clear();
    for (const reader of readers) await reader.then((r) => r.reader.stop(), () => {});
  }

  async #start(topic: string): Promise<ReplyReader> {
    const { admin, topics, settings } = this.#context;
    await topics.ensure([{ topic, partitions: settings.feedbackTopicPartitions }]);
    const count = await topics.partitionCount(topic) ?? settings.feedbackTopicPartitions;
    const partition = Math.floor(Math.random() * count);
    let end: number;
    try {
      const offsets = await topicOffsets(admin, topic);
      end = Number(offsets.find((offset) => offset.partition === partition)?.high ?? 0);
    } catch (err) {
      throw brokerError(`Cannot read the end offsets of the Kafka topic ${topic}`, err);
    }
    const reader = await TopicReader.start({
      ...this.#context,
      topic,
      partitions: [partition],
      start: new Map([[partition, end]]),
      onMessage: (_partition, message) => this.#dispatch(message),
    });
    if (this.#closed) {
      await reader.stop();
      throw closedError();
    }
    return { partition, reader };
  }

  #dispatch(message: KafkaMessage): void {
    const address = header(message.headers, REPLY_TO_HEADER);
    const handler = address === undefined ? undefined : this.#handlers.get(address);
    const body = message.value?.toString("utf8");
    if (handler !== undefined && body !== undefined) handler(body);
  }
}

function closedError(): BrokerError {
  return new BrokerError("Cannot read replies from Kafka after the connection closed");
}
