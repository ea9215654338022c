/**
 * Shared memory between the server and one `thread` worker, for calls that
 * follow each other closely. Waking a sleeping thread costs tens to hundreds
 * of microseconds (more on a virtual machine), and a `postMessage` round trip
 * pays it twice; so each side waits for the other without sleeping for a
 * moment. While calls come in a stream (less than {@linkcode WORKER_SPIN_MS}
 * apart), the worker spins on the buffer between them, and the server spins
 * briefly for the outcome of a quick function; otherwise the worker sleeps on
 * the buffer in `Atomics.wait`, and the server does not spin for a worker it
 * has to wake (the woken thread may be placed on the server's own core, and
 * would wait for the spin to end). Both spin only when
 * {@link ./spin_policy.ts} says a core is likely free. Calls and outcomes cross
 * as JSON text ({@link ./json_text.ts}).
 *
 * Everything else keeps to `postMessage`: a call to a worker that is back in
 * its event loop (its first call, or after a quiet spell), the outcome of a
 * call that takes longer than the server's spin, and any call or outcome
 * without JSON text that fits the buffer. A worker goes back to its event loop
 * at least every {@linkcode WORKER_HOT_MS}, so that timers and I/O a function
 * left behind still run.
 *
 * Layout: 32-bit words (worker state, outcome state, call length, outcome
 * length, last run time, whether calls stream), then the data area, which a
 * call and then its outcome use in turn.
 *
 * @module
 */

import { jsonText } from "./json_text.ts";
import type { CallOutcome, CallRequest } from "./messages.ts";
import { SpinPolicy } from "./spin_policy.ts";

/** Bytes of a buffer's data area: longer calls and outcomes go by `postMessage`. */
export const SHARED_DATA_BYTES = 256 * 1024;
/**
 * Longest the server spins, blocking its event loop, for the outcome of a
 * call in the buffer. It spins only when the worker's previous call ran for
 * less than this: for slower functions the spin would be wasted.
 */
export const SERVER_SPIN_MS = 0.1;
/**
 * How long a worker spins on the buffer after answering, before it sleeps
 * there, when its last call came at most this long after the one before
 * ended.
 */
export const WORKER_SPIN_MS = 1;
/**
 * Longest a worker stays on the buffer before it goes back to its event loop;
 * timers and I/O a function leaves running after it returns may wait that long.
 */
export const WORKER_HOT_MS = 20;

const HEADER_BYTES = 32;

// Words of the header.
const WORKER = 0;
const OUTCOME = 1;
const CALL_BYTES = 2;
const OUTCOME_BYTES = 3;
/** How long the worker's last call ran, in microseconds. */
const RUN_MICROS = 4;
/** 1 when the last call came within {@linkcode WORKER_SPIN_MS} of the end of the one before. */
const STREAMING = 5;

// States of the worker. The server moves it from LISTENING or SLEEPING to
// CALLED, and to CLOSED.
/** In its event loop: a call must be posted. */
const COLD = 0;
/** Spinning on the buffer. */
const LISTENING = 1;
/** Sleeping on the buffer: a call must wake it. */
const SLEEPING = 2;
/** A call waits: in the buffer, or posted when the call length is -1. */
const CALLED = 3;
/** Running a call. */
const BUSY = 4;
/** Ended by the server. */
const CLOSED = 5;

// States of a call's outcome.
/** The server waits for it on the buffer. */
const AWAITED = 0;
/** It is in the buffer. */
const IN_BUFFER = 1;
/** It comes by `postMessage`. */
const POSTED = 2;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes text to the data area; `undefined` when it does not fit. */
function write(data: Uint8Array, text: string): number | undefined {
  const { read, written } = encoder.encodeInto(text, data);
  return read === text.length ? written : undefined;
}

/** Reads the JSON value of the first `bytes` bytes of the data area. */
function read(data: Uint8Array, bytes: number): unknown {
  return JSON.parse(decoder.decode(data.subarray(0, bytes)));
}

/** Spins until `header[index]` is no longer `value` or `until` has passed. */
function spinWhile(header: Int32Array, index: number, value: number, until: number): void {
  while (Atomics.load(header, index) === value && performance.now() < until) {
    Atomics.pause();
  }
}

/** The server's side of a worker's buffer. */
export class ServerEnd {
  /** The memory to send to the worker. */
  readonly buffer: SharedArrayBuffer;
  readonly #header: Int32Array;
  readonly #data: Uint8Array;
  readonly #spin: SpinPolicy;
  /** Whether the worker was spinning when it got the last call. */
  #workerAwake = false;
  /** When the last call ended. */
  #lastEnded = -Infinity;

  /**
   * @param spin When to spin (the process's policy, also sent to the worker).
   * @param dataBytes Size of the data area.
   */
  constructor(spin: SpinPolicy, dataBytes: number = SHARED_DATA_BYTES) {
    this.buffer = new SharedArrayBuffer(HEADER_BYTES + dataBytes);
    this.#header = new Int32Array(this.buffer, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(this.buffer, HEADER_BYTES);
    this.#spin = spin;
  }

  /**
   * Puts a call in the buffer, if the worker waits there and the call has
   * JSON text that fits; then wait for its outcome with {@linkcode awaitOutcome}.
   * Otherwise gets the worker ready for the call to be posted: a worker
   * waiting on the buffer goes back to its event loop for it, and will post
   * the outcome.
   *
   * @param request The call.
   * @returns `true` when the call is in the buffer, `false` when it must be posted now.
   */
  offer(request: CallRequest): boolean {
    const header = this.#header;
    const streaming = performance.now() - this.#lastEnded <= WORKER_SPIN_MS;
    Atomics.store(header, STREAMING, streaming ? 1 : 0);
    if (this.#listening()) {
      const text = jsonText(request, { maxLength: this.#data.length, loose: false });
      const bytes = text === undefined ? undefined : write(this.#data, text);
      if (bytes !== undefined) {
        Atomics.store(header, OUTCOME, AWAITED);
        Atomics.store(header, CALL_BYTES, bytes);
        if (this.#call()) return true;
      }
    }
    // Before the call is posted: a worker quick to answer it must not answer in the buffer.
    Atomics.store(header, OUTCOME, POSTED);
    Atomics.store(header, CALL_BYTES, -1);
    this.#call();
    return false;
  }

  /**
   * Takes the outcome of the call put in the buffer, spinning for it (and
   * blocking the event loop) when the worker was awake, its previous call was
   * quick and the spin policy allows.
   *
   * @param spinMs Longest spin.
   * @returns The outcome, or `undefined` when the worker will post it.
   */
  awaitOutcome(spinMs: number): CallOutcome | undefined {
    const header = this.#header;
    const quick = Atomics.load(header, RUN_MICROS) < spinMs * 1000;
    if (this.#workerAwake && quick && this.#spin.serverMaySpin()) {
      // A quick worker answers sooner than this thread would wake from its event loop.
      spinWhile(header, OUTCOME, AWAITED, performance.now() + spinMs);
      // A worker that has not even taken the call did not get a core; a slow function is no sign.
      this.#spin.spun(Atomics.load(header, WORKER) !== CALLED);
    }
    if (Atomics.compareExchange(header, OUTCOME, AWAITED, POSTED) !== IN_BUFFER) return undefined;
    return read(this.#data, Atomics.load(header, OUTCOME_BYTES)) as CallOutcome;
  }

  /** Counts a call in flight, until {@linkcode callEnded}. */
  callStarted(): void {
    this.#spin.callStarted();
  }

  /** A call has ended, one way or another. */
  callEnded(): void {
    this.#spin.callEnded();
    this.#lastEnded = performance.now();
  }

  /** Tells the worker to stop waiting on the buffer, before it is terminated. */
  close(): void {
    Atomics.store(this.#header, WORKER, CLOSED);
    Atomics.notify(this.#header, WORKER);
  }

  #listening(): boolean {
    const state = Atomics.load(this.#header, WORKER);
    return state === LISTENING || state === SLEEPING;
  }

  /** Hands the call to a worker on the buffer, waking it if it sleeps; `false` when it is not there. */
  #call(): boolean {
    const header = this.#header;
    // At most a few turns: a spinning worker may fall asleep meanwhile.
    for (let state = Atomics.load(header, WORKER); state === LISTENING || state === SLEEPING;) {
      const seen = Atomics.compareExchange(header, WORKER, state, CALLED);
      if (seen === state) {
        this.#workerAwake = state === LISTENING;
        if (state === SLEEPING) Atomics.notify(header, WORKER);
        return true;
      }
      state = seen;
    }
    return false;
  }
}

/** The worker's side of its buffer. */
export class WorkerEnd {
  readonly #header: Int32Array;
  readonly #data: Uint8Array;
  readonly #spin: SpinPolicy;
  readonly #hotMs: number;
  /** Until when the worker may stay away from its event loop. */
  #hotUntil = 0;
  #cold = true;
  /** When the call being run was taken. */
  #takenAt = 0;

  /**
   * @param buffer The memory the server sent.
   * @param spin The state of the server's spin policy.
   * @param hotMs Longest stay on the buffer, away from the event loop.
   */
  constructor(buffer: SharedArrayBuffer, spin: SharedArrayBuffer, hotMs: number = WORKER_HOT_MS) {
    this.#header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(buffer, HEADER_BYTES);
    this.#spin = new SpinPolicy(spin);
    this.#hotMs = hotMs;
  }

  /** A call arrived by `postMessage`: the worker runs it. */
  tookPosted(): void {
    this.#takenAt = performance.now();
    if (this.#cold) {
      // Its event loop has just been idle: it may stay on the buffer for a while again.
      this.#cold = false;
      this.#hotUntil = this.#takenAt + this.#hotMs;
    }
    Atomics.compareExchange(this.#header, WORKER, COLD, BUSY);
  }

  /**
   * Hands over a call's outcome: in the buffer when the server waits there
   * and it has JSON text that fits, else with `post`.
   *
   * @param outcome The outcome.
   * @param post Posts an outcome to the server.
   */
  answer(outcome: CallOutcome, post: (outcome: CallOutcome) => void): void {
    const header = this.#header;
    const now = performance.now();
    const runMicros = Math.round((now - this.#takenAt) * 1000);
    Atomics.store(header, RUN_MICROS, Math.min(runMicros, 2 ** 31 - 1));
    // Listen before answering: the server may send the next call at once.
    this.#cold = now >= this.#hotUntil;
    Atomics.compareExchange(header, WORKER, BUSY, this.#cold ? COLD : LISTENING);
    if (Atomics.load(header, OUTCOME) === AWAITED) {
      const text = jsonText(outcome, { maxLength: this.#data.length, loose: true });
      const bytes = text === undefined ? undefined : write(this.#data, text);
      if (bytes !== undefined) {
        Atomics.store(header, OUTCOME_BYTES, bytes);
        if (Atomics.compareExchange(header, OUTCOME, AWAITED, IN_BUFFER) === AWAITED) return;
      }
    }
    // Before posting: the server stops spinning, and cannot send another call yet.
    Atomics.store(header, OUTCOME, POSTED);
    post(outcome);
  }

  /**
   * Waits on the buffer for the next call: spins (in a stream of calls, when
   * the spin policy allows), then sleeps, until the worker has been away from
   * its event loop for its hot time ({@linkcode WORKER_HOT_MS}).
   *
   * @returns The call, or `undefined` when the worker must go back to its
   *   event loop (for a posted call, for its own timers, or to end).
   */
  listen(): CallRequest | undefined {
    const header = this.#header;
    const hotUntil = this.#hotUntil;
    if (Atomics.load(header, STREAMING) === 1 && this.#spin.workerMaySpin()) {
      // A call that follows at once is taken without a wake-up.
      const spinUntil = Math.min(performance.now() + WORKER_SPIN_MS, hotUntil);
      spinWhile(header, WORKER, LISTENING, spinUntil);
    }
    if (Atomics.compareExchange(header, WORKER, LISTENING, SLEEPING) === LISTENING) {
      let now = performance.now();
      while (Atomics.load(header, WORKER) === SLEEPING && now < hotUntil) {
        Atomics.wait(header, WORKER, SLEEPING, hotUntil - now);
        now = performance.now();
      }
      if (Atomics.compareExchange(header, WORKER, SLEEPING, COLD) === SLEEPING) {
        this.#cold = true;
        return undefined;
      }
    }
    if (Atomics.compareExchange(header, WORKER, CALLED, BUSY) !== CALLED) return undefined;
    this.#takenAt = performance.now();
    const bytes = Atomics.load(header, CALL_BYTES);
    return bytes < 0 ? undefined : read(this.#data, bytes) as CallRequest;
  }
}
