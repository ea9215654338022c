/**
 * Collections for entries that come and go at a high rate: a client's calls
 * waiting for their result, a server's deliveries not settled yet, a
 * connection's commands not answered yet.
 *
 * `Map` and `Set` are the wrong tool there. V8 replaces the hash table of a
 * `Map` or `Set` whenever it grows, shrinks or sweeps out deleted entries, and
 * steady adding and deleting does that every few dozen operations. The retired
 * table keeps its entries and a pointer to the table that replaced it. Once one
 * retired table has reached the old generation, every minor GC treats it as
 * alive until the next full GC, so the chain of every later table, and all
 * that their entries reach, survives and is promoted too. On the round-trip
 * benchmark this kept a fifth of everything the server and the client
 * allocated alive past each minor GC, whose pauses grew to 5–12 ms.
 *
 * {@linkcode ChurnMap} keeps its entries in a dictionary-mode object and
 * {@linkcode ChurnSet} in a linked list whose removed links point nowhere:
 * neither links old storage to new.
 *
 * Internal: not part of the public API.
 *
 * @module
 */

/**
 * A map from strings to values (never `undefined`) for entries that come and
 * go at a high rate. Iteration order is insertion order, except that keys
 * that are array indices come first, in ascending order.
 */
export class ChurnMap<V extends NonNullable<unknown> | null> {
  /** A null-prototype object is created in dictionary mode and stays in it. */
  #entries: Record<string, V> = Object.create(null);
  #size = 0;

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /**
   * Reads an entry.
   *
   * @param key The key.
   * @returns Its value, or `undefined` when there is none.
   */
  get(key: string): V | undefined {
    return this.#entries[key];
  }

  /**
   * Tells whether an entry exists.
   *
   * @param key The key.
   * @returns Whether it has a value.
   */
  has(key: string): boolean {
    return this.#entries[key] !== undefined;
  }

  /**
   * Adds or replaces an entry.
   *
   * @param key The key.
   * @param value The value.
   */
  set(key: string, value: V): void {
    if (this.#entries[key] === undefined) this.#size++;
    this.#entries[key] = value;
  }

  /**
   * Removes an entry.
   *
   * @param key The key.
   * @returns Whether there was one.
   */
  delete(key: string): boolean {
    if (this.#entries[key] === undefined) return false;
    delete this.#entries[key];
    this.#size--;
    return true;
  }

  /** @returns The keys, in a new array. */
  keys(): string[] {
    return Object.keys(this.#entries);
  }

  /** @returns The values, in a new array. */
  values(): V[] {
    return Object.values(this.#entries);
  }

  /** Removes every entry. */
  clear(): void {
    this.#entries = Object.create(null);
    this.#size = 0;
  }
}

/** A value's place in a {@linkcode ChurnSet}. */
export interface ChurnSetEntry {
  /**
   * Takes the value out of its set.
   *
   * @returns Whether it was still in (`false` after a first `remove()` or the set's `clear()`).
   */
  remove(): boolean;
}

class Link<T> implements ChurnSetEntry {
  prev: Link<T> | undefined;
  next: Link<T> | undefined;

  constructor(public owner: ChurnSet<T> | undefined, public value: T | undefined) {}

  remove(): boolean {
    const owner = this.owner;
    if (owner === undefined) return false;
    owner.unlink(this);
    return true;
  }
}

/**
 * Values added and removed at a high rate, each removed through the entry its
 * `add` returned: no hashing, and O(1) both ways. A value may be added more
 * than once; each addition is its own entry.
 */
export class ChurnSet<T> {
  #head: Link<T> | undefined;
  #tail: Link<T> | undefined;
  #size = 0;

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds a value at the end.
   *
   * @param value The value.
   * @returns Its entry, to remove it.
   */
  add(value: T): ChurnSetEntry {
    const link = new Link<T>(this, value);
    link.prev = this.#tail;
    if (this.#tail === undefined) this.#head = link;
    else this.#tail.next = link;
    this.#tail = link;
    this.#size++;
    return link;
  }

  /** @returns The values, oldest first, in a new array. */
  values(): T[] {
    const values: T[] = [];
    for (let link = this.#head; link !== undefined; link = link.next) values.push(link.value!);
    return values;
  }

  /** Removes every entry. */
  clear(): void {
    let link = this.#head;
    while (link !== undefined) {
      const next: Link<T> | undefined = link.next;
      detach(link);
      link = next;
    }
    this.#head = this.#tail = undefined;
    this.#size = 0;
  }

  /** Called by an entry's `remove()`; not for other callers. */
  unlink(link: Link<T>): void {
    if (link.prev === undefined) this.#head = link.next;
    else link.prev.next = link.next;
    if (link.next === undefined) this.#tail = link.prev;
    else link.next.prev = link.prev;
    detach(link);
    this.#size--;
  }
}

/** A removed link reaches nothing: a dead one in the old generation keeps no younger object alive. */
function detach<T>(link: Link<T>): void {
  link.prev = link.next = undefined;
  link.owner = undefined;
  link.value = undefined;
}
