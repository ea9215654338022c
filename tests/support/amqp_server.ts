/**
 * RabbitMQ for the tests: the server at `PRPC_TEST_AMQP_URL`, by default the
 * local one (`amqp://guest:guest@127.0.0.1:5672`). When it cannot be reached
 * the AMQP tests are skipped with a message, except under `CI=true`, where that
 * fails the run.
 *
 * Every queue the tests create is declared with `x-expires`, so RabbitMQ
 * deletes it two minutes after its last use and test runs do not fill the
 * broker. That goes through `PRPC_AMQP_QUEUE_EXPIRES_MS` in this process's
 * environment (inherited by the server processes the tests start), because
 * the conformance suite connects clients and bare brokers without broker
 * settings, and every party must declare a queue with the same arguments.
 */

import { type Channel, connect as amqpConnect, type ConsumeMessage } from "amqplib";
import { Buffer } from "node:buffer";
import { AppServer, Client } from "../../mod.ts";
import { type Deferred, deferred } from "./async.ts";
import { RecordingLogger } from "./logger.ts";

/** How long queues of the tests live once unused. */
export const TEST_QUEUE_EXPIRES_MS = 120_000;

/** How the tests declare prpc's durable queues when they act as another client. */
export const DURABLE = { durable: true, expires: TEST_QUEUE_EXPIRES_MS };

/** What the AMQP tests of a module work with. */
export interface AmqpForTests {
  /** URL of the RabbitMQ server. */
  url: string;
  /** Why the AMQP tests are skipped here; `undefined` when they run. */
  ignore: string | undefined;
}

let probed: Promise<AmqpForTests> | undefined;

/**
 * The RabbitMQ server of the tests, probed once per process.
 *
 * @throws {Error} Under `CI=true` when RabbitMQ cannot be reached.
 */
export function amqpForTests(): Promise<AmqpForTests> {
  probed ??= (async () => {
    const url = Deno.env.get("PRPC_TEST_AMQP_URL") || "amqp://guest:guest@127.0.0.1:5672";
    Deno.env.set("PRPC_AMQP_QUEUE_EXPIRES_MS", String(TEST_QUEUE_EXPIRES_MS));
    const problem = await reachability(url);
    if (problem === undefined) return { url, ignore: undefined };
    const reason = `RabbitMQ at ${url} cannot be reached (${problem}): start rabbitmq-server, ` +
      "or set PRPC_TEST_AMQP_URL";
    if (Deno.env.get("CI") === "true") throw new Error(`CI=true and ${reason}`);
    console.warn(`[prpc tests] skipping AMQP tests: ${reason}`);
    return { url, ignore: reason };
  })();
  return probed;
}

/** Why an AMQP connection (with login) to `url` fails, or `undefined` when it works. */
async function reachability(url: string): Promise<string | undefined> {
  try {
    const connection = await amqpConnect(url, { timeout: 3_000 });
    await connection.close();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * Closes, from the broker's side, every connection whose client-provided name
 * is `connectionName` (needs `rabbitmqctl` on this machine, as root).
 *
 * @param connectionName The `connectionName` broker setting of the connections.
 * @returns How many connections were closed.
 */
export async function closeConnectionsNamed(connectionName: string): Promise<number> {
  // One line per connection: its pid (the form close_connection takes), a tab, and the
  // client properties as an Erlang list, e.g. [{"connection_name","x"},{"product","amqplib"}].
  const listed = await rabbitmqctl([
    "list_connections",
    "pid",
    "client_properties",
    "-q",
    "--no-table-headers",
  ]);
  const property = `{"connection_name",${JSON.stringify(connectionName)}}`;
  const pids = listed.split("\n")
    .filter((line) => line.includes(property))
    .map((line) => line.split("\t")[0] ?? "");
  for (const pid of pids) {
    await rabbitmqctl(["close_connection", pid, "closed by the prpc tests"]);
  }
  return pids.length;
}

/**
 * How many channels the connection named `connectionName` has open, as
 * RabbitMQ counts them (needs `rabbitmqctl`, as {@linkcode closeConnectionsNamed}).
 *
 * @param connectionName The `connectionName` broker setting of the connection.
 * @returns The count; fails unless exactly one connection has that name.
 */
export async function channelsOfConnection(connectionName: string): Promise<number> {
  const listed = await rabbitmqctl([
    "list_connections",
    "client_properties",
    "channels",
    "-q",
    "--no-table-headers",
  ]);
  const property = `{"connection_name",${JSON.stringify(connectionName)}}`;
  const lines = listed.split("\n").filter((line) => line.includes(property));
  if (lines.length !== 1) {
    throw new Error(`expected one connection named ${connectionName}, found ${lines.length}`);
  }
  return Number(lines[0]?.split("\t").at(-1));
}

/**
 * Whether `rabbitmqctl` can be run here against the RabbitMQ of the tests
 * (which must then be on this machine).
 *
 * @param url The RabbitMQ URL of the tests.
 */
export async function rabbitmqctlAvailable(url: string): Promise<boolean> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  if (!["127.0.0.1", "localhost", "::1"].includes(host)) return false;
  try {
    await rabbitmqctl(["-q", "status"]);
    return true;
  } catch {
    return false;
  }
}

async function rabbitmqctl(args: string[]): Promise<string> {
  const output = await new Deno.Command(rabbitmqctlPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new Error(`rabbitmqctl ${args.join(" ")} failed: ${decoder.decode(output.stderr)}`);
  }
  return decoder.decode(output.stdout);
}

function rabbitmqctlPath(): string {
  try {
    Deno.statSync("/usr/sbin/rabbitmqctl");
    return "/usr/sbin/rabbitmqctl";
  } catch {
    return "rabbitmqctl";
  }
}

/**
 * A plain amqplib connection, for tests that act as a foreign client or check
 * queues directly.
 *
 * @param url The RabbitMQ URL.
 * @returns The connection; close it at the end of the test.
 */
export function rawAmqp(url: string): ReturnType<typeof amqpConnect> {
  return amqpConnect(url, { noDelay: true });
}

/**
 * A TCP proxy in front of RabbitMQ that a test can take down and bring back,
 * to play a RabbitMQ outage without touching the real server (which other
 * tests use). While down it accepts connections and closes them at once, as a
 * restarting broker does.
 */
export class OutageProxy {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #open = new Set<Deno.TcpConn>();
  readonly #pipes = new Set<Promise<unknown>>();
  readonly #accepting: Promise<void>;
  #down = false;

  /**
   * Starts the proxy on a free local port.
   *
   * @param url The RabbitMQ URL to forward to.
   */
  constructor(readonly url: string) {
    const target = new URL(url);
    this.#target = { hostname: target.hostname, port: Number(target.port || 5672) };
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** The RabbitMQ URL through the proxy. */
  get proxiedUrl(): string {
    const proxied = new URL(this.url);
    proxied.hostname = "127.0.0.1";
    proxied.port = String(this.#listener.addr.port);
    return proxied.href;
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      if (this.#down) {
        client.close();
        continue;
      }
      const pipe = this.#forward(client);
      this.#pipes.add(pipe);
      pipe.finally(() => this.#pipes.delete(pipe));
    }
  }

  async #forward(client: Deno.TcpConn): Promise<void> {
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect(this.#target);
    } catch {
      client.close();
      return;
    }
    this.#open.add(client).add(server);
    await Promise.allSettled([
      client.readable.pipeTo(server.writable),
      server.readable.pipeTo(client.writable),
    ]);
    for (const conn of [client, server]) {
      if (this.#open.delete(conn)) closeQuietly(conn);
    }
  }

  /** Cuts every connection through the proxy and refuses new ones until {@linkcode up}. */
  down(): void {
    this.#down = true;
    for (const conn of this.#open) closeQuietly(conn);
    this.#open.clear();
  }

  /** Lets connections through again. */
  up(): void {
    this.#down = false;
  }

  /** Stops the proxy and cuts what goes through it. */
  async close(): Promise<void> {
    this.down();
    this.#listener.close();
    await this.#accepting.catch(() => {});
    await Promise.allSettled([...this.#pipes]);
  }
}

function closeQuietly(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

/** Options of {@linkcode AmqpScope.server}. */
export interface ScopeServerOptions {
  maxWorkers?: number;
  maxDeliveries?: number;
  instanceName?: string;
  brokerSettings?: Record<string, string | number>;
}

/** Everything one AMQP test opens on a queue name of its own, closed at its end. */
export class AmqpScope {
  readonly queue = `amqp_${crypto.randomUUID().slice(0, 8)}`;
  readonly logger = new RecordingLogger();
  readonly #closers: (() => Promise<unknown>)[] = [];

  /** @param url The RabbitMQ URL of the tests. */
  constructor(readonly url: string) {}

  /** Starts a server on the scope's queue. */
  async server(
    register: (app: AppServer) => void,
    options: ScopeServerOptions = {},
  ): Promise<AppServer> {
    const app = new AppServer({
      broker: "amqp",
      url: this.url,
      queue: this.queue,
      handleSignals: false,
      logger: this.logger,
      ...options,
    });
    register(app);
    this.#closers.push(() => app.stop({ graceMs: 0 }));
    await app.start();
    return app;
  }

  /** Connects a client to the scope's queue. */
  async client(brokerSettings?: Record<string, string | number>): Promise<Client> {
    const client = await Client.connect({
      broker: "amqp",
      url: this.url,
      queue: this.queue,
      logger: this.logger,
      brokerSettings,
    });
    this.#closers.push(() => client.close());
    return client;
  }

  /** A channel of a plain amqplib connection: the test acting as another client. */
  async channel(): Promise<Channel> {
    const connection = await rawAmqp(this.url);
    this.#closers.push(() => connection.close());
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    return channel;
  }

  /** Runs `close` when the scope closes (last in, first out). */
  defer(close: () => Promise<unknown>): void {
    this.#closers.push(close);
  }

  /** Closes everything, newest first. */
  async close(): Promise<void> {
    for (const close of this.#closers.reverse()) await close();
  }
}

/**
 * Registers a test that gets an {@linkcode AmqpScope}, closed when it ends.
 *
 * @param rabbit The RabbitMQ of the tests.
 * @param name The test's name.
 * @param fn The test.
 * @param ignore Why to skip it; by default, when RabbitMQ cannot be reached.
 */
export function amqpTest(
  rabbit: AmqpForTests,
  name: string,
  fn: (scope: AmqpScope) => Promise<void>,
  ignore = rabbit.ignore,
): void {
  Deno.test({
    name,
    ignore: ignore !== undefined,
    async fn() {
      const scope = new AmqpScope(rabbit.url);
      try {
        await fn(scope);
      } finally {
        await scope.close();
      }
    },
  });
}

/** Messages a plain consumer receives, one at a time. */
export class Received {
  readonly #messages: ConsumeMessage[] = [];
  readonly #waiters: Deferred<ConsumeMessage>[] = [];

  /** The consumer callback. */
  push = (message: ConsumeMessage | null): void => {
    if (message === null) return;
    const waiter = this.#waiters.shift();
    if (waiter === undefined) this.#messages.push(message);
    else waiter.resolve(message);
  };

  /** The next message, once it has arrived. */
  next(): Promise<ConsumeMessage> {
    const message = this.#messages.shift();
    if (message !== undefined) return Promise.resolve(message);
    const waiter = deferred<ConsumeMessage>();
    this.#waiters.push(waiter);
    return waiter.promise;
  }
}

/** The JSON body of a message. */
export function json(message: ConsumeMessage): Record<string, unknown> {
  return JSON.parse(message.content.toString("utf8"));
}

/** Sends a body (JSON unless a string) to a queue through the default exchange. */
export function send(channel: Channel, queue: string, body: unknown, options = {}): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  channel.sendToQueue(queue, Buffer.from(text), options);
}

/**
 * The value of `promise`, or a failure naming `what` when it takes longer
 * than `timeoutMs`: for an outcome that must come, where waiting for ever
 * would only hang the test.
 */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
