/**
 * Many timeouts on one timer. Every call has a time limit (the client's call
 * timeout, the server's `workerTimeoutMs`, a broker command's reply limit), and
 * starting a runtime timer for each costs more than the rest of a fast call's
 * bookkeeping. Timeouts of one duration end in the order they started, so each
 * duration keeps a linked list ordered by deadline: adding and cancelling are
 * O(1), and one runtime timer waits for the earliest deadline of all lists.
 *
 * Internal: not part of the public API.
 *
 * @module
 */

/** A started timeout; {@linkcode Timeout.cancel} stops it. */
export interface Timeout {
  /** Stops the timeout; its callback will not run. Calling it again does nothing. */
  cancel(): void;
}

class Entry implements Timeout {
  prev: Entry | undefined;
  next: Entry | undefined;
  #list: TimeoutList | undefined;

  constructor(
    list: TimeoutList,
    readonly at: number,
    readonly callback: () => void,
  ) {
    this.#list = list;
  }

  cancel(): void {
    const list = this.#list;
    if (list === undefined) return;
    this.#list = undefined;
    list.remove(this);
  }

  /** Marks the entry ended, as the list removes it to run it. */
  detach(): void {
    this.#list = undefined;
  }
}

/** Timeouts of one duration, oldest first. */
class TimeoutList {
  head: Entry | undefined;
  tail: Entry | undefined;

  constructor(readonly durationMs: number, readonly owner: Timeouts) {}

  push(entry: Entry): void {
    entry.prev = this.tail;
    if (this.tail === undefined) {
      this.head = entry;
      this.owner.filled();
    } else this.tail.next = entry;
    this.tail = entry;
  }

  remove(entry: Entry): void {
    if (entry.prev === undefined) this.head = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === undefined) this.tail = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = entry.next = undefined;
    if (this.head === undefined) this.owner.emptied();
  }
}

/** A set of timeouts sharing one runtime timer. */
export class Timeouts {
  /** By duration; empty lists are dropped when the timer fires. */
  readonly #lists = new Map<number, TimeoutList>();
  /** How many lists hold a timeout. */
  #filled = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the runtime timer fires (`performance.now()` time), or `Infinity`. */
  #timerAt = Infinity;
  /** No timeout is pending: the timer is left to run out, and does not keep the process alive. */
  #idle = false;

  /**
   * Starts a timeout.
   *
   * @param durationMs How long until `callback` runs, in milliseconds.
   * @param callback What to run; it must not throw.
   * @returns The handle to cancel it.
   */
  start(durationMs: number, callback: () => void): Timeout {
    let list = this.#lists.get(durationMs);
    if (list === undefined) {
      list = new TimeoutList(durationMs, this);
      this.#lists.set(durationMs, list);
    }
    const entry = new Entry(list, performance.now() + durationMs, callback);
    list.push(entry);
    if (entry.at < this.#timerAt) this.#schedule(entry.at);
    else if (this.#idle) {
      // The timer left running fires first, finds nothing due, and waits for this one.
      this.#idle = false;
      setTimerRef(this.#timer, true);
    }
    return entry;
  }

  /** Called by a list that has got its first timeout. */
  filled(): void {
    this.#filled++;
  }

  /**
   * Called by a list that has become empty. It stays in the map until the
   * timer fires: deleting and adding it again for every call one after another
   * would churn the map (see `churn.ts`).
   */
  emptied(): void {
    if (--this.#filled > 0) return;
    // Nothing left to wait for. The timer is not cleared: calls one after another would start
    // and clear one each, which costs more than the rest of a call's bookkeeping. Unreferenced,
    // it keeps neither the process nor a test alive.
    this.#idle = true;
    setTimerRef(this.#timer, false);
  }

  #schedule(at: number): void {
    clearTimeout(this.#timer);
    this.#idle = false;
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, Math.ceil(at - performance.now())));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#idle = false;
    const now = performance.now();
    const due: Entry[] = [];
    let next = Infinity;
    for (const list of [...this.#lists.values()]) {
      while (list.head !== undefined && list.head.at <= now) {
        const entry = list.head;
        list.remove(entry);
        entry.detach();
        due.push(entry);
      }
      if (list.head === undefined) this.#lists.delete(list.durationMs);
      else next = Math.min(next, list.head.at);
    }
    if (next < Infinity) this.#schedule(next);
    for (const entry of due) entry.callback();
  }
}

/** Lets a runtime timer keep the process alive, or not (Node-style timer objects, or Deno's ids). */
function setTimerRef(timer: ReturnType<typeof setTimeout> | undefined, ref: boolean): void {
  if (timer === undefined) return;
  if (typeof timer === "number") {
    if (ref) Deno.refTimer(timer);
    else Deno.unrefTimer(timer);
    return;
  }
  const handle = timer as { ref?(): void; unref?(): void };
  if (ref) handle.ref?.();
  else handle.unref?.();
}

/** The timeouts of this process (client calls, worker time limits, broker commands). */
export const timeouts: Timeouts = new Timeouts();
