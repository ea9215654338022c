/**
 * One live AMQP connection and what prpc shares on it: the confirm channel that
 * every publish goes through, and queue declarations made once per connection.
 * A session ends with its connection; the next connection gets a new session.
 *
 * @module
 */

import type { Channel, ChannelModel, ConfirmChannel, GetMessage, Message, Options } from "amqplib";
import { Buffer } from "node:buffer";
import { BrokerError, PayloadTooLargeError } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/logger.ts";
import { LostError, oversizeLimit, RefusedError, ReturnedError } from "./failures.ts";

/** The AMQP reply code of an error from amqplib, when it has one (404, 406, ...). */
export function amqpErrorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** The message of anything thrown. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What a {@linkcode SessionChannel} reports about its end. */
interface ChannelEvents {
  /** RabbitMQ closed the channel with an error. */
  onFailure?: ((reason: string) => void) | undefined;
  /** The channel closed without an error and without `close()`: its connection is going. */
  onVanish: () => void;
}

/** A channel of a session that knows whether it is still open, and why it closed. */
export class SessionChannel {
  #open = true;
  #closing = false;
  #failure: Error | undefined;

  /**
   * Watches a channel.
   *
   * @param channel The amqplib channel.
   * @param what What the channel is for, for messages.
   * @param events Who hears how the channel ended.
   */
  constructor(readonly channel: Channel, what: string, events: ChannelEvents) {
    // amqplib emits "error" before "close" when RabbitMQ closes a channel with an error;
    // without a listener, that error would crash the process.
    channel.on("error", (err: Error) => (this.#failure = err));
    channel.on("close", () => {
      this.#open = false;
      if (this.#closing) return;
      if (this.#failure === undefined) events.onVanish();
      else events.onFailure?.(`the channel for ${what} was closed: ${this.#failure.message}`);
    });
  }

  /** Whether the channel can still be used. */
  get open(): boolean {
    return this.#open;
  }

  /** The error RabbitMQ closed the channel with, if it did. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Closes the channel; unacknowledged messages on it go back to their queues. */
  async close(): Promise<void> {
    if (!this.#open) return;
    this.#closing = true;
    try {
      await this.channel.close();
    } catch {
      // Already closing with its connection: nothing left to release.
    }
  }
}

/** Returned messages are matched to their publish; this many at most wait for it. */
const RETURNED_KEPT = 256;

/** One connection to RabbitMQ, from connect until it is lost or closed. */
export class AmqpSession {
  readonly #model: ChannelModel;
  readonly #confirmTimeoutMs: number;
  readonly #logger: Logger;
  readonly #declared = new Map<string, Promise<void>>();
  /** Messages RabbitMQ returned as unroutable, until their publish takes them. */
  readonly #returned: Message[] = [];
  #publisher: SessionChannel;
  #publisherOpening: Promise<SessionChannel> | undefined;
  #admin: SessionChannel | undefined;
  #adminTail: Promise<unknown> = Promise.resolve();
  #alive = true;

  private constructor(
    model: ChannelModel,
    publisher: ConfirmChannel,
    confirmTimeoutMs: number,
    logger: Logger,
  ) {
    this.#model = model;
    this.#confirmTimeoutMs = confirmTimeoutMs;
    this.#logger = logger;
    this.#publisher = this.#watchPublisher(publisher);
  }

  /**
   * Opens the session's publishing channel on a fresh connection.
   *
   * @param model The connection.
   * @param confirmTimeoutMs How long a publish waits for RabbitMQ's confirm.
   * @param logger Where channel failures are reported.
   * @returns The session.
   */
  static async open(
    model: ChannelModel,
    confirmTimeoutMs: number,
    logger: Logger,
  ): Promise<AmqpSession> {
    const publisher = await model.createConfirmChannel();
    return new AmqpSession(model, publisher, confirmTimeoutMs, logger);
  }

  /** Whether the connection is still up. */
  get alive(): boolean {
    return this.#alive;
  }

  /** Marks the session as over: its connection is lost or being closed. */
  end(): void {
    this.#alive = false;
  }

  /**
   * Closes the connection because something it needs failed (a consumer's
   * channel closed by RabbitMQ, a consumer cancelled), so that the whole
   * topology is rebuilt on a new connection.
   *
   * @param reason What failed, for the log.
   */
  rebuild(reason: string): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#logger.warn("rebuilding the RabbitMQ connection", { reason });
    this.#model.close().catch(() => {});
  }

  /**
   * Opens a channel whose failure rebuilds the connection.
   *
   * @param what What the channel is for, for messages.
   * @returns The channel.
   */
  async openChannel(what: string): Promise<SessionChannel> {
    return this.#watch(await this.#model.createChannel(), what, (reason) => this.rebuild(reason));
  }

  #watch(
    channel: Channel,
    what: string,
    onFailure: ((reason: string) => void) | undefined,
  ): SessionChannel {
    return new SessionChannel(channel, what, { onFailure, onVanish: () => this.end() });
  }

  /**
   * The publishing channel. RabbitMQ closes it when a message breaks one of
   * its rules (a message above `max_message_size`, say): that fails the
   * message, not the connection, so only this channel is opened again.
   */
  #watchPublisher(channel: ConfirmChannel): SessionChannel {
    channel.on("return", (message: Message) => {
      this.#returned.push(message);
      if (this.#returned.length > RETURNED_KEPT) this.#returned.shift();
    });
    return this.#watch(
      channel,
      "publishing",
      (reason) =>
        this.#logger.warn("RabbitMQ closed the publishing channel; opening another", { reason }),
    );
  }

  #openPublisher(): Promise<SessionChannel> {
    if (this.#publisher.open) return Promise.resolve(this.#publisher);
    this.#publisherOpening ??= this.#model.createConfirmChannel()
      .then((channel) => (this.#publisher = this.#watchPublisher(channel)))
      .finally(() => (this.#publisherOpening = undefined));
    return this.#publisherOpening;
  }

  /**
   * Publishes a message to a queue through the default exchange and waits for
   * RabbitMQ's confirm. When RabbitMQ closes the publishing channel over
   * another message that was in flight with this one, this one is sent again
   * on a new channel.
   *
   * @param queue The queue's full name.
   * @param body The message body: JSON text, or the bytes of a received message.
   * @param options AMQP properties; with `mandatory`, a message no queue takes
   *   fails with {@linkcode ReturnedError}.
   * @throws {LostError} When the connection is lost before the confirm.
   * @throws {RefusedError} When RabbitMQ nacks the message, returns it, or closes
   *   the channel over it (or over a message it cannot tell apart from it).
   * @throws {PayloadTooLargeError} When the message is larger than RabbitMQ's `max_message_size`.
   * @throws {BrokerError} When the confirm does not come within the time limit.
   */
  async publish(queue: string, body: string | Buffer, options: Options.Publish): Promise<void> {
    const content = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    const giveUpAt = Date.now() + this.#confirmTimeoutMs;
    while (true) {
      if (!this.#alive) {
        throw new LostError(`Cannot publish to ${queue}: the connection to RabbitMQ was lost`);
      }
      let publisher: SessionChannel;
      try {
        publisher = await this.#openPublisher();
      } catch (err) {
        throw new LostError(`Cannot publish to ${queue}: ${errorText(err)}`, { cause: err });
      }
      const failure = await this.#publishOnce(publisher, queue, content, options, giveUpAt);
      if (failure === undefined) return;
      if (!(failure instanceof ChannelFailure)) throw failure;
      const limit = oversizeLimit(failure.reason);
      if (limit !== undefined && content.byteLength > limit) {
        throw new PayloadTooLargeError(
          `Cannot publish ${content.byteLength} bytes to ${queue}: RabbitMQ's max_message_size is ${limit} bytes`,
          { size: content.byteLength, limit },
        );
      }
      if (limit === undefined) {
        // RabbitMQ does not say which message broke the rule: every one in flight fails.
        throw new RefusedError(`Cannot publish to ${queue}: ${failure.reason}`);
      }
      if (Date.now() >= giveUpAt) {
        throw new BrokerError(
          `Cannot publish to ${queue}: RabbitMQ did not confirm the message within ${this.#confirmTimeoutMs} ms`,
        );
      }
      // Another message was too large; this one was only in flight with it: send it again.
    }
  }

  /** One attempt: `undefined` once confirmed, else why not. */
  #publishOnce(
    publisher: SessionChannel,
    queue: string,
    content: Buffer,
    options: Options.Publish,
    giveUpAt: number,
  ): Promise<Error | undefined> {
    const channel = publisher.channel as ConfirmChannel;
    return new Promise((resolve) => {
      let done = false;
      const finish = (failure?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(failure);
      };
      const timer = setTimeout(
        () =>
          finish(
            new BrokerError(
              `Cannot publish to ${queue}: RabbitMQ did not confirm the message within ${this.#confirmTimeoutMs} ms`,
            ),
          ),
        Math.max(0, giveUpAt - Date.now()),
      );
      const closed = (err: unknown) => {
        const failure = publisher.failure;
        if (failure !== undefined) finish(new ChannelFailure(failure.message));
        else {
          finish(new LostError(`Cannot publish to ${queue}: ${errorText(err)}`, { cause: err }));
        }
      };
      try {
        channel.sendToQueue(queue, content, options, (err: unknown) => {
          if (err === null || err === undefined) {
            finish(
              options.mandatory && this.#takeReturned(queue, content)
                ? new ReturnedError(`Cannot publish to ${queue}: no queue of that name exists`)
                : undefined,
            );
          } else if (errorText(err).includes("nack")) {
            finish(new RefusedError(`Cannot publish to ${queue}: RabbitMQ refused the message`));
          } else {
            closed(err);
          }
        });
      } catch (err) {
        closed(err); // the channel was closing already
      }
    });
  }

  /** Whether RabbitMQ returned this message (it sends the return before the confirm). */
  #takeReturned(queue: string, content: Buffer): boolean {
    const index = this.#returned.findIndex((message) =>
      message.fields.routingKey === queue && message.content.equals(content)
    );
    if (index === -1) return false;
    this.#returned.splice(index, 1);
    return true;
  }

  /**
   * Publishes to one of prpc's own queues, declared once per connection. The
   * message is `mandatory`: when the queue is gone (deleted, or expired through
   * `x-expires` while the declaration was remembered), it is declared again and
   * the message sent once more.
   *
   * @param queue The queue's full name.
   * @param body The message body.
   * @param options AMQP properties.
   * @param declaration How the queue is declared.
   * @throws {ReturnedError} When the queue is gone again at once.
   * @throws {LostError | RefusedError | PayloadTooLargeError | BrokerError} As {@linkcode publish}.
   */
  async publishToQueue(
    queue: string,
    body: string | Buffer,
    options: Options.Publish,
    declaration: Options.AssertQueue,
  ): Promise<void> {
    const mandatory = { ...options, mandatory: true };
    await this.declareQueue(queue, declaration);
    try {
      await this.publish(queue, body, mandatory);
    } catch (err) {
      if (!(err instanceof ReturnedError)) throw err;
      this.#logger.info("a queue was gone; declaring it again", { queue });
      this.#declared.delete(queue);
      await this.declareQueue(queue, declaration);
      await this.publish(queue, body, mandatory);
    }
  }

  /**
   * Declares a queue once per connection. When the queue exists with other
   * arguments (say, created by an operator with a policy of their own), it is
   * used as it is.
   *
   * @param name The queue's full name.
   * @param options How to declare it.
   * @throws {RefusedError} When RabbitMQ refuses both the declaration and the check.
   * @throws {LostError} When the connection is lost meanwhile.
   */
  declareQueue(name: string, options: Options.AssertQueue): Promise<void> {
    let declared = this.#declared.get(name);
    if (declared === undefined) {
      declared = this.#declare(name, options);
      this.#declared.set(name, declared);
      declared.catch(() => {
        if (this.#declared.get(name) === declared) this.#declared.delete(name);
      });
    }
    return declared;
  }

  async #declare(name: string, options: Options.AssertQueue): Promise<void> {
    try {
      await this.#adminOperation((channel) => channel.assertQueue(name, options));
      return;
    } catch (err) {
      if (amqpErrorCode(err) !== 406) throw operationError(`Cannot declare queue ${name}`, err);
      this.#logger.info("a queue exists with other arguments; using it as it is", {
        queue: name,
        reason: errorText(err),
      });
    }
    try {
      await this.#adminOperation((channel) => channel.checkQueue(name));
    } catch (err) {
      throw operationError(`Cannot use queue ${name}`, err);
    }
  }

  /**
   * Whether a queue is a classic queue, found by declaring it again with
   * `x-queue-type: classic` (RabbitMQ refuses that for any other type). A
   * queue declared with arguments other than `options` counts as not classic.
   *
   * @param name The queue's full name.
   * @param options How prpc declares it.
   * @returns `true` for a classic queue with prpc's arguments.
   * @throws {LostError} When the connection is lost meanwhile.
   */
  async isClassicQueue(name: string, options: Options.AssertQueue): Promise<boolean> {
    const classic = { ...options, arguments: { ...options.arguments, "x-queue-type": "classic" } };
    try {
      await this.#adminOperation((channel) => channel.assertQueue(name, classic));
      return true;
    } catch (err) {
      if (amqpErrorCode(err) === 406) return false;
      throw operationError(`Cannot check queue ${name}`, err);
    }
  }

  /**
   * Whether a queue exists, without creating it.
   *
   * @param name The queue's full name.
   * @returns `false` when RabbitMQ has no such queue.
   * @throws {BrokerError} When the check fails for another reason.
   */
  async queueExists(name: string): Promise<boolean> {
    try {
      await this.#adminOperation((channel) => channel.checkQueue(name));
      return true;
    } catch (err) {
      if (amqpErrorCode(err) === 404) return false;
      throw operationError(`Cannot check queue ${name}`, err);
    }
  }

  /**
   * Reads up to `limit` messages of a queue without taking them: they are read
   * on a channel of their own, which is then closed, and that puts them back in
   * their places.
   *
   * @param name The queue's full name.
   * @param limit The most messages to read, from the head of the queue.
   * @returns The messages.
   * @throws {BrokerError} When the queue cannot be read.
   */
  async peek(name: string, limit: number): Promise<GetMessage[]> {
    const reader = this.#watch(await this.#model.createChannel(), `reading ${name}`, undefined);
    const messages: GetMessage[] = [];
    try {
      while (messages.length < limit) {
        const message = await reader.channel.get(name, { noAck: false });
        if (message === false) break;
        messages.push(message);
      }
    } catch (err) {
      throw new BrokerError(`Cannot read queue ${name}: ${errorText(err)}`, { cause: err });
    } finally {
      await reader.close();
    }
    return messages;
  }

  /**
   * Runs declarations one at a time on a channel of their own: a refused
   * declaration closes its channel, which must not take other work with it.
   */
  #adminOperation<T>(operation: (channel: Channel) => Promise<T>): Promise<T> {
    const run = this.#adminTail.then(async () => {
      if (this.#admin === undefined || !this.#admin.open) {
        this.#admin = this.#watch(await this.#model.createChannel(), "declarations", undefined);
      }
      const admin = this.#admin;
      try {
        return await operation(admin.channel);
      } catch (err) {
        // RabbitMQ closes the channel after a refused declaration; start afresh next time.
        this.#admin = undefined;
        await admin.close();
        throw err;
      }
    });
    this.#adminTail = run.catch(() => {});
    return run;
  }
}

/** RabbitMQ closed the publishing channel while a message was unconfirmed. */
class ChannelFailure extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** A refused operation (RabbitMQ answered with a reply code) or a lost connection. */
function operationError(what: string, err: unknown): BrokerError {
  const message = `${what}: ${errorText(err)}`;
  return amqpErrorCode(err) === undefined
    ? new LostError(message, { cause: err })
    : new RefusedError(message, { cause: err });
}
