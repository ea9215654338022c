/** Reading results nobody pushed (client/stored_results.ts). */
import { StoredResults, UnpushedResults } from "../client/stored_results.ts";
import { consoleLogger } from "../mod.ts";
import { assertEquals } from "./support/assert.ts";
import { deferred } from "./support/async.ts";

Deno.test("UnpushedResults reads only calls that already waited at the previous tick, and stops when none wait", async () => {
  const waiting = new Set<string>(["a"]);
  const reads: string[][] = [];
  /** Calls of waiting(): two per tick, the first when the tick starts. */
  let ticks = 0;
  const readAt: number[] = [];
  const readDone = deferred<void>();
  const unpushed = new UnpushedResults({
    waiting: () => {
      ticks++;
      return [...waiting];
    },
    read: (ids) => {
      reads.push(ids);
      readAt.push(ticks);
      // A call sent while "a" is read: it is read one tick later than "a" was, not at once.
      if (reads.length === 1) waiting.add("b");
      else readDone.resolve();
      return Promise.resolve(ids.map((id) => id === "a" ? "result-a" : null));
    },
    found: (id) => waiting.delete(id),
    logger: consoleLogger("silent"),
    intervalMs: 1,
  });
  unpushed.kick();
  await readDone.promise;
  unpushed.close();
  assertEquals(reads, [["a"], ["b"]]);
  assertEquals(waiting.has("a"), false, "a result found ends the call");
  // Tick 1 sees "a" new, tick 2 reads it; tick 3 sees "b" new, tick 4 reads it.
  assertEquals(readAt, [3, 7]);
});

Deno.test("UnpushedResults reads thousands of waiting calls in bounded turns", async () => {
  const waiting = Array.from({ length: 25 }, (_, i) => `c${i}`);
  const reads: string[][] = [];
  const enough = deferred<void>();
  const unpushed = new UnpushedResults({
    waiting: () => waiting,
    read: (ids) => {
      reads.push(ids);
      if (reads.length === 3) enough.resolve();
      return Promise.resolve(ids.map(() => null));
    },
    found: () => {},
    logger: consoleLogger("silent"),
    intervalMs: 2,
    maxPerRead: 10,
  });
  unpushed.kick();
  await enough.promise;
  unpushed.close();
  assertEquals(reads.slice(0, 3).map((ids) => ids.length), [10, 10, 10]);
  // In turns: every call is read within three reads, the third wrapping round to the start.
  assertEquals(reads[0]![0], "c0");
  assertEquals(reads[1]![0], "c10");
  assertEquals(reads[2], [...waiting.slice(20), ...waiting.slice(0, 5)]);
});

Deno.test("StoredResults reads many raw calls in bounded turns too", async () => {
  const reads: string[][] = [];
  const enough = deferred<void>();
  const stored = new StoredResults({
    read: (ids) => {
      reads.push(ids);
      if (reads.length === 3) enough.resolve();
      return Promise.resolve(ids.map(() => null));
    },
    found: () => {},
    logger: consoleLogger("silent"),
    maxPauseMs: 1,
    maxPerRead: 10,
  });
  for (let i = 0; i < 25; i++) stored.watch(`r${i}`);
  await enough.promise;
  stored.close();
  assertEquals(reads.slice(0, 3).map((ids) => ids.length), [10, 10, 10]);
  assertEquals(new Set(reads.slice(0, 3).flat()).size, 25, "every call read within three turns");
});
