/**
 * A TCP proxy for tests that need a connection to drop: it forwards every
 * connection to a target port, can cut all of them at once, can hold new
 * connections back (refusing them) until it is opened again, and can swallow
 * the replies to a chosen request, as a connection that drops between a
 * request and its reply does, and can freeze: connections stay open and
 * nothing is passed on, as with a frozen server.
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
  /** Set while frozen: passing data on waits for it to resolve. */
  #frozen: { promise: Promise<void>; resolve: () => void; held: number } | undefined;

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

  /**
   * Freezes: every connection stays open, and what either side sends is held
   * back until {@linkcode thaw} (or {@linkcode cut}).
   */
  freeze(): void {
    if (this.#frozen !== undefined) return;
    let resolve = () => {};
    const promise = new Promise<void>((done) => (resolve = done));
    this.#frozen = { promise, resolve, held: 0 };
  }

  /** How many pieces of data were held back since the proxy froze. */
  get held(): number {
    return this.#frozen?.held ?? 0;
  }

  /** Passes on what was held back, and everything after it. */
  thaw(): void {
    this.#frozen?.resolve();
    this.#frozen = undefined;
  }

  /** Closes every forwarded connection; from now on new ones are closed at once, until {@linkcode open}. */
  async cut(): Promise<void> {
    this.thaw();
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
    const requests = copy(client, upstream, this.#hold, (chunk) => {
      const armed = this.#armed;
      const text = armed === undefined ? "" : new TextDecoder().decode(chunk).toUpperCase();
      if (armed !== undefined && text.includes(armed.marker.toUpperCase())) {
        this.#armed = undefined;
        pair.dropping = armed;
      }
      return true;
    });
    const replies = copy(upstream, client, this.#hold, () => {
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

  /** Waits while frozen, counting what is held back. */
  readonly #hold = (): Promise<void> | undefined => {
    const frozen = this.#frozen;
    if (frozen === undefined) return undefined;
    frozen.held++;
    return frozen.promise;
  };
}

/**
 * Copies until either side ends, passing on each piece `pass` lets through
 * once `hold` (when it gives a promise) lets it go on, in order; then closing
 * both sides ends the other copy too.
 */
async function copy(
  from: Deno.TcpConn,
  to: Deno.TcpConn,
  hold: () => Promise<void> | undefined,
  pass: (chunk: Uint8Array) => boolean,
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  let written: Promise<boolean> = Promise.resolve(true);
  try {
    while (true) {
      const read = await from.read(buffer);
      if (read === null) break;
      if (!pass(buffer.subarray(0, read))) continue;
      const chunk = buffer.slice(0, read);
      const held = hold();
      written = written.then(async (open) => {
        if (!open) return false;
        await held;
        return await writeAll(to, chunk);
      });
    }
  } catch {
    // The other side was closed.
  }
  await written;
  await to.closeWrite().catch(() => {}); // the other side may be closed already
}

/** Writes all of `chunk`; tells whether the connection took it. */
async function writeAll(to: Deno.TcpConn, chunk: Uint8Array): Promise<boolean> {
  try {
    let written = 0;
    while (written < chunk.length) written += await to.write(chunk.subarray(written));
    return true;
  } catch {
    return false;
  }
}
