/**
 * prpc's AMQP wire contract in one place: how its queues are declared, which
 * properties and headers its messages carry, and how a dead letter is read
 * back. `docs/PROTOCOL.md` documents the same for clients in other languages.
 *
 * @module
 */

import type { GetMessage, MessageProperties, Options } from "amqplib";
import type { QueueKind } from "../../protocol/envelope.ts";
import type { DeadLetter } from "../types.ts";
import type { AmqpSettings } from "./settings.ts";

/**
 * Header counting deliveries of a request: the number of the delivery this copy
 * of the message starts at (absent means 1). A redelivered request is put back
 * with this header raised by one (see `request_consumer.ts`).
 */
export const DELIVERY_HEADER = "x-prpc-delivery";
/** Header of a dead letter: why it was set aside. */
export const DEAD_REASON_HEADER = "x-prpc-dead-reason";
/** Header of a dead letter: `native` or `raw`, the queue it came from. */
export const DEAD_KIND_HEADER = "x-prpc-dead-kind";
/** Header of a dead letter: when it was set aside (ISO 8601). */
export const DEAD_DATE_HEADER = "x-prpc-dead-date";

const JSON_CONTENT_TYPE = "application/json";
/** AMQP short strings (queue names, routing keys, ids) hold at most 255 bytes. */
const SHORT_STRING_BYTES = 255;
/** Reasons are cut to this length so a dead letter's headers stay small. */
const REASON_CHARS = 4096;

/**
 * How the durable queues are declared: `prpc_{queue}`, `prpc_raw_{queue}`,
 * `prpc_feedback_raw_{queue}` and `prpc_dead_{queue}`.
 *
 * @param settings `queueExpiresMs` adds `x-expires`.
 * @returns The declaration options.
 */
export function durableQueueOptions(settings: AmqpSettings): Options.AssertQueue {
  const options: Options.AssertQueue = { durable: true, exclusive: false, autoDelete: false };
  if (settings.queueExpiresMs !== undefined) options.expires = settings.queueExpiresMs;
  return options;
}

/**
 * How a client's reply queue is declared: not exclusive (so it outlives a lost
 * connection and keeps replies until the client is back), and deleted by
 * RabbitMQ once unused for `replyQueueExpiresMs`. It is durable only because
 * RabbitMQ deprecates transient queues that are not exclusive
 * (`transient_nonexcl_queues`); the replies in it are not persistent.
 *
 * @param settings The reply queue expiry.
 * @returns The declaration options.
 */
export function replyQueueOptions(settings: AmqpSettings): Options.AssertQueue {
  return {
    durable: true,
    exclusive: false,
    autoDelete: false,
    expires: settings.replyQueueExpiresMs,
  };
}

/** Properties of a request a prpc client publishes. */
export function requestProperties(): Options.Publish {
  return { persistent: true, contentType: JSON_CONTENT_TYPE };
}

/**
 * Properties of a result.
 *
 * @param messageId The call's `message_id`.
 * @param correlationId The request's `correlation_id`, else the `message_id`.
 * @param ttlMs Per-message TTL for results kept on a feedback queue.
 * @returns The properties.
 */
export function resultProperties(
  messageId: string,
  correlationId: string,
  ttlMs?: number,
): Options.Publish {
  const properties: Options.Publish = {
    persistent: true,
    contentType: JSON_CONTENT_TYPE,
    messageId,
    correlationId,
  };
  if (ttlMs !== undefined) properties.expiration = String(ttlMs);
  return properties;
}

/**
 * The number of the delivery a request starts at, from {@linkcode DELIVERY_HEADER}.
 *
 * @param properties The message's properties.
 * @returns 1 when the header is absent or not a whole number.
 */
export function deliveryNumber(properties: MessageProperties): number {
  const value: unknown = properties.headers?.[DELIVERY_HEADER];
  const number = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  return typeof number === "number" && Number.isSafeInteger(number) && number >= 1 ? number : 1;
}

/**
 * Properties of a request put back on its queue after a redelivery: the same
 * as before, with the delivery count raised.
 *
 * @param properties The redelivered message's properties.
 * @param nextDelivery The number its next delivery counts as.
 * @returns The properties.
 */
export function countedProperties(
  properties: MessageProperties,
  nextDelivery: number,
): Options.Publish {
  return {
    ...copyableProperties(properties),
    headers: { ...properties.headers, [DELIVERY_HEADER]: nextDelivery },
  };
}

/**
 * Properties of a dead letter: the request's own, plus why, when and from
 * which queue it was set aside.
 *
 * @param properties The request's properties.
 * @param kind The queue it came from.
 * @param reason Why it was set aside.
 * @param date When (ISO 8601).
 * @returns The properties.
 */
export function deadLetterProperties(
  properties: MessageProperties,
  kind: QueueKind,
  reason: string,
  date: string,
): Options.Publish {
  const copy = copyableProperties(properties);
  delete copy.expiration; // kept until someone removes it, not until the request's TTL
  return {
    ...copy,
    persistent: true, // wins over the copied deliveryMode
    headers: {
      ...properties.headers,
      [DEAD_REASON_HEADER]: reason.length > REASON_CHARS
        ? `${reason.slice(0, REASON_CHARS)}…`
        : reason,
      [DEAD_KIND_HEADER]: kind,
      [DEAD_DATE_HEADER]: date,
    },
  };
}

/**
 * Reads a message of `prpc_dead_{queue}` back as a dead-letter entry.
 *
 * @param message The message.
 * @returns The entry.
 */
export function readDeadLetter(message: GetMessage): DeadLetter {
  const headers = message.properties.headers ?? {};
  const text = (value: unknown) => typeof value === "string" ? value : String(value ?? "");
  return {
    kind: headers[DEAD_KIND_HEADER] === "raw" ? "raw" : "native",
    body: message.content.toString("utf8"),
    reason: text(headers[DEAD_REASON_HEADER]),
    date: text(headers[DEAD_DATE_HEADER]),
  };
}

/**
 * Whether a text fits an AMQP short string (a queue name or routing key).
 *
 * @param value The text.
 * @returns `true` when it is 1 to 255 UTF-8 bytes.
 */
export function isShortString(value: string): boolean {
  return value !== "" && new TextEncoder().encode(value).byteLength <= SHORT_STRING_BYTES;
}

/**
 * The properties of a received message that can be published again as they
 * are. `userId` is left out: RabbitMQ checks it against the publishing user.
 */
function copyableProperties(properties: MessageProperties): Options.Publish {
  const copy: Options.Publish = {};
  if (properties.contentType !== undefined) copy.contentType = properties.contentType;
  if (properties.contentEncoding !== undefined) copy.contentEncoding = properties.contentEncoding;
  if (properties.deliveryMode !== undefined) copy.deliveryMode = properties.deliveryMode;
  if (properties.priority !== undefined) copy.priority = properties.priority;
  if (properties.correlationId !== undefined) copy.correlationId = properties.correlationId;
  if (properties.replyTo !== undefined) copy.replyTo = properties.replyTo;
  if (properties.expiration !== undefined) copy.expiration = properties.expiration;
  if (properties.messageId !== undefined) copy.messageId = properties.messageId;
  if (properties.timestamp !== undefined) copy.timestamp = properties.timestamp;
  if (properties.type !== undefined) copy.type = properties.type;
  if (properties.appId !== undefined) copy.appId = properties.appId;
  return copy;
}
