/**
 * A TCP proxy for tests that need a connection to drop: it forwards every
 * connection to a target port, can cut all of them at once, and can hold new
 * connections back (refusing them) until it is opened again.
 */

/** A running proxy; close it at the end of the test. */
export class TcpProxy {
  readonly #listener: Deno.TcpListener;
  readonly #connections = new Set<Deno.TcpConn>();
  readonly #pipes = new Set<Promise<void>>();
  #accepting: Promise<void>;
  #refusing = false;

  private constructor(listener: Deno.TcpListener, readonly target: number) {
    this.#listener = listener;
    this.#accepting = this.#accept();
  }

  /**
   * Starts a proxy on a free port.
   *
   * @param target The port on 127.0.0.1 to forward to.
   */
  static start(target: number): TcpProxy {
    return new TcpProxy(Deno.listen({ hostname: "127.0.0.1", port: 0 }), target);
  }

  /** The port the proxy listens on. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Closes every forwarded connection; from now on new ones are closed at once, until {@linkcode open}. */
  async cut(): Promise<void> {
    this.#refusing = true;
    for (const connection of this.#connections) connection.close();
    this.#connections.clear();
    await Promise.all(this.#pipes);
  }

  /** Forwards new connections again. */
  open(): void {
    this.#refusing = false;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    await this.cut();
  }

  async #accept(): Promise<void> {
    try {
      await this.#forwardEach();
    } catch {
      // The listener was closed.
    }
  }

  async #forwardEach(): Promise<void> {
    for await (const client of this.#listener) {
      if (this.#refusing) {
        client.close();
        continue;
      }
      let upstream: Deno.TcpConn;
      try {
        upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.target });
      } catch {
        client.close();
        continue;
      }
      this.#connections.add(client);
      this.#connections.add(upstream);
      const pipe = Promise.all([copy(client, upstream), copy(upstream, client)]).then(() => {
        for (const connection of [client, upstream]) {
          if (this.#connections.delete(connection)) connection.close();
        }
        this.#pipes.delete(pipe);
      });
      this.#pipes.add(pipe);
    }
  }
}

/** Copies until either side ends; then closing both sides ends the other copy too. */
async function copy(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const read = await from.read(buffer);
      if (read === null) break;
      let written = 0;
      while (written < read) written += await to.write(buffer.subarray(written, read));
    }
  } catch {
    // The other side was closed.
  }
  await to.closeWrite().catch(() => {}); // the other side may be closed already
}
