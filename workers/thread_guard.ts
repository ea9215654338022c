/**
 * Inside a `thread` worker, loaded before the function's module: a Web Worker
 * that calls `Deno.exit()` or `close()` ends silently, so both are wrapped to
 * tell the server first. The call then ends with `WorkerCrashedError` at once,
 * not at its time limit.
 *
 * @module
 */

import type { CrashNotice } from "./messages.ts";

const scope = globalThis as unknown as {
  postMessage(message: CrashNotice): void;
  close(): void;
};

const exit = Deno.exit;
Deno.exit = ((code?: number) => {
  scope.postMessage({ crash: `the function called Deno.exit(${code ?? ""})` });
  return exit(code);
}) as typeof Deno.exit;

const close = scope.close.bind(scope);
scope.close = () => {
  scope.postMessage({ crash: "the function called close()" });
  close();
};
