/**
 * A `thread` worker: a Deno Web Worker that imports the function's module once
 * and then runs calls one at a time. Terminating it stops a runaway function.
 *
 * @module
 */

import { WorkerCrashedError } from "../protocol/errors.ts";
import { entrySource, type WorkerHandle, type WorkerSpec } from "./handle.ts";
import type { CallOutcome, CallRequest, WorkerMessage } from "./messages.ts";
import { workerPermissionOption } from "./permissions.ts";

const CHILD_URL = new URL("./thread_child.ts", import.meta.url).href;
const GUARD_URL = new URL("./thread_guard.ts", import.meta.url).href;

interface Waiting {
  readonly request: CallRequest;
  readonly resolve: (outcome: CallOutcome) => void;
  readonly reject: (error: Error) => void;
}

/** A Web Worker serving one module. */
export class ThreadWorker implements WorkerHandle {
  readonly spec: WorkerSpec;
  readonly #worker: Worker;
  readonly #entryUrl: string;
  readonly ready: Promise<void>;
  readonly ended: Promise<string>;
  readonly #markReady: () => void;
  readonly #markEnded: (reason: string) => void;
  #waiting: Waiting | undefined;
  #ended: string | undefined;

  /**
   * Starts the worker; it loads the module in the background.
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
    this.#worker.onmessage = (event: MessageEvent<WorkerMessage>) => this.#onMessage(event.data);
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#end(`it threw where nothing caught it: ${event.message}`);
    };
    this.#worker.onmessageerror = () => this.#end("it sent a message that could not be read");
  }

  get alive(): boolean {
    return this.#ended === undefined;
  }

  run(request: CallRequest): Promise<CallOutcome> {
    if (this.#ended !== undefined) {
      return Promise.reject(this.#crashError(request, this.#ended));
    }
    return new Promise((resolve, reject) => {
      this.#waiting = { request, resolve, reject };
      this.#worker.postMessage(request);
    });
  }

  terminate(): Promise<void> {
    this.#end("it was terminated");
    return Promise.resolve();
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
    this.#worker.terminate();
    URL.revokeObjectURL(this.#entryUrl);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(this.#crashError(waiting.request, reason));
  }

  #crashError(request: CallRequest, reason: string): WorkerCrashedError {
    return new WorkerCrashedError(
      `the thread worker running "${request.funcName}" ended: ${reason}`,
      { funcName: request.funcName, messageId: request.messageId },
    );
  }
}
