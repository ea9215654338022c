import {
  ArgumentError,
  BrokerError,
  CallTimeoutError,
  ConfigError,
  describeThrown,
  exceptionInfo,
  fromWireError,
  PayloadTooLargeError,
  ProtocolError,
  PrpcError,
  type PrpcErrorOptions,
  RemoteError,
  SerializationError,
  toWireError,
  UnknownFunctionError,
  type WireError,
  WorkerTimeoutError,
} from "../protocol/errors.ts";
import { assert, assertEquals } from "./support/assert.ts";

const CONTEXT = { funcName: "compute", messageId: "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0" };

/** Classes whose constructor is `(message, options)`. */
const MESSAGE_CLASSES = [
  PrpcError,
  CallTimeoutError,
  UnknownFunctionError,
  ArgumentError,
  WorkerTimeoutError,
  SerializationError,
  PayloadTooLargeError,
  ProtocolError,
  ConfigError,
  BrokerError,
] as const;

/** The classes a server puts in a result, by wire type. */
const SERVER_CLASSES = [
  UnknownFunctionError,
  ArgumentError,
  WorkerTimeoutError,
  SerializationError,
  PayloadTooLargeError,
  ProtocolError,
  CallTimeoutError,
] as const;

/** The literal name each class must have (not taken from `Class.name`, so a rename shows). */
const EXPECTED_NAMES = new Map<unknown, string>([
  [PrpcError, "PrpcError"],
  [RemoteError, "RemoteError"],
  [CallTimeoutError, "CallTimeoutError"],
  [UnknownFunctionError, "UnknownFunctionError"],
  [ArgumentError, "ArgumentError"],
  [WorkerTimeoutError, "WorkerTimeoutError"],
  [SerializationError, "SerializationError"],
  [PayloadTooLargeError, "PayloadTooLargeError"],
  [ProtocolError, "ProtocolError"],
  [ConfigError, "ConfigError"],
  [BrokerError, "BrokerError"],
]);

function expectedName(ErrorClass: unknown): string {
  const name = EXPECTED_NAMES.get(ErrorClass);
  assert(name !== undefined);
  return name;
}

/** Builds every error class with the same options; RemoteError takes its own arguments. */
function everyError(options: PrpcErrorOptions = {}): [unknown, PrpcError][] {
  return [
    ...MESSAGE_CLASSES.map((ErrorClass): [unknown, PrpcError] => [
      ErrorClass,
      new ErrorClass("something failed", options),
    ]),
    [RemoteError, new RemoteError("TypeError", "something failed", options)],
  ];
}

// ---------------------------------------------------------------------------
// Error classes
// ---------------------------------------------------------------------------

Deno.test("PrpcError subclasses extend PrpcError and Error", () => {
  const errors = everyError();
  assertEquals(errors.length, 11);
  for (const [ErrorClass, err] of errors) {
    assert(err instanceof PrpcError, expectedName(ErrorClass));
    assert(err instanceof Error, expectedName(ErrorClass));
    assert(err instanceof (ErrorClass as new (...args: never[]) => unknown));
  }
  // Subclasses are siblings, not each other's instances.
  assert(!(new ArgumentError("x") instanceof RemoteError));
  assert(!(new RemoteError("E", "x") instanceof ArgumentError));
  assert(!(new CallTimeoutError("x") instanceof WorkerTimeoutError));
});

Deno.test("PrpcError subclasses have their literal name", () => {
  for (const [ErrorClass, err] of everyError()) {
    assertEquals(err.name, expectedName(ErrorClass));
  }
});

Deno.test("PrpcError subclasses show their name in String(err)", () => {
  for (const [ErrorClass, err] of everyError()) {
    const name = expectedName(ErrorClass);
    assertEquals(String(err), `${name}: ${err.message}`);
  }
  assertEquals(String(new ArgumentError("bad")), "ArgumentError: bad");
});

Deno.test("PrpcError subclasses show their name in the first line of err.stack", () => {
  for (const [ErrorClass, err] of everyError()) {
    const name = expectedName(ErrorClass);
    assert(typeof err.stack === "string");
    assertEquals(err.stack.split("\n")[0], `${name}: ${err.message}`);
  }
});

Deno.test("PrpcError subclasses keep cause, funcName, messageId and remoteStack", () => {
  const cause = new Error("root cause");
  const options = {
    cause,
    funcName: "compute",
    messageId: CONTEXT.messageId,
    remoteStack: "Error: remote\n    at server.ts:1:1",
  };
  for (const [ErrorClass, err] of everyError(options)) {
    const name = expectedName(ErrorClass);
    assert(err.cause === cause, name);
    assertEquals(err.funcName, "compute", name);
    assertEquals(err.messageId, CONTEXT.messageId, name);
    assertEquals(err.remoteStack, "Error: remote\n    at server.ts:1:1", name);
  }
});

Deno.test("PrpcError subclasses leave call details undefined and set no cause without options", () => {
  for (const [ErrorClass, err] of everyError()) {
    const name = expectedName(ErrorClass);
    assertEquals(err.funcName, undefined, name);
    assertEquals(err.messageId, undefined, name);
    assertEquals(err.remoteStack, undefined, name);
    assert(!("cause" in err), name);
  }
  // A cause that is a non-Error value is kept as well.
  assertEquals(new PrpcError("x", { cause: "text cause" }).cause, "text cause");
});

Deno.test("PrpcError keeps its message", () => {
  assertEquals(new PrpcError("exact message").message, "exact message");
  assertEquals(new ConfigError("bad PRPC_URL").message, "bad PRPC_URL");
});

Deno.test("RemoteError message includes the remote message and the function name", () => {
  const err = new RemoteError("TypeError", "x is not a function", { funcName: "compute" });
  assertEquals(err.message, '"compute" threw TypeError: x is not a function');
  assertEquals(err.remoteName, "TypeError");
  assertEquals(err.remoteMessage, "x is not a function");
  assertEquals(err.code, undefined);
  assertEquals(err.data, undefined);
});

Deno.test("RemoteError message says remote function without a function name", () => {
  const err = new RemoteError("RangeError", "too big");
  assertEquals(err.message, "remote function threw RangeError: too big");
  assertEquals(String(err), "RemoteError: remote function threw RangeError: too big");
});

Deno.test("RemoteError keeps code and data", () => {
  const data = { field: "amount", limits: [0, 10] };
  const err = new RemoteError("ValidationError", "bad amount", { code: "E_RANGE", data });
  assertEquals(err.code, "E_RANGE");
  assert(err.data === data);
});

Deno.test("CallTimeoutError keeps timeoutMs", () => {
  assertEquals(new CallTimeoutError("no result", { timeoutMs: 1500 }).timeoutMs, 1500);
  assertEquals(new CallTimeoutError("aborted").timeoutMs, undefined);
});

Deno.test("PayloadTooLargeError keeps size and limit", () => {
  const err = new PayloadTooLargeError("too large", { size: 2048, limit: 1024 });
  assertEquals(err.size, 2048);
  assertEquals(err.limit, 1024);
  const bare = new PayloadTooLargeError("too large");
  assertEquals(bare.size, undefined);
  assertEquals(bare.limit, undefined);
});

// ---------------------------------------------------------------------------
// toWireError
// ---------------------------------------------------------------------------

Deno.test("toWireError() uses the class name as type for each server error class", () => {
  for (const ErrorClass of SERVER_CLASSES) {
    const name = expectedName(ErrorClass);
    assertEquals(toWireError(new ErrorClass("it failed"), false), {
      type: name,
      name,
      message: "it failed",
    });
  }
});

Deno.test("toWireError() uses type RemoteError for prpc errors a server does not send", () => {
  assertEquals(toWireError(new ConfigError("bad"), false), {
    type: "RemoteError",
    name: "ConfigError",
    message: "bad",
  });
  assertEquals(toWireError(new BrokerError("closed"), false), {
    type: "RemoteError",
    name: "BrokerError",
    message: "closed",
  });
  assertEquals(toWireError(new PrpcError("base"), false), {
    type: "RemoteError",
    name: "PrpcError",
    message: "base",
  });
});

Deno.test("toWireError() describes a RemoteError with type RemoteError", () => {
  const err = new RemoteError("TypeError", "inner", { funcName: "g", code: 7, data: ["d"] });
  assertEquals(toWireError(err, false), {
    type: "RemoteError",
    name: "RemoteError",
    message: '"g" threw TypeError: inner',
    code: 7,
    data: ["d"],
  });
});

Deno.test("toWireError() describes a plain TypeError as a RemoteError named TypeError", () => {
  assertEquals(toWireError(new TypeError("x is not a function"), false), {
    type: "RemoteError",
    name: "TypeError",
    message: "x is not a function",
  });
  assertEquals(toWireError(new Error("plain"), false), {
    type: "RemoteError",
    name: "Error",
    message: "plain",
  });
});

Deno.test("toWireError() does not trust a plain Error named like a server error class", () => {
  const impostor = new Error("looks official");
  impostor.name = "ArgumentError";
  assertEquals(toWireError(impostor, false), {
    type: "RemoteError",
    name: "ArgumentError",
    message: "looks official",
  });
});

Deno.test("toWireError() uses the name of a custom Error subclass", () => {
  class ValidationError extends Error {
    override name = "ValidationError";
  }
  assertEquals(toWireError(new ValidationError("bad input"), false), {
    type: "RemoteError",
    name: "ValidationError",
    message: "bad input",
  });
});

Deno.test("toWireError() keeps code and data that encode as JSON", () => {
  const err = Object.assign(new Error("failed"), {
    code: "E_FAILED",
    data: { retry: true, after: [1, 2] },
  });
  assertEquals(toWireError(err, false), {
    type: "RemoteError",
    name: "Error",
    message: "failed",
    code: "E_FAILED",
    data: { retry: true, after: [1, 2] },
  });
  // Falsy values that encode are kept too.
  const falsy = Object.assign(new Error("f"), { code: 0, data: null });
  assertEquals(toWireError(falsy, false), {
    type: "RemoteError",
    name: "Error",
    message: "f",
    code: 0,
    data: null,
  });
});

Deno.test("toWireError() drops code and data that do not encode as JSON", () => {
  const bigint = Object.assign(new Error("f"), { code: "E_KEEP", data: 10n });
  assertEquals(toWireError(bigint, false), {
    type: "RemoteError",
    name: "Error",
    message: "f",
    code: "E_KEEP",
  });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const other = Object.assign(new Error("g"), { code: () => 1, data: cyclic });
  const wire = toWireError(other, false);
  assert(!("code" in wire));
  assert(!("data" in wire));
  const symbol = Object.assign(new Error("h"), { code: Symbol("c") });
  assert(!("code" in toWireError(symbol, false)));
});

Deno.test("toWireError() describes thrown values that are not Errors", () => {
  assertEquals(toWireError("just a string", false), {
    type: "RemoteError",
    name: "Error",
    message: "just a string",
  });
  assertEquals(toWireError({ reason: "object", n: 1 }, false), {
    type: "RemoteError",
    name: "Error",
    message: '{"reason":"object","n":1}',
  });
  assertEquals(toWireError(undefined, false), {
    type: "RemoteError",
    name: "Error",
    message: "undefined",
  });
  assertEquals(toWireError(null, false).message, "null");
  assertEquals(toWireError(42, false).message, "42");
});

Deno.test("toWireError() includes the stack of an error the function threw only when exposeStack is true", () => {
  const plain = new TypeError("t");
  const exposed = toWireError(plain, true);
  assert(typeof plain.stack === "string");
  assertEquals(exposed.stack, plain.stack);
  assert(exposed.stack?.startsWith("TypeError: t\n"));
  assert(!("stack" in toWireError(plain, false)));
});

Deno.test("toWireError() never sends stacks of prpc's own refusals", () => {
  // Their stacks would show server internals and say nothing about the caller's function.
  for (const ErrorClass of SERVER_CLASSES) {
    const wire = toWireError(new ErrorClass("refused"), true);
    assert(!("stack" in wire), expectedName(ErrorClass));
  }
});

Deno.test("toWireError() sends no stack for a thrown non-Error or an Error without a stack", () => {
  assert(!("stack" in toWireError("text", true)));
  assert(!("stack" in toWireError({ a: 1 }, true)));
  const stackless = new Error("no stack");
  Object.defineProperty(stackless, "stack", { value: undefined });
  assert(!("stack" in toWireError(stackless, true)));
});

Deno.test("describeThrown() describes strings, JSON-able values and the rest", () => {
  assertEquals(describeThrown("text"), "text");
  assertEquals(describeThrown({ a: [1] }), '{"a":[1]}');
  assertEquals(describeThrown(undefined), "undefined");
  assertEquals(describeThrown(5n), "5");
  assertEquals(describeThrown(Symbol("s")), "Symbol(s)");
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assertEquals(describeThrown(cyclic), "[object Object]");
});

// ---------------------------------------------------------------------------
// exceptionInfo
// ---------------------------------------------------------------------------

Deno.test("exceptionInfo() formats the name and message as PRPC expects", () => {
  assertEquals(
    exceptionInfo({ type: "RemoteError", name: "TypeError", message: "bad thing" }),
    "TypeError: bad thing",
  );
  // The name, not the wire type.
  assertEquals(
    exceptionInfo({ type: "RemoteError", name: "ValidationError", message: "m", stack: "s" }),
    "ValidationError: m",
  );
  assertEquals(
    exceptionInfo(toWireError(new ArgumentError("missing x"), true)),
    "ArgumentError: missing x",
  );
  assertEquals(exceptionInfo({ type: "RemoteError", name: "Error", message: "" }), "Error: ");
});

// ---------------------------------------------------------------------------
// fromWireError
// ---------------------------------------------------------------------------

Deno.test("fromWireError() rebuilds each server error class from its wire type", () => {
  for (const ErrorClass of SERVER_CLASSES) {
    const name = expectedName(ErrorClass);
    const wire = {
      type: name,
      name,
      message: `the ${name} message`,
      stack: `${name}: the ${name} message\n    at server`,
    } as WireError;
    const err = fromWireError(wire, exceptionInfo(wire), CONTEXT);
    assert(err instanceof ErrorClass, name);
    assertEquals(err.name, name);
    assertEquals(err.message, `the ${name} message`);
    assertEquals(err.remoteStack, `${name}: the ${name} message\n    at server`);
    assertEquals(err.funcName, CONTEXT.funcName);
    assertEquals(err.messageId, CONTEXT.messageId);
  }
});

Deno.test("fromWireError() rebuilds a RemoteError with name, message, stack, code and data", () => {
  const wire: WireError = {
    type: "RemoteError",
    name: "TypeError",
    message: "x is not a function",
    stack: "TypeError: x is not a function\n    at compute",
    code: "E_TYPE",
    data: { hint: [1] },
  };
  const err = fromWireError(wire, "TypeError: x is not a function", CONTEXT);
  assert(err instanceof RemoteError);
  assertEquals(err.remoteName, "TypeError");
  assertEquals(err.remoteMessage, "x is not a function");
  assertEquals(err.message, '"compute" threw TypeError: x is not a function');
  assertEquals(err.remoteStack, "TypeError: x is not a function\n    at compute");
  assertEquals(err.code, "E_TYPE");
  assertEquals(err.data, { hint: [1] });
  assertEquals(err.funcName, "compute");
  assertEquals(err.messageId, CONTEXT.messageId);
});

Deno.test("fromWireError() round-trips each server error class through toWireError and JSON", () => {
  for (const ErrorClass of SERVER_CLASSES) {
    const original = new ErrorClass(`round trip of ${expectedName(ErrorClass)}`);
    const wire = JSON.parse(JSON.stringify(toWireError(original, true))) as WireError;
    const rebuilt = fromWireError(wire, exceptionInfo(wire), CONTEXT);
    assert(rebuilt instanceof ErrorClass, expectedName(ErrorClass));
    assertEquals(rebuilt.constructor, ErrorClass);
    assertEquals(rebuilt.message, original.message);
    assertEquals(rebuilt.remoteStack, undefined);
  }
});

Deno.test("fromWireError() round-trips a thrown TypeError with code and data", () => {
  const original = Object.assign(new TypeError("wrong type"), { code: 409, data: ["x", 1] });
  const wire = JSON.parse(JSON.stringify(toWireError(original, true))) as WireError;
  const rebuilt = fromWireError(wire, exceptionInfo(wire), CONTEXT);
  assert(rebuilt instanceof RemoteError);
  assertEquals(rebuilt.remoteName, "TypeError");
  assertEquals(rebuilt.remoteMessage, "wrong type");
  assertEquals(rebuilt.remoteStack, original.stack);
  assertEquals(rebuilt.code, 409);
  assertEquals(rebuilt.data, ["x", 1]);
});

Deno.test("fromWireError() leaves remoteStack undefined when the stack was not exposed", () => {
  const wire = toWireError(new WorkerTimeoutError("ran too long"), false);
  const rebuilt = fromWireError(wire, exceptionInfo(wire), CONTEXT);
  assert(rebuilt instanceof WorkerTimeoutError);
  assertEquals(rebuilt.remoteStack, undefined);
});

Deno.test("fromWireError() takes all of exception_info as the message without a wire object", () => {
  // PRPC's server writes str(e): ValueError("port: must be an int") arrives as "port: must be an int".
  const err = fromWireError(undefined, "port: must be an int", CONTEXT);
  assert(err instanceof RemoteError);
  assertEquals(err.remoteName, "Error");
  assertEquals(err.remoteMessage, "port: must be an int");
  assertEquals(err.message, '"compute" threw Error: port: must be an int');
  assertEquals(err.funcName, "compute");
  assertEquals(err.messageId, CONTEXT.messageId);
  assertEquals(err.remoteStack, undefined);
  assertEquals(err.code, undefined);
  for (const text of ["ValueError: invalid literal", "something broke", ": leading", ""]) {
    const other = fromWireError(undefined, text, CONTEXT) as RemoteError;
    assertEquals([other.remoteName, other.remoteMessage], ["Error", text]);
  }
});

Deno.test("fromWireError() turns an unknown wire type into a RemoteError", () => {
  for (
    const type of ["NotAnError", "ConfigError", "BrokerError", "PrpcError", "toString", "__proto__"]
  ) {
    const wire = { type, name: "Weird", message: "odd", code: 1 } as unknown as WireError;
    const err = fromWireError(wire, "Weird: odd", CONTEXT);
    assert(err instanceof RemoteError, type);
    assertEquals(err.constructor, RemoteError);
    assertEquals(err.remoteName, "Weird");
    assertEquals(err.remoteMessage, "odd");
    assertEquals(err.code, 1);
  }
});

Deno.test("fromWireError() prefers the wire object over exception_info", () => {
  const wire: WireError = { type: "ArgumentError", name: "ArgumentError", message: "from wire" };
  const err = fromWireError(wire, "Other: from exception_info", CONTEXT);
  assert(err instanceof ArgumentError);
  assertEquals(err.message, "from wire");
});

Deno.test("fromWireError() keeps a traceback in exception_info whole", () => {
  const traceback = 'Traceback (most recent call last):\n  File "x.py", line 3\n    d = {"a": 1}';
  const err = fromWireError(undefined, traceback, CONTEXT) as RemoteError;
  assertEquals(err.remoteName, "Error");
  assertEquals(err.remoteMessage, traceback);
});
