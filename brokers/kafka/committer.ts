/**
 * Commits the ledgers of a server's partitions, coalescing: while one commit
 * is on its way, every partition that changes meanwhile waits for the next,
 * which carries them all (one OffsetCommit request per round).
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
  readonly #snapshot: (key: string) => PartitionCommit | undefined;
  readonly #commit: (commits: PartitionCommit[]) => Promise<void>;
  #waiting: Waiter[] = [];
  #flushing: Promise<void> | undefined;

  /**
   * Creates a committer for one consumer.
   *
   * @param snapshot The commit of a partition as it stands now, or `undefined`
   *   when this server no longer owns it (nothing to commit).
   * @param commit Sends the commits (kafkajs `consumer.commitOffsets`).
   */
  constructor(
    snapshot: (key: string) => PartitionCommit | undefined,
    commit: (commits: PartitionCommit[]) => Promise<void>,
  ) {
    this.#snapshot = snapshot;
    this.#commit = commit;
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
      const commits = [...new Set(round.map((waiter) => waiter.key))]
        .map((key) => this.#snapshot(key))
        .filter((commit) => commit !== undefined);
      try {
        if (commits.length > 0) await this.#commit(commits);
        for (const waiter of round) waiter.resolve();
      } catch (err) {
        for (const waiter of round) waiter.reject(err);
      }
    }
  }
}
