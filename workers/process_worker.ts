/**
 * A `process` worker: a `deno` subprocess (started with `Deno.execPath()`)
 * that imports the function's module once and then runs calls one at a time,
 * over stdin and stdout. Its stderr is passed on to the server's stderr; the
 * last lines are kept to explain a crash. Killing it stops a runaway function;
 * when the server goes away, the subprocess notices the end of its stdin and
 * ends itself.
 *
 * @module
 */

import { findDenoConfig } from "./deno_config.ts";
import { readLines, splitFrame } from "./frames.ts";
import { entrySource, type WorkerSpec } from "./handle.ts";
import type { CallRequest, WorkerMessage } from "./messages.ts";
import { permissionFlags } from "./permissions.ts";
import { WorkerChannel } from "./worker_channel.ts";

const CHILD_URL = new URL("./process_child.ts", import.meta.url).href;
const STDIN_URL = new URL("./process_stdin.ts", import.meta.url).href;
const STDERR_LINES_KEPT = 40;
/**
 * How long the pipes of an exited subprocess are still read for its last
 * words. A process the function started may hold them open for longer.
 */
const DRAIN_MS = 250;

/**
 * The arguments of `deno` for a worker. The main module is a `data:` URL that
 * imports the function's module statically, so loading it needs no read
 * permission in the subprocess. The project's `deno.json` (import map, lock
 * file), found from the function's module, is passed on with `--config`.
 *
 * @param spec The worker's spec.
 * @returns The arguments after the executable.
 */
export function processArguments(spec: WorkerSpec): string[] {
  const source = entrySource(STDIN_URL, spec.module, CHILD_URL, "serveProcessCalls");
  const bytes = new TextEncoder().encode(source);
  const main = `data:application/typescript;base64,${btoa(String.fromCharCode(...bytes))}`;
  const args = ["run", "--quiet", "--no-prompt", ...permissionFlags(spec.permissions ?? {})];
  const config = findDenoConfig(spec.module);
  if (config !== undefined) args.push(`--config=${config}`);
  if (spec.v8Flags.length > 0) args.push(`--v8-flags=${spec.v8Flags.join(",")}`);
  args.push(main);
  return args;
}

/** A subprocess serving one module. */
export class ProcessWorker extends WorkerChannel {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #encoder = new TextEncoder();
  readonly #stderrTail: string[] = [];
  readonly #stopReading = new AbortController();
  readonly #gone: Promise<void>;

  /**
   * Starts the subprocess; it loads the module in the background.
   *
   * @param spec What to start.
   */
  constructor(spec: WorkerSpec) {
    super(spec);
    this.#child = new Deno.Command(Deno.execPath(), {
      args: processArguments(spec),
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#stdin.closed.catch(() => {});
    const signal = this.#stopReading.signal;
    const streams = Promise.all([
      readLines(this.#child.stdout, (line) => this.#onStdout(line), signal),
      readLines(this.#child.stderr, (line) => this.#onStderr(line), signal),
    ]).catch(() => {
      // A pipe failed: the exit status below still ends the worker.
    });
    this.#gone = this.#child.status.then(async (status) => {
      // Read the last lines the worker wrote, but do not wait for a process it
      // started that still holds the pipes.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        streams,
        new Promise((resolve) => timer = setTimeout(resolve, DRAIN_MS)),
      ]);
      clearTimeout(timer);
      this.#stopReading.abort();
      await streams;
      this.end(describeExit(status, this.#stderrTail));
      await this.#stdin.close().catch(() => {});
    });
  }

  protected send(request: CallRequest): void {
    this.#stdin.write(this.#encoder.encode(`${JSON.stringify(request)}\n`)).catch(() => {
      // The subprocess is gone; its exit ends the call with the reason.
    });
  }

  async terminate(): Promise<void> {
    if (this.alive) {
      this.end("it was terminated");
      this.#kill();
    }
    await this.#gone;
  }

  #onStdout(line: string): void {
    const { output, message } = splitFrame(line);
    if (output !== "") writeToStderr(output);
    if (message === undefined) return;
    let parsed: WorkerMessage;
    try {
      parsed = JSON.parse(message);
    } catch {
      // Only the worker's own code writes frames; a function that forges one ends its worker.
      this.end(`it sent a message that could not be read: ${message.slice(0, 80)}`);
      this.#kill();
      return;
    }
    this.receive(parsed);
  }

  #onStderr(line: string): void {
    this.#stderrTail.push(line);
    if (this.#stderrTail.length > STDERR_LINES_KEPT) this.#stderrTail.shift();
    writeToStderr(line);
  }

  #kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }
}

/** Explains how a subprocess ended, with the error lines it wrote last. */
function describeExit(status: Deno.CommandStatus, stderrTail: readonly string[]): string {
  const how = status.signal !== null
    ? `it was killed by ${status.signal}`
    : `it exited with code ${status.code}`;
  const errors = stderrTail
    .map((line) => line.trim())
    .filter((line) => /error|fatal|uncaught|out of memory/i.test(line));
  const last = errors.slice(-2);
  return last.length === 0 ? how : `${how}: ${last.join(" | ")}`;
}

const stderrEncoder = new TextEncoder();

/** Passes a line of a worker's output on to the server's stderr. */
function writeToStderr(line: string): void {
  try {
    Deno.stderr.writeSync(stderrEncoder.encode(`${line}\n`));
  } catch {
    // The server's stderr is gone: the line is lost, the worker goes on.
  }
}
