import assert from "node:assert/strict";
import { Timeouts } from "../protocol/timeouts.ts";

Deno.test("Timeouts runs each callback once its duration has passed, in deadline order", async () => {
  const timeouts = new Timeouts();
  const fired: string[] = [];
  const done = Promise.withResolvers<void>();
  const start = performance.now();
  const at: Record<string, number> = {};
  const note = (name: string) => () => {
    at[name] = performance.now() - start;
    fired.push(name);
    if (fired.length === 3) done.resolve();
  };
  timeouts.start(60, note("long"));
  timeouts.start(20, note("short"));
  timeouts.start(20, note("short2"));
  await done.promise;
  assert.deepEqual(fired, ["short", "short2", "long"]);
  assert.ok(at.short! >= 19 && at.long! >= 59, JSON.stringify(at));
});

Deno.test("Timeouts.cancel stops a callback, and the last cancel leaves no timer running", async () => {
  const timeouts = new Timeouts();
  let ran = 0;
  const first = timeouts.start(10, () => ran++);
  const middle = timeouts.start(10, () => ran++);
  const last = timeouts.start(10, () => ran++);
  middle.cancel();
  middle.cancel();
  first.cancel();
  last.cancel();
  // A timer left running would fail this test through Deno's sanitizers; none may fire either.
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(ran, 0);
});

Deno.test("Timeouts keeps the ones not cancelled when others of the same duration are", async () => {
  const timeouts = new Timeouts();
  const fired: number[] = [];
  const done = Promise.withResolvers<void>();
  const handles = [0, 1, 2, 3, 4].map((i) =>
    timeouts.start(15, () => {
      fired.push(i);
      if (i === 3) done.resolve();
    })
  );
  handles[0]!.cancel();
  handles[2]!.cancel();
  handles[4]!.cancel();
  await done.promise;
  assert.deepEqual(fired, [1, 3]);
});

Deno.test("Timeouts started from a callback run later, on the same timer", async () => {
  const timeouts = new Timeouts();
  const done = Promise.withResolvers<number>();
  timeouts.start(5, () => {
    const start = performance.now();
    timeouts.start(10, () => done.resolve(performance.now() - start));
  });
  assert.ok((await done.promise) >= 9);
});
