/**
 * What `thread` and `process` workers share: one call at a time, matched to
 * its outcome by id; the ready and crash notices; and ending, which rejects a
 * call still waiting with `WorkerCrashedError`. Each kind adds only how it
 * sends a request and how it goes away.
 *
 * @module
 */

import { WorkerCrashedError } from "../protocol/errors.ts";
import type { WorkerHandle, WorkerSpec } from "./handle.ts";
import type { CallOutcome, CallRequest, WorkerMessage } from "./messages.ts";

interface Waiting {
  readonly request: CallRequest;
  readonly resolve: (outcome: CallOutcome) => void;
  readonly reject: (error: Error) => void;
}

/** The call bookkeeping of a worker; subclasses connect it to a Web Worker or a subprocess. */
export abstract class WorkerChannel implements WorkerHandle {
  readonly spec: WorkerSpec;
  readonly ready: Promise<void>;
  readonly ended: Promise<string>;
  readonly #markReady: () => void;
  readonly #markEnded: (reason: string) => void;
  #waiting: Waiting | undefined;
  #endReason: string | undefined;

  /** @param spec What the worker was started as. */
  constructor(spec: WorkerSpec) {
    this.spec = spec;
    const ready = Promise.withResolvers<void>();
    this.ready = ready.promise;
    this.#markReady = ready.resolve;
    const ended = Promise.withResolvers<string>();
    this.ended = ended.promise;
    this.#markEnded = ended.resolve;
  }

  get alive(): boolean {
    return this.#endReason === undefined;
  }

  run(request: CallRequest): Promise<CallOutcome> {
    if (this.#endReason !== undefined) {
      return Promise.reject(this.#crashError(request, this.#endReason));
    }
    return new Promise((resolve, reject) => {
      this.#waiting = { request, resolve, reject };
      this.send(request);
    });
  }

  abstract terminate(): Promise<void>;

  /** Hands a request to the worker. */
  protected abstract send(request: CallRequest): void;

  /** Called once when the worker ends, before a waiting call is rejected. */
  protected onEnd(): void {}

  /** Takes a message from the worker. */
  protected receive(message: WorkerMessage): void {
    if ("crash" in message) {
      this.end(message.crash);
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

  /** Marks the worker ended (once) and fails the call it was running. */
  protected end(reason: string): void {
    if (this.#endReason !== undefined) return;
    this.#endReason = reason;
    this.#markEnded(reason);
    this.onEnd();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(this.#crashError(waiting.request, reason));
  }

  #crashError(request: CallRequest, reason: string): WorkerCrashedError {
    return new WorkerCrashedError(
      `the ${this.spec.type} worker running "${request.funcName}" ended: ${reason}`,
      { funcName: request.funcName, messageId: request.messageId },
    );
  }
}
