/**
 * What a server knows about the requests of one partition it owns, and how
 * that knowledge survives in the group's committed offset.
 *
 * Kafka keeps one committed offset per partition and group, and no delivery
 * count. prpc runs several requests of a partition at once, so requests finish
 * out of order; the committed offset is the first request that is not done
 * (never past an unfinished one). The rest goes into the commit's metadata
 * string (a few hundred bytes, Kafka allows 4096 by default):
 *
 * ```json
 * { "v": 1, "d": [[0, 2], [3, 1]], "c": [[1, 2], [5, 9]] }
 * ```
 *
 * - `d`: offsets (relative to the committed offset) that were handed to a
 *   server and are not done, with how often; a server that takes over the
 *   partition continues the count, so `Delivery.attempt` counts deliveries to
 *   any server of the group and poison messages are caught even when they
 *   crash their server. A delivery is committed here before it runs.
 * - `c`: ranges of offsets that are done although an earlier one is not; a
 *   server that takes over skips them.
 *
 * When the metadata would not fit, the entries of the highest offsets are left
 * out: at worst a request runs once more, or its count starts again.
 *
 * @module
 */

/** The state of one offset at or after the committed offset. */
interface Entry {
  /** Deliveries to any server of the group so far. */
  deliveries: number;
  /** `waiting`: not running on this server (delivered before, or handed back). */
  state: "waiting" | "running" | "done";
}

/**
 * Longest metadata string written unless told otherwise (the setting
 * `offsetMetadataMaxChars`); Kafka's `offset.metadata.max.bytes` is 4096 by default.
 */
export const MAX_METADATA_CHARS = 3_000;

/** Done ranges longer than this in metadata are not believed (the metadata is not ours). */
const MAX_RANGE = 1_000_000;

/** The requests of one partition between its committed offset and what was handed out. */
export class PartitionLedger {
  /** Every offset below it is done: the offset to commit. */
  #base: number;
  readonly #entries = new Map<number, Entry>();
  /** The keys of `#entries`, ascending (requests are handed out in offset order). */
  #sorted: number[] = [];
  /** Bumped on every change worth committing. */
  version = 0;

  private constructor(base: number) {
    this.#base = base;
  }

  /**
   * Rebuilds the ledger from a committed offset and its metadata.
   *
   * @param offset The committed offset, or `null` when the group has none yet.
   * @param metadata The commit's metadata; anything unreadable counts as none.
   * @param firstOffset Where reading starts when nothing is committed.
   * @returns The ledger.
   */
  static fromCommit(
    offset: number | null,
    metadata: string | null,
    firstOffset: number,
  ): PartitionLedger {
    if (offset === null || offset < 0) return new PartitionLedger(firstOffset);
    const ledger = new PartitionLedger(offset);
    const parsed = parseMetadata(metadata);
    for (const [relative, deliveries] of parsed.delivered) {
      ledger.#set(offset + relative, { deliveries: Math.max(deliveries, 1), state: "waiting" });
    }
    for (const [from, to] of parsed.done) {
      for (let relative = from; relative <= to; relative++) {
        const deliveries = ledger.#entries.get(offset + relative)?.deliveries ?? 1;
        ledger.#set(offset + relative, { deliveries, state: "done" });
      }
    }
    ledger.#advance();
    return ledger;
  }

  /** The offset to commit: every offset below it is done. */
  get base(): number {
    return this.#base;
  }

  /**
   * Whether a request needs no delivery: done here or by an earlier owner.
   *
   * @param offset The request's offset.
   */
  isDone(offset: number): boolean {
    return offset < this.#base || this.#entries.get(offset)?.state === "done";
  }

  /**
   * Records a delivery; commit it before the request runs.
   *
   * @param offset The request's offset.
   * @returns The delivery's attempt number (1 the first time).
   */
  markDelivered(offset: number): number {
    const deliveries = (this.#entries.get(offset)?.deliveries ?? 0) + 1;
    this.#set(offset, { deliveries, state: "running" });
    this.version++;
    return deliveries;
  }

  /**
   * Records a request that is still running on this server from before the
   * ledger was loaded (the partition moved away and came back), so the base
   * does not pass it.
   *
   * @param offset The request's offset.
   * @param deliveries Its deliveries as counted when it was handed out.
   */
  adoptRunning(offset: number, deliveries: number): void {
    if (this.isDone(offset)) return;
    const known = this.#entries.get(offset)?.deliveries ?? 0;
    this.#set(offset, { deliveries: Math.max(known, deliveries), state: "running" });
  }

  /**
   * Takes back a delivery that was recorded but never handed out (its commit failed).
   *
   * @param offset The request's offset.
   */
  unmarkDelivered(offset: number): void {
    const entry = this.#entries.get(offset);
    if (entry === undefined || entry.state !== "running") return;
    if (entry.deliveries <= 1) this.#delete(offset);
    else this.#set(offset, { deliveries: entry.deliveries - 1, state: "waiting" });
    this.version++;
  }

  /**
   * Records that a request is done (its result produced); moves the base past
   * every leading done offset.
   *
   * @param offset The request's offset.
   */
  markDone(offset: number): void {
    if (offset < this.#base) return;
    const deliveries = this.#entries.get(offset)?.deliveries ?? 1;
    this.#set(offset, { deliveries, state: "done" });
    this.version++;
    this.#advance();
  }

  /**
   * Records that a request was handed back: it stays unfinished and is delivered again.
   *
   * @param offset The request's offset.
   */
  markReleased(offset: number): void {
    const entry = this.#entries.get(offset);
    if (entry !== undefined && entry.state === "running") entry.state = "waiting";
  }

  /**
   * Forgets offsets below `offset` that are not running here: they no longer
   * exist (the log was truncated by retention) or were never records.
   *
   * @param offset The first offset the partition actually has.
   */
  skipTo(offset: number): void {
    if (offset <= this.#base) return;
    for (const key of [...this.#sorted]) {
      if (key >= offset) break;
      if (this.#entries.get(key)?.state !== "running") this.#delete(key);
    }
    if ((this.#sorted[0] ?? offset) >= offset) this.#base = offset;
    this.version++;
  }

  /** The lowest offset handed back and not yet delivered again, if any. */
  lowestWaiting(): number | undefined {
    return this.#sorted.find((key) => this.#entries.get(key)?.state === "waiting");
  }

  /**
   * The commit's metadata: deliveries of unfinished offsets and done ranges,
   * relative to {@linkcode PartitionLedger.base}, within `maxChars`.
   *
   * @param maxChars The longest string to return (at least 100).
   * @returns The metadata string.
   */
  encode(maxChars: number = MAX_METADATA_CHARS): string {
    const delivered: [number, number][] = [];
    const done: [number, number][] = [];
    // Each item adds at most its digits and five more characters; stop before the limit.
    let budget = maxChars - 30;
    for (const offset of this.#sorted) {
      const entry = this.#entries.get(offset);
      if (entry === undefined) continue;
      const relative = offset - this.#base;
      const last = done.at(-1);
      if (entry.state === "done" && last !== undefined && last[1] === relative - 1) {
        budget -= String(relative).length - String(last[1]).length;
        last[1] = relative;
      } else {
        const pair: [number, number] = entry.state === "done"
          ? [relative, relative]
          : [relative, entry.deliveries];
        budget -= String(pair[0]).length + String(pair[1]).length + 5;
        if (budget < 0) break;
        (entry.state === "done" ? done : delivered).push(pair);
      }
    }
    return JSON.stringify({ v: 1, d: delivered, c: done });
  }

  #set(offset: number, entry: Entry): void {
    if (!this.#entries.has(offset)) {
      const sorted = this.#sorted;
      if (sorted.length === 0 || (sorted.at(-1) ?? 0) < offset) sorted.push(offset);
      else sorted.splice(lowerBound(sorted, offset), 0, offset);
    }
    this.#entries.set(offset, entry);
  }

  #delete(offset: number): void {
    if (!this.#entries.delete(offset)) return;
    this.#sorted.splice(lowerBound(this.#sorted, offset), 1);
  }

  /** Moves the base past the leading done offsets. */
  #advance(): void {
    let done = 0;
    for (const key of this.#sorted) {
      if (this.#entries.get(key)?.state !== "done") break;
      this.#entries.delete(key);
      this.#base = key + 1;
      done++;
    }
    if (done > 0) this.#sorted = this.#sorted.slice(done);
  }
}

/** Index of the first element of `sorted` that is not below `value`. */
function lowerBound(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle] ?? value) < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

interface ParsedMetadata {
  delivered: [number, number][];
  done: [number, number][];
}

function parseMetadata(metadata: string | null): ParsedMetadata {
  const none: ParsedMetadata = { delivered: [], done: [] };
  if (metadata === null || metadata === "") return none;
  let data: unknown;
  try {
    data = JSON.parse(metadata);
  } catch {
    return none;
  }
  if (typeof data !== "object" || data === null || (data as { v?: unknown }).v !== 1) return none;
  const { d, c } = data as { d?: unknown; c?: unknown };
  return {
    delivered: pairs(d),
    done: pairs(c).filter(([from, to]) => from <= to && to - from <= MAX_RANGE),
  };
}

/** Pairs of non-negative whole numbers from unchecked JSON; anything else is dropped. */
function pairs(value: unknown): [number, number][] {
  if (!Array.isArray(value)) return [];
  const ok = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  return value.filter((pair): pair is [number, number] =>
    Array.isArray(pair) && pair.length === 2 && ok(pair[0]) && ok(pair[1])
  );
}
