import {
  canonicalMessageId,
  forbiddenKeyword,
  isoTimestamp,
  type ParsedRequest,
  parseRequest,
  parseResult,
} from "../protocol/envelope.ts";
import { DEFAULT_MAX_DEPTH } from "../protocol/depth.ts";
import { assert, assertEquals } from "./support/assert.ts";

const ID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
const ID_HEX = ID.replaceAll("-", "");

/** Asserts that `text` is rejected and returns the rejection. */
function rejection(text: string): Extract<ParsedRequest, { ok: false }> {
  const parsed = parseRequest(text);
  if (parsed.ok) throw new Error(`expected a rejection, got ${JSON.stringify(parsed.request)}`);
  return parsed;
}

/** Parses a request built from `fields` (with a valid message_id unless overridden). */
function rejectionOf(fields: Record<string, unknown>): Extract<ParsedRequest, { ok: false }> {
  return rejection(JSON.stringify({ message_id: ID, func_name: "f", ...fields }));
}

// ---------------------------------------------------------------------------
// canonicalMessageId
// ---------------------------------------------------------------------------

Deno.test("canonicalMessageId() returns a lowercase UUID string unchanged", () => {
  assertEquals(canonicalMessageId(ID), ID);
  assertEquals(
    canonicalMessageId("00000000-0000-0000-0000-000000000000"),
    "00000000-0000-0000-0000-000000000000",
  );
});

Deno.test("canonicalMessageId() lowercases an uppercase or mixed-case UUID string", () => {
  assertEquals(canonicalMessageId(ID.toUpperCase()), ID);
  assertEquals(
    canonicalMessageId("AbCdEf01-2345-6789-aBcD-EF0123456789"),
    "abcdef01-2345-6789-abcd-ef0123456789",
  );
});

Deno.test("canonicalMessageId() turns the {hex} form into the dashed form", () => {
  assertEquals(canonicalMessageId({ hex: ID_HEX }), ID);
  assertEquals(canonicalMessageId({ hex: ID_HEX.toUpperCase() }), ID);
  assertEquals(
    canonicalMessageId({ hex: "00112233445566778899aabbccddeeff" }),
    "00112233-4455-6677-8899-aabbccddeeff",
  );
  // Other keys next to hex do not matter.
  assertEquals(canonicalMessageId({ hex: ID_HEX, version: 4 }), ID);
});

Deno.test("canonicalMessageId() returns null for strings of the wrong length", () => {
  assertEquals(canonicalMessageId(ID.slice(0, -1)), null);
  assertEquals(canonicalMessageId(ID + "0"), null);
  assertEquals(canonicalMessageId(ID_HEX), null);
  assertEquals(canonicalMessageId(`{${ID}}`), null);
  assertEquals(canonicalMessageId(""), null);
});

Deno.test("canonicalMessageId() returns null for strings that are not hex UUIDs", () => {
  assertEquals(canonicalMessageId("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1fg"), null);
  assertEquals(canonicalMessageId("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"), null);
  // Right length, dashes in the wrong places.
  assertEquals(canonicalMessageId("0f1e2d3c4-b5a-4968-8776-a5b4c3d2e1f0"), null);
  assertEquals(canonicalMessageId("0f1e2d3c-4b5a-4968-8776a-5b4c3d2e1f0"), null);
  // Right length, spaces instead of dashes.
  assertEquals(canonicalMessageId(ID.replaceAll("-", " ")), null);
  // The characters next to 0-9 and a-f, in every position.
  for (const outside of ["/", ":", "`", "g", "@", "G"]) {
    for (let i = 0; i < 36; i++) {
      if (i === 8 || i === 13 || i === 18 || i === 23) continue;
      const id = ID.slice(0, i) + outside + ID.slice(i + 1);
      assertEquals(canonicalMessageId(id), null, id);
    }
  }
});

Deno.test("canonicalMessageId() returns null for values that are neither strings nor {hex} objects", () => {
  assertEquals(canonicalMessageId(123), null);
  assertEquals(canonicalMessageId(null), null);
  assertEquals(canonicalMessageId(undefined), null);
  assertEquals(canonicalMessageId(true), null);
  assertEquals(canonicalMessageId([ID]), null);
  assertEquals(canonicalMessageId(Object.assign([], { hex: ID_HEX })), null);
  assertEquals(canonicalMessageId({}), null);
});

Deno.test("canonicalMessageId() returns null for a bad {hex} value", () => {
  assertEquals(canonicalMessageId({ hex: 123 }), null);
  assertEquals(canonicalMessageId({ hex: null }), null);
  assertEquals(canonicalMessageId({ hex: ID }), null);
  assertEquals(canonicalMessageId({ hex: ID_HEX.slice(1) }), null);
  assertEquals(canonicalMessageId({ hex: ID_HEX + "0" }), null);
  assertEquals(canonicalMessageId({ hex: "g" + ID_HEX.slice(1) }), null);
});

// ---------------------------------------------------------------------------
// isoTimestamp
// ---------------------------------------------------------------------------

Deno.test("isoTimestamp() formats an instant with an explicit +00:00 offset", () => {
  const date = new Date(Date.UTC(2026, 10, 21, 12, 0, 0, 5));
  assertEquals(isoTimestamp(date), "2026-11-21T12:00:00.005+00:00");
  assertEquals(isoTimestamp(new Date(0)), "1970-01-01T00:00:00.000+00:00");
});

Deno.test("isoTimestamp() parses back to the same instant", () => {
  for (const ms of [0, 1, 1_700_000_000_123, Date.UTC(1999, 11, 31, 23, 59, 59, 999)]) {
    const text = isoTimestamp(new Date(ms));
    assert(text.endsWith("+00:00"), text);
    assert(!text.includes("Z"), text);
    assertEquals(new Date(text).getTime(), ms);
  }
});

Deno.test("isoTimestamp() defaults to the current time", () => {
  const before = Date.now();
  const text = isoTimestamp();
  const after = Date.now();
  assert(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$/.test(text), text);
  const parsed = Date.parse(text);
  assert(parsed >= before && parsed <= after, `${text} is not between ${before} and ${after}`);
});

// ---------------------------------------------------------------------------
// parseRequest: valid requests
// ---------------------------------------------------------------------------

Deno.test("parseRequest() reads a minimal request and defaults absent args and kwargs to empty", () => {
  assertEquals(parseRequest(JSON.stringify({ message_id: ID, func_name: "add" })), {
    ok: true,
    request: { func_name: "add", func_args: [], func_kwargs: {}, message_id: ID },
  });
});

Deno.test("parseRequest() treats null args and kwargs as empty", () => {
  assertEquals(
    parseRequest(
      JSON.stringify({ message_id: ID, func_name: "add", func_args: null, func_kwargs: null }),
    ),
    { ok: true, request: { func_name: "add", func_args: [], func_kwargs: {}, message_id: ID } },
  );
});

Deno.test("parseRequest() reads a request with every optional field", () => {
  const text = JSON.stringify({
    func_name: "transfer",
    func_args: [1, "two", { three: [3] }],
    func_kwargs: { memo: "rent", amount: 12.5 },
    message_id: ID,
    date_create_message: "2026-11-21T12:00:00.000+00:00",
    reply_to: "replies.client-1",
    deadline_ms: 1_800_000_000_000,
    prpc: 1,
    unknown_field: "dropped",
  });
  assertEquals(parseRequest(text), {
    ok: true,
    request: {
      func_name: "transfer",
      func_args: [1, "two", { three: [3] }],
      func_kwargs: { memo: "rent", amount: 12.5 },
      message_id: ID,
      date_create_message: "2026-11-21T12:00:00.000+00:00",
      reply_to: "replies.client-1",
      deadline_ms: 1_800_000_000_000,
      prpc: 1,
    },
  });
});

Deno.test("parseRequest() canonicalises the message_id of a valid request", () => {
  const upper = parseRequest(JSON.stringify({ message_id: ID.toUpperCase(), func_name: "f" }));
  assert(upper.ok);
  assertEquals(upper.request.message_id, ID);
  const hex = parseRequest(JSON.stringify({ message_id: { hex: ID_HEX }, func_name: "f" }));
  assert(hex.ok);
  assertEquals(hex.request.message_id, ID);
});

Deno.test("parseRequest() leaves out an empty reply_to and a non-number prpc", () => {
  const parsed = parseRequest(
    JSON.stringify({ message_id: ID, func_name: "f", reply_to: "", prpc: "1" }),
  );
  assert(parsed.ok);
  assertEquals(parsed.request, { func_name: "f", func_args: [], func_kwargs: {}, message_id: ID });
  assert(!("reply_to" in parsed.request));
  assert(!("prpc" in parsed.request));
});

Deno.test("parseRequest() accepts zero and negative deadlines", () => {
  for (const deadline of [0, -5, 12.5]) {
    const parsed = parseRequest(
      JSON.stringify({ message_id: ID, func_name: "f", deadline_ms: deadline }),
    );
    assert(parsed.ok);
    assertEquals(parsed.request.deadline_ms, deadline);
  }
});

// ---------------------------------------------------------------------------
// parseRequest: rejections without a message id
// ---------------------------------------------------------------------------

Deno.test("parseRequest() rejects text that is not JSON", () => {
  for (const text of ["", "{", "not json", "{'single': 'quotes'}"]) {
    const parsed = rejection(text);
    assert(parsed.reason.startsWith("message is not JSON: "), parsed.reason);
    assert(parsed.reason.length > "message is not JSON: ".length, parsed.reason);
    assertEquals(parsed.messageId, null);
    assertEquals(parsed.partial, {});
  }
});

Deno.test("parseRequest() rejects JSON that is not an object", () => {
  const cases: [string, string][] = [
    [`[${JSON.stringify({ message_id: ID, func_name: "f" })}]`, "an array"],
    ["42", "number 42"],
    ["null", "null"],
    ['"text"', 'a string "text"'],
    ["true", "boolean true"],
  ];
  for (const [text, described] of cases) {
    assertEquals(parseRequest(text), {
      ok: false,
      reason: `message must be a JSON object, got ${described}`,
      messageId: null,
      partial: {},
    });
  }
});

Deno.test("parseRequest() rejects a missing message_id and keeps what it could read", () => {
  const parsed = rejection(JSON.stringify({
    func_name: "f",
    func_args: [1],
    func_kwargs: { a: 2 },
    date_create_message: "2026-01-01T00:00:00.000+00:00",
    reply_to: "replies",
  }));
  assertEquals(parsed, {
    ok: false,
    reason: "field message_id is missing",
    messageId: null,
    partial: {
      func_name: "f",
      func_args: [1],
      func_kwargs: { a: 2 },
      date_create_message: "2026-01-01T00:00:00.000+00:00",
      reply_to: "replies",
    },
  });
});

Deno.test("parseRequest() rejects an invalid message_id", () => {
  const cases: [unknown, string][] = [
    ["abc", 'a string "abc"'],
    [ID_HEX, `a string "${ID_HEX}"`],
    ["y".repeat(5000), `a string "${"y".repeat(40)}…"`],
    [123, "number 123"],
    [null, "null"],
    [[ID], "an array"],
    [{ hex: 123 }, "an object"],
  ];
  for (const [messageId, shown] of cases) {
    const parsed = rejection(JSON.stringify({ message_id: messageId, func_name: "f" }));
    assertEquals(parsed, {
      ok: false,
      reason: `field message_id must be a UUID string or {"hex": "<32 hex digits>"}, got ${shown}`,
      messageId: null,
      partial: { func_name: "f" },
    });
  }
});

// ---------------------------------------------------------------------------
// parseRequest: rejections with a valid message id
// ---------------------------------------------------------------------------

Deno.test("parseRequest() rejects a missing func_name and reports the message_id", () => {
  const parsed = rejection(JSON.stringify({ message_id: ID.toUpperCase(), func_args: [1] }));
  assertEquals(parsed, {
    ok: false,
    reason: "field func_name is missing",
    messageId: ID,
    partial: { message_id: ID, func_args: [1] },
  });
});

Deno.test("parseRequest() rejects an empty func_name", () => {
  const parsed = rejectionOf({ func_name: "" });
  assertEquals(parsed.reason, 'field func_name must be a non-empty string, got a string ""');
  assertEquals(parsed.messageId, ID);
  assertEquals(parsed.partial, { message_id: ID, func_name: "" });
});

Deno.test("parseRequest() rejects a func_name that is not a string", () => {
  const cases: [unknown, string][] = [
    [42, "number 42"],
    [null, "null"],
    [["f"], "an array"],
    [{ name: "f" }, "an object"],
    [false, "boolean false"],
  ];
  for (const [funcName, described] of cases) {
    const parsed = rejectionOf({ func_name: funcName });
    assertEquals(parsed.reason, `field func_name must be a non-empty string, got ${described}`);
    assertEquals(parsed.messageId, ID);
    assertEquals(parsed.partial, { message_id: ID });
  }
});

Deno.test("parseRequest() rejects func_args that is not an array", () => {
  const cases: [unknown, string][] = [
    [{ 0: 1 }, "an object"],
    ["1,2", 'a string "1,2"'],
    [3, "number 3"],
  ];
  for (const [args, described] of cases) {
    const parsed = rejectionOf({ func_args: args, func_kwargs: { k: 1 } });
    assertEquals(parsed.reason, `field func_args must be an array, got ${described}`);
    assertEquals(parsed.messageId, ID);
    assertEquals(parsed.partial, { message_id: ID, func_name: "f", func_kwargs: { k: 1 } });
  }
});

Deno.test("parseRequest() rejects func_kwargs that is not an object", () => {
  const cases: [unknown, string][] = [
    [[1, 2], "an array"],
    ["a=1", 'a string "a=1"'],
    [7, "number 7"],
    [true, "boolean true"],
  ];
  for (const [kwargs, described] of cases) {
    const parsed = rejectionOf({ func_args: [1], func_kwargs: kwargs });
    assertEquals(parsed.reason, `field func_kwargs must be an object, got ${described}`);
    assertEquals(parsed.messageId, ID);
    assertEquals(parsed.partial, { message_id: ID, func_name: "f", func_args: [1] });
  }
});

Deno.test("parseRequest() rejects a reply_to that is not a string", () => {
  const cases: [unknown, string][] = [
    [5, "number 5"],
    [{ queue: "q" }, "an object"],
  ];
  for (const [replyTo, described] of cases) {
    const parsed = rejectionOf({ reply_to: replyTo });
    assertEquals(parsed.reason, `field reply_to must be a string, got ${described}`);
    assertEquals(parsed.messageId, ID);
    assertEquals(parsed.partial, { message_id: ID, func_name: "f" });
  }
});

Deno.test("parseRequest() rejects a deadline_ms that is not a finite number", () => {
  const cases: [string, string][] = [
    ['"soon"', 'a string "soon"'],
    ["[1]", "an array"],
    ["1e999", "number Infinity"],
    ["-1e999", "number -Infinity"],
  ];
  for (const [deadline, described] of cases) {
    const parsed = rejection(`{"message_id":"${ID}","func_name":"f","deadline_ms":${deadline}}`);
    assertEquals(parsed.reason, `field deadline_ms must be a number, got ${described}`);
    assertEquals(parsed.messageId, ID);
    assertEquals(parsed.partial, { message_id: ID, func_name: "f" });
  }
});

Deno.test("parseRequest() ignores a date_create_message that is not a string", () => {
  for (const date of [123, { iso: "x" }, ["2026"]]) {
    const parsed = parseRequest(
      JSON.stringify({ message_id: ID, func_name: "f", date_create_message: date }),
    );
    assert(parsed.ok);
    assert(!("date_create_message" in parsed.request));
  }
});

Deno.test("parseRequest() reads null optional fields as absent (Python's None)", () => {
  const parsed = parseRequest(
    JSON.stringify({
      message_id: ID,
      func_name: "f",
      func_args: null,
      func_kwargs: null,
      reply_to: null,
      deadline_ms: null,
      date_create_message: null,
    }),
  );
  assert(parsed.ok);
  assertEquals(parsed.request, { message_id: ID, func_name: "f", func_args: [], func_kwargs: {} });
});

Deno.test("parseRequest() shortens long strings in the reason", () => {
  const long = "x".repeat(60);
  const parsed = rejectionOf({ func_args: long });
  assertEquals(
    parsed.reason,
    `field func_args must be an array, got a string "${"x".repeat(40)}…"`,
  );
});

Deno.test("parseRequest() reports the first problem in field order", () => {
  // func_name is checked before func_args, func_args before func_kwargs, and so on.
  assertEquals(
    rejection(JSON.stringify({ message_id: ID, func_name: 1, func_args: 1 })).reason,
    "field func_name must be a non-empty string, got number 1",
  );
  assertEquals(
    rejectionOf({ func_args: 1, func_kwargs: 1, reply_to: 1 }).reason,
    "field func_args must be an array, got number 1",
  );
  assertEquals(
    rejectionOf({ reply_to: 1, deadline_ms: "x", date_create_message: 1 }).reason,
    "field reply_to must be a string, got number 1",
  );
  assertEquals(
    rejectionOf({ deadline_ms: "x", date_create_message: 1 }).reason,
    'field deadline_ms must be a number, got a string "x"',
  );
});

// ---------------------------------------------------------------------------
// forbiddenKeyword
// ---------------------------------------------------------------------------

Deno.test("forbiddenKeyword() finds __proto__, constructor and prototype", () => {
  assertEquals(forbiddenKeyword(JSON.parse('{"a": 1, "__proto__": {"x": 1}}')), "__proto__");
  assertEquals(forbiddenKeyword({ ["__proto__"]: 1 }), "__proto__");
  assertEquals(forbiddenKeyword({ a: 1, constructor: 2 }), "constructor");
  assertEquals(forbiddenKeyword({ prototype: 3 }), "prototype");
});

Deno.test("forbiddenKeyword() returns the first forbidden name in key order", () => {
  assertEquals(forbiddenKeyword({ prototype: 1, constructor: 2 }), "prototype");
  assertEquals(forbiddenKeyword({ ok: 0, constructor: 2, prototype: 1 }), "constructor");
});

Deno.test("forbiddenKeyword() returns undefined for ordinary names", () => {
  assertEquals(forbiddenKeyword({}), undefined);
  assertEquals(forbiddenKeyword({ a: 1, proto: 2, Constructor: 3, _prototype: 4 }), undefined);
  // An object literal's __proto__ sets the prototype: no own key named __proto__.
  assertEquals(
    forbiddenKeyword({ __proto__: { inherited: 1 } } as Record<string, unknown>),
    undefined,
  );
});

Deno.test("forbiddenKeyword() finds __proto__ in the kwargs of a parsed request", () => {
  const parsed = parseRequest(
    `{"message_id": "${ID}", "func_name": "f", "func_kwargs": {"__proto__": {"polluted": true}}}`,
  );
  assert(parsed.ok);
  assertEquals(forbiddenKeyword(parsed.request.func_kwargs), "__proto__");
  // Parsing did not change the prototype.
  assertEquals((parsed.request.func_kwargs as { polluted?: unknown }).polluted, undefined);
});

Deno.test("parseRequest() accepts arguments nested maxDepth deep and refuses one level more, keeping the id", () => {
  const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
  const request = (args: string, kwargs = "{}") =>
    `{"func_name":"f","message_id":"${ID}","reply_to":"inbox","func_args":${args},"func_kwargs":${kwargs}}`;
  assert(parseRequest(request(`[${nested(DEFAULT_MAX_DEPTH)}]`)).ok);
  assert(parseRequest(request("[]", `{"a":${nested(DEFAULT_MAX_DEPTH)}}`)).ok);
  for (
    const text of [
      request(`[${nested(DEFAULT_MAX_DEPTH + 1)}]`),
      request("[]", `{"a":${nested(DEFAULT_MAX_DEPTH + 1)}}`),
      request(`[${nested(200_000)}]`),
    ]
  ) {
    const refused = rejection(text);
    assert(refused.reason.includes(`deeper than ${DEFAULT_MAX_DEPTH} levels`), refused.reason);
    assertEquals(refused.messageId, ID);
    // What can be echoed safely is kept; the arguments never are.
    assertEquals(refused.partial, { func_name: "f", reply_to: "inbox" });
  }
  // A lower limit of the server's own: func_args holds one argument nested 3 deep.
  assert(!parseRequest(request("[[[[1]]]]"), 2).ok);
  assert(parseRequest(request("[[[[1]]]]"), 3).ok);
  // Without a readable id it is refused all the same (the server sets it aside).
  assertEquals(rejection(`{"func_args":${nested(5_000)}}`).messageId, null);
});

// ---------------------------------------------------------------------------
// parseResult
// ---------------------------------------------------------------------------

const RESULT = {
  func_name: "add",
  func_args: [1, 2],
  func_kwargs: {},
  message_id: ID,
  result: 3,
  exception_info: null,
  date_create_message: "2026-11-21T12:00:00.000+00:00",
  date_done_message: "2026-11-21T12:00:00.010+00:00",
  prpc: 1,
};

/** The result `parseResult()` accepts from `text`; fails the test when it refuses it. */
function accepted(text: string) {
  const parsed = parseResult(text);
  if (!parsed.ok) throw new Error(`refused: ${parsed.reason}`);
  return parsed.result;
}

/** Why `parseResult()` refuses `text`, and the id it could read; fails the test when it accepts. */
function refused(text: string) {
  const parsed = parseResult(text);
  if (parsed.ok) throw new Error(`accepted ${text.slice(0, 80)}`);
  return parsed;
}

Deno.test("parseResult() reads a valid result", () => {
  assertEquals(accepted(JSON.stringify(RESULT)), RESULT);
});

Deno.test("parseResult() canonicalises an uppercase or {hex} message_id", () => {
  assertEquals(
    accepted(JSON.stringify({ ...RESULT, message_id: ID.toUpperCase() })).message_id,
    ID,
  );
  assertEquals(accepted(JSON.stringify({ ...RESULT, message_id: { hex: ID_HEX } })).message_id, ID);
});

Deno.test("parseResult() refuses a result without a valid message_id", () => {
  const { message_id: _, ...withoutId } = RESULT;
  assertEquals(refused(JSON.stringify(withoutId)).messageId, null);
  assert(refused(JSON.stringify(withoutId)).reason.includes("message_id of the result is missing"));
  assert(refused(JSON.stringify({ ...RESULT, message_id: "nope" })).reason.includes("UUID"));
  assertEquals(refused(JSON.stringify({ ...RESULT, message_id: { hex: 1 } })).messageId, null);
});

Deno.test("parseResult() refuses text that is not a JSON object", () => {
  assert(refused("not json").reason.startsWith("the result is not JSON"));
  assert(refused("").reason.startsWith("the result is not JSON"));
  assert(refused("null").reason.includes("must be a JSON object, got null"));
  assert(refused("42").reason.includes("got number 42"));
  assert(refused(JSON.stringify([RESULT])).reason.includes("got an array"));
});

Deno.test("parseResult() refuses an exception_info that is neither a string nor null, naming the call", () => {
  for (const exception_info of [42, { name: "E" }, false]) {
    const why = refused(JSON.stringify({ ...RESULT, exception_info }));
    assertEquals(why.messageId, ID, "the call it answers can fail at once");
    assert(why.reason.includes("exception_info"), why.reason);
  }
});

Deno.test("parseResult() refuses a result nested deeper than maxDepth, naming the call", () => {
  const deep = (depth: number) => JSON.parse("[".repeat(depth) + "]".repeat(depth));
  assertEquals(
    accepted(JSON.stringify({ ...RESULT, result: deep(DEFAULT_MAX_DEPTH) })).message_id,
    ID,
  );
  const why = refused(JSON.stringify({ ...RESULT, result: deep(DEFAULT_MAX_DEPTH + 1) }));
  assertEquals(why.messageId, ID);
  assert(why.reason.includes(`deeper than ${DEFAULT_MAX_DEPTH} levels`), why.reason);
  assertEquals(parseResult(JSON.stringify({ ...RESULT, result: deep(10) }), 9).ok, false);
});

Deno.test("parseResult() lets a raw result echo arguments maxDepth deep, but not a deeper result value", () => {
  const deep = (depth: number) => JSON.parse("[".repeat(depth) + "]".repeat(depth));
  const raw = { ...RESULT, func_args: [deep(10)], func_kwargs: { k: deep(10) } };
  assertEquals(parseResult(JSON.stringify({ ...raw, result: deep(10) }), 10).ok, true);
  assertEquals(parseResult(JSON.stringify({ ...raw, result: deep(11) }), 10).ok, false);
  assertEquals(parseResult(JSON.stringify({ ...raw, func_args: [deep(11)] }), 10).ok, false);
});

Deno.test("parseResult() keeps a string exception_info", () => {
  const parsed = accepted(
    JSON.stringify({ ...RESULT, result: null, exception_info: "TypeError: bad" }),
  );
  assertEquals(parsed.exception_info, "TypeError: bad");
  assertEquals(parsed.result, null);
});

Deno.test("parseResult() defaults a missing result and exception_info to null", () => {
  const parsed = accepted(JSON.stringify({ message_id: ID, func_name: "f" }));
  assertEquals(parsed, { message_id: ID, func_name: "f", result: null, exception_info: null });
  assert("result" in parsed && "exception_info" in parsed);
});

Deno.test("parseResult() keeps falsy results", () => {
  for (const value of [0, false, "", [], {}]) {
    assertEquals(accepted(JSON.stringify({ ...RESULT, result: value })).result, value);
  }
});

Deno.test("parseResult() keeps a well-formed error object", () => {
  const error = {
    type: "RemoteError",
    name: "TypeError",
    message: "bad",
    stack: "TypeError: bad\n    at f",
    code: "E_BAD",
    data: { n: 1 },
  };
  const parsed = accepted(
    JSON.stringify({ ...RESULT, result: null, exception_info: "TypeError: bad", error }),
  );
  assertEquals(parsed.error, error);
  const withoutStack = { type: "ArgumentError", name: "ArgumentError", message: "m" };
  assertEquals(accepted(JSON.stringify({ ...RESULT, error: withoutStack })).error, withoutStack);
});

Deno.test("parseResult() removes a malformed error object", () => {
  const malformed: unknown[] = [
    null,
    "TypeError: bad",
    42,
    [{ type: "RemoteError", name: "TypeError", message: "bad" }],
    { name: "TypeError", message: "bad" },
    { type: 1, name: "TypeError", message: "bad" },
    { type: "RemoteError", message: "bad" },
    { type: "RemoteError", name: "TypeError" },
    { type: "RemoteError", name: "TypeError", message: 5 },
    { type: "RemoteError", name: "TypeError", message: "bad", stack: 7 },
    { type: "RemoteError", name: "TypeError", message: "bad", stack: null },
  ];
  for (const error of malformed) {
    const parsed = accepted(
      JSON.stringify({ ...RESULT, result: null, exception_info: "TypeError: bad", error }),
    );
    assert(!("error" in parsed), `kept error ${JSON.stringify(error)}`);
    assertEquals(parsed.exception_info, "TypeError: bad");
    assertEquals(parsed.message_id, ID);
  }
});
