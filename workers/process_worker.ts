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

import { WorkerCrashedError } from "../protocol/errors.ts";
import { findDenoConfig } from "./deno_config.ts";
import { readLines, splitFrame } from "./frames.ts";
import { entrySource, type WorkerHandle, type WorkerSpec } from "./handle.ts";
import type { CallOutcome, CallRequest, WorkerMessage } from "./messages.ts";
import { permissionFlags } from "./permissions.ts";

const CHILD_URL = new URL("./process_child.ts", import.meta.url).href;
const STDIN_URL = new URL("./process_stdin.ts", import.meta.url).href;
const STDERR_LINES_KEPT = 40;
/**
 * How long the pipes of an exited subprocess are still read for its last
 * words. A process the function started may hold them open for longer.
 */
const DRAIN_MS = 250;

interface Waiting {
  readonly request: CallRequest;
  readonly resolve: (outcome: CallOutcome) => void;
  readonly reject: (error: Error) => void;
}

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
export class ProcessWorker implements WorkerHandle {
  readonly spec: WorkerSpec;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #encoder = new TextEncoder();
  readonly #stderrTail: string[] = [];
  readonly #stopReading = new AbortController();
  readonly #gone: Promise<void>;
  readonly ready: Promise<void>;
  readonly ended: Promise<string>;
  readonly #markReady: () => void;
  readonly #markEnded: (reason: string) => void;
  #waiting: Waiting | undefined;
  #ended: string | undefined;

  /**
   * Starts the subprocess; it loads the module in the background.
   *
   * @param spec What to start.
   */
  constructor(spec: WorkerSpec) {
    this.spec = spec;
    const ready = Promise.withResolvers<void>();
    this.ready = ready.promise;
    this.#markReady = ready.resolve;
    const ended = Promise.withResolvers<string>();
    this.ended = ended.promise;
    this.#markEnded = ended.resolve;
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
      this.#end(describeExit(status, this.#stderrTail));
      await this.#stdin.close().catch(() => {});
    });
  }

  get alive(): boolean {
    return this.#ended === undefined;
  }

  run(request: CallRequest): Promise<CallOutcome> {
    if (this.#ended !== undefined) return Promise.reject(this.#crashError(request, this.#ended));
    return new Promise((resolve, reject) => {
      this.#waiting = { request, resolve, reject };
      this.#stdin.write(this.#encoder.encode(`${JSON.stringify(request)}\n`)).catch(() => {
        // The subprocess is gone; its exit ends the call with the reason.
      });
    });
  }

  async terminate(): Promise<void> {
    if (this.#ended === undefined) {
      this.#end("it was terminated");
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
      this.#end(`it sent a message that could not be read: ${message.slice(0, 80)}`);
      this.#kill();
      return;
    }
    this.#onMessage(parsed);
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

  #onMessage(message: WorkerMessage): void {
    if ("crash" in message) {
      this.#end(message.crash);
      return;
    }
    if ("ready" in message) {
      this.#markReady();
      return;
    }
    const waiting = this.#waiting;
    if (waiting === undefined || waiting.request.id !== message.id) return;
    this.#waiting = undefined;
    waiting.resolve(message);
  }

  #end(reason: string): void {
    if (this.#ended !== undefined) return;
    this.#ended = reason;
    this.#markEnded(reason);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(this.#crashError(waiting.request, reason));
  }

  #crashError(request: CallRequest, reason: string): WorkerCrashedError {
    return new WorkerCrashedError(
      `the process worker running "${request.funcName}" ended: ${reason}`,
      { funcName: request.funcName, messageId: request.messageId },
    );
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
