/**
 * A Python process calls a prpc server on Redis the way PRPC's own client
 * does, with Debian's jsonpickle and redis-py (tests/python/prpc_client_standin.py),
 * and decodes every result into a PRPCMessage. Needs `python3-jsonpickle` and
 * `python3-redis`; skipped without them, except under `CI=true`.
 */
import { AppServer } from "../mod.ts";
import { assertEquals } from "./support/assert.ts";
import { findPython, registerCapturedFunctions } from "./support/prpc_python.ts";
import { redisForTests } from "./support/redis_server.ts";

const redis = await redisForTests();

const python = await findPython();

Deno.test({
  name:
    "prpc-python: a Python caller with jsonpickle gets every result as a PRPCMessage, and the generated stubs compile",
  ignore: redis.ignore !== undefined || python === undefined,
  fn: async () => {
    const queue = `pyclient_${crypto.randomUUID().slice(0, 8)}`;
    const calls: string[] = [];
    const app = new AppServer({ broker: "redis", url: redis.url, queue, handleSignals: false });
    registerCapturedFunctions(app, calls);
    await app.start();
    try {
      const script = new URL("./python/prpc_client_standin.py", import.meta.url).pathname;
      const output = await new Deno.Command(python!, {
        args: [script, redis.url ?? "", queue],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assertEquals(output.code, 0, stderr);
      const seen = JSON.parse(new TextDecoder().decode(output.stdout));
      assertEquals(seen, {
        ping: "pong",
        summ_tuple: 6,
        summ_list: 6,
        greet: "Hello, Ada!",
        echo_date: "2026-12-05T11:38:36.961162+00:00",
        echo_unicode: { "ключ": ["é", "😀", null, true] },
        fail: [null, "boom"],
        unknown: 'no function "no_such_function" is registered on queue ' + JSON.stringify(queue),
        stub_greet: "Hello, Ada!",
        stub_summ: 3.5,
        stub_echo: { a: 1 },
      });
      assertEquals(calls, [
        JSON.stringify("2026-12-05T11:38:36.961162+00:00"),
        JSON.stringify({ "ключ": ["é", "😀", null, true] }),
        JSON.stringify({ a: 1 }),
      ]);
    } finally {
      await app.stop({ graceMs: 0 });
    }
  },
});
