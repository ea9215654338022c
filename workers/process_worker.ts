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
import { readLines, splitFrame } from "./frames.ts";
import { entrySource, type WorkerHandle, type WorkerSpec } from "./handle.ts";
import type { CallOutcome, CallRequest, WorkerMessage } from "./messages.ts";
import { permissionFlags } from "./permissions.ts";

const CHILD_URL = new URL("./process_child.ts", import.meta.url).href;
const STDERR_LINES_KEPT = 40;

interface Waiting {
  readonly request: CallRequest;
  readonly resolve: (outcome: CallOutcome) => void;
  readonly reject: (error: Error) => void;
}

/**
 * The arguments of `deno` for a worker. The main module is a `data:` URL that
 * imports the function's module statically, so loading it needs no read
 * permission in the subprocess.
 *
 * @param spec The worker's spec.
 * @returns The arguments after the executable.
 */
export function processArguments(spec: WorkerSpec): string[] {
  const source = entrySource(spec.module, CHILD_URL, "serveProcessCalls");
  const bytes = new TextEncoder().encode(source);
  const main = `data:application/typescript;base64,${btoa(String.fromCharCode(...bytes))}`;
  const args = ["run", "--quiet", "--no-prompt", ...permissionFlags(spec.permissions ?? {})];
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
  readonly #gone: Promise<void>;
  readonly ready: Promise<void>;
  readonly #markReady: () => void;
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
    this.#child = new Deno.Command(Deno.execPath(), {
      args: processArguments(spec),
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#stdin.closed.catch(() => {});
    const streams = Promise.all([this.#readStdout(), this.#readStderr()]);
    this.#gone = Promise.all([this.#child.status, streams]).then(([status]) => {
      this.#end(describeExit(status, this.#stderrTail));
      this.#stdin.close().catch(() => {});
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
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }
    await this.#gone;
  }

  async #readStdout(): Promise<void> {
    for await (const line of readLines(this.#child.stdout)) {
      const { output, message } = splitFrame(line);
      if (output !== "") console.error(output);
      if (message !== undefined) this.#onMessage(JSON.parse(message) as WorkerMessage);
    }
  }

  async #readStderr(): Promise<void> {
    const encoder = new TextEncoder();
    for await (const line of readLines(this.#child.stderr)) {
      this.#stderrTail.push(line);
      if (this.#stderrTail.length > STDERR_LINES_KEPT) this.#stderrTail.shift();
      Deno.stderr.writeSync(encoder.encode(`${line}\n`));
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
