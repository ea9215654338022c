/**
 * Inside a `process` worker, loaded before the function's module: reads stdin
 * in a small Web Worker from the start, so that the subprocess ends itself as
 * soon as its server goes away (stdin ends), even while the function's module
 * is still loading or a function keeps the main thread busy. What arrives
 * before {@linkcode takeStdin} is called is kept.
 *
 * @module
 */

// Runs in the Web Worker: posts each chunk of stdin to the main thread and kills
// the process when stdin ends. Killing itself needs no permission, so this works
// under any permissions the function was given.
const STDIN_READER = `
const reader = Deno.stdin.readable.getReader();
for (;;) {
  const { value, done } = await reader.read();
  if (done) break;
  postMessage(value, [value.buffer]);
}
Deno.kill(Deno.pid, "SIGKILL");
`;

const early: Uint8Array[] = [];
let consumer: ((chunk: Uint8Array) => void) | undefined;

const reader = new Worker(
  URL.createObjectURL(new Blob([STDIN_READER], { type: "text/javascript" })),
  { type: "module", name: "prpc stdin reader" },
);
reader.onmessage = (event: MessageEvent<Uint8Array>) => {
  if (consumer === undefined) early.push(event.data);
  else consumer(event.data);
};

/**
 * Hands every chunk of stdin, including those that came early, to `onChunk`.
 *
 * @param onChunk Called with each chunk, in order.
 */
export function takeStdin(onChunk: (chunk: Uint8Array) => void): void {
  consumer = onChunk;
  for (const chunk of early.splice(0)) onChunk(chunk);
}
