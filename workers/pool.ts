/**
 * The pool of `thread` and `process` workers of one server. `maxWorkers` caps
 * the live workers of all kinds together: a pool grows within it, reuses idle
 * workers, and ends an idle worker of another kind when it needs the room. A
 * worker that overruns its time limit, or whose call is abandoned, is ended
 * and replaced on demand.
 *
 * @module
 */

import {
  BrokerError,
  SerializationError,
  WorkerCrashedError,
  WorkerTimeoutError,
} from "../protocol/errors.ts";
import { type Timeout, timeouts } from "../protocol/timeouts.ts";
import type { Logger } from "../protocol/logger.ts";
import type { WorkerHandle, WorkerSpec } from "./handle.ts";
import type { CallOutcome, CallRequest, ThrownError } from "./messages.ts";
import { ProcessWorker } from "./process_worker.ts";
import { ThreadWorker } from "./thread_worker.ts";

/** A call for the pool, without the per-worker sequence number. */
export type PoolRequest = Omit<CallRequest, "id">;

/** Limits of one pooled call. */
export interface PoolCallOptions {
  /** Time limit in milliseconds, or `null` for none. */
  timeoutMs: number | null;
  /** Aborting it ends the worker and rejects with the signal's reason. */
  signal: AbortSignal;
}

interface Waiter {
  readonly spec: WorkerSpec;
  readonly resolve: (handle: WorkerHandle) => void;
  readonly reject: (error: Error) => void;
}

/**
 * How long a new worker may take to load the function's module. It is apart
 * from `workerTimeoutMs`, which counts from the moment the worker is ready, so
 * that a busy machine starting a subprocess does not eat a call's time limit.
 */
export const WORKER_START_LIMIT_MS = 60_000;

/** Starts a worker for a spec; replaceable in tests of the pool itself. */
export type StartWorker = (spec: WorkerSpec) => WorkerHandle;

const startWorker: StartWorker = (spec) =>
  spec.type === "thread" ? new ThreadWorker(spec) : new ProcessWorker(spec);

/** The workers of one server. */
export class WorkerPool {
  readonly #maxWorkers: number;
  readonly #logger: Logger;
  readonly #start: StartWorker;
  readonly #busy = new Set<WorkerHandle>();
  readonly #endReasons = new WeakMap<WorkerHandle, string>();
  readonly #live = new Set<WorkerHandle>();
  readonly #idle = new Map<string, WorkerHandle[]>();
  readonly #waiters: Waiter[] = [];
  readonly #ending = new Set<Promise<void>>();
  /** Workers known to have loaded their module: their calls skip the start limit. */
  readonly #ready = new WeakSet<WorkerHandle>();
  #nextId = 1;
  #closed = false;

  /**
   * @param maxWorkers Most live workers of all kinds together.
   * @param logger Where a worker that ends while idle is reported.
   * @param start How to start a worker.
   */
  constructor(maxWorkers: number, logger: Logger, start: StartWorker = startWorker) {
    this.#maxWorkers = maxWorkers;
    this.#logger = logger;
    this.#start = start;
  }

  /** Live workers, busy or idle. */
  get size(): number {
    return this.#live.size;
  }

  /**
   * Runs a call on a worker of the given spec.
   *
   * @param spec Which worker.
   * @param request The call.
   * @param options Time limit and abort signal.
   * @returns What the function returned.
   * @throws What the function threw (rebuilt as an `Error` with its name, message, stack, code and data),
   *   `WorkerTimeoutError`, `WorkerCrashedError` or `SerializationError`.
   */
  async run(spec: WorkerSpec, request: PoolRequest, options: PoolCallOptions): Promise<unknown> {
    options.signal.throwIfAborted();
    const handle = await this.#acquire(spec, options.signal);
    this.#busy.add(handle);
    let outcome: CallOutcome;
    try {
      outcome = await this.#runLimited(handle, { ...request, id: this.#nextId++ }, options);
    } catch (err) {
      this.#busy.delete(handle);
      this.#discard(handle);
      throw err;
    }
    this.#busy.delete(handle);
    this.#release(handle);
    if (outcome.ok) return outcome.value;
    throw rebuildError(outcome.error, request);
  }

  /** Ends every worker and rejects calls waiting for one. Resolves once all are gone. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.reject(new BrokerError("the server stopped before a worker was free"));
    }
    for (const handle of [...this.#live]) this.#discard(handle);
    this.#idle.clear();
    await Promise.all(this.#ending);
  }

  #runLimited(
    handle: WorkerHandle,
    request: CallRequest,
    { timeoutMs, signal }: PoolCallOptions,
  ): Promise<CallOutcome> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const ids = { funcName: request.funcName, messageId: request.messageId };
      let settled = false;
      let limit: Timeout | undefined;
      const finish = () => {
        settled = true;
        limit?.cancel();
        signal.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        finish();
        reject(signal.reason);
      };
      const limitRun = () => {
        if (timeoutMs === null) return;
        limit = timeouts.start(timeoutMs, () => {
          finish();
          reject(
            new WorkerTimeoutError(
              `"${request.funcName}" did not finish within workerTimeoutMs (${timeoutMs} ms); ` +
                `its ${handle.spec.type} worker was ended`,
              ids,
            ),
          );
        });
      };
      if (this.#ready.has(handle)) {
        limitRun();
      } else {
        limit = timeouts.start(WORKER_START_LIMIT_MS, () => {
          finish();
          reject(
            new WorkerCrashedError(
              `the ${handle.spec.type} worker for "${request.funcName}" did not load its module ` +
                `within ${WORKER_START_LIMIT_MS} ms`,
              ids,
            ),
          );
        });
        handle.ready.then(() => {
          if (settled) return;
          limit?.cancel();
          limitRun();
        });
      }
      signal.addEventListener("abort", onAbort, { once: true });
      handle.run(request).then(
        (outcome) => {
          finish();
          resolve(outcome);
        },
        (err) => {
          finish();
          reject(err);
        },
      );
    });
  }

  #acquire(spec: WorkerSpec, signal: AbortSignal): Promise<WorkerHandle> {
    if (this.#closed) {
      return Promise.reject(new BrokerError("the server is stopping: no worker can be started"));
    }
    const idle = this.#takeIdle(spec.key);
    if (idle !== undefined) return Promise.resolve(idle);
    if (this.#live.size >= this.#maxWorkers) this.#endIdleOfOtherKind(spec.key);
    if (this.#live.size < this.#maxWorkers) return Promise.resolve(this.#startNew(spec));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at !== -1) this.#waiters.splice(at, 1);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        spec,
        resolve: (handle) => {
          signal.removeEventListener("abort", onAbort);
          resolve(handle);
        },
        reject: (error) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  #release(handle: WorkerHandle): void {
    if (!handle.alive) {
      // It answered, then died (its end can even arrive before this continuation runs).
      this.#endedBetweenCalls(handle);
      return;
    }
    if (this.#closed) {
      this.#discard(handle);
      return;
    }
    const same = this.#waiters.findIndex((waiter) => waiter.spec.key === handle.spec.key);
    if (same !== -1) {
      this.#waiters.splice(same, 1)[0]!.resolve(handle);
      return;
    }
    if (this.#waiters.length > 0) {
      // Someone waits for another kind: make room for it.
      this.#discard(handle);
      return;
    }
    const list = this.#idle.get(handle.spec.key);
    if (list === undefined) this.#idle.set(handle.spec.key, [handle]);
    else list.push(handle);
  }

  #discard(handle: WorkerHandle): void {
    if (!this.#live.delete(handle)) return;
    const list = this.#idle.get(handle.spec.key);
    if (list !== undefined) {
      const at = list.indexOf(handle);
      if (at !== -1) list.splice(at, 1);
    }
    const ending = handle.terminate().finally(() => this.#ending.delete(ending));
    this.#ending.add(ending);
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter.resolve(this.#startNew(waiter.spec));
  }

  #takeIdle(key: string): WorkerHandle | undefined {
    const list = this.#idle.get(key);
    while (list !== undefined && list.length > 0) {
      const handle = list.pop()!;
      if (handle.alive) return handle;
      this.#discard(handle);
    }
    return undefined;
  }

  #endIdleOfOtherKind(key: string): void {
    for (const [otherKey, list] of this.#idle) {
      if (otherKey === key || list.length === 0) continue;
      this.#discard(list[0]!);
      return;
    }
  }

  #endedBetweenCalls(handle: WorkerHandle): void {
    if (!this.#live.has(handle)) return;
    this.#logger.warn(`a ${handle.spec.type} worker ended between calls`, {
      module: handle.spec.module,
      reason: this.#endReasons.get(handle) ?? "unknown",
    });
    this.#discard(handle);
  }

  #startNew(spec: WorkerSpec): WorkerHandle {
    const handle = this.#start(spec);
    this.#live.add(handle);
    handle.ready.then(() => this.#ready.add(handle));
    handle.ended.then((reason) => {
      this.#endReasons.set(handle, reason);
      // A worker can die after answering (a timer of the function threw, say):
      // take it out at once, so that no call is sent to it. A busy one is
      // taken out when its call returns.
      if (this.#live.has(handle) && !this.#busy.has(handle)) this.#endedBetweenCalls(handle);
    });
    return handle;
  }
}

/** The error the function threw, rebuilt on the server for the result message. */
function rebuildError(thrown: ThrownError, request: PoolRequest): Error {
  const ids = { funcName: request.funcName, messageId: request.messageId };
  if (thrown.serialization) {
    return new SerializationError(
      `${request.funcName}() returned a value that cannot be sent: ${thrown.message}`,
      ids,
    );
  }
  const error = new Error(thrown.message) as Error & { code?: unknown; data?: unknown };
  Object.defineProperty(error, "name", { value: thrown.name, configurable: true, writable: true });
  error.stack = thrown.stack ?? `${thrown.name}: ${thrown.message}`;
  if (thrown.code !== undefined) error.code = thrown.code;
  if (thrown.data !== undefined) error.data = thrown.data;
  return error;
}
