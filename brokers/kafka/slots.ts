/**
 * The `prefetch` limit of a server's consumer: how many deliveries may be
 * unsettled at once, across all partitions.
 *
 * @module
 */

/** A counter of free places with a way to wait for one. */
export class Slots {
  #free: number;
  #wakers: (() => void)[] = [];

  /**
   * Creates the places, all free.
   *
   * @param size The number of places.
   */
  constructor(size: number) {
    this.#free = size;
  }

  /** Places free now. */
  get free(): number {
    return this.#free;
  }

  /** Takes a place; check {@linkcode Slots.free} first. */
  take(): void {
    this.#free--;
  }

  /** Gives a place back and wakes whoever waits. */
  give(): void {
    this.#free++;
    this.wake();
  }

  /** Wakes whoever waits, e.g. because the consumer is closing. */
  wake(): void {
    const wakers = this.#wakers;
    this.#wakers = [];
    for (const wake of wakers) wake();
  }

  /**
   * Waits until a place is given back, {@linkcode Slots.wake} is called, or
   * `ms` pass (callers heartbeat in between).
   *
   * @param ms The longest wait.
   */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers = this.#wakers.filter((waker) => waker !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakers.push(done);
    });
  }
}
