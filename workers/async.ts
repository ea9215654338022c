/**
 * The `async` worker: runs a function on the server's event loop, with the
 * server's `workerTimeoutMs` enforced by an `AbortSignal` and a timer.
 *
 * @module
 */

import { WorkerTimeoutError } from "../protocol/errors.ts";
import { type CallContext, runInCallContext } from "../protocol/call_context.ts";
import { timeouts } from "../protocol/timeouts.ts";

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
  let outcome: Returned | Promise<unknown>;
  try {
    outcome = startAsync(task);
  } catch (err) {
    return Promise.reject(err);
  }
  return outcome instanceof Promise ? outcome : Promise.resolve(outcome.value);
}

/** What a function gave back at once: a value, not a promise. */
export interface Returned {
  /** The value. */
  value: unknown;
}

/**
 * {@linkcode runAsync} for a caller that can go on at once: a function that
 * returns a value (not a promise or thenable) has finished, and its value comes
 * back without a promise, so nothing waits for a microtask.
 *
 * @param task The call.
 * @returns The value, or a promise of it as in {@linkcode runAsync}.
 * @throws What the function throws before it returns.
 */
export function startAsync(task: AsyncTask): Returned | Promise<unknown> {
  const context: CallContext = {
    signal: task.controller.signal,
    messageId: task.messageId,
    funcName: task.funcName,
    attempt: task.attempt,
    deadline: task.deadline,
  };
  if (task.controller.signal.aborted) return Promise.reject(task.controller.signal.reason);
  const returned = runInCallContext(context, () => task.fn(...task.args));
  // A function that returned a value has finished: no time limit is left to watch.
  if (!isThenable(returned)) return { value: returned };
  const result = Promise.resolve(returned);
  const { timeoutMs, controller } = task;
  return new Promise((resolve, reject) => {
    const finish = () => {
      timeout?.cancel();
      controller.signal.removeEventListener("abort", onAbort);
    };
    // Aborted from outside (the server stops): stop waiting, the caller is answered elsewhere.
    const onAbort = () => {
      finish();
      reject(controller.signal.reason);
    };
    const timeout = timeoutMs === null ? undefined : timeouts.start(timeoutMs, () => {
      const error = new WorkerTimeoutError(
        `"${task.funcName}" did not finish within workerTimeoutMs (${timeoutMs} ms)`,
        { funcName: task.funcName, messageId: task.messageId },
      );
      finish();
      controller.abort(error);
      reject(error);
    });
    controller.signal.addEventListener("abort", onAbort, { once: true });
    result.then(
      (value) => {
        finish();
        resolve(value);
      },
      (err) => {
        finish();
        reject(err);
      },
    );
  });
}

/** Whether a value is a promise or another thenable (which `await` would wait for). */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  if (value instanceof Promise) return true;
  return (typeof value === "object" && value !== null || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function";
}
