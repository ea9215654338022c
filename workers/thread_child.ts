/**
 * Inside a `thread` worker (a Web Worker): answers the server's calls against
 * one module's exports. Loaded by the worker's entry script after
 * {@link ./thread_guard.ts} and the function's module. Calls come by message
 * or through the buffer the server shares ({@link ./thread_buffer.ts}).
 *
 * @module
 */

import { runCall } from "./call_runner.ts";
import type { CallOutcome, CallRequest, ThreadStart, WorkerMessage } from "./messages.ts";
import { WorkerEnd } from "./thread_buffer.ts";

interface WorkerScope {
  postMessage(message: WorkerMessage): void;
  onmessage: ((event: MessageEvent<CallRequest | ThreadStart>) => void) | null;
}

/**
 * Serves calls from the server, one at a time. Says it is ready once it has
 * the server's buffer.
 *
 * @param exports The function's module namespace.
 */
export function serveThreadCalls(exports: Record<string, unknown>): void {
  const scope = globalThis as unknown as WorkerScope;
  let buffer: WorkerEnd | undefined;
  const post = (outcome: CallOutcome) => {
    try {
      scope.postMessage(outcome);
    } catch (err) {
      // postMessage refuses what structured clone cannot carry, before sending anything.
      scope.postMessage(uncloneable(outcome, err));
    }
  };
  const serve = async (end: WorkerEnd, first: CallRequest) => {
    let request: CallRequest | undefined = first;
    while (request !== undefined) {
      end.answer(await runCall(exports, request), post);
      request = end.listen();
    }
  };
  scope.onmessage = (event) => {
    const message = event.data;
    if ("buffer" in message) {
      buffer = new WorkerEnd(message.buffer, message.spin);
      scope.postMessage({ ready: true });
      return;
    }
    // The server posts calls only after the buffer.
    const end = buffer!;
    end.tookPosted();
    void serve(end, message);
  };
}

/** The outcome to send instead of one structured clone cannot carry. */
function uncloneable(outcome: CallOutcome, err: unknown): CallOutcome {
  // Structured clone runs out of stack on values nested a few thousand levels deep.
  const reason = err instanceof RangeError
    ? `it nests too deeply to be copied (${err.message})`
    : err instanceof Error
    ? err.message
    : String(err);
  if (outcome.ok) {
    return {
      id: outcome.id,
      ok: false,
      error: {
        name: "DataCloneError",
        message: `the function returned a value that cannot leave the worker: ${reason}`,
        serialization: true,
      },
    };
  }
  // The error's code or data was the problem: keep the rest.
  const { code: _code, data: _data, ...error } = outcome.error;
  return { id: outcome.id, ok: false, error };
}
