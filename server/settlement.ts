/**
 * The server's guarantee that every delivery is settled exactly once, whatever
 * throws between taking it and settling it.
 *
 * Every delivery the broker hands over becomes a {@linkcode HeldMessage}: the
 * only way the server settles it, and only once. When handling fails before a
 * settle call was made (a bug, a value no code path expected, a stack that ran
 * out), {@linkcode settleAfterFailure} ends it down a ladder:
 *
 * 1. an error result, when a `message_id` was readable and the result can be
 *    encoded (the caller learns what happened at once);
 * 2. else a dead letter with the reason (nobody could be answered);
 * 3. a settle call that fails (the broker went away) leaves the message with
 *    the broker, which delivers it again: that is the contract of
 *    {@linkcode Delivery} that every broker module keeps.
 *
 * Either way the delivery's place is given back, so no failure costs the
 * server a worker slot.
 *
 * @module
 */

import type { Delivery, Reply } from "../brokers/types.ts";
import type { ParsedRequest } from "../protocol/envelope.ts";
import { describeThrown, ProtocolError, PrpcError } from "../protocol/errors.ts";
import type { Logger } from "../protocol/logger.ts";

/** A second settle call, refused: a bug in the server, since the first one stands. */
class SettledTwiceError extends PrpcError {
  constructor() {
    super("Cannot settle a message that is settled already");
  }
}

/** A delivery the server holds until it settles it; see the module docs. */
export class HeldMessage {
  /** Aborted when the server stops and hands the message back. */
  readonly controller: AbortController = new AbortController();
  /** Handed back by a stopping server: settled already, whatever its call does later. */
  handedBack = false;
  /** Settles when the message is handled, whatever the outcome. */
  done: Promise<void> | undefined;
  /** The request as read, once read: an error result after a failure answers it. */
  parsed: ParsedRequest | undefined;
  #settling = false;

  /**
   * Holds a delivery.
   *
   * @param delivery What the broker handed over.
   */
  constructor(readonly delivery: Delivery) {}

  /** Whether a settle call was made (its outcome may still be on its way). */
  get settling(): boolean {
    return this.#settling;
  }

  /**
   * Stores and sends the result, and acknowledges the request.
   *
   * @param reply The result.
   * @returns Resolves once the broker has done it.
   */
  complete(reply: Reply): Promise<void> {
    return this.#settle(() => this.delivery.complete(reply));
  }

  /**
   * Sets the request aside on the dead-letter queue, with an optional error result.
   *
   * @param reason Why.
   * @param reply The error result for the caller, if one can be sent.
   * @returns Resolves once the broker has done it.
   */
  deadLetter(reason: string, reply?: Reply): Promise<void> {
    return this.#settle(() => this.delivery.deadLetter(reason, reply));
  }

  /**
   * Hands the request back to the broker for any server to take again.
   *
   * @returns Resolves once the broker has it back.
   */
  release(): Promise<void> {
    return this.#settle(() => this.delivery.release());
  }

  #settle(work: () => Promise<void>): Promise<void> {
    if (this.#settling) return Promise.reject(new SettledTwiceError());
    this.#settling = true;
    try {
      return work();
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

/** What {@linkcode settleAfterFailure} needs from the server. */
export interface FailureSettling {
  /**
   * The error result for the held message, or `null` when it has no readable
   * `message_id` (nobody to answer). It may throw; that counts as "no result".
   */
  errorReply(held: HeldMessage, error: PrpcError): Reply | null;
  /** Where to say what happened. */
  logger: Logger;
}

/**
 * Ends a held message whose handling failed, down the ladder of the module
 * docs. Never rejects.
 *
 * @param held The message.
 * @param failure What was thrown.
 * @param how The error result's builder and the logger.
 */
export async function settleAfterFailure(
  held: HeldMessage,
  failure: unknown,
  how: FailureSettling,
): Promise<void> {
  const error = describeFailure(failure);
  const log = (level: "debug" | "error", message: string, extra = {}) => {
    try {
      how.logger[level](message, { error, ...extra });
    } catch {
      // A logger that throws must not stop the message from being settled.
    }
  };
  if (held.handedBack) {
    // Handed back while stopping: settled already, nothing went wrong.
    log("debug", "a handed-back message ended");
    return;
  }
  if (failure instanceof SettledTwiceError) {
    log("error", "refused to settle a message a second time; the first settle stands");
    return;
  }
  if (held.settling) {
    log("error", "cannot settle a message; the broker keeps it and delivers it again");
    return;
  }
  const refusal = failure instanceof PrpcError && failure.name !== "PrpcError"
    ? failure
    : new ProtocolError(`the server could not handle this message: ${error}`, { cause: failure });
  let reply: Reply | null = null;
  try {
    reply = how.errorReply(held, refusal);
  } catch (err) {
    log("debug", "cannot build an error result; setting the message aside", {
      why: describeFailure(err),
    });
  }
  try {
    if (reply !== null) {
      await held.complete(reply);
      log("error", "a message could not be handled; the caller was sent an error result");
    } else {
      await held.deadLetter(`the server could not handle this message: ${error}`);
      log("error", "a message could not be handled; it was set aside on the dead-letter queue");
    }
  } catch (err) {
    log("error", "cannot settle a message; the broker keeps it and delivers it again", {
      why: describeFailure(err),
    });
  }
}

function describeFailure(failure: unknown): string {
  try {
    return failure instanceof Error
      ? `${failure.name}: ${failure.message}`
      : describeThrown(failure);
  } catch {
    return "a value that cannot be described";
  }
}
