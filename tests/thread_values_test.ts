/**
 * Calls to `thread` workers through a server, at the edges of the shared
 * buffer: payloads too large for it, values only structured clone carries,
 * calls far apart (the worker back in its event loop) and close together, and
 * timers a function leaves behind while calls keep coming.
 */

import { AppServer, Client, SerializationError } from "../mod.ts";
import { SHARED_DATA_BYTES, WORKER_HOT_MS } from "../workers/thread_buffer.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { RecordingLogger } from "./support/logger.ts";
import * as values from "./fixtures/thread_values.ts";

const VALUES = new URL("./fixtures/thread_values.ts", import.meta.url);

/** A server with every fixture function in a thread worker, and a client; `body` runs with the client. */
async function withThreads(body: (client: Client) => Promise<void>): Promise<void> {
  const url = `memory://thread-values-${crypto.randomUUID()}`;
  const app = new AppServer({
    broker: "memory",
    url,
    queue: "thread_values",
    handleSignals: false,
    logger: new RecordingLogger(),
    maxMessageBytes: 8 * SHARED_DATA_BYTES,
  });
  await app.registerModule(VALUES, { worker: "thread" });
  app.register("async_kinds", values.kinds);
  await app.start();
  const client = await Client.connect({ broker: "memory", url, queue: "thread_values" });
  try {
    await body(client);
  } finally {
    await client.close();
    await app.stop();
  }
}

Deno.test("arguments and results too large for the shared buffer cross by message", async () => {
  await withThreads(async (client) => {
    const size = 2 * SHARED_DATA_BYTES;
    assertEquals(await client.call("echo", [1]), 1);
    assertEquals(await client.call("measure", ["a".repeat(size)]), size);
    assertEquals(await client.call("text", [size]), "x".repeat(size));
    assertEquals(await client.call("echo", [{ back: "to the buffer" }]), { back: "to the buffer" });
  });
});

Deno.test("results keep the JSON form structured clone gave them", async () => {
  await withThreads(async (client) => {
    for (let i = 0; i < 2; i++) {
      // Twice: the first call reaches a worker by message, the second through the buffer.
      assertEquals(await client.call("lossy"), { kept: 1, list: [null, 2], zero: 0 });
      assertEquals(await client.call("date"), "1970-01-01T00:00:00.000Z");
      assertEquals(await client.call("instance"), { cents: 5 }, "a clone has no prototype");
      await assertRejects(client.call("proxy"), SerializationError, "cannot leave the worker");
      await assertRejects(client.call("notANumber"), SerializationError, "NaN has no JSON form");
    }
  });
});

Deno.test("a skipped argument arrives as undefined, so its default applies", async () => {
  await withThreads(async (client) => {
    const expected = ["string:default a", "number:5"];
    assertEquals(await client.call("async_kinds", [], { b: 5 }), expected);
    assertEquals(await client.call("kinds", [], { b: 5 }), expected);
    assertEquals(await client.call("kinds", [], { b: 5 }), expected);
  });
});

Deno.test("many calls in a row, and calls far apart, all get their own results", async () => {
  await withThreads(async (client) => {
    for (let i = 0; i < 500; i++) {
      assertEquals(await client.call("echo", [[i, `n${i}`]]), [i, `n${i}`]);
    }
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 2 * WORKER_HOT_MS));
      assertEquals(
        await client.call("echo", [i]),
        i,
        "after the worker went back to its event loop",
      );
    }
    const together = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.call("echo", [i])),
    );
    assertEquals(together, Array.from({ length: 20 }, (_, i) => i));
  });
});

Deno.test("a timer a function left behind fires while quick calls keep its worker busy", async () => {
  await withThreads(async (client) => {
    const channel = `thread-timer-${crypto.randomUUID()}`;
    const beats = new BroadcastChannel(channel);
    let fired = false;
    beats.onmessage = () => fired = true;
    try {
      assertEquals(await client.call("timerAfterReturn", [channel, 1]), "returned");
      const until = Date.now() + 10_000;
      let calls = 0;
      while (!fired && Date.now() < until) {
        assertEquals(await client.call("echo", [calls]), calls);
        calls++;
      }
      assert(fired, `the timer did not fire during ${calls} calls`);
    } finally {
      beats.close();
    }
  });
});
