/**
 * Commits the ledgers of a server's partitions, coalescing: while one commit
 * is on its way, every partition that changes meanwhile waits for the next,
 * which carries them all (one OffsetCommit request per round). The state of
 * each partition is taken when its round goes out (by the `send` function),
 * not when the commit was asked for.
 *
 * @module
 */

/** One partition's commit: the offset and the ledger metadata (see `ledger.ts`). */
export interface PartitionCommit {
  /** The topic. */
  topic: string;
  /** The partition. */
  partition: number;
  /** The first offset not done. */
  offset: string;
  /** The ledger's metadata string. */
  metadata: string;
}

interface Waiter {
  key: string;
  resolve(): void;
  reject(err: unknown): void;
}

/** Coalescing committer; see the module docs. */
export class Committer {
  readonly #send: (keys: readonly string[]) => Promise<void>;
  #waiting: Waiter[] = [];
  #flushing: Promise<void> | undefined;

  /**
   * Creates a committer for one consumer.
   *
   * @param send Commits the partitions (`topic/partition`) as they stand when
   *   it runs, leaving out those this server no longer owns.
   */
  constructor(send: (keys: readonly string[]) => Promise<void>) {
    this.#send = send;
  }

  /**
   * Commits the partition's state as it is now (or later).
   *
   * @param key The partition (`topic/partition`).
   * @returns Resolves once a commit carrying this state succeeded; rejects
   *   with kafkajs's error when that commit failed (e.g. in a rebalance).
   */
  commit(key: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ key, resolve, reject });
      this.#start();
    });
  }

  /** Resolves when nothing is waiting to be committed. */
  async idle(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
  }

  #start(): void {
    if (this.#flushing !== undefined) return;
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = undefined;
      // A commit asked for between the last round and now would otherwise wait forever.
      if (this.#waiting.length > 0) this.#start();
    });
  }

  async #flush(): Promise<void> {
    while (this.#waiting.length > 0) {
      const round = this.#waiting;
      this.#waiting = [];
      try {
        await this.#send([...new Set(round.map((waiter) => waiter.key))]);
        for (const waiter of round) waiter.resolve();
      } catch (err) {
        for (const waiter of round) waiter.reject(err);
      }
    }
  }
}
