/**
 * One live AMQP connection and what prpc shares on it: the confirm channel that
 * every publish goes through, and queue declarations made once per connection.
 * A session ends with its connection; the next connection gets a new session.
 *
 * @module
 */

import type { Channel, ChannelModel, ConfirmChannel, GetMessage, Options } from "amqplib";
import { Buffer } from "node:buffer";
import { BrokerError } from "../../protocol/errors.ts";
import type { Logger } from "../../server/logger.ts";

/** The AMQP reply code of an error from amqplib, when it has one (404, 406, ...). */
export function amqpErrorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** The message of anything thrown. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A channel of a session that knows whether it is still open. When RabbitMQ
 * closes it with an error, `onFailure` (if given) hears why.
 */
export class SessionChannel {
  #open = true;
  #closing = false;
  #error: Error | undefined;

  /**
   * Watches a channel.
   *
   * @param channel The amqplib channel.
   * @param what What the channel is for, for messages.
   * @param onFailure Called when RabbitMQ closes the channel with an error.
   */
  constructor(
    readonly channel: Channel,
    what: string,
    onFailure: ((reason: string) => void) | undefined,
  ) {
    // amqplib emits "error" before "close" when RabbitMQ closes a channel with an error;
    // without a listener, that error would crash the process.
    channel.on("error", (err: Error) => (this.#error = err));
    channel.on("close", () => {
      this.#open = false;
      if (!this.#closing && this.#error !== undefined) {
        onFailure?.(`the channel for ${what} was closed: ${this.#error.message}`);
      }
    });
  }

  /** Whether the channel can still be used. */
  get open(): boolean {
    return this.#open;
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

/** One connection to RabbitMQ, from connect until it is lost or closed. */
export class AmqpSession {
  readonly #model: ChannelModel;
  readonly #publisher: SessionChannel;
  readonly #confirmTimeoutMs: number;
  readonly #logger: Logger;
  readonly #declared = new Map<string, Promise<void>>();
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
    this.#publisher = this.#watch(publisher, "publishing");
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
   * Closes the connection because something it needs failed (a channel closed
   * by RabbitMQ, a consumer cancelled), so that the whole topology is rebuilt
   * on a new connection.
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
    return this.#watch(await this.#model.createChannel(), what);
  }

  #watch(channel: Channel, what: string): SessionChannel {
    return new SessionChannel(channel, what, (reason) => this.rebuild(reason));
  }

  /**
   * Publishes a message to a queue through the default exchange and waits for
   * RabbitMQ's confirm.
   *
   * @param queue The queue's full name.
   * @param body The message body: JSON text, or the bytes of a received message.
   * @param options AMQP properties.
   * @throws {BrokerError} When RabbitMQ refuses the message, the connection is
   *   lost first, or the confirm does not come within the time limit.
   */
  publish(queue: string, body: string | Buffer, options: Options.Publish): Promise<void> {
    if (!this.#alive || !this.#publisher.open) {
      return Promise.reject(
        new BrokerError(`Cannot publish to ${queue}: the connection to RabbitMQ was lost`),
      );
    }
    const content = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    const channel = this.#publisher.channel as ConfirmChannel;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (error?: BrokerError) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (error === undefined) resolve();
        else reject(error);
      };
      const timer = setTimeout(
        () =>
          finish(
            new BrokerError(
              `Cannot publish to ${queue}: RabbitMQ did not confirm the message within ${this.#confirmTimeoutMs} ms`,
            ),
          ),
        this.#confirmTimeoutMs,
      );
      try {
        channel.sendToQueue(queue, content, options, (err: unknown) => {
          if (err === null || err === undefined) finish();
          else if (errorText(err).includes("nack")) {
            finish(new BrokerError(`Cannot publish to ${queue}: RabbitMQ refused the message`));
          } else {
            finish(
              new BrokerError(`Cannot publish to ${queue}: ${errorText(err)}`, { cause: err }),
            );
          }
        });
      } catch (err) {
        finish(new BrokerError(`Cannot publish to ${queue}: ${errorText(err)}`, { cause: err }));
      }
    });
  }

  /**
   * Declares a queue once per connection. When the queue exists with other
   * arguments (say, created by an operator with a policy of their own), it is
   * used as it is.
   *
   * @param name The queue's full name.
   * @param options How to declare it.
   * @throws {BrokerError} When the queue can be neither declared nor found.
   */
  declareQueue(name: string, options: Options.AssertQueue): Promise<void> {
    let declared = this.#declared.get(name);
    if (declared === undefined) {
      declared = this.#declare(name, options);
      this.#declared.set(name, declared);
      declared.catch(() => this.#declared.delete(name));
    }
    return declared;
  }

  async #declare(name: string, options: Options.AssertQueue): Promise<void> {
    try {
      await this.#adminOperation((channel) => channel.assertQueue(name, options));
      return;
    } catch (err) {
      if (amqpErrorCode(err) !== 406) {
        throw new BrokerError(`Cannot declare queue ${name}: ${errorText(err)}`, { cause: err });
      }
      this.#logger.info("a queue exists with other arguments; using it as it is", {
        queue: name,
        reason: errorText(err),
      });
    }
    try {
      await this.#adminOperation((channel) => channel.checkQueue(name));
    } catch (err) {
      throw new BrokerError(`Cannot use queue ${name}: ${errorText(err)}`, { cause: err });
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
      throw new BrokerError(`Cannot check queue ${name}: ${errorText(err)}`, { cause: err });
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
    const reader = new SessionChannel(
      await this.#model.createChannel(),
      `reading ${name}`,
      undefined,
    );
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
        this.#admin = new SessionChannel(
          await this.#model.createChannel(),
          "declarations",
          undefined,
        );
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
