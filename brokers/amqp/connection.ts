/**
 * A connection to RabbitMQ that comes back by itself. amqplib's opt-in
 * recovery reopens the TCP connection (exponential backoff with jitter); this
 * wrapper rebuilds prpc's side on every new connection: the publishing
 * channel, then every registered {@linkcode LinkPart} (a server's consumer, a
 * client's reply queue) re-declares its queues and consumes again. Operations
 * made while the connection is down wait for it, up to `operationTimeoutMs`.
 *
 * @module
 */

import { type ChannelModel, connect, type RecoveringChannelModel } from "amqplib";
import { BrokerError } from "../../protocol/errors.ts";
import type { Logger } from "../../protocol/logger.ts";
import { AmqpSession, errorText } from "./session.ts";
import type { AmqpSettings } from "./settings.ts";

/**
 * Something that lives on the connection and must be set up again on each new
 * one. Setting up twice on the same session does the work once.
 */
export abstract class LinkPart {
  #current: { session: AmqpSession; done: Promise<void> } | undefined;

  /**
   * Sets this part up on a session, once per session.
   *
   * @param session The live session.
   */
  restore(session: AmqpSession): Promise<void> {
    if (this.#current?.session === session) return this.#current.done;
    const done = this.attach(session);
    this.#current = { session, done };
    return done;
  }

  /** Creates the part's channels, declarations and consumers on a new session. */
  protected abstract attach(session: AmqpSession): Promise<void>;
}

/** What the parts of one broker connection share. */
export interface LinkContext {
  /** The connection. */
  readonly link: AmqpLink;
  /** The module's settings. */
  readonly settings: AmqpSettings;
  /** Where to report what happens. */
  readonly logger: Logger;
}

interface Waiter {
  resolve(session: AmqpSession): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The reconnecting connection behind one broker object. */
export class AmqpLink {
  readonly #settings: AmqpSettings;
  readonly #logger: Logger;
  readonly #parts = new Set<LinkPart>();
  readonly #waiters = new Set<Waiter>();
  #model: RecoveringChannelModel | undefined;
  #session: AmqpSession | undefined;
  #connectedOnce = false;
  #lost = false;
  #lastError: string | undefined;
  #closed = false;

  private constructor(settings: AmqpSettings, logger: Logger) {
    this.#settings = settings;
    this.#logger = logger;
  }

  /**
   * Connects. The first connection is not retried: a wrong URL or a broker
   * that is down fails here, at once.
   *
   * @param settings Where to connect and the reconnect timing.
   * @param logger Where reconnects are reported.
   * @returns The connected link.
   * @throws {BrokerError} When RabbitMQ cannot be reached or refuses the login.
   */
  static async open(settings: AmqpSettings, logger: Logger): Promise<AmqpLink> {
    const link = new AmqpLink(settings, logger);
    const model = await connect(settings.connect, {
      noDelay: true, // without it, Nagle's algorithm and delayed ACKs stall each call by ~40 ms
      timeout: settings.connectTimeoutMs,
      clientProperties: { connection_name: settings.connectionName },
      recovery: {
        initialDelay: settings.reconnectMinMs,
        maxDelay: settings.reconnectMaxMs,
        factor: 2,
        jitter: 0.5,
        initialMaxRetries: 0,
        waitForConnect: false,
        setup: (connection: ChannelModel) => link.#setup(connection),
      },
    });
    link.#model = model;
    link.#listen(model);
    try {
      await model.waitForConnect();
    } catch (err) {
      link.#closed = true;
      await model.close().catch(() => {});
      throw new BrokerError(
        `Cannot connect to RabbitMQ at ${settings.displayUrl}: ${errorText(err)}`,
        { cause: err },
      );
    }
    return link;
  }

  /** Runs on every new connection, before it counts as connected. */
  async #setup(connection: ChannelModel): Promise<void> {
    // Until amqplib binds its own listeners after setup, an "error" event would be unhandled.
    connection.on("error", (err: Error) => (this.#lastError = err.message));
    const session = await AmqpSession.open(
      connection,
      this.#settings.operationTimeoutMs,
      this.#logger,
    );
    try {
      for (const part of [...this.#parts]) await part.restore(session);
    } catch (err) {
      // amqplib closes this connection and tries again; nothing may use its session meanwhile.
      session.end();
      throw err;
    }
    this.#session = session;
  }

  #listen(model: RecoveringChannelModel): void {
    const name = this.#settings.connectionName;
    model.on("connect", () => {
      const session = this.#session;
      if (session === undefined) return;
      if (this.#lost) this.#logger.info("reconnected to RabbitMQ", { connection: name });
      this.#lost = false;
      this.#connectedOnce = true;
      for (const waiter of this.#waiters) {
        clearTimeout(waiter.timer);
        waiter.resolve(session);
      }
      this.#waiters.clear();
    });
    model.on("disconnect", (err: Error) => {
      this.#session?.end();
      this.#session = undefined;
      this.#lost = true;
      this.#lastError = err.message;
      if (!this.#closed) {
        this.#logger.warn("lost the connection to RabbitMQ; reconnecting", {
          connection: name,
          error: err.message,
        });
      }
    });
    model.on("connect-failed", (err: Error) => {
      this.#lastError = err.message;
      if (this.#connectedOnce && !this.#closed) {
        this.#logger.warn("cannot reconnect to RabbitMQ yet", {
          connection: name,
          error: err.message,
        });
      }
    });
    model.on("reconnect-scheduled", (info: { attempt: number; delay: number }) => {
      if (this.#connectedOnce) {
        this.#logger.debug("reconnecting to RabbitMQ", {
          connection: name,
          attempt: info.attempt,
          delayMs: info.delay,
        });
      }
    });
    model.on("error", (err: Error) => (this.#lastError = err.message));
    model.on(
      "blocked",
      (reason: string) =>
        this.#logger.warn("RabbitMQ blocks publishing on this connection", {
          connection: name,
          reason,
        }),
    );
    model.on(
      "unblocked",
      () => this.#logger.info("RabbitMQ unblocked publishing", { connection: name }),
    );
  }

  /**
   * The live session; while reconnecting, waits for the next one.
   *
   * @returns The session.
   * @throws {BrokerError} When the link is closed, or no connection comes back
   *   within `operationTimeoutMs`.
   */
  session(): Promise<AmqpSession> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const session = this.#session;
    if (session?.alive) return Promise.resolve(session);
    const timeoutMs = this.#settings.operationTimeoutMs;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(
            new BrokerError(
              `Cannot reach RabbitMQ at ${this.#settings.displayUrl} within ${timeoutMs} ms: ${
                this.#lastError ?? "reconnecting"
              }`,
            ),
          );
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  /**
   * Sets a part up now and again after every reconnect.
   *
   * @param part The part.
   * @throws {BrokerError} When the first set-up fails; the part is then not kept.
   */
  async register(part: LinkPart): Promise<void> {
    this.#parts.add(part);
    try {
      await part.restore(await this.session());
    } catch (err) {
      this.#parts.delete(part);
      throw err instanceof BrokerError
        ? err
        : new BrokerError(`Cannot set up on RabbitMQ: ${errorText(err)}`, { cause: err });
    }
  }

  /**
   * Stops setting a part up after reconnects.
   *
   * @param part The part.
   */
  unregister(part: LinkPart): void {
    this.#parts.delete(part);
  }

  /** Closes the connection for good; channels close and unacknowledged messages go back. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#parts.clear();
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(
        new BrokerError("Cannot wait for RabbitMQ any more: the connection was closed meanwhile"),
      );
    }
    this.#waiters.clear();
    this.#session?.end();
    this.#session = undefined;
    await this.#model?.close();
  }

  #closedError(): BrokerError {
    return new BrokerError("Cannot use an AMQP broker connection after close()");
  }
}
