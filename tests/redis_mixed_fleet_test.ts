/**
 * One Redis queue served by a PRPC server and a prpc server at once: calls of
 * prpc's native and raw clients and of PRPC's own client all complete, each run
 * once, whichever server took it. The PRPC server is a stand-in that behaves as
 * the capture and PRPC's source show (tests/python/prpc_server_standin.py).
 */
import { AppServer, Client, RemoteError } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { RecordingLogger } from "./support/logger.ts";
import { findPython } from "./support/prpc_python.ts";
import { PlainRedis, redisForTests } from "./support/redis_server.ts";

const redis = await redisForTests();
const python = await findPython();

/** The stand-in PRPC server, started on a queue; closing its stdin stops it. */
async function startPrpcServer(
  queue: string,
): Promise<{ stop: () => Promise<void>; stderr: () => string }> {
  const script = new URL("./python/prpc_server_standin.py", import.meta.url).pathname;
  // Heartbeat 1 s, recover 3 s: as the prpc server's settings below.
  const child = new Deno.Command(python!, {
    args: [script, redis.url ?? "", queue, "1", "3"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let errors = "";
  const stderrDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (errors += chunk) }),
  );
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the PRPC stand-in ended before it was ready: ${errors}`);
    out += value;
  }
  return {
    stderr: () => errors,
    stop: async () => {
      await child.stdin.close();
      await reader.cancel();
      await child.status;
      await stderrDone;
    },
  };
}

Deno.test({
  name:
    "mixed fleet: a PRPC server and a prpc server on one queue run every call of every client once",
  ignore: redis.ignore !== undefined || python === undefined,
  fn: async () => {
    const queue = `mixed_${crypto.randomUUID().slice(0, 8)}`;
    const logger = new RecordingLogger();
    let prpcRuns = 0;
    const app = new AppServer({
      broker: "redis",
      url: redis.url,
      queue,
      handleSignals: false,
      logger,
      brokerSettings: { heartbeatIntervalMs: 1_000, recoverIntervalMs: 3_000 },
    });
    app.register(function add(a: number, b: number) {
      prpcRuns++;
      return { sum: a + b, by: "prpc" };
    });
    app.register(function pair(a: unknown, b: unknown) {
      prpcRuns++;
      return [a, b];
    });
    app.register(function fail(msg: string) {
      prpcRuns++;
      throw new Error(msg);
    });
    await app.start();
    const prpc = await startPrpcServer(queue);
    const native = await Client.connect({ broker: "redis", url: redis.url, queue, logger });
    const raw = await Client.connect({
      broker: "redis",
      url: redis.url,
      queue,
      logger,
      protocol: "raw",
    });
    const plain = new PlainRedis(redis.url ?? "");
    try {
      const fromPython = new Deno.Command(python!, {
        args: [
          new URL("./python/prpc_client_standin.py", import.meta.url).pathname,
          redis.url ?? "",
          queue,
          "mixed",
          "40",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const calls = 40;
      const [nativeSums, rawSums, pythonOutput] = await Promise.all([
        Promise.all(Array.from({ length: calls }, (_, i) => native.call("add", [i, 1000]))),
        Promise.all(Array.from({ length: calls }, (_, i) => raw.call("add", [i, 1000]))),
        fromPython,
      ]);
      const pythonSums = JSON.parse(new TextDecoder().decode(pythonOutput.stdout));
      assertEquals(pythonOutput.code, 0, new TextDecoder().decode(pythonOutput.stderr));
      const by = new Map<string, number>();
      for (const [i, answer] of [...nativeSums, ...rawSums, ...pythonSums].entries()) {
        const { sum, by: server } = answer as { sum: number; by: string };
        assertEquals(sum, (i % calls) + 1000, `call ${i}`);
        by.set(server, (by.get(server) ?? 0) + 1);
      }
      // Both servers served, and every call ran exactly once.
      assert((by.get("prpc") ?? 0) > 0 && (by.get("python") ?? 0) > 0, JSON.stringify([...by]));
      const pythonRuns = Number(await plain.redis.get(`prpc_standin_runs_${queue}`) ?? 0);
      assertEquals(prpcRuns + pythonRuns, 3 * calls);
      assertEquals(by.get("python"), pythonRuns);

      // Tuples and errors from either server reach a prpc client as from a prpc server.
      const pairs = await Promise.all(
        Array.from({ length: 20 }, (_, i) => native.call("pair", [i, "x"])),
      );
      assertEquals(pairs, Array.from({ length: 20 }, (_, i) => [i, "x"]));
      for (let i = 0; i < 6; i++) {
        const error = await assertRejects(native.call("fail", ["boom"]), RemoteError);
        assertEquals(error.remoteMessage, "boom");
      }
      assertEquals(prpc.stderr(), "", "the PRPC server read every request");
      assertEquals(logger.at("error"), []);
      // Nothing is left pending or in the streams.
      assertEquals(await plain.redis.xlen(`prpc_dead_${queue}`), 0);
      const pending = await plain.redis.xpending(`prpc_${queue}`, "prpc_group_consumers");
      assertEquals((pending as unknown[])[0], 0);
    } finally {
      await native.close();
      await raw.close();
      await prpc.stop();
      await app.stop({ graceMs: 0 });
      await plain.close();
    }
  },
});
