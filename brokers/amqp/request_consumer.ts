/**
 * The server side: one consumer on `prpc_{queue}` and `prpc_raw_{queue}`, and
 * the deliveries it hands to the server.
 *
 * **One budget for both queues.** Both queues are consumed on one channel. On
 * classic queues (the default) its prefetch is shared by the two consumers
 * (`basic.qos` with `global`), so RabbitMQ hands the server at most
 * `prefetch` requests at once across both, and a request it cannot start yet
 * stays in its queue for another server. Quorum queues (and streams) refuse a
 * shared prefetch (RabbitMQ closes the connection), so on them each consumer
 * gets `prefetch` and requests beyond the budget wait here until a worker is
 * free: no limit per consumer can keep two queues in one budget without
 * holding a request back from an idle server or polling. Which of the two
 * applies is found once per connection by declaring each queue again with
 * `x-queue-type: classic`; a queue an operator declared with other arguments
 * cannot be told apart from a quorum queue that way, and gets the latter.
 *
 * **Counting deliveries.** `Delivery.attempt` must count every delivery,
 * crashes included, or a message that kills its server would loop forever.
 * Classic queues only say `redelivered`; quorum queues count in
 * `x-delivery-count`, but what that header counts changed in RabbitMQ 4.0 and
 * again in 4.3, and quorum queues need their own declaration arguments that
 * queues declared by others may not have. So prpc counts itself, on any queue
 * type and version: a request arriving with `redelivered` set is published
 * again to the tail of its queue with the header `x-prpc-delivery` raised by
 * one (after RabbitMQ confirms the copy, the original is acknowledged), and is
 * run when that copy arrives. Only redeliveries pay for it. When the queue
 * refuses the copy (it is full, say), the request is run where it is, as the
 * delivery the copy would have counted.
 *
 * **Dead-lettering.** Poison messages go to `prpc_dead_{queue}` by a confirmed
 * publish from the server rather than by a dead-letter exchange or a
 * quorum-queue delivery limit: the server decides (it knows `maxDeliveries`
 * and also sets aside messages it cannot read at all), the reason travels in
 * the header `x-prpc-dead-reason`, and the caller gets an error result at once,
 * which RabbitMQ's own dead-lettering could not send.
 *
 * **Settling ends a request.** Once a result is refused by its `reply_to`
 * (RabbitMQ nacks it: the queue is full and rejects publishes, say), or once a
 * dead letter is confirmed, the request is acknowledged whatever happens to
 * its reply, and when the dead-letter queue itself refuses the message it is
 * rejected: running it again could only fail the same way, forever. Only a
 * lost connection, or a publish RabbitMQ neither confirms nor refuses in
 * time, hands a request back to run again.
 *
 * @module
 */

import type { ConsumeMessage } from "amqplib";
import { isoTimestamp, type QueueKind } from "../../protocol/envelope.ts";
import { BrokerError } from "../../protocol/errors.ts";
import {
  deadLetterQueueName,
  type Delivery,
  feedbackName,
  type Reply,
  requestQueueName,
  type Subscription,
} from "../types.ts";
import { type LinkContext, LinkPart } from "./connection.ts";
import { isRefusal } from "./failures.ts";
import { type AmqpSession, errorText, type SessionChannel } from "./session.ts";
import {
  countedProperties,
  deadLetterProperties,
  deliveryNumber,
  durableQueueOptions,
  isShortString,
  resultProperties,
} from "./wire.ts";

const KINDS: readonly QueueKind[] = ["native", "raw"];

/** Where one consumer currently consumes. */
interface Consuming {
  readonly session: AmqpSession;
  readonly channel: SessionChannel;
  readonly tags: string[];
}

/** A server's consumer of both request queues of one queue name. */
export class RequestConsumer extends LinkPart implements Subscription {
  readonly #context: LinkContext;
  readonly #queue: string;
  readonly #handler: (delivery: Delivery) => void;
  readonly #prefetch: number;
  /** Set once RabbitMQ refused shared (global) prefetch: not asked for again. */
  #sharedPrefetchRefused = false;
  /** Deliveries handed to the handler and not settled yet. */
  readonly #running = new Set<AmqpDelivery>();
  /** Deliveries that arrived while `#prefetch` were running, in arrival order. */
  readonly #waiting: AmqpDelivery[] = [];
  #consuming: Consuming | undefined;
  #closed = false;
  /** The consuming channel closing for good, once it is. */
  #channelClosed: Promise<void> | undefined;

  /**
   * Creates the consumer; it starts when its link registers it.
   *
   * @param context The connection, settings and logger.
   * @param queue The queue name (without the `prpc_` prefix).
   * @param handler Takes each delivery.
   * @param prefetch Deliveries unsettled at once, across both queues.
   */
  constructor(
    context: LinkContext,
    queue: string,
    handler: (delivery: Delivery) => void,
    prefetch: number,
  ) {
    super();
    this.#context = context;
    this.#queue = queue;
    this.#handler = handler;
    this.#prefetch = prefetch;
  }

  protected override async attach(session: AmqpSession): Promise<void> {
    if (this.#closed) return;
    let channel: SessionChannel | undefined;
    try {
      const declaration = durableQueueOptions(this.#context.settings);
      let shared = true;
      for (const kind of KINDS) {
        const name = requestQueueName(this.#queue, kind);
        await session.declareQueue(name, declaration);
        shared &&= await session.isClassicQueue(name, declaration);
      }
      channel = await session.openChannel(`the requests of ${this.#queue}`);
      if (shared && !this.#sharedPrefetchRefused) {
        try {
          await channel.channel.prefetch(this.#prefetch, true);
        } catch (err) {
          // Shared (global) prefetch is a deprecated RabbitMQ feature that a broker may
          // deny: fall back to a prefetch per consumer, with the overflow waiting here.
          this.#sharedPrefetchRefused = true;
          this.#context.logger.warn(
            "RabbitMQ refused a prefetch shared by both request queues; using one per queue",
            { queue: this.#queue, error: errorText(err) },
          );
          await channel.close();
          channel = await session.openChannel(`the requests of ${this.#queue}`);
          await channel.channel.prefetch(this.#prefetch, false);
        }
      } else {
        await channel.channel.prefetch(this.#prefetch, false);
      }
      const tags: string[] = [];
      for (const kind of KINDS) {
        const open = channel;
        const { consumerTag } = await channel.channel.consume(
          requestQueueName(this.#queue, kind),
          (message) => this.#receive(session, open, kind, message),
          { noAck: false },
        );
        tags.push(consumerTag);
      }
      this.#consuming = { session, channel, tags };
    } catch (err) {
      await channel?.close();
      throw new BrokerError(
        `Cannot consume the requests of ${this.#queue}: ${errorText(err)}`,
        { cause: err },
      );
    }
    if (this.#closed) await this.#stop();
  }

  #receive(
    session: AmqpSession,
    channel: SessionChannel,
    kind: QueueKind,
    message: ConsumeMessage | null,
  ): void {
    if (message === null) {
      if (!this.#closed) {
        session.rebuild(
          `RabbitMQ cancelled the consumer of ${requestQueueName(this.#queue, kind)}`,
        );
      }
      return;
    }
    if (this.#closed) {
      // Arrived while the consumer was being cancelled: hand it to another server.
      try {
        channel.channel.nack(message, false, true);
      } catch {
        // The channel is gone, so RabbitMQ has put the message back already.
      }
      return;
    }
    const source = { session, channel, kind, message };
    if (message.fields.redelivered) void this.#countRedelivery(source);
    else this.#accept(source, deliveryNumber(message.properties));
  }

  #accept(source: ReceivedMessage, attempt: number): void {
    const delivery = new AmqpDelivery({
      ...source,
      context: this.#context,
      queue: this.#queue,
      attempt,
      settled: (settled) => this.#settled(settled),
    });
    if (this.#running.size < this.#prefetch) this.#hand(delivery);
    else this.#waiting.push(delivery);
  }

  #hand(delivery: AmqpDelivery): void {
    this.#running.add(delivery);
    try {
      this.#handler(delivery);
    } catch (err) {
      this.#context.logger.error("the delivery handler threw", { error: errorText(err) });
    }
  }

  #settled(delivery: AmqpDelivery): void {
    if (!this.#running.delete(delivery)) return;
    while (this.#running.size < this.#prefetch) {
      const next = this.#waiting.shift();
      if (next === undefined) break;
      // One whose connection was lost meanwhile is back in its queue already.
      if (next.held) this.#hand(next);
    }
    if (this.#closed && this.#running.size === 0 && this.#consuming !== undefined) {
      void this.#closeChannel(this.#consuming.channel);
    }
  }

  /**
   * Puts a redelivered request back with its delivery count raised (see the
   * module docs); runs it in place when its queue refuses the copy.
   */
  async #countRedelivery(source: ReceivedMessage): Promise<void> {
    const { session, channel, kind, message } = source;
    const name = requestQueueName(this.#queue, kind);
    const next = deliveryNumber(message.properties) + 1;
    try {
      await session.publishToQueue(
        name,
        message.content,
        countedProperties(message.properties, next),
        durableQueueOptions(this.#context.settings),
      );
      channel.channel.ack(message);
      this.#context.logger.debug("counted a redelivery", { queue: name, delivery: next });
    } catch (err) {
      if (!session.alive || !channel.open) return; // RabbitMQ delivers it again
      this.#context.logger.warn("cannot count a redelivery on its queue; running it in place", {
        queue: name,
        delivery: next,
        error: errorText(err),
      });
      this.#accept(source, next);
    }
  }

  /**
   * Stops new deliveries; deliveries handed out can still be settled. The
   * channel closes once the last of them is.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#context.link.unregister(this);
      await this.#stop();
    }
    // Called again when the broker closes: the channel must be closed before the connection,
    // or acknowledgements still in the channel's buffer are lost with it, and their
    // messages delivered again.
    await this.#channelClosed;
  }

  /** Closes the consuming channel once: RabbitMQ has every acknowledgement sent on it by then. */
  #closeChannel(channel: SessionChannel): Promise<void> {
    this.#channelClosed ??= channel.close();
    return this.#channelClosed;
  }

  async #stop(): Promise<void> {
    const consuming = this.#consuming;
    if (consuming === undefined || !consuming.session.alive || !consuming.channel.open) return;
    for (const tag of consuming.tags) {
      try {
        await consuming.channel.channel.cancel(tag);
      } catch {
        // The channel closed meanwhile: it consumes nothing any more.
      }
    }
    // Taken but never handed out: give them to other servers now.
    for (const waiting of this.#waiting.splice(0)) await waiting.release();
    if (this.#running.size === 0) await this.#closeChannel(consuming.channel);
  }
}

/** A request as it came off a queue. */
interface ReceivedMessage {
  readonly session: AmqpSession;
  readonly channel: SessionChannel;
  readonly kind: QueueKind;
  readonly message: ConsumeMessage;
}

/** Everything a delivery needs to settle itself. */
interface DeliverySource extends ReceivedMessage {
  readonly context: LinkContext;
  readonly queue: string;
  /** The delivery's number (see the module docs). */
  readonly attempt: number;
  /** Called once the delivery is settled, whichever way. */
  readonly settled: (delivery: AmqpDelivery) => void;
}

/**
 * One request handed to the server. Settling it after its connection was lost
 * does nothing and does not fail: RabbitMQ has put the request back already and
 * delivers it again.
 */
class AmqpDelivery implements Delivery {
  readonly kind: QueueKind;
  readonly body: string;
  readonly attempt: number;
  readonly #source: DeliverySource;
  #settled = false;

  constructor(source: DeliverySource) {
    this.#source = source;
    this.kind = source.kind;
    this.body = source.message.content.toString("utf8");
    this.attempt = source.attempt;
  }

  complete(reply: Reply): Promise<void> {
    return this.#settle(async () => {
      try {
        await this.#sendReply(reply);
      } catch (err) {
        if (!isRefusal(err)) throw err;
        this.#source.context.logger.warn("dropped a result: RabbitMQ refused it", {
          messageId: reply.messageId,
          error: errorText(err),
        });
      }
      this.#source.channel.channel.ack(this.#source.message);
    });
  }

  deadLetter(reason: string, reply?: Reply): Promise<void> {
    return this.#settle(async () => {
      const stored = await this.#storeDeadLetter(reason);
      if (reply !== undefined) {
        try {
          await this.#sendReply(reply);
        } catch (err) {
          if (!this.held) throw err;
          this.#source.context.logger.warn("dropped the error result of a dead letter", {
            messageId: reply.messageId,
            error: errorText(err),
          });
        }
      }
      const { channel, message } = this.#source;
      if (stored) channel.channel.ack(message);
      else channel.channel.nack(message, false, false);
    });
  }

  release(): Promise<void> {
    return this.#settle(() => {
      this.#source.channel.channel.nack(this.#source.message, false, true);
      return Promise.resolve();
    });
  }

  /** Whether the message is still held on a live channel (not yet back in its queue). */
  get held(): boolean {
    return this.#source.session.alive && this.#source.channel.open;
  }

  async #settle(work: () => Promise<void>): Promise<void> {
    if (this.#settled) throw new BrokerError("Cannot settle a delivery twice");
    this.#settled = true;
    try {
      if (!this.held) return this.#lost();
      await work();
    } catch (err) {
      if (!this.held) return this.#lost();
      // Neither done nor refused (a confirm that did not come in time): run it again later.
      try {
        this.#source.channel.channel.nack(this.#source.message, false, true);
      } catch {
        // The channel closed meanwhile: the message is back in its queue anyway.
      }
      throw err instanceof BrokerError
        ? err
        : new BrokerError(`Cannot settle a message: ${errorText(err)}`, { cause: err });
    } finally {
      this.#source.settled(this);
    }
  }

  #lost(): void {
    this.#source.context.logger.debug(
      "the connection was lost before a message was settled; RabbitMQ delivers it again",
      { queue: requestQueueName(this.#source.queue, this.kind) },
    );
  }

  /**
   * Publishes the dead letter.
   *
   * @returns `false` when RabbitMQ refused it (logged): the message is then rejected.
   */
  async #storeDeadLetter(reason: string): Promise<boolean> {
    const { context, session, message, queue, kind } = this.#source;
    const name = deadLetterQueueName(queue);
    try {
      await session.publishToQueue(
        name,
        message.content,
        deadLetterProperties(message.properties, kind, reason, isoTimestamp()),
        durableQueueOptions(context.settings),
      );
      return true;
    } catch (err) {
      if (!isRefusal(err)) throw err;
      context.logger.error(
        "cannot set a poison message aside: RabbitMQ refused the dead letter; the message is " +
          "rejected (dropped, or sent to its queue's own dead-letter exchange if it has one)",
        { queue: name, reason, error: errorText(err) },
      );
      return false;
    }
  }

  /**
   * Sends a result: to the request's AMQP `reply_to` property, else to the
   * `reply_to` field of its JSON, else (raw requests only) to the durable
   * `prpc_feedback_raw_{queue}`. Native results without an address are dropped.
   */
  async #sendReply(reply: Reply): Promise<void> {
    const { context, session, message, queue, kind } = this.#source;
    const properties = message.properties;
    const address: unknown = properties.replyTo || reply.replyTo;
    const correlationId = typeof properties.correlationId === "string" && properties.correlationId
      ? properties.correlationId
      : reply.messageId;
    if (typeof address === "string" && address !== "") {
      if (!isShortString(address)) {
        context.logger.warn("dropped a result: its reply_to is not a valid queue name", {
          messageId: reply.messageId,
          replyTo: address.slice(0, 300),
        });
        return;
      }
      await session.publish(address, reply.body, resultProperties(reply.messageId, correlationId));
      return;
    }
    if (kind === "native") {
      context.logger.debug("dropped a native result: the request has no reply_to", {
        messageId: reply.messageId,
      });
      return;
    }
    await session.publishToQueue(
      feedbackName(queue, "raw"),
      reply.body,
      resultProperties(reply.messageId, correlationId, context.settings.resultTtlMs),
      durableQueueOptions(context.settings),
    );
  }
}
