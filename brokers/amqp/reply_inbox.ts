/**
 * A client's reply queue: one queue and one consumer for every call the client
 * has in flight (results are told apart by `message_id` above this module).
 *
 * The queue is named by the client (`prpc_reply_{uuid}`), not exclusive and
 * not auto-delete, with `x-expires`. A lost connection therefore does not
 * delete it: results that servers send meanwhile wait in it, and the client
 * takes them after reconnecting to the same name. `close()` deletes it; if the
 * client dies instead, RabbitMQ deletes it once unused for
 * `replyQueueExpiresMs`. (An exclusive queue, or RabbitMQ's direct reply-to,
 * would lose those results, and measured no faster: see the README.)
 *
 * @module
 */

import type { ConsumeMessage } from "amqplib";
import type { Inbox } from "../types.ts";
import { type LinkContext, LinkPart } from "./connection.ts";
import { type AmqpSession, errorText, type SessionChannel } from "./session.ts";
import { replyQueueOptions } from "./wire.ts";

/** Where the inbox currently consumes. */
interface Consuming {
  readonly session: AmqpSession;
  readonly channel: SessionChannel;
  readonly tag: string;
}

/** A client's reply queue and its consumer. */
export class ReplyInbox extends LinkPart implements Inbox {
  /** The reply queue's name, which requests carry as `reply_to`. */
  readonly address = `prpc_reply_${crypto.randomUUID()}`;
  readonly #context: LinkContext;
  readonly #onReply: (body: string) => void;
  #consuming: Consuming | undefined;
  #closed = false;

  /**
   * Creates the inbox; it opens when its link registers it.
   *
   * @param context The connection, settings and logger.
   * @param onReply Called with the body of each result.
   */
  constructor(context: LinkContext, onReply: (body: string) => void) {
    super();
    this.#context = context;
    this.#onReply = onReply;
  }

  protected override async attach(session: AmqpSession): Promise<void> {
    if (this.#closed) return;
    const channel = await session.openChannel(`the reply queue ${this.address}`);
    try {
      await session.declareQueue(this.address, replyQueueOptions(this.#context.settings));
      // Exclusive consumer: a second one (a stale connection not yet noticed by RabbitMQ)
      // is refused, and the reconnect tries again later.
      const { consumerTag } = await channel.channel.consume(
        this.address,
        (message) => this.#receive(session, channel, message),
        { noAck: false, exclusive: true },
      );
      this.#consuming = { session, channel, tag: consumerTag };
    } catch (err) {
      await channel.close();
      throw err;
    }
  }

  #receive(session: AmqpSession, channel: SessionChannel, message: ConsumeMessage | null): void {
    if (message === null) {
      if (!this.#closed) session.rebuild(`RabbitMQ cancelled the consumer of ${this.address}`);
      return;
    }
    try {
      channel.channel.ack(message);
    } catch {
      // The channel closed meanwhile: the result comes again after the reconnect, and
      // the client ignores it then, as a result nobody waits for any more.
    }
    try {
      this.#onReply(message.content.toString("utf8"));
    } catch (err) {
      this.#context.logger.error("the reply handler threw", { error: errorText(err) });
    }
  }

  /** Stops consuming and deletes the reply queue (if the connection is up; else it expires). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#context.link.unregister(this);
    const consuming = this.#consuming;
    if (consuming === undefined || !consuming.session.alive || !consuming.channel.open) return;
    try {
      // Cancel first: deleting a queue with a consumer makes RabbitMQ cancel it as a failure.
      await consuming.channel.channel.cancel(consuming.tag);
      await consuming.channel.channel.deleteQueue(this.address);
    } catch (err) {
      this.#context.logger.debug("cannot delete the reply queue; it expires by itself", {
        queue: this.address,
        error: errorText(err),
      });
    }
    await consuming.channel.close();
  }
}
