/**
 * Which values travel as JSON, and how they are encoded and measured.
 *
 * Values are plain JSON. A `Date` (or anything else with `toJSON`) travels as what
 * its `toJSON` returns; `undefined` becomes `null` in arrays and is dropped from
 * objects, as in `JSON.stringify`. Everything JSON would silently change or drop
 * (functions, symbols, bigint, cycles, `NaN`, `Infinity`, `Map`, `Set`, binary
 * buffers) is refused with a {@linkcode SerializationError} that names where
 * the value sits. So is a value that nests arrays and objects deeper than a
 * limit (`DEFAULT_MAX_DEPTH` of `depth.ts` unless configured): both the check of a
 * value and the measure of a text's nesting run without recursion, so hostile
 * input cannot overflow the stack.
 *
 * @module
 */

import { DEFAULT_MAX_DEPTH } from "./depth.ts";
import { SerializationError } from "./errors.ts";

/**
 * Throws a {@linkcode SerializationError} if `value` cannot travel as JSON
 * without being silently changed, or nests deeper than `maxDepth`. Walks the
 * value without recursion, so no depth can overflow the stack.
 *
 * @param value The value to check.
 * @param path Where the value sits, for the message (e.g. `"func_args[0]"`).
 * @param maxDepth How deeply arrays and objects may nest (the outermost is 1).
 * @throws {SerializationError} Naming the first offending place.
 */
export function assertEncodable(
  value: unknown,
  path: string,
  maxDepth: number = DEFAULT_MAX_DEPTH,
): void {
  if (typeof value !== "object" || value === null) {
    const why = scalarRefusal(value);
    if (why !== undefined) fail(path, why);
    return;
  }
  new EncodableWalk(path, maxDepth).run(value);
}

function fail(path: string, why: string): never {
  throw new SerializationError(`Cannot encode ${path} as JSON: ${why}`);
}

/** Why a value that is not an object has no JSON form, or `undefined` when it has one. */
function scalarRefusal(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `${value} has no JSON form`;
    case "object":
      return undefined; // null
    default:
      return `a ${typeof value} has no JSON form`;
  }
}

/** An array or object being walked, and where the walk is in it. */
interface Frame {
  /** What JSON encodes: the value, or what its `toJSON()` returned. */
  readonly node: object;
  /** The value itself, when `toJSON()` replaced it (to find cycles through it). */
  readonly replaced: object | undefined;
  /** The object's own keys, or `undefined` for an array. */
  readonly keys: string[] | undefined;
  /** The next child to look at. */
  next: number;
  /** The key or index under which the parent holds this value. */
  readonly label: string | number | undefined;
}

/** A depth-first walk with an explicit stack: one per {@linkcode assertEncodable} call. */
class EncodableWalk {
  readonly #stack: Frame[] = [];
  /** The objects on the path from the root to the current place, to find cycles. */
  readonly #onPath = new Set<object>();

  constructor(readonly root: string, readonly maxDepth: number) {}

  run(value: object): void {
    this.#visit(value, undefined);
    const stack = this.#stack;
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const node = frame.node;
      if (frame.keys === undefined) {
        const array = node as unknown[];
        if (frame.next < array.length) {
          const index = frame.next++;
          this.#visit(array[index], index);
          continue;
        }
      } else if (frame.next < frame.keys.length) {
        const key = frame.keys[frame.next++]!;
        // Like JSON.stringify, functions and symbols under an object key would vanish: refuse.
        this.#visit((node as Record<string, unknown>)[key], key);
        continue;
      }
      stack.pop();
      this.#onPath.delete(node);
      if (frame.replaced !== undefined) this.#onPath.delete(frame.replaced);
    }
  }

  /** Where a child under `label` of the current place sits, e.g. `result.items[3]`. */
  #path(label: string | number | undefined): string {
    let path = this.root;
    for (const frame of this.#stack) path += segment(frame.label);
    return path + segment(label);
  }

  #visit(value: unknown, label: string | number | undefined): void {
    if (typeof value !== "object" || value === null) {
      const why = scalarRefusal(value);
      if (why !== undefined) fail(this.#path(label), why);
      return;
    }
    if (this.#onPath.has(value)) fail(this.#path(label), "it refers to itself (a cycle)");
    let node: object = value;
    let replaced: object | undefined;
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
      // Date, URL and user classes decide their own JSON form; check what they return.
      let json: unknown;
      try {
        json = (value as { toJSON: (key: string) => unknown }).toJSON("");
      } catch (err) {
        fail(
          this.#path(label),
          `its toJSON() threw ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      if (json === value) return;
      if (typeof json !== "object" || json === null) {
        const why = scalarRefusal(json);
        if (why !== undefined) fail(this.#path(label), why);
        return;
      }
      // JSON.stringify calls toJSON once: a second toJSON (e.g. a Date) would be ignored.
      if (typeof (json as { toJSON?: unknown }).toJSON === "function") {
        fail(this.#path(label), "its toJSON() returned an object that has a toJSON() of its own");
      }
      if (this.#onPath.has(json)) fail(this.#path(label), "it refers to itself (a cycle)");
      replaced = value;
      node = json;
    }
    const why = objectRefusal(node);
    if (why !== undefined) fail(this.#path(label), why);
    if (this.#stack.length >= this.maxDepth) {
      fail(this.#path(label), `it nests deeper than ${this.maxDepth} levels (maxDepth)`);
    }
    this.#onPath.add(node);
    if (replaced !== undefined) this.#onPath.add(replaced);
    this.#stack.push({
      node,
      replaced,
      keys: Array.isArray(node) ? undefined : Object.keys(node),
      next: 0,
      label,
    });
  }
}

function segment(label: string | number | undefined): string {
  if (label === undefined) return "";
  return typeof label === "number" ? `[${label}]` : `.${label}`;
}

/** Why an object has no JSON form, or `undefined` when it is an array or a plain-enough object. */
function objectRefusal(value: object): string | undefined {
  if (
    value instanceof Map || value instanceof Set || value instanceof WeakMap ||
    value instanceof WeakSet
  ) {
    return `a ${value.constructor.name} has no JSON form; send an array or a plain object`;
  }
  if (
    ArrayBuffer.isView(value) || value instanceof ArrayBuffer ||
    value instanceof SharedArrayBuffer
  ) {
    return "binary data has no JSON form; send it as a base64 string";
  }
  if (value instanceof Promise) return "a Promise has no JSON form; await it first";
  if (value instanceof BigInt || value instanceof Symbol) {
    return `a boxed ${typeof value.valueOf()} has no JSON form`;
  }
  if (value instanceof Number && !Number.isFinite(value.valueOf())) {
    return `${value.valueOf()} has no JSON form`;
  }
  return undefined;
}

const encoder = new TextEncoder();

/**
 * Checks a string's UTF-8 size against a limit, without encoding it when it
 * clearly fits.
 *
 * @param text The string to measure.
 * @param limit The largest allowed size in bytes.
 * @returns The exact size in bytes when it exceeds `limit`, else `null`.
 */
export function sizeOverLimit(text: string, limit: number): number | null {
  if (text.length * 3 <= limit) return null;
  const size = encoder.encode(text).byteLength;
  return size > limit ? size : null;
}
