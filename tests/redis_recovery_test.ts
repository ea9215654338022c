/**
 * Redis broker: crash recovery with real processes. A server is killed with
 * SIGKILL while it runs calls; another server takes the calls over once they
 * have been idle for the recover interval, and each call completes once.
 */
import { Client } from "../mod.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { deferred } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import { PlainRedis, redisForTests } from "./support/redis_server.ts";

const redis = await redisForTests();
const RECOVER_MS = 1_000; // as in the fixture

/** A server process and the lines it prints. */
class ServerProcess {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<void>;
  #waiters: { match: (line: string) => boolean; found: () => void }[] = [];

  constructor(url: string, queue: string, name: string, mode: "hold" | "run") {
    const fixture = new URL("./fixtures/redis_server_process.ts", import.meta.url).pathname;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", fixture, url, queue, name, mode],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    let buffered = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((waiter) => {
          if (!waiter.match(line)) return true;
          waiter.found();
          return false;
        });
      }
    }
  }

  /** Resolves once `count` printed lines start with `prefix`. */
  until(prefix: string, count = 1): Promise<void> {
    const seen = () => this.lines.filter((line) => line.startsWith(prefix)).length;
    if (seen() >= count) return Promise.resolve();
    const found = deferred();
    this.#waiters.push({ match: () => seen() >= count, found: () => found.resolve() });
    return found.promise;
  }

  /** Kills the process with `signal` and waits until it is gone. */
  async kill(signal: Deno.Signal): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill(signal);
    } catch {
      // It has exited already.
    }
    const status = await this.#child.status;
    await this.#reading;
    return status;
  }
}

Deno.test({
  name:
    "redis: calls of a server killed with SIGKILL complete once, on another server, within recover interval + 2 s",
  ignore: redis.ignore !== undefined,
  async fn() {
    const url = redis.url ?? "";
    const queue = `recovery_${crypto.randomUUID().slice(0, 8)}`;
    const doomed = new ServerProcess(url, queue, "doomed", "hold");
    let survivor: ServerProcess | undefined;
    const client = await Client.connect({
      broker: "redis",
      url,
      queue,
      logger: new RecordingLogger(),
    });
    const plain = new PlainRedis(url);
    try {
      await doomed.until("ready");
      const calls = [0, 1, 2, 3].map((n) =>
        client.call<{ n: number; attempt: number; by: string }>("work", [n], {}, {
          timeoutMs: 60_000,
        })
      );
      await doomed.until("started", 4);
      survivor = new ServerProcess(url, queue, "survivor", "run");
      await survivor.until("ready");

      await doomed.kill("SIGKILL");
      const killedAt = Date.now();
      const results = await Promise.all(calls);
      const elapsed = Date.now() - killedAt;

      assert(elapsed <= RECOVER_MS + 2_000, `recovered after ${elapsed} ms`);
      assertEquals(results.map((result) => result.by), [
        "survivor",
        "survivor",
        "survivor",
        "survivor",
      ]);
      assertEquals(results.map((result) => result.attempt), [2, 2, 2, 2], "the second delivery");
      const finished = survivor.lines.filter((line) => line.startsWith("finished")).sort();
      assertEquals(finished, ["finished 0 2", "finished 1 2", "finished 2 2", "finished 3 2"]);
      const pending = await plain.redis.xpending(`prpc_${queue}`, "prpc_group_consumers");
      assertEquals(pending[0], 0, "nothing is left pending");
      assertEquals(await plain.redis.xlen(`prpc_${queue}`), 0, "acknowledged entries are deleted");
    } finally {
      await client.close();
      await plain.close();
      await doomed.kill("SIGKILL");
      const status = await survivor?.kill("SIGTERM");
      if (status !== undefined) assertEquals(status.code, 143, "the survivor stops gracefully");
    }
  },
});
