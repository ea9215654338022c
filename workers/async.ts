/**
 * The `async` worker: runs a function on the server's event loop, with the
 * server's `workerTimeoutMs` enforced by an `AbortSignal` and a timer.
 *
 * @module
 */

import { WorkerTimeoutError } from "../protocol/errors.ts";
import { type CallContext, runInCallContext } from "../server/call_context.ts";

/** One function call to run. */
export interface AsyncTask {
  /** The function. */
  fn: (...args: unknown[]) => unknown;
  /** Bound positional arguments. */
  args: unknown[];
  /** Name the function was called by. */
  funcName: string;
  /** `message_id` of the request. */
  messageId: string;
  /** Delivery attempt. */
  attempt: number;
  /** When the caller stops waiting, if known. */
  deadline: Date | null;
  /** Aborted from outside, e.g. when the server hands the message back while stopping. */
  controller: AbortController;
  /** Time limit in milliseconds, or `null` for none. */
  timeoutMs: number | null;
}

/**
 * Runs a function on the event loop.
 *
 * A function that is still running at `timeoutMs` has its signal aborted and the
 * returned promise rejects with {@linkcode WorkerTimeoutError}; code on the event
 * loop cannot be stopped from outside, so a function should honour
 * `callContext().signal`.
 *
 * @param task The call.
 * @returns The function's (awaited) return value.
 */
export function runAsync(task: AsyncTask): Promise<unknown> {
  const context: CallContext = {
    signal: task.controller.signal,
    messageId: task.messageId,
    funcName: task.funcName,
    attempt: task.attempt,
    deadline: task.deadline,
  };
  let result: Promise<unknown>;
  try {
    result = Promise.resolve(runInCallContext(context, () => task.fn(...task.args)));
  } catch (err) {
    return Promise.reject(err);
  }
  if (task.timeoutMs === null) return result;
  const timeoutMs = task.timeoutMs;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = new WorkerTimeoutError(
        `"${task.funcName}" did not finish within workerTimeoutMs (${timeoutMs} ms)`,
        { funcName: task.funcName, messageId: task.messageId },
      );
      task.controller.abort(error);
      reject(error);
    }, timeoutMs);
    result.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
