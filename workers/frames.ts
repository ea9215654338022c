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
 * Collects text and hands out complete lines. Each piece of text is searched
 * once, so a long line arriving in many chunks costs linear time.
 */
export class LineSplitter {
  #parts: string[] = [];

  /**
   * Adds text.
   *
   * @param text The next piece of the stream.
   * @returns The lines it completes, without their line feed.
   */
  push(text: string): string[] {
    const lines: string[] = [];
    let start = 0;
    let end = text.indexOf("\n");
    while (end !== -1) {
      this.#parts.push(text.slice(start, end));
      lines.push(this.#parts.join(""));
      this.#parts = [];
      start = end + 1;
      end = text.indexOf("\n", start);
    }
    if (start < text.length) this.#parts.push(text.slice(start));
    return lines;
  }

  /**
   * Takes what came after the last line feed.
   *
   * @returns The unfinished line, possibly empty.
   */
  rest(): string {
    const rest = this.#parts.join("");
    this.#parts = [];
    return rest;
  }
}

/**
 * Reads a byte stream line by line until it ends or `signal` aborts.
 *
 * @param stream The bytes.
 * @param onLine Called with each line, without its line feed (and with an unfinished last line).
 * @param signal Stops reading and cancels the stream.
 */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const reader = stream.getReader();
  const cancel = () => reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  const decoder = new TextDecoder();
  const splitter = new LineSplitter();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const line of splitter.push(decoder.decode(value, { stream: true }))) onLine(line);
    }
    const rest = splitter.rest() + decoder.decode();
    if (rest !== "") onLine(rest);
  } finally {
    signal.removeEventListener("abort", cancel);
  }
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
