/**
 * A `thread` worker: a Deno Web Worker that imports the function's module once
 * and then runs calls one at a time. Terminating it stops the function at its
 * next `await`; Deno cannot stop a Web Worker stuck in synchronous code
 * (denoland/deno#35657), so such code keeps running until the process exits.
 * Calls that follow each other closely cross through shared memory
 * ({@link ./thread_buffer.ts}), the others by `postMessage`.
 *
 * @module
 */

import { entrySource, type WorkerSpec } from "./handle.ts";
import type { CallOutcome, CallRequest, ThreadStart, WorkerMessage } from "./messages.ts";
import { workerPermissionOption } from "./permissions.ts";
import { SpinPolicy } from "./spin_policy.ts";
import { SERVER_SPIN_MS, ServerEnd } from "./thread_buffer.ts";
import { WorkerChannel } from "./worker_channel.ts";

const CHILD_URL = new URL("./thread_child.ts", import.meta.url).href;
const GUARD_URL = new URL("./thread_guard.ts", import.meta.url).href;

/** A Web Worker serving one module. */
export class ThreadWorker extends WorkerChannel {
  readonly #worker: Worker;
  readonly #entryUrl: string;
  readonly #spin = SpinPolicy.forProcess();
  readonly #buffer = new ServerEnd(this.#spin);
  readonly #callEnded = () => this.#buffer.callEnded();

  /**
   * Starts the worker; it loads the module in the background.
   *
   * @param spec What to start.
   */
  constructor(spec: WorkerSpec) {
    super(spec);
    this.#entryUrl = URL.createObjectURL(
      new Blob([entrySource(GUARD_URL, spec.module, CHILD_URL, "serveThreadCalls")], {
        type: "text/javascript",
      }),
    );
    const options: WorkerOptions & { deno?: { permissions: unknown } } = {
      type: "module",
      name: `prpc thread worker of ${spec.module}`,
    };
    if (spec.permissions !== undefined) {
      options.deno = { permissions: workerPermissionOption(spec.permissions) };
    }
    this.#worker = new Worker(this.#entryUrl, options);
    this.#worker.onmessage = (event: MessageEvent<WorkerMessage>) => this.receive(event.data);
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.end(`it threw where nothing caught it: ${event.message}`);
    };
    this.#worker.onmessageerror = () => this.end("it sent a message that could not be read");
    const start: ThreadStart = { buffer: this.#buffer.buffer, spin: this.#spin.buffer };
    this.#worker.postMessage(start);
  }

  override run(request: CallRequest): Promise<CallOutcome> {
    this.#buffer.callStarted();
    const outcome = super.run(request);
    outcome.then(this.#callEnded, this.#callEnded);
    return outcome;
  }

  terminate(): Promise<void> {
    this.end("it was terminated");
    return Promise.resolve();
  }

  protected send(request: CallRequest): void {
    if (this.#buffer.offer(request)) {
      const outcome = this.#buffer.awaitOutcome(SERVER_SPIN_MS);
      // Otherwise the worker posts it.
      if (outcome !== undefined) this.receive(outcome);
      return;
    }
    this.#worker.postMessage(request);
  }

  protected override onEnd(): void {
    // A worker sleeping in Atomics.wait would not notice termination until it wakes.
    this.#buffer.close();
    this.#worker.terminate();
    URL.revokeObjectURL(this.#entryUrl);
  }
}
