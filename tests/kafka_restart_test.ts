/**
 * A real Kafka broker restarted under a server and a client. Needs a real
 * Kafka (`PRPC_TEST_KAFKA_URL` set, as CI sets it) and Java: the test starts a
 * broker of its own with `tests/support/kafka_broker.sh` on another port, so
 * that stopping it touches no other test.
 */
import { AppServer, BrokerError, Client } from "../mod.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { testUrl } from "./support/kafka_target.ts";
import { RecordingLogger } from "./support/logger.ts";

const SCRIPT = new URL("./support/kafka_broker.sh", import.meta.url).pathname;
const PORT = "19192";
const real = Deno.env.get("PRPC_TEST_KAFKA_URL")?.trim();

async function broker(...args: string[]): Promise<string> {
  const output = await new Deno.Command("bash", {
    args: [SCRIPT, ...args],
    env: { PRPC_KAFKA_PORT: PORT },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    throw new Error(
      `kafka_broker.sh ${args.join(" ")} failed: ${
        new TextDecoder().decode(output.stderr).slice(-2000)
      }`,
    );
  }
  return text;
}

Deno.test({
  name:
    "kafka: after a broker restart, calls made once it is back complete within seconds, each run once",
  ignore: !real,
  async fn() {
    // Kafka's default session timeout: a member that joins as a stranger after the restart
    // would wait for the old one's session to end, 30 s, and fail the bound below.
    const url = testUrl(await broker("start"), { sessionTimeoutMs: 30_000 });
    const logger = new RecordingLogger();
    /** The first argument of every run, in order: no call may run twice. */
    const ran: number[] = [];
    const app = new AppServer({
      broker: "kafka",
      url,
      queue: `restart_${crypto.randomUUID().slice(0, 8)}`,
      handleSignals: false,
      logger,
    });
    app.register("add", (a: number, b: number) => {
      ran.push(a);
      return a + b;
    });
    let client: Client | undefined;
    try {
      await app.start();
      client = await Client.connect({
        broker: "kafka",
        url,
        queue: app.queue,
        logger,
        timeoutMs: 60_000,
      });
      assertEquals(await client.call("add", [1, 1]), 2);
      // Calls keep coming while the broker is away: each ends with its result or a BrokerError.
      const during: Promise<unknown>[] = [];
      let bouncing = true;
      const bounced = broker("bounce", "3").finally(() => (bouncing = false));
      while (bouncing) {
        during.push(client.call("add", [1_000 + during.length, 1]).catch((err) => err));
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await bounced;
      const backAt = Date.now();
      const after = await Promise.all(
        Array.from({ length: 5 }, (_, i) => client!.call("add", [2_000 + i, 1])),
      );
      const waitedMs = Date.now() - backAt;
      console.log(`calls made once Kafka was back completed in ${waitedMs} ms`);
      assertEquals(after, [2_001, 2_002, 2_003, 2_004, 2_005]);
      // The target is 5 s; this bound leaves room for a slow machine, and none for a 30 s wait.
      assert(waitedMs < 10_000, `${waitedMs} ms after Kafka was back`);
      const outcomes = await Promise.all(during);
      let answered = 0;
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome instanceof Error) assert(outcome instanceof BrokerError, String(outcome));
        else {
          assertEquals(outcome, 1_000 + i + 1);
          answered++;
        }
      }
      // Nothing ran twice (every call has an argument of its own). A call that failed on the
      // client may still have run (its request reached Kafka, its acknowledgement did not), but
      // each answered one did.
      assertEquals(new Set(ran).size, ran.length, `a call ran twice: ${ran.join(", ")}`);
      assert(ran.length >= 1 + answered + 5, `${ran.length} runs for ${answered} answered calls`);
    } finally {
      await client?.close();
      await app.stop({ graceMs: 0 });
      await broker("stop");
    }
  },
});
