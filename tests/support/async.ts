/** Small async helpers for tests. */

/** A promise with its resolve function, to make one side wait for another. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** Creates a {@linkcode Deferred}. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Waits until `check` returns a value other than `undefined`/`null`/`false`, checking
 * every `intervalMs`, and fails after `timeoutMs`. For state outside the test's
 * control (a result stored by another process), never as a stand-in for an event.
 */
export async function waitFor<T>(
  check: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  what: string,
  { timeoutMs = 10_000, intervalMs = 10 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * A server function `gate(count)` whose calls each wait until `count` of them
 * are running at once, then return `count`: that many calls complete only
 * when a server runs that many at once (a slot lost for good makes them time out).
 */
export function gateFunction(): (count: number) => Promise<number> {
  let running = 0;
  let allIn = deferred();
  return async (count: number) => {
    if (++running === count) allIn.resolve();
    await allIn.promise;
    if (--running === 0) allIn = deferred();
    return count;
  };
}
