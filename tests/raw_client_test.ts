/**
 * `Client.connect({ protocol: "raw" })` on the memory broker: PRPC's raw
 * request shape on `prpc_raw_{queue}`, results read from their stored place.
 */
import {
  AppServer,
  CallTimeoutError,
  Client,
  ConfigError,
  connectBroker,
  type Delivery,
  RemoteError,
  UnknownFunctionError,
} from "../mod.ts";
import { assertEquals, assertRejects } from "./support/assert.ts";
import { deferred } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";

const hub = () => `memory://raw-client-${crypto.randomUUID()}`;

Deno.test("raw client: calls a prpc server through the raw queue", async () => {
  const url = hub();
  const logger = new RecordingLogger();
  const app = new AppServer({
    broker: "memory",
    url,
    queue: "raw_calls",
    handleSignals: false,
    logger,
  });
  app.register("summ", (a: number, b: number, z = 0.5) => a + b + z);
  await app.start();
  const client = await Client.connect({
    broker: "memory",
    url,
    queue: "raw_calls",
    protocol: "raw",
  });
  try {
    assertEquals(await client.call("summ", [1, 2]), 3.5);
    assertEquals(await client.call("summ", [1, 2], { z: 3 }), 6);
    await assertRejects(client.call("nope"), UnknownFunctionError, '"nope"');
    assertEquals(client.pendingCalls, 0);
  } finally {
    await client.close();
    await app.stop();
  }
});

Deno.test("raw client: sends PRPC's fields only and reads PRPC's results with a {hex} message_id", async () => {
  const url = hub();
  const server = await connectBroker("memory", { url });
  const requests: Record<string, unknown>[] = [];
  const subscription = await server.consume("prpc_like", (delivery: Delivery) => {
    const request = JSON.parse(delivery.body);
    requests.push(request);
    const failed = request.func_args[1] === 0;
    const result = {
      func_name: request.func_name,
      func_args: request.func_args,
      func_kwargs: request.func_kwargs,
      message_id: { hex: request.message_id.replaceAll("-", "") },
      result: failed ? null : request.func_args[0] / request.func_args[1],
      exception_info: failed ? "division by zero" : null, // str(e), as PRPC writes it
      date_create_message: request.date_create_message,
      date_done_message: "2026-11-21T12:00:00.000000+03:00",
    };
    void delivery.complete({ messageId: request.message_id, body: JSON.stringify(result) });
  }, { prefetch: 4 });
  const client = await Client.connect({
    broker: "memory",
    url,
    queue: "prpc_like",
    protocol: "raw",
  });
  try {
    assertEquals(await client.call("divide", [6, 3]), 2);
    const error = await assertRejects(
      client.call("divide", [1, 0]),
      RemoteError,
      "division by zero",
    );
    assertEquals([error.remoteName, error.remoteMessage], ["Error", "division by zero"]);
    assertEquals(Object.keys(requests[0] ?? {}).sort(), [
      "date_create_message",
      "func_args",
      "func_kwargs",
      "func_name",
      "message_id",
    ]);
  } finally {
    await client.close();
    await subscription.close();
    await server.close();
  }
});

Deno.test("raw client: a call nobody answers times out, and close() rejects waiting calls", async () => {
  const url = hub();
  const client = await Client.connect({ broker: "memory", url, queue: "nobody", protocol: "raw" });
  await assertRejects(
    client.call("anything", [], {}, { timeoutMs: 150 }),
    CallTimeoutError,
    "within 150 ms",
  );
  const waiting = client.call("anything");
  const closed = deferred<unknown>();
  waiting.catch(closed.resolve);
  await client.close();
  assertEquals((await closed.promise as Error).name, "BrokerError");
});

Deno.test("raw client: an unknown protocol is a ConfigError", async () => {
  await assertRejects(
    Client.connect({ broker: "memory", url: hub(), protocol: "amqp" as "raw" }),
    ConfigError,
    'Cannot use option protocol: current value is "amqp"; expected "native" or "raw"',
  );
});
