/**
 * The capture of the real Python PRPC on Redis (`tests/fixtures/prpc-python/`,
 * a copy of the project's contract for PRPC compatibility): the Redis commands
 * its client and server sent, one JSON array per line.
 */

import type { AppServer } from "../../mod.ts";

const FIXTURE = new URL("../fixtures/prpc-python/redis-commands.jsonl", import.meta.url);

/** The captured commands, in order, each as its arguments (`["XADD", "prpc_cap", …]`). */
export async function fixtureCommands(): Promise<string[][]> {
  const text = await Deno.readTextFile(FIXTURE);
  return text.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line));
}

/** A captured request and the result PRPC's server stored for it. */
export interface CapturedCall {
  /** The function called. */
  funcName: string;
  /** The request as PRPC's client added it to `prpc_cap` (field `message`). */
  request: string;
  /** The result as PRPC's server stored it at `prpc_feedback_cap_{uuid}`. */
  result: string;
  /** The call's UUID with dashes, as in the result key. */
  messageId: string;
}

/** The calls of the capture: each request with the result stored for it. */
export async function capturedCalls(): Promise<CapturedCall[]> {
  const commands = await fixtureCommands();
  const calls: CapturedCall[] = [];
  for (const command of commands) {
    if (command[0] !== "XADD") continue;
    const request = command[4]!;
    const parsed = JSON.parse(request);
    const hex: string = parsed.message_id.hex;
    const messageId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${
      hex.slice(16, 20)
    }-${hex.slice(20)}`;
    const stored = commands.find((c) =>
      c[0] === "SET" && c[1] === `prpc_feedback_cap_${messageId}`
    );
    if (stored === undefined) throw new Error(`the capture has no result for ${messageId}`);
    calls.push({ funcName: parsed.func_name, request, result: stored[2]!, messageId });
  }
  return calls;
}

/**
 * The functions of the capture's Python server, in TypeScript, and two more:
 * `echo` records each argument it gets, `tagged` returns an object with a
 * jsonpickle tag for a key.
 *
 * @param app The server.
 * @param calls Where `echo` records its arguments (as JSON).
 */
export function registerCapturedFunctions(app: AppServer, calls: string[]): void {
  app.register(function summ(a: number, b: number, z = 0.5) {
    return a + b + z;
  });
  app.register(function hello_world() {
    return "hello_world";
  });
  app.register(function greet(name: string, greeting = "Hello", punct = "!") {
    return `${greeting}, ${name}${punct}`;
  });
  app.register(function fail(msg: string) {
    throw new Error(msg);
  });
  app.register(function nothing() {});
  app.register(function echo(x: unknown) {
    calls.push(JSON.stringify(x));
    return x;
  });
  app.register(function tagged() {
    return { nested: [{ "py/reduce": [{ "py/function": "os.system" }, { "py/tuple": ["id"] }] }] };
  });
}

/**
 * A Python with jsonpickle and redis-py (`PRPC_TEST_PYTHON`, else Debian's
 * first: another on PATH may lack them), or `undefined` (with a warning) when
 * there is none; under `CI=true` there must be one.
 */
export async function findPython(): Promise<string | undefined> {
  const candidates = [Deno.env.get("PRPC_TEST_PYTHON"), "/usr/bin/python3", "python3"];
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === "") continue;
    try {
      const probe = new Deno.Command(candidate, {
        args: ["-c", "import jsonpickle, redis"],
        stdout: "null",
        stderr: "null",
      });
      if ((await probe.output()).success) return candidate;
    } catch {
      // not there: try the next
    }
  }
  const reason =
    "no python3 with jsonpickle and redis: apt-get install python3-jsonpickle python3-redis";
  if (Deno.env.get("CI") === "true") throw new Error(`CI=true and ${reason}`);
  console.warn(`[prpc tests] skipping the Python client test: ${reason}`);
  return undefined;
}
