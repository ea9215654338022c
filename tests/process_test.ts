/**
 * Behaviour that only shows in a separate process: configuration from the
 * environment, keeping the process alive while serving, and signals.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { deferred } from "./support/async.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

async function runConfigured(env: Record<string, string>) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", fixture("configured.ts")],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("PRPC_QUEUE_NAME sets the queue of servers and clients", async () => {
  const run = await runConfigured({ PRPC_QUEUE_NAME: "from_env" });
  assertEquals(run.code, 0, run.stderr);
  assertEquals(JSON.parse(run.stdout), { queue: "from_env", clientQueue: "from_env" });
});

Deno.test("a bad PRPC_* variable fails at start with its name and value", async () => {
  const cases: [Record<string, string>, string][] = [
    [
      { PRPC_TYPE_BROKER: "nats" },
      'Cannot use PRPC_TYPE_BROKER as a broker: current value is "nats"',
    ],
    [
      { PRPC_QUEUE_NAME: "has space" },
      'Cannot use PRPC_QUEUE_NAME as a queue name: current value is "has space"',
    ],
    [
      { PRPC_MAX_DELIVERIES: "abc" },
      'Cannot read PRPC_MAX_DELIVERIES as a whole number >= 1: current value is "abc"',
    ],
    [
      { PRPC_MAX_WORKERS: "0" },
      'Cannot read PRPC_MAX_WORKERS as a whole number >= 1: current value is "0"',
    ],
    [
      { PRPC_CALL_TIMEOUT_MS: "1.5" },
      'Cannot read PRPC_CALL_TIMEOUT_MS as a whole number >= 1: current value is "1.5"',
    ],
    [
      { PRPC_REDACT_STACKS: "maybe" },
      'Cannot read PRPC_REDACT_STACKS as true or false: current value is "maybe"',
    ],
    [
      { PRPC_MAX_MESSAGE_BYTES: "12" },
      'Cannot read PRPC_MAX_MESSAGE_BYTES as a whole number >= 1024: current value is "12"',
    ],
  ];
  for (const [env, message] of cases) {
    const run = await runConfigured(env);
    assertEquals(run.code, 1, `${JSON.stringify(env)} should fail`);
    assert(run.stderr.includes("ConfigError"), run.stderr);
    assert(run.stderr.includes(message), `expected ${message} in:\n${run.stderr}`);
  }
});

async function startSignalServer(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", fixture("signal_server.ts"), ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const ready = deferred();
  const readAll = (async () => {
    let buffered = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      lines.push(...parts);
      if (lines.includes("ready")) ready.resolve();
    }
    ready.reject(new Error(`server exited before it was ready: ${lines.join(" | ")}`));
  })();
  await ready.promise;
  return { child, lines, readAll };
}

Deno.test("a serving server keeps its process alive until SIGTERM, then exits 143", async () => {
  const { child, lines, readAll } = await startSignalServer([]);
  child.kill("SIGTERM");
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    readAll,
  ]);
  assertEquals(status.code, 143, stderr);
  assert(lines.includes("ready"));
  assert(stderr.includes("SIGTERM received") || lines.some((l) => l.includes("SIGTERM received")));
});

Deno.test("SIGINT stops gracefully: the call in flight finishes, then exit 130", async () => {
  const { child, lines, readAll } = await startSignalServer(["in-flight"]);
  child.kill("SIGINT");
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    readAll,
  ]);
  assertEquals(status.code, 130, stderr);
  assert(
    lines.includes("result: done"),
    `expected the in-flight result, got: ${lines.join(" | ")}`,
  );
});
