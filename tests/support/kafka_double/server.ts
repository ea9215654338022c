/**
 * Test double, not a Kafka: part of a single-node Kafka protocol server for the
 * tests, never exported by the package.
 *
 * The TCP side: accepts connections on a listener, splits the byte stream into
 * size-prefixed requests, reads request header v1 (API key, version, correlation
 * id, client id), dispatches to the API's handler and writes the response with
 * header v0 (the correlation id). Like a Kafka broker, it handles the requests of
 * one connection one at a time, in order, so pipelined requests get their
 * responses in order and a waiting request (a long-polling Fetch, a JoinGroup)
 * holds back the ones behind it on the same connection. A request it cannot
 * decode, or an API or version it does not implement, closes the connection
 * (what Kafka does) and is reported on stderr, so a gap in the double is visible.
 *
 * @module
 */

import { MalformedRequestError, Reader, Writer } from "./codec.ts";

/** Kafka's default `socket.request.max.bytes`. */
const MAX_REQUEST_BYTES = 104_857_600;
const READ_CHUNK_BYTES = 64 * 1024;

/** What a handler knows about the request besides its body. */
export interface RequestContext {
  /** The client id of the request header (`""` when null). */
  readonly clientId: string;
  /** The client's address as Kafka reports it, e.g. `/127.0.0.1`. */
  readonly clientHost: string;
  /** Aborted when the server closes; a waiting handler must then settle promptly. */
  readonly signal: AbortSignal;
}

/**
 * Handles the body of one request, which it reads whole before its first `await`;
 * `null` means no response (Produce with acks 0).
 */
export type Handler = (
  body: Reader,
  context: RequestContext,
) => Writer | null | Promise<Writer | null>;

/** One API version the server implements. */
export interface ApiHandler {
  readonly apiKey: number;
  readonly name: string;
  readonly version: number;
  readonly handle: Handler;
}

/** Serves Kafka requests on a listener until closed. */
export class ProtocolServer {
  #listener: Deno.TcpListener;
  #apis: ReadonlyMap<number, ApiHandler>;
  #shutdown = new AbortController();
  #connections = new Set<Deno.TcpConn>();
  #connectionLoops = new Set<Promise<void>>();
  #inFlight = new Set<Promise<unknown>>();
  #acceptLoop: Promise<void>;

  /** Starts accepting connections on `listener`, for the given APIs. */
  constructor(listener: Deno.TcpListener, apis: readonly ApiHandler[]) {
    this.#listener = listener;
    this.#apis = new Map(apis.map((api) => [api.apiKey, api]));
    this.#acceptLoop = this.#accept();
  }

  /**
   * Stops accepting, closes every connection and waits until every connection
   * loop and every handler has ended (handlers waiting on the group coordinator
   * settle once it is closed, so close it first).
   */
  async close(): Promise<void> {
    if (!this.#shutdown.signal.aborted) {
      this.#shutdown.abort();
      this.#listener.close();
      for (const connection of this.#connections) closeQuietly(connection);
    }
    await this.#acceptLoop;
    await Promise.allSettled([...this.#connectionLoops, ...this.#inFlight]);
  }

  async #accept(): Promise<void> {
    try {
      for await (const connection of this.#listener) {
        if (this.#shutdown.signal.aborted) {
          closeQuietly(connection);
          continue;
        }
        connection.setNoDelay(true);
        this.#connections.add(connection);
        const loop = this.#serve(connection).finally(() => {
          this.#connections.delete(connection);
          this.#connectionLoops.delete(loop);
          closeQuietly(connection);
        });
        this.#connectionLoops.add(loop);
      }
    } catch (error) {
      if (!this.#shutdown.signal.aborted) throw error;
    }
  }

  async #serve(connection: Deno.TcpConn): Promise<void> {
    const clientHost = `/${connection.remoteAddr.hostname}`;
    try {
      for await (const frame of readFrames(connection)) {
        if (this.#shutdown.signal.aborted) return;
        const response = await this.#respond(frame, clientHost);
        if (response === undefined) return;
        if (response !== null) await writeAll(connection, response);
      }
    } catch (error) {
      if (this.#shutdown.signal.aborted || isConnectionGone(error)) return;
      if (error instanceof MalformedRequestError) {
        console.error(`kafka test double: closing a connection: ${error.message}`);
        return;
      }
      throw error;
    }
  }

  /**
   * The response frame to a request frame, `null` for none, `undefined` when the
   * connection must close (the server is closing, or the API version is not
   * implemented).
   */
  async #respond(frame: Uint8Array, clientHost: string): Promise<Uint8Array | null | undefined> {
    const request = new Reader(frame);
    const apiKey = request.int16();
    const apiVersion = request.int16();
    const correlationId = request.int32();
    const clientId = request.nullableString() ?? "";
    const api = this.#apis.get(apiKey);
    if (api === undefined || api.version !== apiVersion) {
      const implemented = api === undefined ? "no version" : `only v${api.version}`;
      console.error(
        `kafka test double: closing a connection: API key ${apiKey} v${apiVersion} from client "${clientId}" is not implemented (${implemented})`,
      );
      return undefined;
    }
    const handling = Promise.resolve(
      api.handle(request, { clientId, clientHost, signal: this.#shutdown.signal }),
    );
    const unreadBytes = request.remaining; // handlers read their request before any await
    this.#inFlight.add(handling);
    try {
      const body = await abortable(handling, this.#shutdown.signal);
      if (unreadBytes !== 0) {
        throw new MalformedRequestError(
          `${api.name} v${apiVersion} request has ${unreadBytes} unread bytes`,
        );
      }
      if (body === undefined) return undefined;
      if (body === null) return null;
      const response = new Writer().int32(correlationId).raw(body.toBytes()).toBytes();
      return new Writer().int32(response.byteLength).raw(response).toBytes();
    } finally {
      this.#inFlight.delete(handling);
    }
  }
}

/** `promise`, or `undefined` as soon as `signal` is aborted. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The size-prefixed frames of a connection, until it ends. */
async function* readFrames(connection: Deno.TcpConn): AsyncGenerator<Uint8Array> {
  let buffer = new Uint8Array(READ_CHUNK_BYTES);
  let start = 0;
  let end = 0;
  while (true) {
    while (end - start >= 4) {
      const size = new DataView(buffer.buffer, start, 4).getInt32(0);
      if (size < 0 || size > MAX_REQUEST_BYTES) {
        throw new MalformedRequestError(`Cannot read a request of ${size} bytes`);
      }
      if (end - start < 4 + size) {
        if (buffer.byteLength < 4 + size) {
          const grown = new Uint8Array(4 + size + READ_CHUNK_BYTES);
          grown.set(buffer.subarray(start, end));
          buffer = grown;
          end -= start;
          start = 0;
        }
        break;
      }
      yield buffer.slice(start + 4, start + 4 + size);
      start += 4 + size;
    }
    if (start === end) start = end = 0;
    if (buffer.byteLength - end < READ_CHUNK_BYTES) {
      buffer.copyWithin(0, start, end);
      end -= start;
      start = 0;
      if (buffer.byteLength - end < READ_CHUNK_BYTES) {
        const grown = new Uint8Array(end + READ_CHUNK_BYTES);
        grown.set(buffer.subarray(0, end));
        buffer = grown;
      }
    }
    const read = await connection.read(buffer.subarray(end));
    if (read === null) return;
    end += read;
  }
}

async function writeAll(connection: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) {
    written += await connection.write(bytes.subarray(written));
  }
}

function closeQuietly(connection: Deno.TcpConn): void {
  try {
    connection.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

/** Errors that only mean the peer (or the server) closed the connection. */
function isConnectionGone(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected;
}
