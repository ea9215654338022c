/**
 * The test harness of the conformance suite: one test's servers, clients and
 * bare broker connections, all closed at the end.
 */

import {
  AppServer,
  type AppServerOptions,
  type Broker,
  type BrokerKind,
  Client,
  type ClientOptions,
  connectBroker,
} from "../../mod.ts";
import { type Deferred, deferred } from "./async.ts";
import { RecordingLogger } from "./logger.ts";

/** A broker under test. */
export interface ConformanceTarget {
  /** Shown in test names. */
  name: string;
  /** The broker kind. */
  broker: BrokerKind;
  /** The URL for one test's servers and clients (called once per test). */
  url(): string | undefined;
  /** Options every server of the suite gets, e.g. short recovery intervals. */
  serverOptions?: Partial<AppServerOptions>;
  /** Set when the broker cannot be reached, with the reason; the tests are then ignored. */
  ignore?: string | undefined;
}

/** What one test works with; everything it creates is closed at the end. */
export class Harness {
  readonly queue = `conf_${crypto.randomUUID().slice(0, 8)}`;
  readonly url: string | undefined;
  readonly logger = new RecordingLogger();
  readonly #servers: AppServer[] = [];
  readonly #clients: Client[] = [];
  readonly #brokers: Broker[] = [];
  readonly #releases: Deferred<void>[] = [];

  constructor(readonly target: ConformanceTarget) {
    this.url = target.url();
  }

  /** Creates, fills and starts a server on the test's queue. */
  async server(
    register: (app: AppServer) => void,
    options: Partial<AppServerOptions> = {},
  ): Promise<AppServer> {
    const app = new AppServer({
      broker: this.target.broker,
      url: this.url,
      queue: this.queue,
      handleSignals: false,
      logger: this.logger,
      ...this.target.serverOptions,
      ...options,
    });
    register(app);
    this.#servers.push(app);
    await app.start();
    return app;
  }

  /** Connects a client to the test's queue. */
  async client(options: Partial<ClientOptions> = {}): Promise<Client> {
    const client = await Client.connect({
      broker: this.target.broker,
      url: this.url,
      queue: this.queue,
      logger: this.logger,
      ...options,
    });
    this.#clients.push(client);
    return client;
  }

  /** A bare broker connection, used the way a client in another language would. */
  async broker(): Promise<Broker> {
    const broker = await connectBroker(this.target.broker, { url: this.url });
    this.#brokers.push(broker);
    return broker;
  }

  /** A latch that the test releases; released at the end in any case. */
  latch(): Deferred<void> {
    const latch = deferred();
    this.#releases.push(latch);
    return latch;
  }

  /** Closes everything, even when something fails to close; then throws the first failure. */
  async close(): Promise<void> {
    for (const latch of this.#releases) latch.resolve();
    const closing = [
      ...this.#clients.map((client) => () => client.close()),
      ...this.#servers.map((server) => () => server.stop({ graceMs: 0 })),
      ...this.#brokers.map((broker) => () => broker.close()),
    ];
    const failures: unknown[] = [];
    for (const close of closing) {
      try {
        await close();
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0) throw failures[0];
  }
}

/** Declares one conformance test; the harness is closed after the body. */
export type ConformanceTest = (name: string, body: (h: Harness) => Promise<void>) => void;
