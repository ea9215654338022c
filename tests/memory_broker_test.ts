/**
 * The memory broker through the broker interface: the delivery semantics the
 * server relies on, isolation of hubs, limits and URL settings.
 */
import { ConfigError, connectBroker, type Delivery, PayloadTooLargeError } from "../mod.ts";
import { connect } from "../brokers/memory.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { BrokerError } from "../protocol/errors.ts";

const hub = () => `memory://broker-test-${crypto.randomUUID()}`;

/** Collects deliveries as they arrive. */
function collector() {
  const deliveries: Delivery[] = [];
  let wake: (() => void) | undefined;
  return {
    deliveries,
    handler: (delivery: Delivery) => {
      deliveries.push(delivery);
      wake?.();
    },
    /** Resolves once `count` deliveries have arrived. */
    async until(count: number) {
      while (deliveries.length < count) await new Promise<void>((resolve) => (wake = resolve));
    },
  };
}

Deno.test("memory broker: hubs are isolated from each other", async () => {
  const a = await connect({ url: hub() });
  const b = await connect({ url: hub() });
  const seenOnB = collector();
  await b.consume("q", seenOnB.handler, { prefetch: 10 });
  const seenOnA = collector();
  await a.consume("q", seenOnA.handler, { prefetch: 10 });
  await a.publish("q", "native", "for a");
  await seenOnA.until(1);
  await b.publish("q", "native", "for b");
  await seenOnB.until(1);
  assertEquals(seenOnA.deliveries.map((d) => d.body), ["for a"]);
  assertEquals(seenOnB.deliveries.map((d) => d.body), ["for b"]);
  await a.close();
  await b.close();
});

Deno.test("memory broker: no more than prefetch deliveries are unsettled at once", async () => {
  const url = hub();
  const broker = await connect({ url });
  const seen = collector();
  await broker.consume("q", seen.handler, { prefetch: 2 });
  for (let i = 0; i < 5; i++) await broker.publish("q", "native", `m${i}`);
  await seen.until(2);
  await Promise.resolve();
  assertEquals(seen.deliveries.length, 2);
  await seen.deliveries[0]?.complete({ messageId: "x", body: "{}" });
  await seen.until(3);
  assertEquals(seen.deliveries.map((d) => d.body), ["m0", "m1", "m2"]);
  await broker.close();
});

Deno.test("memory broker: unsettled deliveries come back when their connection closes", async () => {
  const url = hub();
  const crashing = await connect({ url });
  const first = collector();
  await crashing.consume("q", first.handler, { prefetch: 5 });
  await crashing.publish("q", "native", "one");
  await crashing.publish("q", "raw", "two");
  await first.until(2);
  assertEquals(first.deliveries.map((d) => d.attempt), [1, 1]);
  await crashing.close();
  await assertRejects(
    first.deliveries[0]!.complete({ messageId: "x", body: "{}" }),
    BrokerError,
    "already settled",
  );

  const survivor = await connect({ url });
  const second = collector();
  await survivor.consume("q", second.handler, { prefetch: 5 });
  await second.until(2);
  assertEquals(
    second.deliveries.map((d) => [d.kind, d.body, d.attempt]).sort(),
    [["native", "one", 2], ["raw", "two", 2]],
  );
  await survivor.close();
});

Deno.test("memory broker: release() puts a message back at the front of its queue", async () => {
  const broker = await connect({ url: hub() });
  const seen = collector();
  await broker.consume("q", seen.handler, { prefetch: 1 });
  await broker.publish("q", "native", "first");
  await broker.publish("q", "native", "second");
  await seen.until(1);
  await seen.deliveries[0]?.release();
  await seen.until(2);
  assertEquals([seen.deliveries[1]?.body, seen.deliveries[1]?.attempt], ["first", 2]);
  await assertRejects(seen.deliveries[0]!.release(), BrokerError, "already settled");
  await broker.close();
});

Deno.test("memory broker: complete() stores the result and sends it to the inbox", async () => {
  const broker = await connect({ url: hub() });
  const replies: string[] = [];
  const inbox = await broker.openInbox((body) => replies.push(body));
  const seen = collector();
  await broker.consume("q", seen.handler, { prefetch: 1 });
  await broker.publish("q", "raw", "request");
  await seen.until(1);
  const id = crypto.randomUUID();
  await seen.deliveries[0]?.complete({ messageId: id, body: '{"r":1}', replyTo: inbox.address });
  await Promise.resolve();
  assertEquals(replies, ['{"r":1}']);
  assertEquals(await broker.readResult("q", "raw", id), '{"r":1}');
  assertEquals(await broker.readResult("q", "native", id), null, "results are kept per queue kind");
  await inbox.close();
  await broker.close();
});

Deno.test("memory broker: results expire after result_ttl_sec", async () => {
  const broker = await connect({ url: `${hub()}?result_ttl_sec=1` });
  const seen = collector();
  await broker.consume("q", seen.handler, { prefetch: 1 });
  await broker.publish("q", "native", "request");
  await seen.until(1);
  const id = crypto.randomUUID();
  await seen.deliveries[0]?.complete({ messageId: id, body: "{}" });
  assertEquals(await broker.readResult("q", "native", id), "{}");
  await new Promise((resolve) => setTimeout(resolve, 1_050));
  assertEquals(await broker.readResult("q", "native", id), null);
  await broker.close();
});

Deno.test("memory broker: the dead-letter queue keeps the newest dead_letter_limit entries", async () => {
  const broker = await connect({ url: `${hub()}?dead_letter_limit=2` });
  const seen = collector();
  await broker.consume("q", seen.handler, { prefetch: 10 });
  for (const body of ["a", "b", "c"]) await broker.publish("q", "raw", body);
  await seen.until(3);
  for (const delivery of seen.deliveries) await delivery.deadLetter(`bad ${delivery.body}`);
  const dead = await broker.readDeadLetters("q", 10);
  assertEquals(dead.map((entry) => [entry.kind, entry.body, entry.reason]), [
    ["raw", "b", "bad b"],
    ["raw", "c", "bad c"],
  ]);
  assert(/\+00:00$/.test(dead[0]?.date ?? ""), dead[0]?.date);
  assertEquals((await broker.readDeadLetters("q", 1)).length, 1);
  await broker.close();
});

Deno.test("memory broker: publish() refuses bodies over max_message_bytes", async () => {
  const broker = await connect({ url: `${hub()}?max_message_bytes=2048` });
  assertEquals(broker.maxMessageBytes, 2048);
  const error = await assertRejects(
    broker.publish("q", "native", "é".repeat(1025)),
    PayloadTooLargeError,
    "2050 bytes",
  );
  assertEquals([error.size, error.limit], [2050, 2048]);
  await broker.publish("q", "native", "é".repeat(1024));
  await broker.close();
});

Deno.test("memory broker: bad URLs fail with ConfigError", async () => {
  await assertRejects(connect({ url: "redis://localhost" }), ConfigError, "scheme must be memory:");
  await assertRejects(connect({ url: "memory://h?ttl=1" }), ConfigError, "known parameters");
  await assertRejects(connect({ url: "memory://h?result_ttl_sec=0" }), ConfigError, "whole number");
  await assertRejects(connect({ url: "memory://h?result_ttl_sec=abc" }), ConfigError, '"abc"');
  await assertRejects(connect({ url: "not a url" }), ConfigError, "memory broker URL");
});

Deno.test("memory broker: a closed connection refuses further use", async () => {
  const broker = await connectBroker("memory", { url: hub() });
  await broker.close();
  await broker.close(); // twice is fine
  await assertRejects(broker.publish("q", "native", "x"), BrokerError, "after close()");
});

Deno.test("memory broker: raw and native requests are served in turn", async () => {
  const broker = await connect({ url: hub() });
  for (let i = 0; i < 3; i++) await broker.publish("q", "native", `n${i}`);
  for (let i = 0; i < 3; i++) await broker.publish("q", "raw", `r${i}`);
  const seen = collector();
  await broker.consume("q", seen.handler, { prefetch: 10 });
  await seen.until(6);
  assertEquals(seen.deliveries.map((d) => d.body), ["n0", "r0", "n1", "r1", "n2", "r2"]);
  await broker.close();
});

Deno.test("memory broker: a native result taken by a live inbox is not stored as well", async () => {
  const broker = await connect({ url: hub() });
  const replies: string[] = [];
  const inbox = await broker.openInbox((body) => replies.push(body));
  const seen = collector();
  await broker.consume("q", seen.handler, { prefetch: 2 });
  await broker.publish("q", "native", "to a live inbox");
  await broker.publish("q", "native", "to a gone inbox");
  await seen.until(2);
  const [live, gone] = [crypto.randomUUID(), crypto.randomUUID()];
  await seen.deliveries[0]?.complete({ messageId: live, body: "1", replyTo: inbox.address });
  await seen.deliveries[1]?.complete({ messageId: gone, body: "2", replyTo: "memory-inbox-gone" });
  await Promise.resolve();
  assertEquals(replies, ["1"]);
  assertEquals(await broker.readResult("q", "native", live), null);
  assertEquals(await broker.readResult("q", "native", gone), "2");
  await inbox.close();
  await broker.close();
});
