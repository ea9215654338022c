/**
 * A Kafka server killed mid-call (kill -9): once its session times out, the
 * group gives its partitions to another server, which runs the call once, as
 * its second delivery, and commits it.
 */
import { callContext } from "../mod.ts";
import { requestQueueName } from "../brokers/types.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { deferred, waitFor } from "./support/async.ts";
import { kafkaTest } from "./support/kafka_setup.ts";
import { FAST_GROUP_SETTINGS } from "./support/kafka_target.ts";

const fixture = new URL("./fixtures/kafka_server.ts", import.meta.url).pathname;

kafkaTest(
  "a server killed mid-call: the call completes, once, after the group rebalances",
  async (k) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-env", "--allow-net", "--allow-read", fixture],
      env: {
        NO_COLOR: "1",
        PRPC_TYPE_BROKER: "kafka",
        PRPC_URL_BROKER: k.url,
        PRPC_QUEUE_NAME: k.queue,
      },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const lines: string[] = [];
    const ready = deferred();
    const started = deferred();
    const reading = (async () => {
      let buffered = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buffered += chunk;
        const parts = buffered.split("\n");
        buffered = parts.pop() ?? "";
        lines.push(...parts);
        if (lines.includes("ready")) ready.resolve();
        if (lines.includes("started 1")) started.resolve();
      }
      const ended = new Error(`the server exited early: ${lines.join(" | ")}`);
      ready.reject(ended);
      started.reject(ended);
    })();
    try {
      await ready.promise;
      const client = await k.client();
      const call = client.call("work", [], {}, { timeoutMs: 60_000 });
      await started.promise;
      child.kill("SIGKILL");
      const killedAt = Date.now();
      await child.status;

      const attempts: number[] = [];
      // start() resolves once the group has evicted the dead server and rebalanced.
      await k.server((app) =>
        app.register("work", () => {
          attempts.push(callContext().attempt);
          return "done";
        })
      );
      assertEquals(await call, "done");
      // Liveness, not speed: the dead member's session must end it, and then the call runs.
      const waitedMs = Date.now() - killedAt;
      assert(
        waitedMs <= FAST_GROUP_SETTINGS.sessionTimeoutMs + 5_000,
        `the call completed ${waitedMs} ms after the kill`,
      );
      const topic = requestQueueName(k.queue, "native");
      await waitFor(async () => {
        const offsets = await k.committed(topic);
        return [...offsets.values()].reduce((sum, offset) => sum + Math.max(offset, 0), 0) === 1;
      }, "the commit past the call");
      assertEquals(attempts, [2], "ran once, as the second delivery");
      assertEquals(lines.filter((line) => line.startsWith("started")), ["started 1"]);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
      await reading.catch(() => {});
    }
  },
);
