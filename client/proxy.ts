/**
 * The typed view of a server's functions returned by `Client.proxy()`.
 *
 * @module
 */

/**
 * The type a value has after a round trip through JSON: a `Date` arrives as its
 * ISO string and `undefined` as `null`.
 */
export type Decoded<T> = T extends Date ? string
  : T extends undefined | void ? null
  : T extends string | number | boolean | null ? T
  : T extends readonly unknown[] ? { -readonly [K in keyof T]: Decoded<T[K]> }
  : T extends object ? { [K in keyof T]: Decoded<T[K]> }
  : T;

/** The shape of the server's functions when no type is given: any name, any arguments. */
export type UntypedApi = Record<string, (...args: unknown[]) => unknown>;

/**
 * Remote versions of the functions in `T`: same parameters, results wrapped in a
 * promise and passed through {@linkcode Decoded}. Members of `T` that are not
 * functions are left out.
 */
export type RemoteApi<T> = {
  readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends
    (...args: infer A) => infer R ? (...args: A) => Promise<Decoded<Awaited<R>>> : never;
};

/**
 * Builds the proxy: reading property `name` gives a function that calls `name`.
 * `then` and symbol keys read as `undefined`, so the proxy is never a thenable.
 *
 * @param call Sends one call.
 * @returns The proxy.
 */
export function createProxy<T>(
  call: (name: string, args: unknown[]) => Promise<unknown>,
): RemoteApi<T> {
  const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy(Object.create(null), {
    get(_target, property) {
      if (typeof property !== "string" || property === "then") return undefined;
      let method = methods.get(property);
      if (method === undefined) {
        method = (...args: unknown[]) => call(property, args);
        methods.set(property, method);
      }
      return method;
    },
    has(_target, property) {
      return typeof property === "string" && property !== "then";
    },
  }) as RemoteApi<T>;
}
