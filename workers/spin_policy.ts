/**
 * When the server and its `thread` workers may spin on their shared buffers
 * ({@link ./thread_buffer.ts}) instead of sleeping. Spinning pays only when a
 * core is free for it: with several calls in flight, or on a machine whose
 * cores are busy with other work, a spinning thread takes the core that the
 * thread it waits for needs, and every call gets slower.
 *
 * So both sides spin only while a single `thread` call is in flight in the
 * process, and the server judges the machine by its own spins: when in
 * several spins of a short run the worker did not even take the call, it
 * stops spinning (and tells the workers to stop) for a pause, which doubles
 * while spins keep failing.
 *
 * The state is shared with every worker: two 32-bit words, the number of
 * calls in flight and whether spinning is allowed.
 *
 * @module
 */

/** A run of spins judged together. */
const RUN = 32;
/** Failed spins a run may have; one more pauses spinning. */
const MISSES_ALLOWED = 4;
/** First pause, and the longest. */
const FIRST_PAUSE_MS = 10;
const LONGEST_PAUSE_MS = 1_000;

// Words of the shared state.
const CALLS = 0;
const ALLOWED = 1;

let forProcess: SpinPolicy | undefined;

/** The spin decisions of one process and its `thread` workers. */
export class SpinPolicy {
  /** The shared state, to send to workers. */
  readonly buffer: SharedArrayBuffer;
  readonly #state: Int32Array;
  #spins = 0;
  #misses = 0;
  #pauseMs = FIRST_PAUSE_MS;
  #pausedUntil = 0;

  /**
   * The server's policy, shared by all its workers and pools.
   *
   * @returns The policy of this process.
   */
  static forProcess(): SpinPolicy {
    if (forProcess === undefined) {
      const buffer = new SharedArrayBuffer(8);
      new Int32Array(buffer)[ALLOWED] = 1;
      forProcess = new SpinPolicy(buffer);
    }
    return forProcess;
  }

  /** @param buffer The shared state: the process's own, or one a worker received. */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#state = new Int32Array(buffer, 0, 2);
  }

  /** Server: a call is in flight until {@linkcode callEnded}; ends a pause that is over. */
  callStarted(): void {
    Atomics.add(this.#state, CALLS, 1);
    if (Atomics.load(this.#state, ALLOWED) === 0 && performance.now() >= this.#pausedUntil) {
      Atomics.store(this.#state, ALLOWED, 1);
    }
  }

  /** Server: a call has ended, one way or another. */
  callEnded(): void {
    Atomics.sub(this.#state, CALLS, 1);
  }

  /**
   * Server: whether to spin for the outcome of the call it just sent.
   *
   * @returns `true` when it is the only call in flight and spinning is not paused.
   */
  serverMaySpin(): boolean {
    return Atomics.load(this.#state, CALLS) <= 1 && Atomics.load(this.#state, ALLOWED) === 1;
  }

  /**
   * Server: how a spin ended.
   *
   * @param taken Whether the worker took the call while the server spun.
   */
  spun(taken: boolean): void {
    if (!taken) this.#misses++;
    if (this.#misses > MISSES_ALLOWED) {
      // The machine is busy: sleep like any other thread for a while.
      Atomics.store(this.#state, ALLOWED, 0);
      this.#pausedUntil = performance.now() + this.#pauseMs;
      this.#pauseMs = Math.min(this.#pauseMs * 2, LONGEST_PAUSE_MS);
      this.#spins = 0;
      this.#misses = 0;
    } else if (++this.#spins === RUN) {
      this.#pauseMs = FIRST_PAUSE_MS;
      this.#spins = 0;
      this.#misses = 0;
    }
  }

  /**
   * Worker: whether to spin for the next call, having just answered one (the
   * server counts it in flight until it has the outcome).
   *
   * @returns `true` when no other call is in flight and spinning is not paused.
   */
  workerMaySpin(): boolean {
    return Atomics.load(this.#state, CALLS) <= 1 && Atomics.load(this.#state, ALLOWED) === 1;
  }
}
