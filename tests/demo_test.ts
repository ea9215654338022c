/** The README's first command: `deno task demo` runs the quickstart and exits 0. */
import { assert, assertEquals } from "./support/assert.ts";

Deno.test("deno task demo shows results in all three worker types, kwargs, a remote error and a timeout, then exits 0", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "demo"],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assertEquals(output.code, 0, stderr);
  const expected = [
    "summ(1, 2)            = 3.5",
    "summ(1, 2, {z: 3})    = 6",
    "hello_world()         = hello_world",
    "fib(25) in a thread   = 75025",
    "whereAmI() process    = a subprocess of its own",
    'api.greet("prpc")     = Hello, prpc!',
    "300 parallel calls    = 300 results, last 598",
    "remote error          = RangeError: division by zero",
    'timeout               = no result from "slow" within 200 ms',
    'unknown function      = no function "no_such_function" is registered on queue "quickstart"',
  ];
  for (const line of expected) assert(stdout.includes(line), `missing ${line} in:\n${stdout}`);
});
