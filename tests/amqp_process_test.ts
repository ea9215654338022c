/**
 * The AMQP broker across processes, on a real RabbitMQ: servers in processes
 * of their own (tests/fixtures/amqp_server.ts) share a queue, and a server
 * killed with SIGKILL mid-call, or by a poison message, loses nothing.
 */
import { Client, connectBroker, ProtocolError } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { waitFor } from "./support/async.ts";
import { RecordingLogger } from "./support/logger.ts";
import { amqpForTests } from "./support/amqp_server.ts";

const rabbit = await amqpForTests();
const fixture = new URL("./fixtures/amqp_server.ts", import.meta.url).pathname;

/** A server process of the fixture, with what it printed so far. */
class ServerProcess {
  readonly lines: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<[void, string]>;

  constructor(readonly name: string, queue: string, env: Record<string, string>) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-env", "--allow-net", "--allow-read", "--allow-run", fixture],
      env: {
        NO_COLOR: "1",
        PRPC_URL_BROKER: rabbit.url,
        PRPC_QUEUE_NAME: queue,
        PRPC_INSTANCE_NAME: name,
        ...env,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.status = this.#child.status;
    this.#output = Promise.all([this.#readLines(), new Response(this.#child.stderr).text()]);
  }

  async #readLines(): Promise<void> {
    let buffered = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      this.lines.push(...parts);
    }
  }

  /** The `started ...` lines: the calls this process began. */
  get started(): string[] {
    return this.lines.filter((line) => line.startsWith("started "));
  }

  /** Waits until the server prints `ready`; fails with its stderr if it exits first. */
  async ready(): Promise<void> {
    let exited = false;
    this.status.then(() => (exited = true));
    await waitFor(() => this.lines.includes("ready") || exited, `${this.name} to start`, {
      timeoutMs: 30_000,
    });
    if (!this.lines.includes("ready")) {
      const [, stderr] = await this.#output;
      throw new Error(`${this.name} exited before serving:\n${stderr}`);
    }
  }

  /** Waits until the process has ended and everything it printed is read. */
  async ended(): Promise<Deno.CommandStatus> {
    const status = await this.status;
    await this.#output;
    return status;
  }

  /** Sends a signal unless the process has ended. */
  kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // Ended already.
    }
  }

  /** Stops the process (SIGTERM: a graceful stop) and waits for it and its output. */
  async stop(): Promise<void> {
    this.kill("SIGTERM");
    await this.ended();
  }
}

/** Servers and clients of one test, all stopped at its end. */
class Scope {
  readonly queue = `amqp_proc_${crypto.randomUUID().slice(0, 8)}`;
  readonly logger = new RecordingLogger();
  readonly servers: ServerProcess[] = [];
  readonly #clients: Client[] = [];

  /** Starts a server process (does not wait for it to serve). */
  spawn(name: string, env: Record<string, string> = {}): ServerProcess {
    const server = new ServerProcess(name, this.queue, env);
    this.servers.push(server);
    return server;
  }

  async client(): Promise<Client> {
    const client = await Client.connect({
      broker: "amqp",
      url: rabbit.url,
      queue: this.queue,
      logger: this.logger,
    });
    this.#clients.push(client);
    return client;
  }

  async close(): Promise<void> {
    for (const client of this.#clients) await client.close();
    await Promise.all(this.servers.map((server) => server.stop()));
  }
}

function processTest(name: string, fn: (scope: Scope) => Promise<void>) {
  Deno.test({
    name,
    ignore: rabbit.ignore !== undefined,
    async fn() {
      const scope = new Scope();
      try {
        await fn(scope);
      } finally {
        await scope.close();
      }
    },
  });
}

processTest("two server processes share the load of one queue", async (scope) => {
  const first = scope.spawn("server-a");
  const second = scope.spawn("server-b");
  await Promise.all([first.ready(), second.ready()]);
  const client = await scope.client();
  const release = `${await Deno.makeTempDir({ prefix: "prpc_amqp_" })}/release`;
  try {
    const calls = [client.call("hold", [release]), client.call("hold", [release])];
    // Each server runs one call at a time (maxWorkers 1), so both calls run only if each
    // server took one.
    await waitFor(
      () => first.started.length === 1 && second.started.length === 1,
      "both servers to start a call",
    );
    await Deno.writeTextFile(release, "");
    assertEquals((await Promise.all(calls)).sort(), ["server-a", "server-b"]);
  } finally {
    await Deno.remove(release.slice(0, release.lastIndexOf("/")), { recursive: true });
  }
});

processTest(
  "a server killed with SIGKILL mid-call: the call completes once, on another server",
  async (scope) => {
    const servers = [scope.spawn("server-a"), scope.spawn("server-b")];
    await Promise.all(servers.map((server) => server.ready()));
    const client = await scope.client();
    const call = client.call<{ instance: string; attempt: number }>("hang_first", [], {}, {
      timeoutMs: 60_000,
    });
    const victim = await waitFor(
      () => servers.find((server) => server.started.includes("started hang_first 1")),
      "a server to start the call",
    );
    const survivor = servers.find((server) => server !== victim);
    assert(survivor !== undefined);
    victim.kill("SIGKILL");
    assertEquals((await victim.ended()).signal, "SIGKILL");
    assertEquals(await call, { instance: survivor.name, attempt: 2 });
    // A second result for the call would have come before this one, from the same server.
    assertEquals(await client.call("whoami"), survivor.name);
    await survivor.stop(); // so that everything it printed is read
    assertEquals(survivor.started, ["started hang_first 2"], "the survivor ran it once");
    const ignored = scope.logger.lines.filter((line) =>
      line.message === "ignored a result nobody waits for"
    );
    assertEquals(ignored, [], "the caller got exactly one result");
  },
);

processTest(
  "a message that kills its servers is dead-lettered after PRPC_MAX_DELIVERIES",
  async (scope) => {
    const env = { PRPC_MAX_DELIVERIES: "2" };
    const client = await scope.client();
    const call = client.call("crash", [], {}, { timeoutMs: 60_000 });
    call.catch(() => {}); // awaited below
    for (const attempt of [1, 2]) {
      // Not waiting for "ready": the server may take the message and die before printing it.
      const server = scope.spawn(`crashing-${attempt}`, env);
      assertEquals((await server.ended()).signal, "SIGKILL");
      assertEquals(server.started, [`started crash ${attempt}`]);
    }
    const last = scope.spawn("last", env);
    await assertRejects(
      call,
      ProtocolError,
      "set aside: delivered 3 times without completing (maxDeliveries 2)",
    );
    await last.stop();
    assertEquals(last.started, [], "the third delivery did not run");
    const broker = await connectBroker("amqp", { url: rabbit.url, logger: scope.logger });
    try {
      const dead = await broker.readDeadLetters(scope.queue, 10);
      assertEquals(dead.map((entry) => entry.kind), ["native"]);
      assert(dead[0]?.reason.includes("delivered 3 times"), dead[0]?.reason);
      assertEquals(JSON.parse(dead[0]?.body ?? "null").func_name, "crash");
    } finally {
      await broker.close();
    }
  },
);
