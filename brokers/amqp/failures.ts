/**
 * How an AMQP operation failed, as far as deciding what to do next goes:
 * the connection was lost (try again on the next one), or RabbitMQ refused
 * this very message or queue (trying again fails the same way). Both are
 * `BrokerError`s to whoever calls prpc; a message too large for RabbitMQ is a
 * `PayloadTooLargeError`.
 *
 * @module
 */

import { BrokerError, PayloadTooLargeError } from "../../protocol/errors.ts";

/**
 * The connection (or the channel, with its connection) went away before
 * RabbitMQ answered. A publish may or may not have arrived; sending it again
 * on the next connection is safe (delivery is at-least-once).
 */
export class LostError extends BrokerError {}

/**
 * RabbitMQ refused the operation for good: it nacked the message, returned it
 * as unroutable, closed the channel because of it, or refused a declaration.
 */
export class RefusedError extends BrokerError {}

/**
 * A publish with `mandatory` that RabbitMQ returned: no queue of that name
 * exists (deleted, or expired through `x-expires`).
 */
export class ReturnedError extends RefusedError {}

/**
 * Whether trying again cannot help: RabbitMQ refused the message or queue, or
 * the message is larger than RabbitMQ takes.
 *
 * @param err What an operation threw.
 * @returns `true` for {@linkcode RefusedError} and `PayloadTooLargeError`.
 */
export function isRefusal(err: unknown): boolean {
  return err instanceof RefusedError || err instanceof PayloadTooLargeError;
}

/**
 * The limit in RabbitMQ's reason for closing a channel over a message larger
 * than its `max_message_size`, e.g. `PRECONDITION_FAILED - message size
 * 141557760 is larger than configured max size 134217728`.
 *
 * @param reason The channel's close reason.
 * @returns The limit in bytes, or `undefined` for other reasons.
 */
export function oversizeLimit(reason: string): number | undefined {
  const match = /message size \d+ is larger than (?:configured )?max size (\d+)/.exec(reason);
  return match === null ? undefined : Number(match[1]);
}
