/** The typed proxy: its types (checked by `deno check`/`deno test`) and its runtime behaviour. */
import { AppServer, Client, type Decoded, type RemoteApi } from "../mod.ts";
import type * as funcs from "./support/funcs.ts";
import { summ, when } from "./support/funcs.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { RecordingLogger } from "./support/logger.ts";

/** Compile-time equality: `Expect<Equal<A, B>>` fails to type-check unless A and B are the same. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true
  : false;
type Expect<T extends true> = T;

// A module type: functions keep their parameters, results become promises of decoded values,
// and members that are not functions are left out.
type Api = RemoteApi<typeof funcs>;
export type TypeChecks = [
  Expect<Equal<Api["summ"], (a: number, b: number, z?: number) => Promise<number>>>,
  Expect<Equal<Api["when"], () => Promise<string>>>,
  Expect<Equal<Api["nothing"], () => Promise<null>>>,
  Expect<
    Equal<Api["maybe"], (flag: boolean) => Promise<{ at: string; count?: number | null } | null>>
  >,
  Expect<Equal<keyof Api, "summ" | "when" | "nothing" | "maybe">>,
  Expect<Equal<Decoded<[Date, number]>, [string, number]>>,
  Expect<Equal<Decoded<readonly string[]>, string[]>>,
];

Deno.test("Client.proxy() calls functions by property name, typed by the server's module", async () => {
  const url = `memory://proxy-${crypto.randomUUID()}`;
  const app = new AppServer({
    url,
    queue: "proxy",
    handleSignals: false,
    logger: new RecordingLogger(),
  });
  app.register(summ).register(when);
  await app.start();
  const client = await Client.connect({ url, queue: "proxy", logger: new RecordingLogger() });
  try {
    const api = client.proxy<typeof funcs>();
    const sum: number = await api.summ(1, 2);
    assertEquals(sum, 3.5);
    const date: string = await api.when();
    assertEquals(date, "1970-01-01T00:00:00.000Z");
    assert(api.summ === api.summ, "methods are cached");

    const untyped = client.proxy();
    assertEquals(await untyped.summ?.(2, 2, 0), 4);
  } finally {
    await client.close();
    await app.stop();
  }
});

Deno.test("Client.proxy() is never a thenable, so it can be returned from async code", async () => {
  const url = `memory://proxy-${crypto.randomUUID()}`;
  const client = await Client.connect({ url, logger: new RecordingLogger() });
  try {
    const api = client.proxy<typeof funcs>();
    assertEquals((api as unknown as { then?: unknown }).then, undefined);
    assertEquals((api as unknown as Record<symbol, unknown>)[Symbol.iterator], undefined);
    const resolved = await Promise.resolve(api);
    assert(resolved === api);
    assert("summ" in api);
  } finally {
    await client.close();
  }
});
