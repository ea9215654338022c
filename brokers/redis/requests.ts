/**
 * A client's requests leave in batches: those sent in the same turn (the
 * calls a burst of results sets going, say) are added by one run of the `ADD`
 * script per stream, one command instead of one `XADD` each. A request sent
 * alone is added with `XADD`. Each request still gets its own outcome, and the
 * entries are the same as with `XADD`: servers see no difference.
 *
 * A client whose Redis user may not run scripts (an ACL that allows `XADD`
 * but not `EVALSHA`) gets the refusal once: that run's requests are sent again
 * one `XADD` each (a script refused before it ran added nothing), and so is
 * every later request of the connection.
 *
 * Internal: not part of the public API.
 *
 * @module
 */

import type { Logger } from "../../protocol/logger.ts";
import type { RedisConnection } from "./connection.ts";
import { ADD, runScript } from "./scripts.ts";

/** The most requests one run of `ADD` takes. */
export const MAX_ADD_COUNT = 256;

/**
 * The most characters of request bodies one run of `ADD` takes; a request that
 * would pass it starts the next run, and one larger than this goes alone.
 */
export const MAX_ADD_CHARS = 1 << 20;

/** What a stream entry id looks like (anything else in `ADD`'s reply is an error's text). */
const ENTRY_ID = /^\d+-\d+$/;

interface PendingRequest {
  readonly body: string;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

interface Batch {
  readonly stream: string;
  readonly requests: PendingRequest[];
  chars: number;
}

/** Gathers the requests of one turn and adds them together; see the module docs. */
export class RequestBatcher {
  readonly #connection: RedisConnection;
  readonly #logger: Logger;
  /** This turn's batches, one per stream. */
  #open: Batch[] = [];
  #flushQueued = false;
  /** Redis refused to run the script for this client: every request is one `XADD`. */
  #scriptsRefused = false;

  /**
   * @param connection Where the requests are sent.
   * @param logger Where a refusal of the script is reported.
   */
  constructor(connection: RedisConnection, logger: Logger) {
    this.#connection = connection;
    this.#logger = logger;
  }

  /**
   * Adds a request to a stream, together with the others sent in this turn.
   *
   * @param stream The request stream.
   * @param body The request's JSON text.
   * @returns Resolves once Redis has added it.
   * @throws {ReplyLostError} When the connection dropped before Redis confirmed it (it may have been added).
   * @throws {Error} With Redis's error when Redis refused it.
   */
  add(stream: string, body: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let batch = this.#open.find((open) => open.stream === stream);
      if (
        batch !== undefined &&
        (batch.requests.length >= MAX_ADD_COUNT || batch.chars + body.length > MAX_ADD_CHARS)
      ) {
        this.#open.splice(this.#open.indexOf(batch), 1);
        this.#send(batch);
        batch = undefined;
      }
      if (batch === undefined) {
        batch = { stream, requests: [], chars: 0 };
        this.#open.push(batch);
      }
      batch.requests.push({ body, resolve, reject });
      batch.chars += body.length;
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#flushQueued = false;
    const batches = this.#open;
    this.#open = [];
    for (const batch of batches) this.#send(batch);
  }

  #send({ stream, requests }: Batch): void {
    if (requests.length === 1 || this.#scriptsRefused) {
      this.#sendEach(stream, requests);
      return;
    }
    const bodies = requests.map((request) => request.body);
    this.#connection.send((redis) => runScript(redis, ADD, [stream], bodies)).then(
      (replies) => {
        requests.forEach((request, i) => {
          const reply = Array.isArray(replies) ? replies[i] : undefined;
          if (typeof reply === "string" && ENTRY_ID.test(reply)) request.resolve();
          else {
            request.reject(
              new Error(typeof reply === "string" ? reply : "Redis did not confirm the request"),
            );
          }
        });
      },
      (err: unknown) => {
        if (!refusedBeforeRunning(err)) {
          for (const request of requests) request.reject(err);
          return;
        }
        if (!this.#scriptsRefused) {
          this.#scriptsRefused = true;
          this.#logger.warn(
            "Redis refuses to run scripts for this client; its requests are added one XADD each",
            { stream, error: err instanceof Error ? err.message : String(err) },
          );
        }
        this.#sendEach(stream, requests);
      },
    );
  }

  #sendEach(stream: string, requests: readonly PendingRequest[]): void {
    for (const request of requests) {
      this.#connection.send((redis) => redis.xadd(stream, "*", "message", request.body))
        .then(() => request.resolve(), request.reject);
    }
  }
}

/** Whether Redis refused the script before running it: this user may not run scripts. */
function refusedBeforeRunning(err: unknown): boolean {
  return err instanceof Error && err.name === "ReplyError" && /^NOPERM\b/.test(err.message);
}
