/**
 * The result a server sends in place of one Kafka refused as too large
 * (`MESSAGE_TOO_LARGE`: the broker's or topic's limit is below the
 * `maxMessageBytes` setting). Running the function again would not make its
 * result smaller, so the caller gets a `PayloadTooLargeError` at once, as for
 * a result over the server's own limit: the result's identity and dates, and
 * an error with its name and the start of its message.
 *
 * @module
 */

import { exceptionInfo, type PayloadTooLargeError, type WireError } from "../../protocol/errors.ts";

/** Result fields kept from the refused result. */
const KEPT_FIELDS = ["func_name", "message_id", "date_create_message", "date_done_message", "prpc"];

/** Longest error message put in the replacement, as the server shortens its own. */
const MAX_MESSAGE_CHARS = 1_000;

/**
 * The body of the error result that replaces a refused one.
 *
 * @param refused The refused result's JSON text.
 * @param error Why Kafka refused it.
 * @returns The replacement's JSON text, or `undefined` when `refused` is not a JSON object.
 */
export function tooLargeResult(refused: string, error: PayloadTooLargeError): string | undefined {
  let original: unknown;
  try {
    original = JSON.parse(refused);
  } catch {
    return undefined;
  }
  if (typeof original !== "object" || original === null || Array.isArray(original)) {
    return undefined;
  }
  const result: Record<string, unknown> = {};
  for (const field of KEPT_FIELDS) {
    if (Object.hasOwn(original, field)) {
      result[field] = (original as Record<string, unknown>)[field];
    }
  }
  const message = error.message.length > MAX_MESSAGE_CHARS
    ? `${error.message.slice(0, MAX_MESSAGE_CHARS)}… (shortened to fit the message size limit)`
    : error.message;
  const wire: WireError = { type: "PayloadTooLargeError", name: error.name, message };
  result.result = null;
  result.exception_info = exceptionInfo(wire);
  result.error = wire;
  return JSON.stringify(result);
}
