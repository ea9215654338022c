/**
 * A TCP proxy for tests that need a connection to drop: it forwards every
 * connection to a target port, can cut all of them at once, can hold new
 * connections back (refusing them) until it is opened again, and can swallow
 * the replies to a chosen request, as a connection that drops between a
 * request and its reply does.
 */

/** A forwarded connection: the client's side, the target's side, and whether replies are dropped. */
interface Pair {
  readonly client: Deno.TcpConn;
  readonly upstream: Deno.TcpConn;
  /** Set once the client sent the marked request: nothing more reaches the client. */
  dropping: { resolve: () => void } | undefined;
}

/** A running proxy; close it at the end of the test. */
export class TcpProxy {
  readonly #listener: Deno.TcpListener;
  readonly #connections = new Set<Deno.TcpConn>();
  readonly #pipes = new Set<Promise<void>>();
  #accepting: Promise<void>;
  #refusing = false;
  /** The request whose replies are to be dropped, armed by {@linkcode dropRepliesAfter}. */
  #armed: { marker: string; resolve: () => void } | undefined;

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

  /**
   * Forwards the next piece of data a client sends that contains `marker` (a
   * command name, say; compared case-insensitively), then drops everything the target sends back on that
   * connection: the request arrives, its reply never does.
   *
   * @param marker Text that identifies the request.
   * @returns Resolves once a reply on that connection has been dropped.
   */
  dropRepliesAfter(marker: string): Promise<void> {
    return new Promise((resolve) => (this.#armed = { marker, resolve }));
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
      // cut() may have run while connecting: this connection must not outlive it.
      if (this.#refusing) {
        client.close();
        upstream.close();
        continue;
      }
      this.#forward({ client, upstream, dropping: undefined });
    }
  }

  #forward(pair: Pair): void {
    const { client, upstream } = pair;
    this.#connections.add(client);
    this.#connections.add(upstream);
    const requests = copy(client, upstream, (chunk) => {
      const armed = this.#armed;
      const text = armed === undefined ? "" : new TextDecoder().decode(chunk).toUpperCase();
      if (armed !== undefined && text.includes(armed.marker.toUpperCase())) {
        this.#armed = undefined;
        pair.dropping = armed;
      }
      return true;
    });
    const replies = copy(upstream, client, () => {
      if (pair.dropping === undefined) return true;
      pair.dropping.resolve();
      return false;
    });
    const pipe = Promise.all([requests, replies]).then(() => {
      for (const connection of [client, upstream]) {
        if (this.#connections.delete(connection)) connection.close();
      }
      this.#pipes.delete(pipe);
    });
    this.#pipes.add(pipe);
  }
}

/**
 * Copies until either side ends, passing on each piece `pass` lets through;
 * then closing both sides ends the other copy too.
 */
async function copy(
  from: Deno.TcpConn,
  to: Deno.TcpConn,
  pass: (chunk: Uint8Array) => boolean,
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const read = await from.read(buffer);
      if (read === null) break;
      if (!pass(buffer.subarray(0, read))) continue;
      let written = 0;
      while (written < read) written += await to.write(buffer.subarray(written, read));
    }
  } catch {
    // The other side was closed.
  }
  await to.closeWrite().catch(() => {}); // the other side may be closed already
}
