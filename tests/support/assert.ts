/**
 * Assertions for tests, on top of `node:assert/strict` (jsr is not reachable
 * here, so `@std/assert` is not an option).
 */

import assert from "node:assert/strict";

export { assert };

/** Deep, strict equality. */
export function assertEquals<T>(actual: unknown, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

/** Awaits `promise`, expects it to reject with `ErrorClass` whose message includes `includes`. */
export async function assertRejects<E extends Error>(
  promise: Promise<unknown> | (() => Promise<unknown>),
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => E,
  includes?: string,
): Promise<E> {
  let error: unknown;
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (err) {
    error = err;
  }
  if (error === undefined) assert.fail(`expected a rejection with ${ErrorClass.name}`);
  if (!(error instanceof ErrorClass)) {
    assert.fail(
      `expected ${ErrorClass.name}, got ${
        error instanceof Error ? `${error.name}: ${error.message}` : String(error)
      }`,
    );
  }
  if (includes !== undefined && !error.message.includes(includes)) {
    assert.fail(
      `expected the message to include ${JSON.stringify(includes)}: ${
        JSON.stringify(error.message)
      }`,
    );
  }
  return error;
}

/** Calls `fn`, expects it to throw `ErrorClass` whose message includes `includes`. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => E,
  includes?: string,
): E {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  if (error === undefined) assert.fail(`expected ${ErrorClass.name} to be thrown`);
  if (!(error instanceof ErrorClass)) {
    assert.fail(
      `expected ${ErrorClass.name}, got ${
        error instanceof Error ? `${error.name}: ${error.message}` : String(error)
      }`,
    );
  }
  if (includes !== undefined && !error.message.includes(includes)) {
    assert.fail(
      `expected the message to include ${JSON.stringify(includes)}: ${
        JSON.stringify(error.message)
      }`,
    );
  }
  return error;
}
