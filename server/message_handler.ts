/**
 * What a server does with one delivery: read the request, refuse what is
 * malformed, oversize, redelivered after it ran or poison, bind the arguments,
 * run the function in its worker, and settle the delivery with the result.
 *
 * Everything it settles goes through a {@linkcode HeldMessage}, and a throw
 * anywhere on the way is caught by {@linkcode MessageHandler.settleAfterFailure},
 * so no delivery is left unsettled (see `settlement.ts`).
 *
 * @module
 */

import type { Broker, Reply } from "../brokers/types.ts";
import { sizeOverLimit } from "../protocol/codec.ts";
import {
  forbiddenKeyword,
  type ParsedRequest,
  parseRequest,
  type RequestMessage,
} from "../protocol/envelope.ts";
import {
  ArgumentError,
  CallTimeoutError,
  PayloadTooLargeError,
  ProtocolError,
  type PrpcError,
  UnknownFunctionError,
} from "../protocol/errors.ts";
import { type Returned, startAsync } from "../workers/async.ts";
import type { WorkerPool } from "../workers/pool.ts";
import type { Logger } from "../protocol/logger.ts";
import { runBuiltin } from "./builtins.ts";
import { bindArguments } from "./parameters.ts";
import type { RegisteredFunction, Registry } from "./registry.ts";
import type { ReplyBuilder } from "./replies.ts";
import { type HeldMessage, settleAfterFailure } from "./settlement.ts";

/** What a {@linkcode MessageHandler} works with: one serving server's parts and limits. */
export interface MessageHandlerParts {
  /** The queue name. */
  readonly queue: string;
  /** The registered functions. */
  readonly registry: Registry;
  /** Workers of `thread` and `process` functions. */
  readonly pool: WorkerPool;
  /** Where stored results of redelivered messages are read. */
  readonly broker: Broker;
  /** Builds result bodies within the server's limits. */
  readonly replies: ReplyBuilder;
  /** Deliveries of one message before it is poison. */
  readonly maxDeliveries: number;
  /** Time limit of one call, or `null`. */
  readonly workerTimeoutMs: number | null;
  /** Where refusals are reported. */
  readonly logger: Logger;
}

/** Handles the deliveries of one serving server; see the module docs. */
export class MessageHandler {
  readonly #parts: MessageHandlerParts;
  readonly #queue: string;
  readonly #replies: ReplyBuilder;
  readonly #maxMessageBytes: number;
  readonly #maxDepth: number;
  readonly #logger: Logger;

  /**
   * A handler for one serving server.
   *
   * @param parts The server's parts and limits.
   */
  constructor(parts: MessageHandlerParts) {
    this.#parts = parts;
    this.#queue = parts.queue;
    this.#replies = parts.replies;
    this.#maxMessageBytes = parts.replies.limits.maxMessageBytes;
    this.#maxDepth = parts.replies.limits.maxDepth;
    this.#logger = parts.logger;
  }

  /**
   * Runs a delivery and settles it. The first delivery of a well-formed request
   * is answered without waiting for a promise when its function returns a value
   * at once; everything else takes {@linkcode #handleFully}.
   *
   * @param held The delivery.
   * @returns Settles once the delivery is settled; rejects when handling failed
   *   (then {@linkcode settleAfterFailure} ends it).
   */
  handle(held: HeldMessage): Promise<void> {
    const received = Date.now();
    const delivery = held.delivery;
    const parsed = parseRequest(delivery.body, this.#maxDepth);
    held.parsed = parsed;
    if (
      !parsed.ok || delivery.attempt > 1 ||
      sizeOverLimit(delivery.body, this.#maxMessageBytes) !== null
    ) {
      return this.#handleFully(held, received, parsed);
    }
    const reply = this.#execute(held, parsed.request, received);
    if (reply instanceof Promise) return reply.then((ready) => this.#answer(held, ready));
    return this.#answer(held, reply);
  }

  /**
   * Ends a delivery whose handling threw before it was settled: an error
   * result, else a dead letter (see `settlement.ts`). Never rejects.
   *
   * @param held The delivery.
   * @param failure What was thrown.
   */
  settleAfterFailure(held: HeldMessage, failure: unknown): Promise<void> {
    return settleAfterFailure(held, failure, {
      errorReply: (message, error) => this.#errorReplyAfterFailure(message, error),
      logger: this.#logger,
    });
  }

  #errorReplyAfterFailure(held: HeldMessage, error: PrpcError): Reply | null {
    const parsed = held.parsed ?? parseRequest(held.delivery.body, this.#maxDepth);
    const request = parsed.ok ? parsed.request : refusedRequest(parsed);
    if (request === null) return null;
    return this.#replies.error(held.delivery.kind, request, Date.now(), error);
  }

  /** Settles a delivery with its reply, unless it was handed back meanwhile. */
  #answer(held: HeldMessage, reply: Reply): Promise<void> {
    if (held.handedBack) return Promise.resolve();
    return held.complete(reply);
  }

  /** Handles every case: malformed, oversize, redelivered (deduplicated) and poison messages. */
  async #handleFully(held: HeldMessage, received: number, parsed: ParsedRequest): Promise<void> {
    const delivery = held.delivery;
    if (!parsed.ok) {
      const request = refusedRequest(parsed);
      if (request === null) {
        this.#logger.warn("set aside a message without a readable message_id", {
          queue: this.#queue,
          kind: delivery.kind,
          reason: parsed.reason,
        });
        await held.deadLetter(parsed.reason);
        return;
      }
      this.#logger.warn("refused a malformed message", {
        messageId: request.message_id,
        reason: parsed.reason,
      });
      const error = new ProtocolError(parsed.reason, { messageId: request.message_id });
      await held.complete(this.#replies.error(delivery.kind, request, received, error));
      return;
    }
    const request = parsed.request;
    const oversize = sizeOverLimit(delivery.body, this.#maxMessageBytes);
    if (oversize !== null) {
      const error = new PayloadTooLargeError(
        `request of ${oversize} bytes exceeds the limit of ${this.#maxMessageBytes} bytes`,
        { size: oversize, limit: this.#maxMessageBytes },
      );
      await held.complete(this.#replies.error(delivery.kind, request, received, error));
      return;
    }
    if (delivery.attempt > 1) {
      let stored: string | null;
      try {
        stored = await this.#parts.broker.readResult(
          this.#queue,
          delivery.kind,
          request.message_id,
        );
      } catch (err) {
        await this.#storedResultUnreadable(held, request, received, err);
        return;
      }
      if (held.handedBack) return;
      if (stored !== null) {
        // Executed before, but the acknowledgement was lost: answer again without running it.
        this.#logger.debug("answered a redelivered message from its stored result", {
          messageId: request.message_id,
        });
        await held.complete({
          messageId: request.message_id,
          body: stored,
          replyTo: request.reply_to,
        });
        return;
      }
    }
    if (delivery.attempt > this.#parts.maxDeliveries) {
      const reason =
        `delivered ${delivery.attempt} times without completing (maxDeliveries ${this.#parts.maxDeliveries})`;
      this.#logger.warn("set aside a poison message", { messageId: request.message_id, reason });
      const error = new ProtocolError(`the message was set aside: ${reason}`);
      await held.deadLetter(reason, this.#replies.error(delivery.kind, request, received, error));
      return;
    }
    await this.#answer(held, await this.#execute(held, request, received));
  }

  /** A redelivered message whose stored result cannot be read: hand it back, or set it aside. */
  async #storedResultUnreadable(
    held: HeldMessage,
    request: RequestMessage,
    received: number,
    err: unknown,
  ): Promise<void> {
    if (held.handedBack) return; // the stopping server handed it back meanwhile
    const why = err instanceof Error ? err.message : String(err);
    const attempt = held.delivery.attempt;
    if (attempt > this.#parts.maxDeliveries) {
      // Handing it back again would loop for as long as the read fails.
      const reason = `delivered ${attempt} times, and its stored result cannot be read: ${why}`;
      this.#logger.warn("set aside a message whose stored result cannot be read", {
        messageId: request.message_id,
        reason,
      });
      const error = new ProtocolError(`the message was set aside: ${reason}`);
      await held.deadLetter(
        reason,
        this.#replies.error(held.delivery.kind, request, received, error),
      );
      return;
    }
    // Running it without knowing could run it twice: let the broker deliver it again.
    this.#logger.warn("cannot read the stored result of a redelivered message; handing it back", {
      messageId: request.message_id,
      error: why,
    });
    await held.release();
  }

  /** Runs the request's function; its reply comes at once when the function returned a value. */
  #execute(held: HeldMessage, request: RequestMessage, received: number): Reply | Promise<Reply> {
    const kind = held.delivery.kind;
    const ids = { funcName: request.func_name, messageId: request.message_id };
    let outcome: Returned | Promise<unknown>;
    try {
      if (request.deadline_ms !== undefined && request.deadline_ms <= Date.now()) {
        throw new CallTimeoutError(
          "the caller's deadline passed before the call could start; it was not run",
          ids,
        );
      }
      const forbidden = forbiddenKeyword(request.func_kwargs);
      if (forbidden !== undefined) {
        throw new ArgumentError(
          `${request.func_name}() keyword argument ${JSON.stringify(forbidden)} is not allowed`,
          ids,
        );
      }
      const registered = this.#parts.registry.get(request.func_name);
      if (registered === undefined) {
        const { func_name, func_args, func_kwargs } = request;
        const builtin = runBuiltin(func_name, this.#parts.registry, func_args, func_kwargs);
        if (builtin !== undefined) {
          return this.#replies.success(kind, request, received, builtin.value);
        }
        throw new UnknownFunctionError(
          `no function ${JSON.stringify(request.func_name)} is registered on queue ${
            JSON.stringify(this.#queue)
          }`,
          ids,
        );
      }
      let args: unknown[];
      try {
        args = bindArguments(registered.parameters, request.func_args, request.func_kwargs);
      } catch (err) {
        if (err instanceof ArgumentError) {
          throw new ArgumentError(`${request.func_name}() ${err.message}`, ids);
        }
        throw err;
      }
      outcome = this.#run(registered, args, request, held);
    } catch (err) {
      return this.#replies.error(kind, request, received, err);
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (value) => this.#replies.success(kind, request, received, value),
        (err) => this.#replies.error(kind, request, received, err),
      );
    }
    return this.#replies.success(kind, request, received, outcome.value);
  }

  /** Runs a function in its worker; an `async` function's value comes at once when it returned one. */
  #run(
    registered: RegisteredFunction,
    args: unknown[],
    request: RequestMessage,
    held: HeldMessage,
  ): Returned | Promise<unknown> {
    const deadline = request.deadline_ms ?? null;
    const attempt = held.delivery.attempt;
    if (registered.target === undefined) {
      return startAsync({
        fn: registered.fn,
        args,
        funcName: request.func_name,
        messageId: request.message_id,
        attempt,
        deadline: deadline === null ? null : new Date(deadline),
        controller: held.controller,
        timeoutMs: this.#parts.workerTimeoutMs,
      });
    }
    return this.#parts.pool.run(registered.target.spec, {
      exportName: registered.target.exportName,
      funcName: request.func_name,
      args,
      messageId: request.message_id,
      attempt,
      deadline,
    }, { timeoutMs: this.#parts.workerTimeoutMs, signal: held.controller.signal });
  }
}

/** What of a refused request an error result can be built from, or `null` without a `message_id`. */
function refusedRequest(parsed: ParsedRequest & { ok: false }): RequestMessage | null {
  if (parsed.messageId === null) return null;
  return {
    func_name: "",
    func_args: [],
    func_kwargs: {},
    ...parsed.partial,
    message_id: parsed.messageId,
  };
}
