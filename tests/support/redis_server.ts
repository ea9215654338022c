/**
 * Redis for the tests: a `redis-server` of the test module's own on a free port
 * (no persistence, its own temporary directory), or the server named by
 * `PRPC_TEST_REDIS_URL`.
 *
 * Without `redis-server` the Redis tests are skipped with a message, except
 * under `CI=true`, where a missing server fails the run.
 *
 * Every server started here runs under a small shell wrapper that kills it
 * when this process's end of its stdin pipe closes, so no `redis-server`
 * outlives the test process, however that process ends.
 */

import { Redis } from "ioredis";

/** What the Redis tests of a module work with. */
export interface RedisForTests {
  /** URL of a running server; `undefined` when the tests are skipped. */
  url: string | undefined;
  /** Why the Redis tests are skipped here; `undefined` when they run. */
  ignore: string | undefined;
}

const INSTALL_HINT = "install it with `apt-get install redis-server`, or set PRPC_TEST_REDIS_URL";

// Runs redis-server with the given arguments; kills it (kill -9) once stdin reaches
// end-of-file, and removes its directory when it has exited. (Background jobs of a
// script get /dev/null as stdin, so the watcher reads the pipe through fd 3.)
const WRAPPER = `
exec 3<&0
redis-server "$@" 3<&- &
pid=$!
( cat <&3 >/dev/null; kill -9 "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid"
code=$?
rm -rf "$PRPC_REDIS_DIR"
exit "$code"
`;

let installed: Promise<boolean> | undefined;

/** Whether `redis-server` can be run here. */
export function redisServerInstalled(): Promise<boolean> {
  installed ??= (async () => {
    try {
      const command = new Deno.Command("redis-server", { args: ["--version"], stdout: "null" });
      return (await command.output()).success;
    } catch {
      return false;
    }
  })();
  return installed;
}

/**
 * Why Redis tests that need a server of their own (to stop and restart it)
 * cannot run here, or `undefined` when they can.
 *
 * @throws {Error} Under `CI=true` when `redis-server` is missing.
 */
export async function ownServerIgnore(): Promise<string | undefined> {
  if (await redisServerInstalled()) return undefined;
  const reason = `redis-server is not installed: ${INSTALL_HINT}`;
  if (Deno.env.get("CI") === "true") throw new Error(`CI=true and ${reason}`);
  console.warn(`[prpc tests] skipping Redis tests: ${reason}`);
  return reason;
}

let shared: Promise<RedisForTests> | undefined;

/**
 * The Redis server shared by the tests of this module: `PRPC_TEST_REDIS_URL`
 * when set, else a `redis-server` started on first use that lives until the
 * test process exits. Tests keep apart by using queue names of their own.
 *
 * @throws {Error} Under `CI=true` when `redis-server` is missing.
 */
export function redisForTests(): Promise<RedisForTests> {
  shared ??= (async () => {
    const external = Deno.env.get("PRPC_TEST_REDIS_URL");
    if (external !== undefined && external !== "") return { url: external, ignore: undefined };
    const ignore = await ownServerIgnore();
    if (ignore !== undefined) return { url: undefined, ignore };
    const server = await RedisTestServer.start();
    server.detach();
    return { url: server.url, ignore: undefined };
  })();
  return shared;
}

/** A `redis-server` of a test's own, which the test can stop and start again on the same port. */
export class RedisTestServer {
  #process: Deno.ChildProcess | undefined;
  #exited: Promise<Deno.CommandStatus> | undefined;

  private constructor(readonly port: number, readonly args: readonly string[]) {}

  /** The server's URL, `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Starts a server on a free port and waits until it answers.
   *
   * @param args More `redis-server` options, e.g. `["--requirepass", "secret"]`.
   * @returns The running server.
   */
  static async start(args: readonly string[] = []): Promise<RedisTestServer> {
    let lastError: unknown;
    // A free port can be taken by another process between choosing and binding it.
    for (let i = 0; i < 5; i++) {
      const server = new RedisTestServer(freePort(), args);
      try {
        await server.restart();
        return server;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  /** Starts the server again after {@linkcode RedisTestServer.stop}: same port, empty data. */
  async restart(): Promise<void> {
    if (this.#process !== undefined) throw new Error("the Redis test server is running");
    const dir = await Deno.makeTempDir({ prefix: "prpc_redis_" });
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        WRAPPER,
        "sh",
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--logfile",
        `${dir}/redis.log`,
        ...this.args,
      ],
      env: { PRPC_REDIS_DIR: dir },
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#process = child;
    this.#exited = child.status;
    let exited = false;
    this.#exited.then(() => (exited = true));
    const deadline = Date.now() + 10_000;
    while (!(await answers(this.port))) {
      if (exited || Date.now() > deadline) {
        const log = await Deno.readTextFile(`${dir}/redis.log`).catch(() => "");
        await this.stop();
        throw new Error(`redis-server did not start on port ${this.port}:\n${log.slice(-2000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Kills the server (as a crash would) and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.#process;
    if (child === undefined) return;
    this.#process = undefined;
    await child.stdin.close().catch(() => {});
    await this.#exited;
  }

  /** Lets the server run until this test process exits (for a module-wide server). */
  detach(): void {
    this.#process?.unref();
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Whether a Redis server answers PING on the port (with PONG, or NOAUTH when it wants a password). */
async function answers(port: number): Promise<boolean> {
  let connection: Deno.TcpConn | undefined;
  try {
    connection = await Deno.connect({ hostname: "127.0.0.1", port });
    await connection.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(64);
    const read = await connection.read(buffer);
    const reply = read === null ? "" : new TextDecoder().decode(buffer.subarray(0, read));
    return reply.startsWith("+PONG") || reply.startsWith("-NOAUTH");
  } catch {
    return false;
  } finally {
    connection?.close();
  }
}

/** A plain ioredis connection, used the way a client in another language uses Redis. */
export class PlainRedis {
  /** The connection. */
  readonly redis: Redis;

  /**
   * Connects.
   *
   * @param url The server.
   */
  constructor(url: string) {
    this.redis = new Redis(url);
  }

  /** Calls Redis counted since its last `CONFIG RESETSTAT`, by command name (`INFO commandstats`). */
  async commandCalls(): Promise<Record<string, number>> {
    const info = await this.redis.info("commandstats");
    const calls: Record<string, number> = {};
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      calls[match[1]!] = Number(match[2]);
    }
    return calls;
  }

  /** Closes the connection and waits until its socket is gone. */
  async close(): Promise<void> {
    if (this.redis.status === "end") return;
    const ended = new Promise((resolve) => this.redis.once("end", resolve));
    await this.redis.quit().catch(() => this.redis.disconnect());
    await ended;
  }
}
