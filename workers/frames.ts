/**
 * Framing of the `process` worker's channel: one JSON message per line. Lines
 * from the worker carry a marker, so that stray output a function writes to
 * stdout is passed on instead of being taken for a message.
 *
 * @module
 */

/** Starts every message line a process worker writes. */
export const FRAME_MARKER = "\u001eprpc:";

/**
 * Splits a byte stream into lines.
 *
 * @param stream The bytes.
 * @returns The lines, without their line feed.
 */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let end = pending.indexOf("\n");
    while (end !== -1) {
      yield pending.slice(0, end);
      pending = pending.slice(end + 1);
      end = pending.indexOf("\n");
    }
  }
  pending += decoder.decode();
  if (pending !== "") yield pending;
}

/**
 * Splits a line from a process worker into stray output and a message.
 *
 * @param line One line of the worker's stdout.
 * @returns The output before the marker (may be empty) and the message text, if any.
 */
export function splitFrame(line: string): { output: string; message: string | undefined } {
  const at = line.indexOf(FRAME_MARKER);
  if (at === -1) return { output: line, message: undefined };
  return { output: line.slice(0, at), message: line.slice(at + FRAME_MARKER.length) };
}
