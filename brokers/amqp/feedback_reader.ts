/**
 * Reads raw results that were sent without `reply_to`, for
 * `Broker.readResult`. RabbitMQ keeps no results by key, so the first read for
 * a queue name starts a consumer on `prpc_feedback_raw_{queue}`; from then on
 * it takes every result that arrives there off the queue and keeps it in
 * memory, by `message_id`, for `resultTtlMs`.
 *
 * @module
 */

import type { ConsumeMessage } from "amqplib";
import { type ParsedResult, parseResult } from "../../protocol/envelope.ts";
import { feedbackName } from "../types.ts";
import { type LinkContext, LinkPart } from "./connection.ts";
import type { AmqpSession, SessionChannel } from "./session.ts";
import { durableQueueOptions } from "./wire.ts";

/** Results in flight to this reader at once; each is acknowledged as it arrives. */
const PREFETCH = 256;

interface KeptResult {
  readonly body: string;
  readonly expiresAt: number;
}

/** Where the reader currently consumes. */
interface Consuming {
  readonly session: AmqpSession;
  readonly channel: SessionChannel;
  readonly tag: string;
}

/** A consumer of one `prpc_feedback_raw_{queue}` that keeps results by `message_id`. */
export class FeedbackReader extends LinkPart {
  readonly #context: LinkContext;
  readonly #name: string;
  /** In arrival order, which is also expiry order. */
  readonly #results = new Map<string, KeptResult>();
  #consuming: Consuming | undefined;
  #closed = false;

  /**
   * Creates the reader; it starts when its link registers it.
   *
   * @param context The connection, settings and logger.
   * @param queue The queue name (without the `prpc_` prefix).
   */
  constructor(context: LinkContext, queue: string) {
    super();
    this.#context = context;
    this.#name = feedbackName(queue, "raw");
  }

  protected override async attach(session: AmqpSession): Promise<void> {
    if (this.#closed) return;
    const channel = await session.openChannel(`the results on ${this.#name}`);
    try {
      await session.declareQueue(this.#name, durableQueueOptions(this.#context.settings));
      await channel.channel.prefetch(PREFETCH);
      const { consumerTag } = await channel.channel.consume(
        this.#name,
        (message) => this.#take(session, channel, message),
        { noAck: false },
      );
      this.#consuming = { session, channel, tag: consumerTag };
    } catch (err) {
      await channel.close();
      throw err;
    }
  }

  #take(session: AmqpSession, channel: SessionChannel, message: ConsumeMessage | null): void {
    if (message === null) {
      if (!this.#closed) session.rebuild(`RabbitMQ cancelled the consumer of ${this.#name}`);
      return;
    }
    const body = message.content.toString("utf8");
    const fromProperty: unknown = message.properties.messageId;
    const messageId = typeof fromProperty === "string" && fromProperty !== ""
      ? fromProperty
      : messageIdOf(parseResult(body));
    if (messageId !== null) {
      const now = Date.now();
      this.#results.delete(messageId); // re-inserted at the end, keeping expiry order
      this.#results.set(messageId, { body, expiresAt: now + this.#context.settings.resultTtlMs });
      this.#sweep(now);
    }
    try {
      channel.channel.ack(message);
    } catch {
      // The channel closed meanwhile: the result comes again after the reconnect.
    }
  }

  /**
   * The result for a `message_id`, if it has arrived and not expired.
   *
   * @param messageId The canonical `message_id`.
   * @returns The result body, or `null`.
   */
  read(messageId: string): string | null {
    this.#sweep(Date.now());
    return this.#results.get(messageId)?.body ?? null;
  }

  #sweep(now: number): void {
    for (const [messageId, kept] of this.#results) {
      if (kept.expiresAt > now) break;
      this.#results.delete(messageId);
    }
  }

  /** Stops taking results. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#context.link.unregister(this);
    this.#results.clear();
    const consuming = this.#consuming;
    if (consuming === undefined || !consuming.session.alive) return;
    try {
      await consuming.channel.channel.cancel(consuming.tag);
    } catch {
      // Closed with its connection already.
    }
    await consuming.channel.close();
  }
}

/** The `message_id` a result answers, when one can be read. */
function messageIdOf(parsed: ParsedResult): string | null {
  return parsed.ok ? parsed.result.message_id : parsed.messageId;
}
