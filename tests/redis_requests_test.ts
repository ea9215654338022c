/**
 * Redis broker: the requests a client sends in one turn are added by one run
 * of the ADD script per stream, each with its own entry and its own outcome; a
 * request sent alone is a plain XADD.
 */
import { connect } from "../brokers/redis.ts";
import type { Broker } from "../brokers/types.ts";
import { MAX_ADD_CHARS, MAX_ADD_COUNT } from "../brokers/redis/requests.ts";
import { BrokerError } from "../protocol/errors.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { RecordingLogger } from "./support/logger.ts";
import { ownServerIgnore, PlainRedis, RedisTestServer } from "./support/redis_server.ts";

const ownIgnore = await ownServerIgnore();

/** The `message` fields of a stream's entries, oldest first. */
async function messages(plain: PlainRedis, stream: string): Promise<string[]> {
  const entries = await plain.redis.xrange(stream, "-", "+");
  return entries.map(([, fields]) => fields[fields.indexOf("message") + 1]!);
}

async function withBroker(
  body: (broker: Broker, plain: PlainRedis, queue: string) => Promise<void>,
): Promise<void> {
  const server = await RedisTestServer.start();
  const plain = new PlainRedis(server.url);
  const broker = await connect({ url: server.url, logger: new RecordingLogger() });
  try {
    await body(broker, plain, `req_${crypto.randomUUID().slice(0, 8)}`);
  } finally {
    await broker.close();
    await plain.close();
    await server.stop();
  }
}

const request = (n: number) =>
  JSON.stringify({ func_name: "f", func_args: [n], message_id: `${n}` });

Deno.test({
  name: "redis: the requests of one turn are added by one script run, in order",
  ignore: ownIgnore !== undefined,
  async fn() {
    await withBroker(async (broker, plain, queue) => {
      await plain.redis.config("RESETSTAT");
      const bodies = Array.from({ length: 40 }, (_, n) => request(n));
      await Promise.all(bodies.map((body) => broker.publish(queue, "native", body)));
      const counted = await plain.commandCalls();
      assertEquals(counted.evalsha, 1);
      assertEquals(counted.xadd, 40);
      assertEquals(await messages(plain, `prpc_${queue}`), bodies);
    });
  },
});

Deno.test({
  name: "redis: a request sent alone is a plain XADD",
  ignore: ownIgnore !== undefined,
  async fn() {
    await withBroker(async (broker, plain, queue) => {
      await plain.redis.config("RESETSTAT");
      await broker.publish(queue, "raw", request(1));
      await broker.publish(queue, "raw", request(2));
      const counted = await plain.commandCalls();
      assertEquals(counted.xadd, 2);
      assertEquals(counted.evalsha, undefined);
      assertEquals(await messages(plain, `prpc_raw_${queue}`), [request(1), request(2)]);
    });
  },
});

Deno.test({
  name: "redis: one turn's requests to two streams go in one run per stream",
  ignore: ownIgnore !== undefined,
  async fn() {
    await withBroker(async (broker, plain, queue) => {
      await plain.redis.config("RESETSTAT");
      const sent: Promise<void>[] = [];
      for (let n = 0; n < 6; n++) {
        sent.push(broker.publish(queue, n % 2 === 0 ? "native" : "raw", request(n)));
      }
      await Promise.all(sent);
      assertEquals((await plain.commandCalls()).evalsha, 2);
      assertEquals(await messages(plain, `prpc_${queue}`), [request(0), request(2), request(4)]);
      assertEquals(await messages(plain, `prpc_raw_${queue}`), [
        request(1),
        request(3),
        request(5),
      ]);
    });
  },
});

Deno.test({
  name: "redis: a turn's requests past the count or size of one run go in several, still in order",
  ignore: ownIgnore !== undefined,
  async fn() {
    await withBroker(async (broker, plain, queue) => {
      await plain.redis.config("RESETSTAT");
      const many = Array.from({ length: MAX_ADD_COUNT + 10 }, (_, n) => request(n));
      await Promise.all(many.map((body) => broker.publish(queue, "native", body)));
      let counted = await plain.commandCalls();
      assertEquals(counted.evalsha, 2);
      assertEquals(counted.xadd, many.length);
      assertEquals(await messages(plain, `prpc_${queue}`), many);

      // Three requests of 0.4 of the limit: two fit in one run, the third starts the next (alone).
      await plain.redis.config("RESETSTAT");
      const pad = "x".repeat(Math.floor(MAX_ADD_CHARS * 0.4));
      const big = [0, 1, 2].map((n) => JSON.stringify({ message_id: `big${n}`, pad }));
      await Promise.all(big.map((body) => broker.publish(queue, "raw", body)));
      counted = await plain.commandCalls();
      assertEquals(counted.evalsha, 1);
      assertEquals(counted.xadd, 3);
      assertEquals(await messages(plain, `prpc_raw_${queue}`), big);
    });
  },
});

Deno.test({
  name: "redis: each request of a run gets Redis's refusal as its own BrokerError",
  ignore: ownIgnore !== undefined,
  async fn() {
    await withBroker(async (broker, plain, queue) => {
      await plain.redis.set(`prpc_${queue}`, "not a stream");
      const outcomes = await Promise.allSettled(
        [1, 2, 3].map((n) => broker.publish(queue, "native", request(n))),
      );
      for (const outcome of outcomes) {
        assert(outcome.status === "rejected");
        assert(outcome.reason instanceof BrokerError, String(outcome.reason));
        assert(
          outcome.reason.message.includes(`prpc_${queue}`) &&
            outcome.reason.message.includes("WRONGTYPE"),
          outcome.reason.message,
        );
      }
      // The raw stream of the same turn is not affected.
      await plain.redis.del(`prpc_${queue}`);
      const mixed = await Promise.allSettled([
        broker.publish(queue, "raw", request(4)),
        broker.publish(queue, "raw", request(5)),
      ]);
      assertEquals(mixed.map((outcome) => outcome.status), ["fulfilled", "fulfilled"]);
    });
  },
});

Deno.test({
  name: "redis: a client whose user may not run scripts adds its requests one XADD each, once told",
  ignore: ownIgnore !== undefined,
  async fn() {
    const server = await RedisTestServer.start([
      "--user",
      "caller",
      "on",
      ">pw",
      "~*",
      "&*",
      "+@all",
      "-@scripting",
    ]);
    const plain = new PlainRedis(server.url);
    const logger = new RecordingLogger();
    const broker = await connect({
      url: `redis://caller:pw@127.0.0.1:${server.port}`,
      logger,
    });
    const queue = `acl_${crypto.randomUUID().slice(0, 8)}`;
    try {
      const first = [1, 2, 3].map(request);
      await Promise.all(first.map((body) => broker.publish(queue, "native", body)));
      const second = [4, 5, 6].map(request);
      await Promise.all(second.map((body) => broker.publish(queue, "native", body)));
      // The refused run added nothing: each request is in the stream once, in order.
      assertEquals(await messages(plain, `prpc_${queue}`), [...first, ...second]);
      const warnings = logger.at("warn").filter((line) => line.message.includes("scripts"));
      assertEquals(warnings.length, 1, JSON.stringify(logger.at("warn")));
      assert(String(warnings[0]!.details?.error).includes("NOPERM"), JSON.stringify(warnings[0]));
    } finally {
      await broker.close();
      await plain.close();
      await server.stop();
    }
  },
});
