/**
 * The context of the call a function is running for: its `AbortSignal`,
 * `message_id`, attempt and deadline. Read it with {@linkcode callContext}
 * from inside a registered function, including arrow functions and helpers
 * it awaits.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { PrpcError } from "./errors.ts";

/** What a running function can know about the call it serves. */
export interface CallContext {
  /**
   * Fires when the call should stop: the server's `workerTimeoutMs` elapsed
   * (reason: a `WorkerTimeoutError`) or the server is stopping and handed the
   * message back.
   */
  readonly signal: AbortSignal;
  /** `message_id` of the request. */
  readonly messageId: string;
  /** Name the function was called by. */
  readonly funcName: string;
  /** How many times the message has been delivered, this time included. */
  readonly attempt: number;
  /** When the caller stops waiting, if it said so. */
  readonly deadline: Date | null;
}

const storage = new AsyncLocalStorage<CallContext>();

/**
 * The context of the call the current code runs for.
 *
 * @returns The call context.
 * @throws {PrpcError} When called outside a function run by an `AppServer`.
 *
 * @example Stopping work when the worker timeout fires
 * ```ts ignore
 * import { callContext } from "@prpc/prpc";
 * export async function crawl(url: string) {
 *   const { signal } = callContext();
 *   const response = await fetch(url, { signal });
 *   return await response.text();
 * }
 * ```
 */
export function callContext(): CallContext {
  const context = storage.getStore();
  if (context === undefined) {
    throw new PrpcError("Cannot read callContext() outside a function called through prpc");
  }
  return context;
}

/**
 * Runs `body` with `context` as the call context.
 *
 * @param context The context to expose.
 * @param body The code to run.
 * @returns What `body` returns.
 */
export function runInCallContext<T>(context: CallContext, body: () => T): T {
  return storage.run(context, body);
}
