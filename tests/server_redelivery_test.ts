/**
 * Server behaviour on redelivery when the stored result cannot be read, on a
 * real Redis: the message is handed back, never run blind, and set aside once
 * it has been delivered more than maxDeliveries times.
 */
import { AppServer } from "../mod.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import { PlainRedis, redisForTests } from "./support/redis_server.ts";

const redis = await redisForTests();

Deno.test({
  name: "a redelivered message whose stored result cannot be read is set aside, not run or looped",
  ignore: redis.ignore !== undefined,
  async fn() {
    const queue = `redeliver_${crypto.randomUUID().slice(0, 8)}`;
    const plain = new PlainRedis(redis.url ?? "");
    const logger = new RecordingLogger();
    const started = deferred();
    let runs = 0;
    const server = (maxDeliveries: number) => {
      const app = new AppServer({
        broker: "redis",
        url: redis.url,
        queue,
        maxDeliveries,
        handleSignals: false,
        logger,
      });
      app.register("work", () => {
        runs++;
        started.resolve();
        return new Promise(() => {});
      });
      return app;
    };
    const first = server(5);
    const second = server(2);
    try {
      await first.start();
      const id = crypto.randomUUID();
      const resultKey = `prpc_feedback_raw_${queue}_${id}`;
      // A value of the wrong type: reading it as a result fails with WRONGTYPE.
      await plain.redis.rpush(resultKey, "not a string");
      await plain.redis.xadd(
        `prpc_raw_${queue}`,
        "*",
        "message",
        JSON.stringify({ func_name: "work", func_args: [], message_id: id }),
      );
      await started.promise;
      await second.start();
      await first.stop({ graceMs: 0 });
      const result = JSON.parse(
        await waitFor(async () => {
          const type = await plain.redis.type(resultKey);
          return type === "string" && await plain.redis.get(resultKey);
        }, "the error result"),
      );
      assert(result.exception_info.includes("stored result cannot be read"), result.exception_info);
      assertEquals(runs, 1, "never run again without knowing whether it had finished");
      const handedBack = logger.lines.filter((line) =>
        line.message.startsWith("cannot read the stored result")
      );
      assertEquals(handedBack.length, 1, "handed back once (attempt 2), set aside at attempt 3");
    } finally {
      await first.stop({ graceMs: 0 });
      await second.stop({ graceMs: 0 });
      await plain.close();
    }
  },
});
