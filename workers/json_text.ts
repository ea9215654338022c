/**
 * JSON text of a value that JSON carries exactly as structured clone would:
 * how calls and outcomes cross to and from a `thread` worker through shared
 * memory ({@link ./thread_buffer.ts}). A value JSON would change (a `Map`, a
 * `Date`, a class instance, `NaN`, a function, a proxy...) has no such text
 * and keeps crossing by `postMessage`, so the server sees it as before.
 *
 * @module
 */

import { isProxy } from "node:util/types";

/** How deep a value may nest before it is left to structured clone. */
const MAX_DEPTH = 100;

/** Limits of {@linkcode jsonText}. */
export interface JsonTextOptions {
  /** Longest text, in UTF-16 code units; a longer value has no text. */
  readonly maxLength: number;
  /**
   * Accept `undefined` and `-0`, which JSON drops or turns into `null` and
   * `0`. Right for an outcome, which the server turns into JSON itself (with
   * the same result); wrong for arguments, which a function must get as sent.
   */
  readonly loose: boolean;
}

/**
 * The JSON text of a value, when parsing it gives what structured clone would.
 *
 * The value's plain objects and arrays are read once to check them and once
 * more by `JSON.stringify`, so a getter among them runs twice. Properties of
 * an array other than its elements are not looked at: JSON drops them, as the
 * server's own JSON does for an outcome, and arguments parsed from JSON have
 * none.
 *
 * @param value The value.
 * @param options Longest text, and whether `undefined` and `-0` are accepted.
 * @returns The text, or `undefined` when the value must be cloned instead.
 */
export function jsonText(value: unknown, options: JsonTextOptions): string | undefined {
  const budget = { left: options.maxLength };
  try {
    if (!plain(value, options.loose, budget, 0)) return undefined;
    const text = JSON.stringify(value);
    return text !== undefined && text.length <= options.maxLength ? text : undefined;
  } catch {
    // A getter threw: let structured clone meet the same error.
    return undefined;
  }
}

/**
 * Whether a value is plain data (strings, finite numbers, booleans, `null`,
 * arrays and plain objects of them), spending `budget` as a lower bound of
 * its JSON length.
 */
function plain(value: unknown, loose: boolean, budget: { left: number }, depth: number): boolean {
  switch (typeof value) {
    case "string":
      budget.left -= value.length + 2;
      return budget.left >= 0;
    case "number":
      budget.left -= 1;
      return Number.isFinite(value) && (loose || !Object.is(value, -0)) && budget.left >= 0;
    case "boolean":
      budget.left -= 4;
      return budget.left >= 0;
    case "undefined":
      return loose;
    case "object":
      break;
    default:
      return false; // function, symbol, bigint
  }
  budget.left -= 4;
  if (value === null) return budget.left >= 0;
  if (depth >= MAX_DEPTH || budget.left < 0 || isProxy(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  if (prototype === Array.prototype) {
    if (!Array.isArray(value)) return false;
    for (let i = 0; i < value.length; i++) {
      if (!plain(value[i], loose, budget, depth + 1)) return false;
    }
    return true;
  }
  if (prototype !== Object.prototype && prototype !== null) return false;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    budget.left -= key.length + 3;
    if (!plain(record[key], loose, budget, depth + 1)) return false;
  }
  return true;
}
