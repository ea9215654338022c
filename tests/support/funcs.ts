/** A module of server functions, used as a type for `Client.proxy<typeof import(...)>()`. */

export function summ(a: number, b: number, z = 0.5): number {
  return a + b + z;
}

export async function when(): Promise<Date> {
  return await Promise.resolve(new Date(0));
}

export function nothing(): void {}

export function maybe(flag: boolean): { at: Date; count?: number } | undefined {
  return flag ? { at: new Date(0), count: 1 } : undefined;
}

export const VERSION = "1.0";
