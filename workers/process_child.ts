/**
 * Inside a `process` worker (a `deno` subprocess): answers the server's calls,
 * read as lines from stdin, with lines on stdout. Loaded by the subprocess's
 * main module right after the function's module.
 *
 * Requests are read by a small Web Worker, so that the end of stdin is noticed
 * even while a function keeps the main thread busy: the server is gone (stopped
 * or crashed), and the subprocess ends itself at once.
 *
 * @module
 */

import { assertEncodable } from "../protocol/codec.ts";
import { runCall } from "./call_runner.ts";
import { FRAME_MARKER } from "./frames.ts";
import type { CallOutcome, CallRequest } from "./messages.ts";

// Runs in a Web Worker made from this text: reads stdin, posts each chunk to the
// main thread, and kills the process when stdin ends. Killing itself needs no
// permission, so this works under any permissions the function was given.
const STDIN_READER = `
const reader = Deno.stdin.readable.getReader();
for (;;) {
  const { value, done } = await reader.read();
  if (done) break;
  postMessage(value, [value.buffer]);
}
Deno.kill(Deno.pid, "SIGKILL");
`;

/**
 * Serves calls from the server, one at a time.
 *
 * @param exports The function's module namespace.
 */
export function serveProcessCalls(exports: Record<string, unknown>): void {
  // stdout is the channel to the server: what the function logs goes to stderr.
  console.log = console.error;
  console.info = console.error;
  console.debug = console.error;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let pending = "";
  let queue = Promise.resolve();
  const reader = new Worker(
    URL.createObjectURL(new Blob([STDIN_READER], { type: "text/javascript" })),
    { type: "module" },
  );
  writeAll(encoder.encode(`${FRAME_MARKER}${JSON.stringify({ ready: true })}\n`));
  reader.onmessage = (event: MessageEvent<Uint8Array>) => {
    pending += decoder.decode(event.data, { stream: true });
    let end = pending.indexOf("\n");
    while (end !== -1) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      end = pending.indexOf("\n");
      if (line === "") continue;
      const request = JSON.parse(line) as CallRequest;
      queue = queue.then(async () => {
        writeAll(
          encoder.encode(`${FRAME_MARKER}${encodeOutcome(await runCall(exports, request))}\n`),
        );
      });
    }
  };
}

/** JSON text of an outcome, refusing values JSON would change, as the server does. */
function encodeOutcome(outcome: CallOutcome): string {
  if (outcome.ok) {
    try {
      assertEncodable(outcome.value, "the result");
      return JSON.stringify(outcome);
    } catch (err) {
      return JSON.stringify(
        {
          id: outcome.id,
          ok: false,
          error: {
            name: "SerializationError",
            message: err instanceof Error ? err.message : String(err),
            serialization: true,
          },
        } satisfies CallOutcome,
      );
    }
  }
  try {
    return JSON.stringify(outcome);
  } catch {
    // The error's code or data has no JSON form: keep the rest.
    const { code: _code, data: _data, ...error } = outcome.error;
    return JSON.stringify({ id: outcome.id, ok: false, error } satisfies CallOutcome);
  }
}

function writeAll(bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}
