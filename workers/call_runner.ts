/**
 * Worker side of a call: finds the export, runs it with its call context, and
 * turns whatever happens into a {@linkcode CallOutcome}. Shared by the
 * `thread` and `process` workers.
 *
 * @module
 */

import { runInCallContext } from "../protocol/call_context.ts";
import { describeThrown } from "../protocol/errors.ts";
import type { CallOutcome, CallRequest, ThrownError } from "./messages.ts";

/**
 * Describes a thrown value for the trip to the server.
 *
 * @param thrown What was thrown.
 * @returns Its name, message, stack, code and data.
 */
export function describeError(thrown: unknown): ThrownError {
  try {
    if (!(thrown instanceof Error)) return { name: "Error", message: describeThrown(thrown) };
    // A function may set name and message to anything, or make their getters throw.
    const described: ThrownError = {
      name: typeof thrown.name === "string" ? thrown.name : "Error",
      message: typeof thrown.message === "string" ? thrown.message : describeThrown(thrown.message),
    };
    if (typeof thrown.stack === "string") described.stack = thrown.stack;
    const extra = thrown as Error & { code?: unknown; data?: unknown };
    if (extra.code !== undefined) described.code = extra.code;
    if (extra.data !== undefined) described.data = extra.data;
    return described;
  } catch (err) {
    const why = err instanceof Error ? err.message : "?";
    return { name: "Error", message: `the function threw an error that cannot be read (${why})` };
  }
}

/**
 * Runs one call against a module's exports.
 *
 * @param exports The module namespace of the function's module.
 * @param request The call.
 * @returns The outcome; never rejects.
 */
export async function runCall(
  exports: Record<string, unknown>,
  request: CallRequest,
): Promise<CallOutcome> {
  const fn = exports[request.exportName];
  if (typeof fn !== "function") {
    return {
      id: request.id,
      ok: false,
      error: {
        name: "TypeError",
        message: `the worker's module has no exported function "${request.exportName}"`,
      },
    };
  }
  // Worker calls end by termination, never by this signal; it exists so that
  // functions written for callContext() run unchanged in every worker type.
  const controller = new AbortController();
  const context = {
    signal: controller.signal,
    messageId: request.messageId,
    funcName: request.funcName,
    attempt: request.attempt,
    deadline: request.deadline === null ? null : new Date(request.deadline),
  };
  try {
    const value = await runInCallContext(context, () => fn(...request.args));
    return { id: request.id, ok: true, value };
  } catch (err) {
    return { id: request.id, ok: false, error: describeError(err) };
  }
}
