/**
 * Every `example:*` task of deno.json runs as a user runs it, against the real
 * broker it names: a server in one process, a client in another (both with the
 * permissions the task gives and nothing more), the one-process examples to
 * their end, and the Python raw client against the Redis server. The README
 * quotes examples/server.ts and examples/client.ts; they must not drift apart.
 */
import { Client, consoleLogger } from "../mod.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { amqpForTests } from "./support/amqp_server.ts";
import { findPython } from "./support/prpc_python.ts";
import { redisForTests } from "./support/redis_server.ts";

const ROOT = new URL("../", import.meta.url);
const TASKS: Record<string, string> = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", ROOT)),
).tasks;
const redis = await redisForTests();
const amqp = await amqpForTests();
const kafkaUrl = Deno.env.get("PRPC_TEST_KAFKA_URL")?.trim() || undefined;
const python = await findPython();

/** A task's command line as a process: its `NAME=value` prefixes become environment. */
function taskCommand(name: string, env: Record<string, string>): Deno.Command {
  const line = TASKS[name];
  if (line === undefined) throw new Error(`deno.json has no task ${name}`);
  const words = line.split(/\s+/);
  const taskEnv: Record<string, string> = {};
  while (/^[A-Z_]+=/.test(words[0] ?? "")) {
    const [key, ...value] = words.shift()!.split("=");
    taskEnv[key!] = value.join("=");
  }
  const [program, ...args] = words;
  return new Deno.Command(program === "deno" ? Deno.execPath() : program!, {
    args,
    cwd: ROOT,
    env: { ...env, ...taskEnv, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs a task to its end through `deno task`, as a user types it. */
async function runTask(name: string, env: Record<string, string>): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", name],
    cwd: ROOT,
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assertEquals(output.code, 0, `${name}: ${new TextDecoder().decode(output.stderr)}`);
  return stdout;
}

const CLIENT_OUTPUT = '3.5\n6\n[ "a", "b" ]\n';

/** Starts a server task, runs `body` once it answers, then stops it with SIGINT. */
async function withServerTask(
  broker: "redis" | "amqp" | "kafka",
  url: string,
  body: (env: Record<string, string>) => Promise<void>,
): Promise<void> {
  const env = {
    PRPC_URL_BROKER: url,
    PRPC_QUEUE_NAME: `example_${crypto.randomUUID().slice(0, 8)}`,
  };
  const server = taskCommand(`example:${broker}-server`, env).spawn();
  const stderr = new Response(server.stderr).text();
  const stdout = new Response(server.stdout).text();
  try {
    // The server answers the built-in ping once it serves.
    const probe = await Client.connect({
      broker,
      url,
      queue: env.PRPC_QUEUE_NAME,
      timeoutMs: 60_000,
      logger: consoleLogger("silent"),
    });
    try {
      assertEquals(await probe.call("ping"), "pong");
    } finally {
      await probe.close();
    }
    await body(env);
  } finally {
    server.kill("SIGINT");
    const status = await server.status;
    // Drained and stopped, then the exit code of a process ended by SIGINT (128 + 2), as a shell
    // expects it.
    assertEquals(status.code, 130, `the server after SIGINT: ${await stderr}`);
    assert((await stdout).includes("[prpc] stopped"), await stderr);
  }
}

for (
  const [broker, url, ignore] of [
    ["redis", redis.url, redis.ignore],
    ["amqp", amqp.url, amqp.ignore],
    ["kafka", kafkaUrl, kafkaUrl === undefined ? "PRPC_TEST_KAFKA_URL is not set" : undefined],
  ] as const
) {
  Deno.test({
    name: `examples: example:${broker}-server and example:${broker}-client talk through ${broker}`,
    ignore: ignore !== undefined,
    fn: () =>
      withServerTask(broker, url!, async (env) => {
        assertEquals(await runTask(`example:${broker}-client`, env), CLIENT_OUTPUT);
        if (broker === "redis" && python !== undefined) {
          // The Python raw client of the README, against the same server.
          const output = await new Deno.Command(python, {
            args: [new URL("examples/raw_client.py", ROOT).pathname],
            env,
            stdout: "piped",
            stderr: "piped",
          }).output();
          assertEquals(output.code, 0, new TextDecoder().decode(output.stderr));
          const lines = new TextDecoder().decode(output.stdout).split("\n");
          assertEquals(lines.slice(0, 2), ["3.5", "6"]);
          assert(lines[2]?.startsWith('ArgumentError: summ() missing required argument "b"'));
        }
      }),
  });
}

Deno.test("examples: example:workers, example:errors and example:shutdown run to their end", async () => {
  const workers = await runTask("example:workers", {});
  assert(workers.includes("[ 832040, 1346269, 2178309 ]\n/**\nRemoteError outside"), workers);
  assert(workers.endsWith("true\n"), workers);
  const errors = await runTask("example:errors", {});
  assertEquals(errors.split("\n").map((line) => line.split(" ")[0]), [
    "RangeError",
    "ArgumentError",
    "UnknownFunctionError",
    "CallTimeoutError",
    "CallTimeoutError",
    "",
  ]);
  assertEquals(await runTask("example:shutdown", {}), "200 ms on first\n3000 ms on second\n");
});

Deno.test("examples: the README quotes examples/server.ts and examples/client.ts as they are", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  for (const file of ["examples/server.ts", "examples/client.ts"]) {
    const text = await Deno.readTextFile(new URL(file, ROOT));
    assert(readme.includes("```ts\n" + text + "```"), `README.md does not quote ${file} as it is`);
  }
  for (const task of Object.keys(TASKS).filter((name) => name.startsWith("example:"))) {
    assert(readme.includes(`deno task ${task}`), `README.md does not name deno task ${task}`);
  }
});
