/** PRPC's jsonpickle messages, read data-only and written in kind (protocol/jsonpickle.ts). */
import { parseRequest, parseResult } from "../protocol/envelope.ts";
import {
  pickledUtcDatetime,
  PickleRefusal,
  preciseEpochMs,
  readPickledRequest,
  writePickledResult,
} from "../protocol/jsonpickle.ts";
import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import { capturedCalls, fixtureCommands } from "./support/prpc_python.ts";

const UTC = {
  "py/reduce": [{ "py/type": "datetime.timezone" }, {
    "py/tuple": [{ "py/reduce": [{ "py/type": "datetime.timedelta" }, { "py/tuple": [0, 0, 0] }] }],
  }],
};

function datetime(state: string, tz: unknown = UTC): unknown {
  return {
    "py/object": "datetime.datetime",
    "__reduce__": [{ "py/type": "datetime.datetime" }, tz === null ? [state] : [state, tz]],
  };
}

function message(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    "py/object": "prpc.prpcmessage.PRPCMessage",
    func_name: "echo",
    func_args: { "py/tuple": [] },
    func_kwargs: {},
    message_id: { "py/object": "uuid.UUID", hex: "1243ec4e1b7643d695bdc2130d3d87a8" },
    date_create_message: datetime("B+oMBQsmJA6qig=="),
    result: null,
    exception_info: null,
    date_done_message: null,
    ...fields,
  };
}

Deno.test("jsonpickle: every request of the PRPC capture is read, with its tuple or list args and its date", async () => {
  const requests = (await fixtureCommands()).filter((command) => command[0] === "XADD");
  assertEquals(requests.length, 6);
  const read = requests.map((command) => readPickledRequest(JSON.parse(command[4]!)));
  assertEquals(read.map((r) => [r.funcName, r.args, r.kwargs]), [
    ["ping", [], {}],
    ["hello_world", [], {}],
    ["summ", [1, 2], { z: 3 }],
    ["summ", [1, 2], { z: 3 }],
    ["fail", ["boom"], {}],
    ["get_function_server", [], {}],
  ]);
  assertEquals(read[0]!.messageId, "1243ec4e-1b76-43d6-95bd-c2130d3d87a8");
  // 07EA 0C 05 0B 26 24 0EAA8A: 2026-12-05 11:38:36.961162
  assertEquals(read[0]!.dateCreateMessage, "2026-12-05T11:38:36.961162+00:00");
});

Deno.test("jsonpickle: datetimes in arguments become ISO strings, with their offset, a shared one, or none", () => {
  const plus = {
    "py/reduce": [{ "py/type": "datetime.timezone" }, {
      "py/tuple": [
        { "py/reduce": [{ "py/type": "datetime.timedelta" }, { "py/tuple": [0, 10800, 0] }] },
        "MSK",
      ],
    }],
  };
  const minus = {
    "py/reduce": [{ "py/type": "datetime.timezone" }, {
      "py/tuple": [{
        "py/reduce": [{ "py/type": "datetime.timedelta" }, { "py/tuple": [-1, 84600, 0] }],
      }],
    }],
  };
  const read = readPickledRequest(message({
    func_args: {
      "py/tuple": [
        datetime("B+oMBQsmJA6qig==", plus),
        datetime("B+oMBQsmJA6qig==", { "py/id": 7 }),
        datetime("B+oMBQsmJA6qig==", null), // naive
        { "py/object": "uuid.UUID", hex: "F9A0FE1C7DB64B67AC18F2F8F4783378" },
      ],
    },
    date_create_message: null,
  }));
  assertEquals(read.args, [
    "2026-12-05T11:38:36.961162+03:00",
    "2026-12-05T11:38:36.961162+03:00",
    "2026-12-05T11:38:36.961162",
    "f9a0fe1c-7db6-4b67-ac18-f2f8f4783378",
  ]);
  assertEquals(read.dateCreateMessage, undefined);
  const west = readPickledRequest(
    message({ date_create_message: datetime("B+oMBQsmJA6qig==", minus) }),
  );
  assertEquals(west.dateCreateMessage, "2026-12-05T11:38:36.961162-00:30");
});

Deno.test("jsonpickle: every tag outside the whitelist is refused with where and what it is", () => {
  const refused: [unknown, RegExp][] = [
    [
      { "py/reduce": [{ "py/function": "os.system" }, { "py/tuple": ["touch /tmp/x"] }] },
      /py\/reduce/,
    ],
    [{ "py/function": "os.system" }, /py\/function/],
    [{ "py/repr": "os/os.system('id')" }, /py\/repr/],
    [{ "py/type": "subprocess.Popen" }, /py\/type/],
    [{ "py/object": "subprocess.Popen", args: "id" }, /"subprocess\.Popen"/],
    [{ "py/set": [1, 2] }, /py\/set/],
    [{ "py/id": 1 }, /refers back/],
    [{ "py/tuple": [1], extra: 2 }, /py\/tuple/],
    [
      { "py/object": "datetime.datetime", "__reduce__": [{ "py/function": "os.system" }, ["x"]] },
      /datetime/,
    ],
    [
      datetime("B+oMBQsmJA6qig==", {
        "py/reduce": [{ "py/function": "os.system" }, { "py/tuple": [] }],
      }),
      /timezone/,
    ],
    [datetime("not base64!"), /datetime/],
    // jsonpickle restores every item of a py/reduce: a third one would run when echoed back.
    [
      datetime("B+oMBQsmJA6qig==", {
        "py/reduce": [
          ...(UTC["py/reduce"] as unknown[]),
          { "py/reduce": [{ "py/function": "os.system" }, { "py/tuple": ["id"] }] },
        ],
      }),
      /timezone/,
    ],
    [{ "py/object": "uuid.UUID", hex: "xyz" }, /uuid/],
  ];
  for (const [arg, reason] of refused) {
    const error = assertThrows(
      () => readPickledRequest(message({ func_args: { "py/tuple": [1, { nested: [arg] }] } })),
      PickleRefusal,
    );
    assert(reason.test(error.message), `${JSON.stringify(arg)}: ${error.message}`);
    assert(error.message.includes("func_args[1].nested[0]"), error.message);
  }
  assertThrows(
    () => readPickledRequest(message({ "py/object": "builtins.dict" })),
    PickleRefusal,
    "PRPCMessage",
  );
  assertThrows(
    () => readPickledRequest(message({ message_id: "not-an-object" })),
    PickleRefusal,
    "uuid",
  );
  assertThrows(
    () => readPickledRequest(message({ func_kwargs: { "py/set": [] } })),
    PickleRefusal,
    "py/set",
  );
});

Deno.test("jsonpickle: a keyword named __proto__ stays a plain key", () => {
  const read = readPickledRequest(
    message({ func_kwargs: JSON.parse('{"__proto__": {"polluted": 1}}') }),
  );
  assertEquals(Object.keys(read.kwargs), ["__proto__"]);
  assertEquals(Object.getPrototypeOf(read.kwargs), Object.prototype);
  assertEquals(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("parseRequest: a refused jsonpickle request keeps its message_id and repeats none of what it sent", () => {
  const text = JSON.stringify(
    message({ func_args: { "py/tuple": [{ "py/repr": "os/os.system('id')" }] } }),
  );
  const parsed = parseRequest(text);
  assert(!parsed.ok);
  assertEquals(parsed.messageId, "1243ec4e-1b76-43d6-95bd-c2130d3d87a8");
  assertEquals(parsed.partial.pickled, {
    funcArgs: { "py/tuple": [] },
    funcKwargs: {},
    dateCreateMessage: null,
  });
  const deep = JSON.stringify(
    message({ func_args: { "py/tuple": [JSON.parse("[".repeat(50) + "]".repeat(50))] } }),
  );
  const tooDeep = parseRequest(deep, 20);
  assert(!tooDeep.ok && /deeper than 20/.test(tooDeep.reason), JSON.stringify(tooDeep));
  const fits = parseRequest(deep, 50);
  assert(fits.ok, JSON.stringify(fits));
});

Deno.test("jsonpickle: results are written as Python's json.dumps writes them, and refuse py/ keys", () => {
  const fields = {
    funcName: "echo",
    messageId: "1243ec4e-1b76-43d6-95bd-c2130d3d87a8",
    echo: { funcArgs: { "py/tuple": ["é"] }, funcKwargs: {}, dateCreateMessage: null },
    exceptionInfo: null,
    doneAt: Date.UTC(2026, 11, 5, 11, 38, 36, 961),
  };
  const text = writePickledResult(fields, { a: [1, "ü😀"], b: null });
  assert(
    text.startsWith(
      '{"py/object": "prpc.prpcmessage.PRPCMessage", "func_name": "echo", "func_args": {"py/tuple": ["\\u00e9"]}, "func_kwargs": {}, "message_id": {"py/object": "uuid.UUID", "hex": "1243ec4e1b7643d695bdc2130d3d87a8"}, "date_create_message": null, "result": {"a": [1, "\\u00fc\\ud83d\\ude00"], "b": null}, "exception_info": null, "date_done_message": ',
    ),
    text,
  );
  // The date written reads back as the same instant (to the millisecond).
  const read = readPickledRequest(
    message({ date_create_message: JSON.parse(pickledUtcDatetime(fields.doneAt)) }),
  );
  assertEquals(read.dateCreateMessage, "2026-12-05T11:38:36.961000+00:00");
  assertThrows(
    () => writePickledResult(fields, { list: [{ "py/reduce": [] }] }),
    PickleRefusal,
    'result.list[0] holds an object with the key "py/reduce"',
  );
});

Deno.test("jsonpickle: a date read, taken as epoch ms and written again keeps every microsecond", () => {
  for (let micro = 0; micro < 1_000_000; micro += 997) {
    const iso = `2026-12-05T11:38:36.${String(micro).padStart(6, "0")}+00:00`;
    const written = JSON.parse(pickledUtcDatetime(preciseEpochMs(iso)));
    const read = readPickledRequest(message({ date_create_message: written }));
    assertEquals(read.dateCreateMessage, iso);
  }
});

Deno.test("parseResult: the results PRPC's server stored in the capture are read data-only", async () => {
  const calls = await capturedCalls();
  const expected: Record<string, [unknown, string | null]> = {
    ping: ["pong", null],
    hello_world: ["hello_world", null],
    summ: [6, null],
    fail: [null, "boom"],
  };
  for (const call of calls) {
    const read = parseResult(call.result);
    assert(read.ok, JSON.stringify(read));
    assertEquals(read.result.message_id, call.messageId);
    if (call.funcName === "get_function_server") {
      // No tag in it: read as the plain JSON it is.
      assertEquals(read.result.result, JSON.parse(call.result).result);
      assertEquals((read.result.result as unknown[])[0], {
        func_name: "ping",
        func_args: [],
        func_kwargs: [],
      });
    } else {
      assertEquals([read.result.result, read.result.exception_info], expected[call.funcName]);
    }
  }
  // A tag outside the whitelist in a stored result fails the call it names, and runs nothing.
  const hostile = JSON.parse(calls[0]!.result);
  hostile.result = { "py/reduce": [{ "py/function": "os.system" }, { "py/tuple": ["id"] }] };
  const refused = parseResult(JSON.stringify(hostile));
  assert(!refused.ok && /py\/reduce/.test(refused.reason), JSON.stringify(refused));
  assertEquals(refused.messageId, calls[0]!.messageId);
});

Deno.test("jsonpickle: what a result repeats is rebuilt from the values read, references resolved", () => {
  const named = {
    "py/reduce": [{ "py/type": "datetime.timezone" }, {
      "py/tuple": [
        { "py/reduce": [{ "py/type": "datetime.timedelta" }, { "py/tuple": [0, 7200, 0] }] },
        "EET",
      ],
    }],
  };
  const read = readPickledRequest(message({
    func_args: [datetime("B+oMBQsmJA6qig==", named), { "py/tuple": [1, "x"] }],
    func_kwargs: { when: datetime("B+oMBQsmJA6qig==", { "py/id": 9 }) },
  }));
  assertEquals(read.echo.funcArgs, [datetime("B+oMBQsmJA6qig==", named), { "py/tuple": [1, "x"] }]);
  // The reference is written out as the timezone it names: the echo holds no py/id.
  assertEquals(read.echo.funcKwargs, { when: datetime("B+oMBQsmJA6qig==", named) });
  assertEquals(read.kwargs, { when: "2026-12-05T11:38:36.961162+02:00" });
});
