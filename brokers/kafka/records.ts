/**
 * The Kafka records prpc writes: keys, headers and values of requests, results
 * and dead letters (`docs/PROTOCOL.md`, section Kafka, is the reference for
 * other languages). Values are always the JSON text itself, so any Kafka
 * client reads them without prpc.
 *
 * @module
 */

import type { IHeaders, KafkaMessage, Message } from "kafkajs";
import { canonicalMessageId, isoTimestamp, type QueueKind } from "../../protocol/envelope.ts";
import type { DeadLetter, Reply } from "../types.ts";

/**
 * Request header: the partition of `prpc_feedback_{queue}` the caller reads.
 * Set by prpc clients on native requests; servers send the result there.
 */
export const REPLY_PARTITION_HEADER = "prpc_reply_partition";
/**
 * Request header, copied to its dead letter: when the request was sent, in
 * microseconds since the Unix epoch. Dead letters are listed in this order
 * (the order the requests were sent), which the partitions of a topic do not keep.
 */
export const SENT_HEADER = "prpc_sent_us";
/** Result header: the request's `reply_to` (the caller's inbox), so a caller skips results of others. */
export const REPLY_TO_HEADER = "prpc_reply_to";
/** Dead-letter headers: which queue, why, when, and where the request was. */
export const DEAD_KIND_HEADER = "prpc_kind";
/** See {@linkcode DEAD_KIND_HEADER}. */
export const DEAD_REASON_HEADER = "prpc_reason";
/** See {@linkcode DEAD_KIND_HEADER}. */
export const DEAD_DATE_HEADER = "prpc_date";
/** See {@linkcode DEAD_KIND_HEADER}: `topic/partition/offset` of the request. */
export const DEAD_SOURCE_HEADER = "prpc_source";

/** Room a record needs beside its value: key, headers, record and batch framing. */
export const RECORD_OVERHEAD_BYTES = 1024;

/** The longest reason kept in a dead-letter header, so the record stays within the limit. */
const MAX_REASON_CHARS = 500;

/**
 * The longest `reply_to` put in a result header; longer ones (only a foreign
 * client could send them) would not fit in the record's overhead, and name no
 * prpc inbox anyway.
 */
const MAX_REPLY_TO_CHARS = 200;

/**
 * A request record. Requests have no key, so the producer spreads them over
 * the partitions in turn.
 *
 * @param body The request's JSON text.
 * @param replyPartition The partition of the feedback topic the caller reads, if it has an inbox.
 * @returns The record.
 */
export function requestRecord(body: string, replyPartition: number | undefined): Message {
  const headers: IHeaders = {
    [SENT_HEADER]: String(Math.round((performance.timeOrigin + performance.now()) * 1000)),
  };
  if (replyPartition !== undefined) headers[REPLY_PARTITION_HEADER] = String(replyPartition);
  return { value: body, headers };
}

/**
 * When a request was sent, in microseconds: its `prpc_sent_us` header, else
 * its record timestamp (requests from other Kafka clients).
 *
 * @param message The request as consumed.
 * @returns Microseconds since the Unix epoch.
 */
export function sentMicros(message: KafkaMessage): number {
  const text = header(message.headers, SENT_HEADER);
  return text !== undefined && /^\d{1,20}$/.test(text)
    ? Number(text)
    : Number(message.timestamp) * 1000;
}

/**
 * A result record: keyed by `message_id`; for a caller with an inbox it goes
 * to the caller's partition and names the caller's inbox in a header.
 *
 * @param reply The result.
 * @param partition The caller's partition, or `undefined` to place it by key.
 * @returns The record.
 */
export function resultRecord(reply: Reply, partition: number | undefined): Message {
  const record: Message = { key: reply.messageId, value: reply.body };
  if (reply.replyTo !== undefined && reply.replyTo.length <= MAX_REPLY_TO_CHARS) {
    record.headers = { [REPLY_TO_HEADER]: reply.replyTo };
  }
  if (partition !== undefined) record.partition = partition;
  return record;
}

/**
 * A dead-letter record: the request's body unchanged (so it can be put back
 * on its queue as it is), the reason and origin in headers.
 *
 * @param kind The queue it came from.
 * @param body The request's body.
 * @param reason Why it was set aside.
 * @param source `topic/partition/offset` of the request.
 * @param sent When the request was sent ({@linkcode sentMicros}).
 * @returns The record.
 */
export function deadLetterRecord(
  kind: QueueKind,
  body: string,
  reason: string,
  source: string,
  sent: number,
): Message {
  return {
    value: body,
    headers: {
      [SENT_HEADER]: String(sent),
      [DEAD_KIND_HEADER]: kind,
      [DEAD_REASON_HEADER]: reason.length > MAX_REASON_CHARS
        ? `${reason.slice(0, MAX_REASON_CHARS)}…`
        : reason,
      [DEAD_DATE_HEADER]: isoTimestamp(),
      [DEAD_SOURCE_HEADER]: source,
    },
  };
}

/**
 * Reads a dead-letter record back.
 *
 * @param message The record as consumed.
 * @returns The entry.
 */
export function readDeadLetter(message: KafkaMessage): DeadLetter {
  const kind = header(message.headers, DEAD_KIND_HEADER);
  return {
    kind: kind === "native" ? "native" : "raw",
    body: message.value?.toString("utf8") ?? "",
    reason: header(message.headers, DEAD_REASON_HEADER) ?? "",
    date: header(message.headers, DEAD_DATE_HEADER) ?? isoTimestamp(Number(message.timestamp)),
  };
}

/**
 * One header of a consumed record as text.
 *
 * @param headers The record's headers.
 * @param name The header.
 * @returns Its (first) value, or `undefined`.
 */
export function header(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/**
 * The reply partition a request names, when it is a valid partition number.
 *
 * @param message The request as consumed.
 * @returns The partition, or `undefined`.
 */
export function replyPartitionOf(message: KafkaMessage): number | undefined {
  const text = header(message.headers, REPLY_PARTITION_HEADER);
  if (text === undefined || !/^\d{1,9}$/.test(text)) return undefined;
  return Number(text);
}

/**
 * The canonical `message_id` of a request or result body, for records
 * without a key (foreign ones) and redelivered requests.
 *
 * @param body The JSON text.
 * @returns The `message_id`, or `null` when the body has no readable one.
 */
export function messageIdOf(body: string): string | null {
  try {
    return canonicalMessageId((JSON.parse(body) as { message_id?: unknown })?.message_id);
  } catch {
    return null;
  }
}
