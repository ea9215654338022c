/**
 * Inside a `process` worker (a `deno` subprocess): answers the server's calls,
 * read as lines from stdin, with lines on stdout. Loaded by the subprocess's
 * main module after {@link ./process_stdin.ts} and the function's module.
 *
 * @module
 */

import { assertEncodable } from "../protocol/codec.ts";
import { MAX_DEPTH_LIMIT } from "../protocol/depth.ts";
import { runCall } from "./call_runner.ts";
import { FRAME_MARKER, LineSplitter } from "./frames.ts";
import type { CallOutcome, CallRequest, WorkerMessage } from "./messages.ts";
import { takeStdin } from "./process_stdin.ts";

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
  const decoder = new TextDecoder();
  const splitter = new LineSplitter();
  let queue = Promise.resolve();
  send({ ready: true });
  takeStdin((chunk) => {
    for (const line of splitter.push(decoder.decode(chunk, { stream: true }))) {
      if (line === "") continue;
      const request = JSON.parse(line) as CallRequest;
      queue = queue.then(async () => sendText(encodeOutcome(await runCall(exports, request))));
    }
  });
}

function send(message: WorkerMessage): void {
  sendText(JSON.stringify(message));
}

const encoder = new TextEncoder();

function sendText(json: string): void {
  const bytes = encoder.encode(`${FRAME_MARKER}${json}\n`);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/** JSON text of an outcome, refusing values JSON would change, as the server does. */
function encodeOutcome(outcome: CallOutcome): string {
  if (outcome.ok) {
    try {
      // The server checks its own maxDepth; this only keeps JSON.stringify on safe ground.
      assertEncodable(outcome.value, "the result", MAX_DEPTH_LIMIT);
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
