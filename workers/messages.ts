/**
 * Messages between the server and its `thread` and `process` workers. A worker
 * runs one call at a time; the server sends a {@linkcode CallRequest} and the
 * worker answers with a {@linkcode CallOutcome}, or tells it is going down with
 * a {@linkcode CrashNotice}. Once it has loaded the function's module, it says
 * so with a {@linkcode ReadyNotice}. A `thread` worker first gets a
 * {@linkcode ThreadStart}, and most of its calls and outcomes then cross
 * through shared memory instead.
 *
 * @module
 */

/** A call for a worker to run. */
export interface CallRequest {
  /** Sequence number of the call on this worker. */
  id: number;
  /** Name of the export to call. */
  exportName: string;
  /** Name the caller used. */
  funcName: string;
  /** Bound positional arguments. */
  args: unknown[];
  /** `message_id` of the request. */
  messageId: string;
  /** Delivery attempt. */
  attempt: number;
  /** When the caller stops waiting (epoch ms), or `null`. */
  deadline: number | null;
}

/** An error the function threw, in a form that crosses to the server. */
export interface ThrownError {
  /** `name` of the error. */
  name: string;
  /** `message` of the error. */
  message: string;
  /** Stack trace in the worker. */
  stack?: string | undefined;
  /** `code` property, when it had one. */
  code?: unknown;
  /** `data` property, when it had one. */
  data?: unknown;
  /** Set when the function's result, not the function, is at fault. */
  serialization?: true;
}

/** How a call ended in the worker. */
export type CallOutcome =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: ThrownError };

/** The worker has loaded the function's module and takes calls. */
export interface ReadyNotice {
  /** Always `true`. */
  ready: true;
}

/** The worker is about to end, and why. */
export interface CrashNotice {
  /** A sentence for the caller's `WorkerCrashedError`. */
  crash: string;
}

/** What a worker sends to the server. */
export type WorkerMessage = CallOutcome | CrashNotice | ReadyNotice;

/** What the server sends a `thread` worker first: the memory they share. */
export interface ThreadStart {
  /** Shared memory for calls and outcomes (see `thread_buffer.ts`). */
  buffer: SharedArrayBuffer;
  /** The state of the server's spin policy (see `spin_policy.ts`). */
  spin: SharedArrayBuffer;
}
