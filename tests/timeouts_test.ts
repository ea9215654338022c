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

Deno.test("Timeouts.cancel stops a callback, and the last cancel leaves no timer that keeps a test alive", async () => {
  const timeouts = new Timeouts();
  let ran = 0;
  const first = timeouts.start(10, () => ran++);
  const middle = timeouts.start(10, () => ran++);
  const last = timeouts.start(10, () => ran++);
  middle.cancel();
  middle.cancel();
  first.cancel();
  last.cancel();
  // A referenced timer left running would fail this test through Deno's sanitizers; none may
  // fire either.
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

Deno.test("Timeouts started after all were cancelled still run on time", async () => {
  const timeouts = new Timeouts();
  // Leaves the runtime timer running, set for an earlier time than the next timeout.
  timeouts.start(40, () => assert.fail("cancelled")).cancel();
  const started = performance.now();
  const fired = Promise.withResolvers<number>();
  timeouts.start(80, () => fired.resolve(performance.now() - started));
  const elapsed = await fired.promise;
  assert.ok(elapsed >= 79, `fired after ${elapsed} ms`);
  assert.ok(elapsed < 1_000, `fired after ${elapsed} ms`);
});

Deno.test("a process whose timeouts were all cancelled exits without waiting for them", async () => {
  const script = `
    import { timeouts } from ${
    JSON.stringify(new URL("../protocol/timeouts.ts", import.meta.url).href)
  };
    timeouts.start(60_000, () => console.log("fired")).cancel();
    console.log("done");
  `;
  const started = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const elapsed = performance.now() - started;
  assert.equal(new TextDecoder().decode(output.stdout).trim(), "done");
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.ok(elapsed < 30_000, `exited after ${elapsed} ms`);
});

Deno.test("Timeouts: a duration whose timeouts were all cancelled serves the next ones, before and after the timer fired", async () => {
  const timeouts = new Timeouts();
  for (let round = 0; round < 2; round++) {
    // Every timeout of the duration cancelled: its list is empty, and kept until the timer fires.
    for (let i = 0; i < 3; i++) timeouts.start(15, () => assert.fail("cancelled")).cancel();
    const fired = Promise.withResolvers<number>();
    const start = performance.now();
    timeouts.start(15, () => fired.resolve(performance.now() - start));
    assert.ok((await fired.promise) >= 14);
    // The timer has fired: the emptied list is gone, and the next round makes a new one.
  }
});
