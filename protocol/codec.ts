/**
 * Which values travel as JSON, and how they are encoded and measured.
 *
 * Values are plain JSON. A `Date` (or anything else with `toJSON`) travels as what
 * its `toJSON` returns; `undefined` becomes `null` in arrays and is dropped from
 * objects, as in `JSON.stringify`. Everything JSON would silently change or drop
 * (functions, symbols, bigint, cycles, `NaN`, `Infinity`, `Map`, `Set`, binary
 * buffers) is refused with a {@linkcode SerializationError} that names where
 * the value sits.
 *
 * @module
 */

import { SerializationError } from "./errors.ts";

/**
 * Throws a {@linkcode SerializationError} if `value` cannot travel as JSON
 * without being silently changed.
 *
 * @param value The value to check.
 * @param path Where the value sits, for the message (e.g. `"func_args[0]"`).
 * @throws {SerializationError} Naming the first offending place.
 */
export function assertEncodable(value: unknown, path: string): void {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return;
    case "number":
      if (!Number.isFinite(value)) fail(path, `${value} has no JSON form`);
      return;
    case "object":
      if (value === null) return;
      walk(value, path, []);
      return;
    default:
      fail(path, `a ${typeof value} has no JSON form`);
  }
}

function fail(path: string, why: string): never {
  throw new SerializationError(`Cannot encode ${path} as JSON: ${why}`);
}

function walk(value: object, path: string, ancestors: object[]): void {
  if (ancestors.includes(value)) fail(path, "it refers to itself (a cycle)");
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
    // Date, URL and user classes decide their own JSON form; check what they return.
    let replaced: unknown;
    try {
      replaced = (value as { toJSON: (key: string) => unknown }).toJSON("");
    } catch (err) {
      fail(path, `its toJSON() threw ${err instanceof Error ? err.message : String(err)}`);
    }
    if (typeof replaced === "object" && replaced !== null && replaced !== value) {
      // JSON.stringify calls toJSON once: a second toJSON (e.g. a Date) would be ignored.
      if (typeof (replaced as { toJSON?: unknown }).toJSON === "function") {
        fail(path, "its toJSON() returned an object that has a toJSON() of its own");
      }
    }
    if (replaced === value) return;
    ancestors.push(value);
    assertEncodableChild(replaced, path, ancestors);
    ancestors.pop();
    return;
  }
  if (
    value instanceof Map || value instanceof Set || value instanceof WeakMap ||
    value instanceof WeakSet
  ) {
    fail(path, `a ${value.constructor.name} has no JSON form; send an array or a plain object`);
  }
  if (
    ArrayBuffer.isView(value) || value instanceof ArrayBuffer ||
    value instanceof SharedArrayBuffer
  ) {
    fail(path, "binary data has no JSON form; send it as a base64 string");
  }
  if (value instanceof Promise) fail(path, "a Promise has no JSON form; await it first");
  if (value instanceof BigInt || value instanceof Symbol) {
    fail(path, `a boxed ${typeof value.valueOf()} has no JSON form`);
  }
  if (value instanceof Number && !Number.isFinite(value.valueOf())) {
    fail(path, `${value.valueOf()} has no JSON form`);
  }
  ancestors.push(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      assertEncodableChild(value[i], `${path}[${i}]`, ancestors);
    }
  } else {
    for (const key of Object.keys(value)) {
      const child = (value as Record<string, unknown>)[key];
      // Like JSON.stringify, functions and symbols under an object key would vanish: refuse.
      assertEncodableChild(child, `${path}.${key}`, ancestors);
    }
  }
  ancestors.pop();
}

function assertEncodableChild(value: unknown, path: string, ancestors: object[]): void {
  if (typeof value === "object" && value !== null) walk(value, path, ancestors);
  else assertEncodable(value, path);
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
