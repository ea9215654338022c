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

// deno-lint-ignore no-explicit-any
type ErrorClass<E extends Error> = new (...args: any[]) => E;

/** Checks that `error` (what was thrown, if anything) is an `ErrorClass` whose message includes `includes`. */
function checkThrown<E extends Error>(
  error: unknown,
  ErrorClass: ErrorClass<E>,
  includes: string | undefined,
): E {
  if (error === undefined) assert.fail(`expected ${ErrorClass.name} to be thrown`);
  if (!(error instanceof ErrorClass)) {
    const got = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    assert.fail(`expected ${ErrorClass.name}, got ${got}`);
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

/** Awaits `promise`, expects it to reject with `ErrorClass` whose message includes `includes`. */
export async function assertRejects<E extends Error>(
  promise: Promise<unknown> | (() => Promise<unknown>),
  ErrorClass: ErrorClass<E>,
  includes?: string,
): Promise<E> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (err) {
    return checkThrown(err, ErrorClass, includes);
  }
  return checkThrown(undefined, ErrorClass, includes);
}

/** Calls `fn`, expects it to throw `ErrorClass` whose message includes `includes`. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  ErrorClass: ErrorClass<E>,
  includes?: string,
): E {
  try {
    fn();
  } catch (err) {
    return checkThrown(err, ErrorClass, includes);
  }
  return checkThrown(undefined, ErrorClass, includes);
}
