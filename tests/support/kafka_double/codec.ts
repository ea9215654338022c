/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * Readers and writers of the Kafka wire primitives (big-endian integers, int16-length
 * strings, int32-length bytes and arrays, zigzag varints for record batches). The
 * double implements only non-flexible API versions, so no compact types are needed.
 *
 * @module
 */

const TEXT_ENCODER = new TextEncoder();
const TEXT_DECODER = new TextDecoder("utf-8", { fatal: true });

/** A request (or record) that cannot be decoded: the connection that sent it is closed. */
export class MalformedRequestError extends Error {
  override readonly name = "MalformedRequestError";
}

/** Reads Kafka primitives from a byte array, front to back. */
export class Reader {
  #view: DataView;
  #bytes: Uint8Array;
  #position = 0;

  /** Starts reading at the first byte of `bytes`. */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.byteLength - this.#position;
  }

  #take(size: number): number {
    if (size < 0 || this.remaining < size) {
      throw new MalformedRequestError(
        `Cannot read ${size} bytes as only ${this.remaining} remain`,
      );
    }
    const start = this.#position;
    this.#position += size;
    return start;
  }

  /** A signed 8-bit integer. */
  int8(): number {
    return this.#view.getInt8(this.#take(1));
  }

  /** A boolean (one byte, non-zero is true). */
  boolean(): boolean {
    return this.int8() !== 0;
  }

  /** A signed 16-bit integer. */
  int16(): number {
    return this.#view.getInt16(this.#take(2));
  }

  /** A signed 32-bit integer. */
  int32(): number {
    return this.#view.getInt32(this.#take(4));
  }

  /** A signed 64-bit integer, as a number (offsets and timestamps fit in 53 bits). */
  int64(): number {
    const value = this.#view.getBigInt64(this.#take(8));
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new MalformedRequestError(`Cannot read int64 as a number: current value is ${value}`);
    }
    return Number(value);
  }

  /** A string with an int16 length; `null` when the length is -1. */
  nullableString(): string | null {
    const length = this.int16();
    if (length === -1) return null;
    return this.#text(length);
  }

  /** A non-null string with an int16 length. */
  string(): string {
    const value = this.nullableString();
    if (value === null) throw new MalformedRequestError("Cannot read a null string here");
    return value;
  }

  /** Bytes with an int32 length; `null` when the length is -1. The result is a view. */
  nullableBytes(): Uint8Array | null {
    const length = this.int32();
    if (length === -1) return null;
    return this.raw(length);
  }

  /** Non-null bytes with an int32 length. The result is a view. */
  bytes(): Uint8Array {
    const value = this.nullableBytes();
    if (value === null) throw new MalformedRequestError("Cannot read null bytes here");
    return value;
  }

  /** The next `size` bytes, as a view. */
  raw(size: number): Uint8Array {
    const start = this.#take(size);
    return this.#bytes.subarray(start, start + size);
  }

  /** An array with an int32 count; `null` when the count is -1. */
  nullableArray<T>(readItem: (reader: Reader) => T): T[] | null {
    const count = this.int32();
    if (count === -1) return null;
    if (count < 0) throw new MalformedRequestError(`Cannot read an array of ${count} items`);
    const items: T[] = [];
    for (let index = 0; index < count; index++) items.push(readItem(this));
    return items;
  }

  /** A non-null array with an int32 count. */
  array<T>(readItem: (reader: Reader) => T): T[] {
    const items = this.nullableArray(readItem);
    if (items === null) throw new MalformedRequestError("Cannot read a null array here");
    return items;
  }

  /** A zigzag-encoded variable-length integer of up to 32 bits. */
  varint(): number {
    const value = this.varlong();
    if (value > 2 ** 31 - 1 || value < -(2 ** 31)) {
      throw new MalformedRequestError(`Cannot read varint: ${value} does not fit 32 bits`);
    }
    return value;
  }

  /** A zigzag-encoded variable-length integer of up to 64 bits, as a number. */
  varlong(): number {
    let unsigned = 0n;
    let shift = 0n;
    while (true) {
      if (shift > 63n) throw new MalformedRequestError("Cannot read varlong: more than 10 bytes");
      const byte = this.#view.getUint8(this.#take(1));
      unsigned |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
    }
    const value = (unsigned >> 1n) ^ -(unsigned & 1n);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new MalformedRequestError(`Cannot read varlong as a number: current value is ${value}`);
    }
    return Number(value);
  }

  /** Bytes with a varint length; `null` when the length is -1. The result is a view. */
  varintBytes(): Uint8Array | null {
    const length = this.varint();
    if (length === -1) return null;
    return this.raw(length);
  }

  #text(length: number): string {
    try {
      return TEXT_DECODER.decode(this.raw(length));
    } catch (error) {
      if (error instanceof MalformedRequestError) throw error;
      throw new MalformedRequestError("Cannot read a string as it is not valid UTF-8");
    }
  }
}

/** Builds a Kafka message from primitives; every method returns the writer. */
export class Writer {
  #bytes = new Uint8Array(256);
  #view = new DataView(this.#bytes.buffer);
  #length = 0;

  #reserve(size: number): number {
    const needed = this.#length + size;
    if (needed > this.#bytes.byteLength) {
      const grown = new Uint8Array(Math.max(needed, this.#bytes.byteLength * 2));
      grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
      this.#view = new DataView(grown.buffer);
    }
    const start = this.#length;
    this.#length = needed;
    return start;
  }

  /** A signed 8-bit integer. */
  int8(value: number): this {
    const start = this.#reserve(1);
    this.#view.setInt8(start, value);
    return this;
  }

  /** A boolean as one byte. */
  boolean(value: boolean): this {
    return this.int8(value ? 1 : 0);
  }

  /** A signed 16-bit integer. */
  int16(value: number): this {
    const start = this.#reserve(2);
    this.#view.setInt16(start, value);
    return this;
  }

  /** A signed 32-bit integer. */
  int32(value: number): this {
    const start = this.#reserve(4);
    this.#view.setInt32(start, value);
    return this;
  }

  /** A signed 64-bit integer. */
  int64(value: number): this {
    const start = this.#reserve(8);
    this.#view.setBigInt64(start, BigInt(value));
    return this;
  }

  /** A string with an int16 length; `null` is written as length -1. */
  string(value: string | null): this {
    if (value === null) return this.int16(-1);
    const encoded = TEXT_ENCODER.encode(value);
    return this.int16(encoded.byteLength).raw(encoded);
  }

  /** Bytes with an int32 length; `null` is written as length -1. */
  bytes(value: Uint8Array | null): this {
    if (value === null) return this.int32(-1);
    return this.int32(value.byteLength).raw(value);
  }

  /** Bytes as they are, without a length. */
  raw(value: Uint8Array): this {
    const start = this.#reserve(value.byteLength);
    this.#bytes.set(value, start);
    return this;
  }

  /** An array with an int32 count; `null` is written as count -1. */
  array<T>(items: readonly T[] | null, writeItem: (writer: this, item: T) => void): this {
    if (items === null) return this.int32(-1);
    this.int32(items.length);
    for (const item of items) writeItem(this, item);
    return this;
  }

  /** The bytes written so far (a copy). */
  toBytes(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }
}
