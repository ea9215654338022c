/**
 * Inside a `thread` worker (a Web Worker): answers the server's calls against
 * one module's exports. Loaded by the worker's entry script after
 * {@link ./thread_guard.ts} and the function's module.
 *
 * @module
 */

import { runCall } from "./call_runner.ts";
import type { CallOutcome, CallRequest, WorkerMessage } from "./messages.ts";

interface WorkerScope {
  postMessage(message: WorkerMessage): void;
  onmessage: ((event: MessageEvent<CallRequest>) => void) | null;
}

/**
 * Serves calls posted by the server, one at a time.
 *
 * @param exports The function's module namespace.
 */
export function serveThreadCalls(exports: Record<string, unknown>): void {
  const scope = globalThis as unknown as WorkerScope;
  scope.onmessage = async (event) => {
    const outcome = await runCall(exports, event.data);
    try {
      scope.postMessage(outcome);
    } catch (err) {
      // postMessage refuses what structured clone cannot carry, before sending anything.
      scope.postMessage(uncloneable(outcome, err));
    }
  };
  scope.postMessage({ ready: true });
}

/** The outcome to send instead of one structured clone cannot carry. */
function uncloneable(outcome: CallOutcome, err: unknown): CallOutcome {
  const reason = err instanceof Error ? err.message : String(err);
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
