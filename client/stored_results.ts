/**
 * Reading the stored results of waiting calls from their result keys, for
 * results nobody pushes: those of raw calls (a raw server never pushes:
 * {@linkcode StoredResults}), and on Redis those of native calls a PRPC server
 * ran (it stores the result and publishes nothing: {@linkcode UnpushedResults}).
 * The calls are read together, with one request where the broker can (`MGET`
 * on Redis).
 *
 * @module
 */

import { clearImmediate, setImmediate } from "node:timers";
import { ChurnMap } from "../protocol/churn.ts";
import type { Logger } from "../protocol/logger.ts";

/** How a {@linkcode StoredResults} reads. */
export interface StoredResultsOptions {
  /** Reads the stored results of calls, `null` where there is none yet. */
  read(messageIds: string[]): Promise<(string | null)[]>;
  /** A result was found for a call. */
  found(messageId: string, body: string): void;
  /** Where read failures are reported (at `debug`: the calls time out if they persist). */
  logger: Logger;
  /** Longest pause between two reads. */
  maxPauseMs: number;
  /** The most keys one read asks for; more calls are read in turns. Default 1,000. */
  maxPerRead?: number;
}

/**
 * The calls whose stored results are read until they come or the calls end:
 * a call is read at once (calls sent in the same turn share one read), then
 * with a pause that doubles from 1 ms up to `maxPauseMs`.
 */
export class StoredResults {
  readonly #options: StoredResultsOptions;
  /** The watched calls, by `message_id`. */
  readonly #watched = new ChurnMap<true>();
  /** Cancels the next scheduled read, if any. */
  #cancel: (() => void) | undefined;
  #queued = false;
  /** A read is under way (it schedules the next one). */
  #reading = false;
  /** The pause before the next read: 1 ms after a call was sent, doubling. */
  #pauseMs = 0;
  #closed = false;
  /** Where the next read starts, when more calls wait than one read takes. */
  readonly #turns = { offset: 0 };

  /**
   * A reader.
   *
   * @param options What to read, where to hand results, and how often.
   */
  constructor(options: StoredResultsOptions) {
    this.#options = options;
  }

  /** Number of calls watched. */
  get size(): number {
    return this.#watched.size;
  }

  /**
   * Reads a call's stored result until it is found or {@linkcode forget} is called.
   *
   * @param messageId The call.
   */
  watch(messageId: string): void {
    if (this.#closed) return;
    this.#watched.set(messageId, true);
    // A timer, even of 0 ms, would add milliseconds to every call: read in a microtask.
    this.#pauseMs = 0;
    if (this.#reading || this.#queued) return;
    this.#cancel?.();
    this.#cancel = undefined;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      void this.#read();
    });
  }

  /**
   * Stops reading a call's result (it ended).
   *
   * @param messageId The call.
   */
  forget(messageId: string): void {
    if (this.#watched.delete(messageId) && this.#watched.size === 0) {
      this.#cancel?.();
      this.#cancel = undefined;
    }
  }

  /** Stops reading. */
  close(): void {
    this.#closed = true;
    this.#cancel?.();
    this.#cancel = undefined;
    this.#watched.clear();
  }

  async #read(): Promise<void> {
    this.#cancel = undefined;
    const maxPauseMs = this.#options.maxPauseMs;
    const messageIds = inTurns(
      this.#watched.keys(),
      this.#options.maxPerRead ?? 1_000,
      this.#turns,
    );
    if (this.#closed) return;
    let pauseMs = maxPauseMs;
    if (messageIds.length > 0) {
      this.#reading = true;
      try {
        const bodies = await this.#options.read(messageIds);
        messageIds.forEach((messageId, i) => {
          const body = bodies[i];
          if (body !== null && body !== undefined && this.#watched.has(messageId)) {
            this.#options.found(messageId, body);
          }
        });
        pauseMs = this.#pauseMs;
        this.#pauseMs = Math.min(Math.max(pauseMs * 2, 1), maxPauseMs);
      } catch (err) {
        // The calls may still complete (e.g. the connection comes back): keep reading until they
        // time out.
        this.#options.logger.debug("cannot read stored results; trying again", {
          calls: messageIds.length,
          error: err instanceof Error ? err.message : String(err),
        });
      } finally {
        this.#reading = false;
      }
    }
    if (this.#watched.size > 0 && !this.#closed && this.#cancel === undefined) {
      this.#schedule(pauseMs);
    }
  }

  /**
   * The next read: after `pauseMs`, or with 0 as soon as the event loop has
   * run once more (a server in the same process gets its turn; a 0 ms timer
   * would take about 2 ms in Deno).
   */
  #schedule(pauseMs: number): void {
    if (pauseMs === 0) {
      const handle = setImmediate(() => void this.#read());
      this.#cancel = () => clearImmediate(handle);
    } else {
      const timer = setTimeout(() => void this.#read(), pauseMs);
      this.#cancel = () => clearTimeout(timer);
    }
  }
}

/** How an {@linkcode UnpushedResults} reads. */
export interface UnpushedResultsOptions {
  /** The calls still waiting, by `message_id`. */
  waiting(): string[];
  /** Reads the stored results of calls, `null` where there is none yet. */
  read(messageIds: string[]): Promise<(string | null)[]>;
  /** A result was found for a call. */
  found(messageId: string, body: string): void;
  /** Where read failures are reported (at `debug`). */
  logger: Logger;
  /** How often the keys are read; a call is read once it has waited at least this long. */
  intervalMs: number;
  /** The most keys one read asks for; more calls waiting are read in turns. Default 1,000. */
  maxPerRead?: number;
}

/**
 * Reads, every `intervalMs`, the stored results of the calls that were already
 * waiting at the previous read: results a server stored without pushing them
 * (a PRPC server). Nothing is done per call but {@linkcode kick}, which only
 * makes sure the timer runs, so a call answered by push in time costs nothing.
 */
export class UnpushedResults {
  readonly #options: UnpushedResultsOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The calls waiting at the previous tick. */
  #previous = new Set<string>();
  /** Where the next read starts among the old calls, when they are more than one read takes. */
  readonly #turns = { offset: 0 };
  #closed = false;

  /**
   * A reader.
   *
   * @param options Which calls wait, what to read, where to hand results, how often.
   */
  constructor(options: UnpushedResultsOptions) {
    this.#options = options;
  }

  /** A call was sent: reading runs while calls wait. */
  kick(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => void this.#tick(), this.#options.intervalMs);
  }

  /** Stops reading. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #tick(): Promise<void> {
    const waiting = this.#options.waiting();
    // Thousands of slow calls: one bounded read per tick, in turns, not one huge MGET.
    const old = inTurns(
      waiting.filter((id) => this.#previous.has(id)),
      this.#options.maxPerRead ?? 1_000,
      this.#turns,
    );
    this.#previous = new Set(waiting);
    if (old.length > 0) {
      try {
        const bodies = await this.#options.read(old);
        old.forEach((messageId, i) => {
          const body = bodies[i];
          if (body !== null && body !== undefined) this.#options.found(messageId, body);
        });
      } catch (err) {
        this.#options.logger.debug("cannot read stored results; trying again", {
          calls: old.length,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    this.#timer = undefined;
    if (this.#closed) return;
    if (this.#options.waiting().length > 0) this.kick();
    else this.#previous.clear();
  }
}

/**
 * At most `most` of `ids`, starting where the previous turn ended and wrapping
 * round, so that every id is read within a few turns.
 */
function inTurns(ids: string[], most: number, turns: { offset: number }): string[] {
  if (ids.length <= most) return ids;
  if (turns.offset >= ids.length) turns.offset = 0;
  const start = turns.offset;
  turns.offset = start + most;
  return [
    ...ids.slice(start, start + most),
    ...ids.slice(0, Math.max(0, start + most - ids.length)),
  ];
}
