/**
 * Results that finish together are settled together: a server's consumer
 * gathers the completions made during one turn of the microtask queue (the
 * calls of one read usually finish in the same turn) and settles them with one
 * run of the `COMPLETE` script. One call alone is sent at once, in its own
 * batch: batching adds no waiting.
 *
 * While the consumer's reader is about to read again, it takes the batch and
 * sends it on its own connection just before the read, in the same write; a
 * batch it does not take by the end of the turn is sent the usual way.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** One request to settle with its result. */
export interface Completion {
  /** The request stream. */
  stream: string;
  /** The request's entry id. */
  id: string;
  /** Where the result is stored. */
  resultKey: string;
  /** The result's JSON text. */
  body: string;
  /** The caller's inbox channel, or `""`. */
  replyTo: string;
}

interface Batch {
  readonly items: Completion[];
  /** Settles with the batch: every completion of a batch waits on this one promise. */
  readonly settled: PromiseWithResolvers<void>;
  sent: boolean;
}

/** Most completions settled by one script run (Lua's stack bounds a script's arguments). */
export const MAX_BATCH = 256;

/** Gathers completions into batches and settles each batch with `settle`. */
export class CompletionBatcher {
  readonly #settle: (items: Completion[]) => Promise<unknown>;
  readonly #held: () => boolean;
  #open: Batch | undefined;

  /**
   * @param settle Settles a batch (runs the script); its failure fails every
   *   completion of the batch.
   * @param held Whether a batch opened now waits for {@linkcode CompletionBatcher.flush}
   *   until the end of the turn, instead of being sent after this turn's microtasks.
   */
  constructor(
    settle: (items: Completion[]) => Promise<unknown>,
    held: () => boolean = () => false,
  ) {
    this.#settle = settle;
    this.#held = held;
  }

  /**
   * Sends the batch being gathered now, if any.
   *
   * @param settle How to settle it, instead of the usual way.
   */
  flush(settle: (items: Completion[]) => Promise<unknown>): void {
    const batch = this.#open;
    if (batch !== undefined) this.#send(batch, settle);
  }

  /**
   * Adds a completion to the batch of this turn.
   *
   * @param item The completion.
   * @returns Resolves once its batch is settled.
   */
  add(item: Completion): Promise<void> {
    let batch = this.#open;
    if (batch === undefined) {
      const fresh: Batch = { items: [], settled: Promise.withResolvers<void>(), sent: false };
      this.#open = batch = fresh;
      if (this.#held()) setImmediate(() => this.#send(fresh));
      else queueMicrotask(() => this.#send(fresh));
    }
    batch.items.push(item);
    if (batch.items.length >= MAX_BATCH) this.#send(batch);
    return batch.settled.promise;
  }

  #send(batch: Batch, settle = this.#settle): void {
    if (this.#open === batch) this.#open = undefined;
    if (batch.sent) return;
    batch.sent = true;
    settle(batch.items).then(() => batch.settled.resolve(), batch.settled.reject);
  }
}
