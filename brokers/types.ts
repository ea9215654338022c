/**
 * The one contract every broker module implements. Server and client speak
 * only to this interface; queue naming and JSON live above it, so a broker
 * module is mostly I/O.
 *
 * Delivery is at-least-once: a delivery stays unsettled until the server calls
 * {@linkcode Delivery.complete} (result stored, message acknowledged),
 * {@linkcode Delivery.deadLetter} or {@linkcode Delivery.release}. A delivery
 * still unsettled when its consumer's connection goes away is delivered again.
 *
 * @module
 */

import { sizeOverLimit } from "../protocol/codec.ts";
import type { QueueKind } from "../protocol/envelope.ts";
import { PayloadTooLargeError } from "../protocol/errors.ts";
import type { BrokerKind } from "../protocol/env.ts";
import type { Logger } from "../protocol/logger.ts";

/** Settings every broker module accepts. */
export interface BrokerConnectOptions {
  /** Broker URL; each module documents its scheme and default. */
  url?: string | undefined;
  /** Name of this server instance (used as consumer name where the broker has one). */
  instanceName?: string | undefined;
  /**
   * Broker-specific settings (each module documents its keys, e.g. the Redis
   * heartbeat interval). They override the module's `PRPC_*` variables.
   */
  settings?: BrokerSettings | undefined;
  /** Where the module reports reconnects and dropped messages. Default: the console. */
  logger?: Logger | undefined;
}

/** Broker-specific settings by name; see {@linkcode BrokerConnectOptions.settings}. */
export type BrokerSettings = Readonly<Record<string, string | number | boolean | undefined>>;

/** What a broker module exports: a function that connects. */
export type ConnectBroker = (options: BrokerConnectOptions) => Promise<Broker>;

/** A connection to a broker, shared by whatever the process builds on it. */
export interface Broker {
  /** Which broker this is. */
  readonly kind: BrokerKind;
  /** Largest message body, in UTF-8 bytes, this broker carries. */
  readonly maxMessageBytes: number;

  /**
   * Server side: start taking requests from both queues of `queue` (native and
   * raw). At most `prefetch` deliveries are unsettled at once.
   *
   * @param queue The queue name (without the `prpc_` prefix).
   * @param handler Called for each delivery; it must settle every delivery.
   * @param options How many deliveries may be unsettled at once.
   * @returns A handle that stops new deliveries.
   */
  consume(
    queue: string,
    handler: (delivery: Delivery) => void,
    options: ConsumeOptions,
  ): Promise<Subscription>;

  /**
   * Client side: send a request body to the native or raw queue of `queue`.
   *
   * @param queue The queue name (without the `prpc_` prefix).
   * @param kind Which of the two queues.
   * @param body The JSON text.
   */
  publish(queue: string, kind: QueueKind, body: string): Promise<void>;

  /**
   * Client side: open the address where results for this client arrive.
   *
   * @param onReply Called with each result body sent to the inbox.
   * @param onMissed Called when results sent to the inbox may have been lost
   *   (e.g. its connection was re-established; brokers whose inbox cannot lose
   *   results never call it). The owner then reads the stored results of the
   *   calls it still waits for with {@linkcode Broker.readResult}.
   * @returns The inbox; its `address` goes into requests as `reply_to`.
   */
  openInbox(onReply: (body: string) => void, onMissed?: () => void): Promise<Inbox>;

  /**
   * Reads a stored result, the lossless path behind the inbox and the way raw
   * clients without an inbox find their result.
   *
   * @param queue The queue name.
   * @param kind Which of the two queues the request came through.
   * @param messageId The canonical `message_id`.
   * @returns The result body, or `null` when none is stored (yet, or any more).
   */
  readResult(queue: string, kind: QueueKind, messageId: string): Promise<string | null>;

  /**
   * Optional: reads many stored results at once (a raw client polls all its
   * waiting calls with one request). Without it, callers use
   * {@linkcode Broker.readResult} for each.
   *
   * @param queue The queue name.
   * @param kind Which of the two queues the requests came through.
   * @param messageIds The canonical `message_id`s.
   * @returns The result body or `null` for each id, in the same order.
   */
  readResults?(
    queue: string,
    kind: QueueKind,
    messageIds: readonly string[],
  ): Promise<(string | null)[]>;

  /**
   * Reads entries of the dead-letter queue `prpc_dead_{queue}` without removing them.
   *
   * @param queue The queue name.
   * @param limit The most entries to return, oldest first.
   * @returns The entries.
   */
  readDeadLetters(queue: string, limit: number): Promise<DeadLetter[]>;

  /**
   * Closes the connection. Deliveries still unsettled go back to their queue,
   * inboxes and subscriptions end.
   */
  close(): Promise<void>;
}

/** Options of {@linkcode Broker.consume}. */
export interface ConsumeOptions {
  /** Deliveries that may be unsettled at once, across both queues. */
  prefetch: number;
}

/**
 * One request handed to a server. It must be settled exactly once: by
 * `complete`, `deadLetter` or `release`, and a second settle call is refused.
 *
 * A settle call that rejects (or throws) has not settled the message: the
 * broker module still gives the delivery's place back at once, and the broker
 * delivers the message again (at once, when its connection closes, or after
 * the module's redelivery interval, which each module documents). The server
 * relies on this when a settle call fails: it makes no second one.
 */
export interface Delivery {
  /** Which queue it came from. */
  readonly kind: QueueKind;
  /** The message body as received. */
  readonly body: string;
  /** How many times this message has been delivered, this time included (1 the first time). */
  readonly attempt: number;
  /**
   * Stores the result (where the protocol keeps results), sends it to `replyTo`
   * when given, and acknowledges the request. Resolves once all three are done.
   */
  complete(reply: Reply): Promise<void>;
  /**
   * Moves the request to `prpc_dead_{queue}` with the reason and acknowledges it;
   * with a `reply`, also stores and sends that (error) result, as
   * {@linkcode Delivery.complete} does, so the caller learns why.
   */
  deadLetter(reason: string, reply?: Reply): Promise<void>;
  /** Hands the request back unacknowledged, so that any server can take it again soon. */
  release(): Promise<void>;
}

/** A result to store and send. */
export interface Reply {
  /** The canonical `message_id` of the request. */
  messageId: string;
  /** The result's JSON text. */
  body: string;
  /** The caller's inbox address, when the request named one. */
  replyTo?: string | undefined;
}

/** A running consumer. */
export interface Subscription {
  /** Stops new deliveries. Deliveries already handed out can still be settled. */
  close(): Promise<void>;
}

/** Where a client receives its results. */
export interface Inbox {
  /** The address requests carry in `reply_to`. */
  readonly address: string;
  /** Stops receiving and removes the inbox. */
  close(): Promise<void>;
}

/** An entry of the dead-letter queue. */
export interface DeadLetter {
  /** The queue the message came from. */
  kind: QueueKind;
  /** The message body as it was received. */
  body: string;
  /** Why it was set aside. */
  reason: string;
  /** When it was set aside (ISO 8601). */
  date: string;
}

/**
 * Name of a queue, stream or topic as the wire contract spells it.
 *
 * @param queue The queue name.
 * @param kind Native or raw.
 * @returns `prpc_{queue}` or `prpc_raw_{queue}`.
 */
export function requestQueueName(queue: string, kind: QueueKind): string {
  return kind === "native" ? `prpc_${queue}` : `prpc_raw_${queue}`;
}

/**
 * Name of the place results of one queue are kept (a key prefix, a topic or a queue).
 *
 * @param queue The queue name.
 * @param kind Native or raw.
 * @returns `prpc_feedback_{queue}` or `prpc_feedback_raw_{queue}`.
 */
export function feedbackName(queue: string, kind: QueueKind): string {
  return kind === "native" ? `prpc_feedback_${queue}` : `prpc_feedback_raw_${queue}`;
}

/**
 * Name of the dead-letter queue of a queue.
 *
 * @param queue The queue name.
 * @returns `prpc_dead_{queue}`.
 */
export function deadLetterQueueName(queue: string): string {
  return `prpc_dead_${queue}`;
}

/**
 * Refuses a request body over a broker's size limit, before anything is sent.
 *
 * @param body The JSON text.
 * @param limit The broker's limit in UTF-8 bytes.
 * @param broker Which broker, for the message (e.g. `"Redis"`).
 * @param why What the limit is made of, when that needs saying.
 * @throws {PayloadTooLargeError} When the body is over the limit.
 */
export function assertWithinLimit(body: string, limit: number, broker: string, why = ""): void {
  const size = sizeOverLimit(body, limit);
  if (size === null) return;
  throw new PayloadTooLargeError(
    `Cannot publish ${size} bytes: the ${broker} broker's limit is ${limit} bytes${why}`,
    { size, limit },
  );
}
