/**
 * Seeded generators of hostile input for the fuzz tests: request bodies a
 * server must answer or set aside, and result bodies a client's inbox must
 * survive. Everything comes from one small PRNG, so a seed reproduces a run
 * exactly (`PRPC_FUZZ_SEED=<seed> deno test ...`).
 *
 * Each request records what the server must do with it, worked out from the
 * protocol's rules (docs/PROTOCOL.md, `parseRequest` and `canonicalMessageId`
 * in protocol/envelope.ts), not by running prpc's own code on it:
 *
 * - a body whose `message_id` can be read (a UUID string in any letter case,
 *   or `{"hex": "<32 hex digits>"}`) gets a result under the canonical id: the
 *   exact value for a valid call, else an error result;
 * - a body without a readable `message_id` goes to the dead-letter queue.
 *
 * Bodies are ASCII or valid Unicode (lone surrogates only as JSON escapes), so
 * every broker carries them unchanged, and each stays well under 100 KB.
 */

/** The seed used when `PRPC_FUZZ_SEED` is not set. */
export const DEFAULT_FUZZ_SEED = 20_260_115;

/** The functions a fuzzed server registers: `summ(a, b, z = 0.5)` and `echo(value)`. */
export const FUZZ_FUNCTION_NAMES = ["summ", "echo"] as const;

/**
 * `summ(a, b, z = 0.5)`: the function most fuzzed requests call.
 *
 * @param a First addend.
 * @param b Second addend.
 * @param z Third addend.
 * @returns `a + b + z`.
 */
export function summ(a: number, b: number, z = 0.5): number {
  return a + b + z;
}

/**
 * `echo(value)`: returns its argument, to check values that travel there and back.
 *
 * @param value Anything.
 * @returns `value`.
 */
export function echo(value: unknown): unknown {
  return value;
}

/**
 * The seed of a fuzz run: `PRPC_FUZZ_SEED` (decimal, or hexadecimal with `0x`)
 * when set, else {@linkcode DEFAULT_FUZZ_SEED}.
 *
 * @returns An unsigned 32-bit seed.
 * @throws {Error} When `PRPC_FUZZ_SEED` is not such a number.
 */
export function fuzzSeed(): number {
  const text = Deno.env.get("PRPC_FUZZ_SEED")?.trim();
  if (text === undefined || text === "") return DEFAULT_FUZZ_SEED;
  const seed = Number(text);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
    throw new Error(
      `Cannot use PRPC_FUZZ_SEED ${JSON.stringify(text)}: expected a whole number 0 to 4294967295`,
    );
  }
  return seed;
}

/**
 * mulberry32: a tiny, fast PRNG with 32 bits of state, good enough to pick
 * test input (not for anything secret).
 *
 * @param seed Any 32-bit number.
 * @returns A function giving the next number in [0, 1).
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const HEX_DIGITS = "0123456789abcdef";
/** Characters that need no escaping inside a JSON string. */
const PLAIN_CHARACTERS =
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$%&'()*+,-./:;<=>?@[]^_`{|}~";

/** The random choices of a fuzz run, all drawn from one seeded {@linkcode mulberry32}. */
export class FuzzRandom {
  readonly #next: () => number;

  /**
   * A stream of choices.
   *
   * @param seed The seed; the same seed gives the same choices.
   */
  constructor(readonly seed: number) {
    this.#next = mulberry32(seed);
  }

  /** A number in [0, 1). */
  float(): number {
    return this.#next();
  }

  /** A whole number from `min` to `max`, both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.#next() * (max - min + 1));
  }

  /** `true` with probability `p`. */
  chance(p: number): boolean {
    return this.#next() < p;
  }

  /** One of `items`. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Cannot pick from nothing");
    return items[Math.floor(this.#next() * items.length)] as T;
  }

  /** A new independent stream, seeded from this one (for a part of a run that may change size). */
  fork(): FuzzRandom {
    return new FuzzRandom(Math.floor(this.#next() * 4_294_967_296));
  }

  /** `length` lowercase hexadecimal digits. */
  hex(length: number): string {
    let text = "";
    for (let i = 0; i < length; i++) text += HEX_DIGITS[this.int(0, 15)];
    return text;
  }

  /** A canonical (lowercase, version 4) UUID. */
  uuid(): string {
    const hex = this.hex(32).split("");
    hex[12] = "4";
    hex[16] = HEX_DIGITS[8 + this.int(0, 3)] as string;
    return dashed(hex.join(""));
  }

  /** `length` characters that need no escaping in JSON (letters, digits, punctuation, spaces). */
  plainText(length: number): string {
    let text = "";
    for (let i = 0; i < length; i++) {
      text += PLAIN_CHARACTERS[this.int(0, PLAIN_CHARACTERS.length - 1)];
    }
    return text;
  }

  /** The items in a random order (a new array). */
  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
    }
    return copy;
  }
}

/** 32 hex digits as a UUID with dashes. */
function dashed(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

/** What the server must do with a fuzzed request. */
export type RequestExpectation =
  | {
    /** A result with `exception_info: null` whose `result`, encoded with `JSON.stringify`, is `resultJson`. */
    outcome: "result";
    resultJson: string;
  }
  | {
    /** A result whose `exception_info` starts with `exceptionPrefix` (and `result` is `null`). */
    outcome: "error";
    exceptionPrefix: string;
  }
  | {
    /** No readable `message_id`: a dead letter whose reason includes `reasonIncludes`. */
    outcome: "dead";
    reasonIncludes: string;
  };

/** The kinds of hostile request the generator makes. */
export type RequestCategory =
  | "valid"
  | "not-json"
  | "not-object"
  | "wrong-types"
  | "missing-fields"
  | "huge-strings"
  | "lone-surrogates"
  | "prototype-keys"
  | "odd-ids"
  | "duplicate-fields"
  | "unknown-functions"
  | "argument-counts"
  | "deep-nesting"
  | "odd-numbers"
  | "long-func-names"
  | "reply-to-types"
  | "deadlines";

/** One generated request body and what the server must do with it. */
export interface FuzzRequest {
  /** The kind of input. */
  readonly category: RequestCategory;
  /** What is odd about it, in a few words (for failure messages). */
  readonly what: string;
  /** The body to publish. */
  readonly body: string;
  /** The canonical `message_id` the server reads from it, or `null` when it has none it can read. */
  readonly messageId: string | null;
  /** What the server must do with it. */
  readonly expected: RequestExpectation;
}

/** Options of {@linkcode generateRequests}. */
export interface RequestOptions {
  /**
   * An inbox address to put in every JSON object as `reply_to`, for the native
   * queue. The requests that fuzz `reply_to` themselves are then not made.
   */
  replyTo?: string | undefined;
}

/** JSON text of one field's value, by field name; the order is kept (and may repeat names). */
type Fields = (readonly [name: string, json: string])[];

/** What a category builder works with. */
interface BuildContext {
  readonly r: FuzzRandom;
  readonly replyTo: string | undefined;
}

type Builder = (context: BuildContext) => FuzzRequest;

/** How the server's rules word what they refuse; the tests match these. */
const REFUSED = {
  notJson: "message is not JSON",
  notObject: "message must be a JSON object",
  idMissing: "field message_id is missing",
  idUnreadable: "field message_id must be a UUID",
  tooDeep: "deeper than 1000 levels",
} as const;

const ERRORS = {
  funcNameMissing: "ProtocolError: field func_name is missing",
  funcNameType: "ProtocolError: field func_name must be a non-empty string",
  argsType: "ProtocolError: field func_args must be an array",
  kwargsType: "ProtocolError: field func_kwargs must be an object",
  replyToType: "ProtocolError: field reply_to must be a string",
  deadlineType: "ProtocolError: field deadline_ms must be a number",
  tooDeep: "ProtocolError: message nests arrays and objects deeper than 1000 levels",
  deadlinePassed: "CallTimeoutError: ",
  unknownFunction: "UnknownFunctionError: ",
} as const;

/** The most a request nests and is still run (the server's default `maxDepth`). */
const MAX_DEPTH = 1_000;

/** JSON text of an object with these fields, in this order. */
function objectText(fields: Fields): string {
  return `{${fields.map(([name, json]) => `${JSON.stringify(name)}:${json}`).join(",")}}`;
}

/** The value of a field as JSON text. */
const json = (value: unknown): string => JSON.stringify(value);

/** What the server answers when a valid call returns the value that `valueJson` decodes to. */
function resultOf(valueJson: string): RequestExpectation {
  return { outcome: "result", resultJson: JSON.stringify(JSON.parse(valueJson)) };
}

const errorOf = (exceptionPrefix: string): RequestExpectation => ({
  outcome: "error",
  exceptionPrefix,
});

const deadOf = (reasonIncludes: string): RequestExpectation => ({
  outcome: "dead",
  reasonIncludes,
});

/** A `message_id` the server can read: its JSON text and the canonical id it stands for. */
interface ReadableId {
  readonly json: string;
  readonly canonical: string;
}

/** A readable `message_id` in its everyday form: a lowercase UUID string. */
function plainId(r: FuzzRandom): ReadableId {
  const canonical = r.uuid();
  return { json: json(canonical), canonical };
}

/** A readable `message_id` in one of its less common forms. */
function oddReadableId(r: FuzzRandom): ReadableId & { what: string } {
  const canonical = r.uuid();
  const hex = canonical.replaceAll("-", "");
  const mixed = [...canonical].map((c) => (r.chance(0.5) ? c.toUpperCase() : c)).join("");
  const notVersion4 = dashed(r.hex(32));
  const forms: [string, string, string][] = [
    ["upper-case UUID", json(canonical.toUpperCase()), canonical],
    ["mixed-case UUID", json(mixed), canonical],
    ["hex form", objectText([["hex", json(hex)]]), canonical],
    ["upper-case hex form", objectText([["hex", json(hex.toUpperCase())]]), canonical],
    ["hex form with more keys", objectText([["hex", json(hex)], ["extra", "[1,{}]"]]), canonical],
    [
      "hex form with a repeated key",
      objectText([["hex", json("nope")], ["hex", json(hex)]]),
      canonical,
    ],
    ["UUID of no RFC version", json(notVersion4), notVersion4],
  ];
  const [what, idJson, id] = r.pick(forms);
  return { what, json: idJson, canonical: id };
}

/** A `message_id` value the server cannot read, as JSON text. */
function unreadableId(r: FuzzRandom): { what: string; json: string } {
  const id = r.uuid();
  const hex = id.replaceAll("-", "");
  const at = r.int(0, 35);
  const forms: [string, string][] = [
    ["empty string", json("")],
    ["too short", json(id.slice(0, r.int(1, 35)))],
    ["one character too long", json(`${id}0`)],
    ["with braces", json(`{${id}}`)],
    ["with a space", json(` ${id}`)],
    ["urn form", json(`urn:uuid:${id}`)],
    ["32 hex digits as a string", json(hex)],
    ["a non-hex digit", json(`${id.slice(0, 35)}g`)],
    ["dashes moved", json(`${hex.slice(0, 9)}-${hex.slice(9, 12)}-${id.slice(14)}`)],
    ["all dashes", json("-".repeat(36))],
    ["full-width digits", json(id.replace(/[0-9]/, "\uff10"))],
    ["lone surrogate inside", `"${id.slice(0, at)}\\ud800${id.slice(at + 1)}"`],
    ["a number", String(r.int(0, 2 ** 31))],
    ["a huge number", "1e400"],
    ["minus zero", "-0"],
    ["true", "true"],
    ["null", "null"],
    ["an array of a UUID", `[${json(id)}]`],
    ["an empty object", "{}"],
    ["hex form with dashes", objectText([["hex", json(id)]])],
    ["hex form one digit short", objectText([["hex", json(hex.slice(1))]])],
    ["hex form one digit long", objectText([["hex", json(`${hex}0`)]])],
    ["hex form with a non-hex digit", objectText([["hex", json(`z${hex.slice(1)}`)]])],
    ["nested hex form", objectText([["hex", objectText([["hex", json(hex)]])]])],
    ["hex key in upper case", objectText([["HEX", json(hex)]])],
    ["hex as a number", objectText([["hex", "12345678901234567890123456789012"]])],
  ];
  const [what, idJson] = r.pick(forms);
  return { what, json: idJson };
}

/** A valid `summ` call's fields (without `message_id`) and the value it returns. */
function summCall(r: FuzzRandom): { fields: Fields; resultJson: string } {
  const a = r.chance(0.7) ? r.int(-1_000_000, 1_000_000) : r.int(-1_000, 1_000) / 8;
  const b = r.int(-1_000, 1_000);
  const z = r.int(-5, 5);
  const forms: [Fields, number][] = [
    [[["func_name", '"summ"'], ["func_args", json([a, b])], ["func_kwargs", "{}"]], a + b + 0.5],
    [[["func_name", '"summ"'], ["func_args", json([a, b, z])]], a + b + z],
    [
      [["func_name", '"summ"'], ["func_args", json([a])], ["func_kwargs", json({ b, z })]],
      a + b + z,
    ],
    [[["func_name", '"summ"'], ["func_kwargs", json({ z, b, a })]], a + b + z],
    [[["func_args", json([a, b])], ["func_name", '"summ"'], ["func_kwargs", "null"]], a + b + 0.5],
    [
      [["func_name", '"summ"'], ["func_args", json([a, b])], ["func_kwargs", json({ z })]],
      a + b + z,
    ],
  ];
  const [fields, value] = r.pick(forms);
  return { fields, resultJson: json(value) };
}

/** JSON text of a small random value (for `echo`), with escapes, unicode and numbers of every shape. */
function randomValueText(r: FuzzRandom, depth = 0): string {
  const roll = r.int(0, depth > 3 ? 5 : 8);
  switch (roll) {
    case 0:
      return "null";
    case 1:
      return r.pick(["true", "false"]);
    case 2:
      return r.pick([
        String(r.int(-1e9, 1e9)),
        String(r.float() * 1e6),
        "-0",
        "0.0",
        "1E+2",
        "2.5e-3",
        "123456789012345678901234567890",
        "9007199254740993",
        "1e-400",
        "-1e-400",
      ]);
    case 3:
    case 4:
    case 5:
      return randomStringText(r);
    case 6:
    case 7: {
      const items = Array.from({ length: r.int(0, 4) }, () => randomValueText(r, depth + 1));
      return `[${items.join(",")}]`;
    }
    default: {
      const fields: Fields = Array.from(
        { length: r.int(0, 4) },
        () => [r.plainText(r.int(0, 8)), randomValueText(r, depth + 1)] as const,
      );
      return objectText(fields);
    }
  }
}

/** JSON text of a string with escapes, non-ASCII characters and the odd lone surrogate. */
function randomStringText(r: FuzzRandom): string {
  const pieces = [
    '\\"',
    "\\\\",
    "\\/",
    "\\n",
    "\\t",
    "\\u0000",
    "\\u001f",
    "\\u00e9",
    "é",
    "中文",
    "\\ud83d\\ude00",
    "😀",
    "\\ud800",
    "\\udfff",
    "\\u2028",
    "\u2029",
  ];
  let text = "";
  const parts = r.int(0, 6);
  for (let i = 0; i < parts; i++) {
    text += r.chance(0.5) ? r.plainText(r.int(0, 10)) : r.pick(pieces);
  }
  return `"${text}"`;
}

/** Nesting `depth` levels deep, of arrays or of objects (`{"a":{"a":...}}`). */
function nestedText(depth: number, shape: "arrays" | "objects"): string {
  return shape === "arrays"
    ? "[".repeat(depth) + "]".repeat(depth)
    : '{"a":'.repeat(depth - 1) + "{}" + "}".repeat(depth - 1);
}

/** A name no fuzzed server registers. */
function unknownName(r: FuzzRandom): string {
  const name = r.pick([
    r.plainText(r.int(1, 40)),
    "summ ",
    " summ",
    "SUMM",
    "Summ",
    "summ\u0000",
    "echo\n",
    "../summ",
    "prpc.summ",
    "summ()",
    "сумм",
    "😀",
    "*",
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "hasOwnProperty",
    "__defineGetter__",
    "gate ",
  ]);
  // "gate" is registered too (by the capacity check), and a stray call to it would wait forever.
  return ["summ", "echo", "gate", ""].includes(name) ? `${name}_` : name;
}

/** Builds the request: its fields, the `message_id` field when there is one, and the `reply_to` to add. */
function request(
  context: BuildContext,
  category: RequestCategory,
  what: string,
  fields: Fields,
  messageId: string | null,
  expected: RequestExpectation,
): FuzzRequest {
  const all = [...fields];
  if (context.replyTo !== undefined && !all.some(([name]) => name === "reply_to")) {
    all.splice(context.r.int(0, all.length), 0, ["reply_to", json(context.replyTo)]);
  }
  return { category, what, body: objectText(all), messageId, expected };
}

/** A body that is not an object, so no field of it (and no `reply_to`) is added. */
function text(
  category: RequestCategory,
  what: string,
  body: string,
  expected: RequestExpectation,
): FuzzRequest {
  return { category, what, body, messageId: null, expected };
}

/** Inserts the `message_id` field at a random place. */
function withId(r: FuzzRandom, fields: Fields, idJson: string): Fields {
  const all = [...fields];
  all.splice(r.int(0, all.length), 0, ["message_id", idJson]);
  return all;
}

const BUILDERS: Record<RequestCategory, Builder> = {
  "valid": (c) => {
    const { r } = c;
    const id = plainId(r);
    if (r.chance(0.5)) {
      const { fields, resultJson } = summCall(r);
      return request(c, "valid", "summ", withId(r, fields, id.json), id.canonical, {
        outcome: "result",
        resultJson,
      });
    }
    const value = randomValueText(r);
    const fields: Fields = r.chance(0.5)
      ? [["func_name", '"echo"'], ["func_args", `[${value}]`]]
      : [["func_name", '"echo"'], ["func_kwargs", `{"value":${value}}`], ["func_args", "[]"]];
    if (r.chance(0.3)) fields.push(["date_create_message", json("2026-01-15T10:00:00.000+00:00")]);
    return request(
      c,
      "valid",
      `echo ${value.slice(0, 60)}`,
      withId(r, fields, id.json),
      id.canonical,
      resultOf(value),
    );
  },

  "not-json": (c) => {
    const { r } = c;
    const valid = objectText(withId(r, summCall(r).fields, plainId(r).json));
    const forms: [string, string][] = [
      ["empty", ""],
      ["blank", " \n\t "],
      ["a bare word", r.pick(["nul", "tru", "undefined", "NaN", "Infinity", "None", "-"])],
      ["a lone bracket", r.pick(["{", "}", "[", "]", "{{", "]["])],
      ["an unclosed object", '{"func_name":"summ"'],
      ["single quotes", "{'func_name': 'summ', 'func_args': [1, 2]}"],
      ["unquoted keys", '{func_name: "summ", func_args: [1, 2]}'],
      ["a trailing comma", '{"func_name":"summ","func_args":[1,2],}'],
      ["an unterminated string", '"unterminated'],
      ["a bad escape", r.pick(['"\\x41"', '"\\u12"', '"\\a"', '"\\ud80"'])],
      ["a raw line break in a string", '{"func_name":"su\nmm"}'],
      ["a comment", `// a comment\n${valid}`],
      ["two objects", `${valid} {}`],
      ["a NUL character after it", `${valid}\u0000`],
      ["a byte order mark before it", `\ufeff${valid}`],
      ["NaN as a value", `{"func_name":"summ","func_args":[NaN,1],"message_id":${json(r.uuid())}}`],
      ["cut short", valid.slice(0, r.int(1, valid.length - 1))],
      ["garbage after it", `${valid}${r.pick(["x", "]", "}", ",", "0"])}`],
      ["random characters", `#${r.plainText(r.int(0, 200))}`],
    ];
    const [what, body] = r.pick(forms);
    return text("not-json", what, body, deadOf(REFUSED.notJson));
  },

  "not-object": (c) => {
    const { r } = c;
    const valid = objectText(withId(r, summCall(r).fields, plainId(r).json));
    const forms: [string, string][] = [
      ["null", "null"],
      ["a boolean", r.pick(["true", "false"])],
      ["a number", r.pick(["0", "-0", "42", "1e400", "-1.5e-7"])],
      ["a string", json(r.plainText(r.int(0, 30)))],
      ["a UUID string", json(r.uuid())],
      ["an empty array", "[]"],
      ["an array of numbers", "[1,2,3]"],
      ["a request inside an array", `[${valid}]`],
      ["a request as a JSON string", json(valid)],
      ["arrays 7000 deep", nestedText(7_000, "arrays")],
      ["arrays 1500 deep", nestedText(1_500, "arrays")],
    ];
    const [what, body] = r.pick(forms);
    return text("not-object", what, body, deadOf(REFUSED.notObject));
  },

  "wrong-types": (c) => {
    const { r } = c;
    const id = plainId(r);
    const { fields: valid, resultJson } = summCall(r);
    const replace = (name: string, value: string): Fields => [
      ...valid.filter(([field]) => field !== name),
      [name, value],
    ];
    const forms: [string, Fields, RequestExpectation][] = [
      [
        "func_name not a string",
        replace(
          "func_name",
          r.pick(["42", "null", "true", "[]", "{}", '["summ"]', '{"name":"summ"}']),
        ),
        errorOf(ERRORS.funcNameType),
      ],
      ["func_name empty", replace("func_name", '""'), errorOf(ERRORS.funcNameType)],
      [
        "func_args not an array",
        [["func_name", '"summ"'], [
          "func_args",
          r.pick(['"1, 2"', "12", "true", '{"0":1,"1":2}', '"[]"', '{"length":4294967295}']),
        ]],
        errorOf(ERRORS.argsType),
      ],
      [
        "func_args null (none)",
        [["func_name", '"summ"'], ["func_args", "null"]],
        errorOf('ArgumentError: summ() missing required argument "a"'),
      ],
      [
        "func_kwargs not an object",
        [["func_name", '"summ"'], ["func_args", "[1,2]"], [
          "func_kwargs",
          r.pick(["[]", "[3]", '"z"', "3", "true"]),
        ]],
        errorOf(ERRORS.kwargsType),
      ],
      [
        "date_create_message not a string",
        [...valid, ["date_create_message", r.pick(["42", "[]", "{}", "true", "null"])]],
        { outcome: "result", resultJson },
      ],
      ["prpc not a number", [...valid, ["prpc", r.pick(['"1"', "[]", "{}", "null"])]], {
        outcome: "result",
        resultJson,
      }],
    ];
    const [what, fields, expected] = r.pick(forms);
    return request(c, "wrong-types", what, withId(r, fields, id.json), id.canonical, expected);
  },

  "missing-fields": (c) => {
    const { r } = c;
    const id = plainId(r);
    const { fields: valid } = summCall(r);
    const forms: [string, Fields, string | null, RequestExpectation][] = [
      [
        "no func_name",
        withId(r, valid.filter(([name]) => name !== "func_name"), id.json),
        id.canonical,
        errorOf(ERRORS.funcNameMissing),
      ],
      ["only message_id", [["message_id", id.json]], id.canonical, errorOf(ERRORS.funcNameMissing)],
      ["no message_id", valid, null, deadOf(REFUSED.idMissing)],
      ["empty object", [], null, deadOf(REFUSED.idMissing)],
      [
        "summ without arguments",
        withId(r, [["func_name", '"summ"']], id.json),
        id.canonical,
        errorOf('ArgumentError: summ() missing required argument "a"'),
      ],
      [
        "echo without arguments",
        withId(r, [["func_name", '"echo"'], ["func_args", "[]"], ["func_kwargs", "{}"]], id.json),
        id.canonical,
        errorOf('ArgumentError: echo() missing required argument "value"'),
      ],
      [
        "no func_kwargs",
        withId(r, [["func_name", '"summ"'], ["func_args", "[1,2]"]], id.json),
        id.canonical,
        resultOf("3.5"),
      ],
    ];
    const [what, fields, messageId, expected] = r.pick(forms);
    return request(c, "missing-fields", what, fields, messageId, expected);
  },

  "huge-strings": (c) => {
    const { r } = c;
    const id = plainId(r);
    const huge = r.plainText(64).repeat(Math.ceil(r.int(10_000, 60_000) / 64));
    const { fields: valid, resultJson } = summCall(r);
    const forms: [string, Fields, string | null, RequestExpectation][] = [
      [
        "echo of a huge string",
        withId(r, [["func_name", '"echo"'], ["func_args", `[${json(huge)}]`]], id.json),
        id.canonical,
        resultOf(json(huge)),
      ],
      [
        "huge unknown func_name",
        withId(r, [["func_name", json(huge)], ["func_args", "[]"]], id.json),
        id.canonical,
        errorOf(ERRORS.unknownFunction),
      ],
      [
        "huge message_id",
        [...valid, ["message_id", json(huge)]],
        null,
        deadOf(REFUSED.idUnreadable),
      ],
      [
        "huge keyword name",
        withId(r, [["func_name", '"summ"'], ["func_args", "[1,2]"], [
          "func_kwargs",
          `{${json(huge)}:1}`,
        ]], id.json),
        id.canonical,
        errorOf("ArgumentError: summ() got an unexpected keyword argument"),
      ],
      [
        "huge date_create_message",
        withId(r, [...valid, ["date_create_message", json(huge)]], id.json),
        id.canonical,
        { outcome: "result", resultJson },
      ],
      [
        "huge unknown field",
        withId(r, [...valid, [huge.slice(0, 100), json(huge)]], id.json),
        id.canonical,
        { outcome: "result", resultJson },
      ],
    ];
    const [what, fields, messageId, expected] = r.pick(forms);
    return request(
      c,
      "huge-strings",
      `${what} (${huge.length} characters)`,
      fields,
      messageId,
      expected,
    );
  },

  "lone-surrogates": (c) => {
    const { r } = c;
    const id = plainId(r);
    const lone = r.pick(["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\udc00\\ud800"]);
    const valueText = r.pick([
      `"${lone}"`,
      `"a${lone}b"`,
      `["x","${lone}"]`,
      `{"${lone}":"${lone}"}`,
      `"\\ud83d\\ude00${lone}"`,
    ]);
    const forms: [string, Fields, string | null, RequestExpectation][] = [
      [
        `echo of ${valueText}`,
        withId(r, [["func_name", '"echo"'], ["func_args", `[${valueText}]`]], id.json),
        id.canonical,
        resultOf(valueText),
      ],
      [
        "func_name with a lone surrogate",
        withId(r, [["func_name", `"summ${lone}"`], ["func_args", "[1,2]"]], id.json),
        id.canonical,
        errorOf(ERRORS.unknownFunction),
      ],
      [
        "keyword name with a lone surrogate",
        withId(r, [["func_name", '"summ"'], ["func_args", "[1,2]"], [
          "func_kwargs",
          `{"${lone}":1}`,
        ]], id.json),
        id.canonical,
        errorOf("ArgumentError: summ() got an unexpected keyword argument"),
      ],
      [
        "message_id with a lone surrogate",
        [["func_name", '"summ"'], ["func_args", "[1,2]"], [
          "message_id",
          `"${id.canonical.slice(0, 35)}${lone}"`,
        ]],
        null,
        deadOf(REFUSED.idUnreadable),
      ],
      [
        "hex form with a lone surrogate",
        [["func_name", '"summ"'], ["func_args", "[1,2]"], [
          "message_id",
          `{"hex":"${r.hex(31)}${lone}"}`,
        ]],
        null,
        deadOf(REFUSED.idUnreadable),
      ],
    ];
    const [what, fields, messageId, expected] = r.pick(forms);
    return request(c, "lone-surrogates", what, fields, messageId, expected);
  },

  "prototype-keys": (c) => {
    const { r } = c;
    const id = plainId(r);
    const { fields: valid, resultJson } = summCall(r);
    const forbidden = r.pick(["__proto__", "constructor", "prototype"]);
    const inherited = r.pick([
      "toString",
      "hasOwnProperty",
      "valueOf",
      "__defineGetter__",
      "isPrototypeOf",
    ]);
    const polluting = '{"polluted":true,"message_id":"00000000-0000-4000-8000-000000000000"}';
    const forms: [string, Fields, string | null, RequestExpectation][] = [
      [
        `keyword ${forbidden}`,
        withId(r, [["func_name", '"summ"'], ["func_args", "[1,2]"], [
          "func_kwargs",
          `{"${forbidden}":${polluting}}`,
        ]], id.json),
        id.canonical,
        errorOf(`ArgumentError: summ() keyword argument "${forbidden}" is not allowed`),
      ],
      [
        `keyword ${forbidden} after a good one`,
        withId(r, [["func_name", '"summ"'], ["func_args", "[1,2]"], [
          "func_kwargs",
          `{"z":1,"${forbidden}":1}`,
        ]], id.json),
        id.canonical,
        errorOf(`ArgumentError: summ() keyword argument "${forbidden}" is not allowed`),
      ],
      [
        `inherited name ${inherited} as a keyword`,
        withId(r, [["func_name", '"summ"'], ["func_args", "[1,2]"], [
          "func_kwargs",
          `{"${inherited}":1}`,
        ]], id.json),
        id.canonical,
        errorOf(`ArgumentError: summ() got an unexpected keyword argument "${inherited}"`),
      ],
      [
        "the whole request under __proto__",
        [["__proto__", objectText(withId(r, valid, id.json))]],
        null,
        deadOf(REFUSED.idMissing),
      ],
      [
        `top-level ${forbidden} next to a valid request`,
        withId(r, [[forbidden, polluting], ...valid], id.json),
        id.canonical,
        { outcome: "result", resultJson },
      ],
      [
        `echo of an object with ${forbidden}`,
        withId(
          r,
          [["func_name", '"echo"'], ["func_args", `[{"${forbidden}":${polluting}}]`]],
          id.json,
        ),
        id.canonical,
        resultOf(`{"${forbidden}":${polluting}}`),
      ],
      [
        `function named ${forbidden}`,
        withId(r, [["func_name", json(forbidden)], ["func_args", "[]"]], id.json),
        id.canonical,
        errorOf(ERRORS.unknownFunction),
      ],
    ];
    const [what, fields, messageId, expected] = r.pick(forms);
    return request(c, "prototype-keys", what, fields, messageId, expected);
  },

  "odd-ids": (c) => {
    const { r } = c;
    const { fields: valid, resultJson } = summCall(r);
    if (r.chance(0.3)) {
      const id = oddReadableId(r);
      return request(c, "odd-ids", id.what, withId(r, valid, id.json), id.canonical, {
        outcome: "result",
        resultJson,
      });
    }
    const id = unreadableId(r);
    return request(
      c,
      "odd-ids",
      id.what,
      withId(r, valid, id.json),
      null,
      deadOf(REFUSED.idUnreadable),
    );
  },

  "duplicate-fields": (c) => {
    const { r } = c;
    const id = plainId(r);
    const other = plainId(r);
    const bad = unreadableId(r);
    const { fields: valid, resultJson } = summCall(r);
    const forms: [string, Fields, string | null, RequestExpectation][] = [
      [
        "message_id bad, then good",
        [["message_id", bad.json], ...valid, ["message_id", id.json]],
        id.canonical,
        {
          outcome: "result",
          resultJson,
        },
      ],
      [
        "message_id good, then bad",
        [["message_id", id.json], ...valid, ["message_id", bad.json]],
        null,
        deadOf(REFUSED.idUnreadable),
      ],
      [
        "two good message_ids: the last counts",
        [["message_id", other.json], ...valid, ["message_id", id.json]],
        id.canonical,
        {
          outcome: "result",
          resultJson,
        },
      ],
      [
        "func_name good, then not a string",
        withId(r, [...valid, ["func_name", "42"]], id.json),
        id.canonical,
        errorOf(ERRORS.funcNameType),
      ],
      [
        "func_name not a string, then good",
        withId(r, [["func_name", "42"], ...valid], id.json),
        id.canonical,
        { outcome: "result", resultJson },
      ],
      [
        "func_args twice",
        withId(r, [["func_name", '"summ"'], ["func_args", "[1]"], ["func_args", "[1,2]"]], id.json),
        id.canonical,
        resultOf("3.5"),
      ],
      [
        "func_kwargs twice",
        withId(r, [["func_name", '"summ"'], ["func_args", "[1,2]"], ["func_kwargs", '{"z":"x"}'], [
          "func_kwargs",
          "{}",
        ]], id.json),
        id.canonical,
        resultOf("3.5"),
      ],
      ["every field twice", withId(r, [...valid, ...valid], id.json), id.canonical, {
        outcome: "result",
        resultJson,
      }],
    ];
    const [what, fields, messageId, expected] = r.pick(forms);
    return request(c, "duplicate-fields", what, fields, messageId, expected);
  },

  "unknown-functions": (c) => {
    const { r } = c;
    const id = plainId(r);
    const name = unknownName(r);
    return request(
      c,
      "unknown-functions",
      `function ${JSON.stringify(name.slice(0, 40))}`,
      withId(r, [["func_name", json(name)], ["func_args", "[1,2]"]], id.json),
      id.canonical,
      errorOf(ERRORS.unknownFunction),
    );
  },

  "argument-counts": (c) => {
    const { r } = c;
    const id = plainId(r);
    const many = Array.from({ length: r.int(4, 50) }, (_, i) => i);
    const forms: [string, Fields, string][] = [
      [
        "summ with one argument",
        [["func_name", '"summ"'], ["func_args", "[1]"]],
        'ArgumentError: summ() missing required argument "b"',
      ],
      [
        `summ with ${many.length} arguments`,
        [["func_name", '"summ"'], ["func_args", json(many)]],
        `ArgumentError: summ() takes at most 3 positional arguments but ${many.length} were given`,
      ],
      [
        "echo with two arguments",
        [["func_name", '"echo"'], ["func_args", "[1,2]"]],
        "ArgumentError: echo() takes at most 1 positional argument but 2 were given",
      ],
      [
        "an unknown keyword",
        [["func_name", '"summ"'], ["func_args", "[1,2]"], ["func_kwargs", '{"w":1}']],
        'ArgumentError: summ() got an unexpected keyword argument "w"',
      ],
      [
        "a keyword that repeats a positional argument",
        [["func_name", '"summ"'], ["func_args", "[1,2]"], ["func_kwargs", '{"a":1}']],
        'ArgumentError: summ() got multiple values for argument "a"',
      ],
      [
        "only the optional keyword",
        [["func_name", '"summ"'], ["func_kwargs", '{"z":1}']],
        'ArgumentError: summ() missing required argument "a"',
      ],
    ];
    const [what, fields, prefix] = r.pick(forms);
    return request(
      c,
      "argument-counts",
      what,
      withId(r, fields, id.json),
      id.canonical,
      errorOf(prefix),
    );
  },

  "deep-nesting": (c) => {
    const { r } = c;
    const depth = r.pick([1_500, 7_000, MAX_DEPTH + 1, MAX_DEPTH]);
    const shape = r.pick(["arrays", "objects"] as const);
    const deep = nestedText(depth, shape);
    const inKwargs = r.chance(0.5);
    const fields: Fields = inKwargs
      ? [["func_name", '"echo"'], ["func_kwargs", `{"value":${deep}}`]]
      : [["func_name", '"echo"'], ["func_args", `[${deep}]`]];
    const where = `${shape} ${depth} deep in ${inKwargs ? "func_kwargs" : "func_args"}`;
    if (depth <= MAX_DEPTH) {
      const id = plainId(r);
      return request(
        c,
        "deep-nesting",
        `${where} (the limit)`,
        withId(r, fields, id.json),
        id.canonical,
        resultOf(deep),
      );
    }
    const idForm = r.pick(["readable", "missing", "unreadable"] as const);
    if (idForm === "readable") {
      const id = r.chance(0.5) ? plainId(r) : oddReadableId(r);
      return request(
        c,
        "deep-nesting",
        where,
        withId(r, fields, id.json),
        id.canonical,
        errorOf(ERRORS.tooDeep),
      );
    }
    const withoutId = idForm === "missing" ? fields : withId(r, fields, unreadableId(r).json);
    return request(
      c,
      "deep-nesting",
      `${where}, ${idForm} message_id`,
      withoutId,
      null,
      deadOf(REFUSED.tooDeep),
    );
  },

  "odd-numbers": (c) => {
    const { r } = c;
    const id = plainId(r);
    const cannotSend = (name: string) =>
      errorOf(`SerializationError: ${name}() returned a value that cannot be sent`);
    const forms: [string, Fields, RequestExpectation][] = [
      ["summ of 1e400", [["func_name", '"summ"'], ["func_args", "[1e400,1]"]], cannotSend("summ")],
      [
        "summ of 1e400 and -1e400",
        [["func_name", '"summ"'], ["func_args", "[1e400,-1e400]"]],
        cannotSend("summ"),
      ],
      ["echo of -1e400", [["func_name", '"echo"'], ["func_args", "[-1e400]"]], cannotSend("echo")],
      [
        "echo of [1e400]",
        [["func_name", '"echo"'], ["func_args", '[{"x":[1e400]}]']],
        cannotSend("echo"),
      ],
      [
        "echo of an object declaring a huge length",
        [["func_name", '"echo"'], ["func_args", '[{"length":4294967296,"0":"a"}]']],
        resultOf('{"length":4294967296,"0":"a"}'),
      ],
      [
        "a keyword length declaring a huge size",
        [["func_name", '"summ"'], ["func_args", "[1,2]"], ["func_kwargs", '{"length":1e9}']],
        errorOf('ArgumentError: summ() got an unexpected keyword argument "length"'),
      ],
      ["summ of minus zeros", [["func_name", '"summ"'], ["func_args", "[-0,-0]"], [
        "func_kwargs",
        '{"z":-0}',
      ]], resultOf("0")],
    ];
    const value = r.pick([
      "-0",
      "1e-400",
      "-1e-400",
      "1E+2",
      "0.1e1",
      "9007199254740993",
      "123456789012345678901234567890",
      "5e-324",
      "1.7976931348623157e308",
    ]);
    forms.push([
      `echo of ${value}`,
      [["func_name", '"echo"'], ["func_args", `[${value}]`]],
      resultOf(value),
    ]);
    const [what, fields, expected] = r.pick(forms);
    return request(c, "odd-numbers", what, withId(r, fields, id.json), id.canonical, expected);
  },

  "long-func-names": (c) => {
    const { r } = c;
    const id = plainId(r);
    const name = r.pick(["s", "summ", "é", "\\u0000"]).repeat(r.int(64, 12_000));
    return request(
      c,
      "long-func-names",
      `a func_name of ${name.length} characters`,
      withId(r, [["func_name", `"${name}"`], ["func_args", "[1,2]"]], id.json),
      id.canonical,
      errorOf(ERRORS.unknownFunction),
    );
  },

  "reply-to-types": (c) => {
    const { r } = c;
    const id = plainId(r);
    const { fields: valid, resultJson } = summCall(r);
    if (r.chance(0.25)) {
      const value = r.pick(["null", '""']);
      return request(
        c,
        "reply-to-types",
        `reply_to ${value} (none)`,
        withId(r, [...valid, ["reply_to", value]], id.json),
        id.canonical,
        {
          outcome: "result",
          resultJson,
        },
      );
    }
    const value = r.pick(["42", "[]", "{}", "true", '["inbox"]', '{"queue":"inbox"}', "-0"]);
    return request(
      c,
      "reply-to-types",
      `reply_to ${value}`,
      withId(r, [...valid, ["reply_to", value]], id.json),
      id.canonical,
      errorOf(ERRORS.replyToType),
    );
  },

  "deadlines": (c) => {
    const { r } = c;
    const id = plainId(r);
    const { fields: valid, resultJson } = summCall(r);
    const past = r.pick(["0", "-0", "-1", "1", "1000", "1600000000000", "-1e300"]);
    const wrong = r.pick([
      '"soon"',
      '"1700000000000"',
      "[]",
      "{}",
      "true",
      "1e400",
      "-1e400",
      "[9e15]",
    ]);
    const forms: [string, string, RequestExpectation][] = [
      [`deadline_ms ${past} (passed)`, past, errorOf(ERRORS.deadlinePassed)],
      [`deadline_ms ${wrong}`, wrong, errorOf(ERRORS.deadlineType)],
      ["deadline_ms null (none)", "null", { outcome: "result", resultJson }],
      ["deadline_ms far ahead", r.pick(["1e15", "8.64e15", "9007199254740991"]), {
        outcome: "result",
        resultJson,
      }],
    ];
    const [what, deadline, expected] = r.pick(forms);
    return request(
      c,
      "deadlines",
      what,
      withId(r, [...valid, ["deadline_ms", deadline]], id.json),
      id.canonical,
      expected,
    );
  },
};

/** How often each category comes up, relative to the others. */
const WEIGHTS: Record<RequestCategory, number> = {
  "valid": 12,
  "not-json": 8,
  "not-object": 5,
  "wrong-types": 8,
  "missing-fields": 5,
  "huge-strings": 2,
  "lone-surrogates": 5,
  "prototype-keys": 6,
  "odd-ids": 9,
  "duplicate-fields": 5,
  "unknown-functions": 5,
  "argument-counts": 6,
  "deep-nesting": 5,
  "odd-numbers": 5,
  "long-func-names": 2,
  "reply-to-types": 4,
  "deadlines": 5,
};

/** The categories {@linkcode generateRequests} makes. */
export const REQUEST_CATEGORIES = Object.keys(WEIGHTS) as RequestCategory[];

/**
 * Generates `count` hostile requests: one of each category first (when
 * `count` allows), then categories drawn by weight, in a random order.
 *
 * @param r The random choices (the same seed gives the same requests).
 * @param count How many.
 * @param options `replyTo` for the native queue (see {@linkcode RequestOptions}).
 * @returns The requests with what the server must do with each.
 */
export function generateRequests(
  r: FuzzRandom,
  count: number,
  options: RequestOptions = {},
): FuzzRequest[] {
  const context: BuildContext = { r, replyTo: options.replyTo };
  // reply_to is the field by which a native caller is answered: it is fuzzed on the raw queue only.
  const categories = REQUEST_CATEGORIES.filter((category) =>
    options.replyTo === undefined || category !== "reply-to-types"
  );
  const total = categories.reduce((sum, category) => sum + WEIGHTS[category], 0);
  const drawn = (): RequestCategory => {
    let roll = r.float() * total;
    for (const category of categories) {
      roll -= WEIGHTS[category];
      if (roll < 0) return category;
    }
    return categories[categories.length - 1] as RequestCategory;
  };
  const chosen = Array.from({ length: count }, (_, i) => categories[i] ?? drawn());
  return r.shuffle(chosen).map((category) => BUILDERS[category](context));
}

/** What a client must make of a result sent to its inbox for one of its calls. */
export type ReplyExpectation =
  | {
    /** The call resolves with a value whose `JSON.stringify` is `resultJson`. */
    outcome: "resolves";
    resultJson: string;
  }
  | {
    /** The call rejects with this error class, whose message includes `includes`. */
    outcome: "rejects";
    errorName: "ProtocolError" | "RemoteError";
    includes: string;
  };

/** How many kinds of reply {@linkcode replyForCall} makes. */
export const REPLY_KINDS = 16;

/** How many kinds of body {@linkcode garbageReplies} makes. */
export const GARBAGE_KINDS = 12;

/** A result body for a call a client waits for, and what the call must come to. */
export interface FuzzReply {
  /** What is odd about it, in a few words. */
  readonly what: string;
  /** The result body. */
  readonly body: string;
  /** What the call must come to. */
  readonly expected: ReplyExpectation;
}

/**
 * A result for the call `messageId`, right or hostile, with what the call must come to.
 * The first calls get every kind of reply once, in order ({@linkcode REPLY_KINDS}
 * of them); later ones a random kind.
 *
 * @param r The random choices.
 * @param messageId The call's canonical `message_id`.
 * @param funcName The called function (echoed in the result).
 * @param index Which answered call this is, from 0.
 * @returns The reply.
 */
export function replyForCall(
  r: FuzzRandom,
  messageId: string,
  funcName: string,
  index: number,
): FuzzReply {
  const hex = messageId.replaceAll("-", "");
  const id = json(messageId);
  const base = (idJson: string, more: Fields): string =>
    objectText([
      ["func_name", json(funcName)],
      ["message_id", idJson],
      ["date_create_message", json("2026-01-15T10:00:00.000+00:00")],
      ["date_done_message", json("2026-01-15T10:00:00.001+00:00")],
      ...more,
    ]);
  const success = (idJson: string, valueJson: string, more: Fields = []): string =>
    base(idJson, [["result", valueJson], ["exception_info", "null"], ...more]);
  const resolves = (valueJson: string): ReplyExpectation => ({
    outcome: "resolves",
    resultJson: JSON.stringify(JSON.parse(valueJson)),
  });
  const protocolError = (includes: string): ReplyExpectation => ({
    outcome: "rejects",
    errorName: "ProtocolError",
    includes,
  });
  const remoteError = (includes: string): ReplyExpectation => ({
    outcome: "rejects",
    errorName: "RemoteError",
    includes,
  });
  const value = randomValueText(r);
  const huge = json(r.plainText(50).repeat(r.int(200, 1_200)));
  const lone = r.pick(['"\\ud800"', '"x\\udfffy"', '{"\\udc00":["\\ud800"]}']);
  const forms: [string, string, ReplyExpectation][] = [
    ["the right result", success(id, value), resolves(value)],
    ["an upper-case message_id", success(json(messageId.toUpperCase()), value), resolves(value)],
    [
      "the hex form of message_id",
      success(objectText([["hex", json(hex)]]), value),
      resolves(value),
    ],
    ["only a message_id", objectText([["message_id", id]]), resolves("null")],
    ["a huge result", success(id, huge), resolves(huge)],
    [
      "a result declaring a huge length",
      success(id, '{"length":4294967295,"0":"a"}'),
      resolves('{"length":4294967295,"0":"a"}'),
    ],
    ["lone surrogates", success(id, lone), resolves(lone)],
    [
      "__proto__ keys",
      success(id, '{"__proto__":{"polluted":true}}', [["__proto__", '{"polluted":true}']]),
      resolves('{"__proto__":{"polluted":true}}'),
    ],
    [
      "a result 1000 deep (the limit)",
      success(id, nestedText(MAX_DEPTH, "arrays")),
      resolves(nestedText(MAX_DEPTH, "arrays")),
    ],
    [
      "a result 1001 deep",
      success(id, nestedText(MAX_DEPTH + 1, "arrays")),
      protocolError("the result nests arrays and objects deeper than 1000 levels"),
    ],
    [
      "a result 7000 deep",
      success(id, nestedText(7_000, r.pick(["arrays", "objects"] as const))),
      protocolError("the result nests arrays and objects deeper than 1000 levels"),
    ],
    [
      "exception_info not a string",
      base(id, [["result", "null"], ["exception_info", r.pick(["42", "[]", "{}", "true"])]]),
      protocolError("field exception_info of the result must be a string or null"),
    ],
    [
      "PRPC's error text only",
      base(id, [["result", "null"], ["exception_info", '"ValueError: boom"']]),
      remoteError("boom"),
    ],
    [
      "an error field of the wrong shape",
      base(id, [["result", "null"], ["exception_info", '"KeyError: missing"'], [
        "error",
        r.pick(["42", "[]", '{"type":1}', "null"]),
      ]]),
      remoteError("missing"),
    ],
    [
      "an error of type __proto__",
      base(id, [
        ["result", "null"],
        ["exception_info", '"Odd: odd"'],
        ["error", '{"type":"__proto__","name":"Odd","message":"odd"}'],
      ]),
      remoteError("odd"),
    ],
    [
      "message_id twice, the right one last",
      success(json(r.uuid()), value, [["message_id", id]]),
      resolves(value),
    ],
  ];
  if (forms.length !== REPLY_KINDS) throw new Error(`REPLY_KINDS is ${forms.length}`);
  const [what, body, expected] = forms[index] ?? r.pick(forms);
  return { what, body, expected };
}

/**
 * Result bodies that answer no waiting call: not JSON, not objects, without
 * a readable `message_id`, or for ids nobody waits for (fresh random UUIDs).
 * A client must drop each one and keep working. The first bodies are one of
 * each kind ({@linkcode GARBAGE_KINDS} of them), the rest of random kinds.
 *
 * @param r The random choices.
 * @param count How many.
 * @returns The bodies, each with what is odd about it.
 */
export function garbageReplies(r: FuzzRandom, count: number): { what: string; body: string }[] {
  const replies: { what: string; body: string }[] = [];
  for (let i = 0; i < count; i++) {
    const unknown = json(r.uuid());
    const forms: [string, string][] = [
      ["not JSON", r.pick(["", "nul", "{", '{"message_id":', `#${r.plainText(r.int(0, 80))}`])],
      ["not an object", r.pick(["null", "42", '"text"', "[]", `[{"message_id":${unknown}}]`])],
      ["no message_id", '{"result":1,"exception_info":null}'],
      [
        "an unreadable message_id",
        objectText([["message_id", unreadableId(r).json], ["result", "1"]]),
      ],
      [
        "a result for an unknown call",
        objectText([["message_id", unknown], ["result", randomValueText(r)], [
          "exception_info",
          "null",
        ]]),
      ],
      [
        "an error for an unknown call",
        objectText([["message_id", unknown], ["result", "null"], [
          "exception_info",
          '"ValueError: x"',
        ]]),
      ],
      [
        "wrong types for an unknown call",
        objectText([["message_id", unknown], ["exception_info", "42"]]),
      ],
      ["7000 deep without message_id", nestedText(7_000, "arrays")],
      [
        "7000 deep for an unknown call",
        objectText([["message_id", unknown], ["result", nestedText(7_000, "objects")]]),
      ],
      [
        "a huge result for an unknown call",
        objectText([["message_id", unknown], ["result", json("z".repeat(r.int(10_000, 60_000)))]]),
      ],
      [
        "lone surrogates for an unknown call",
        objectText([["message_id", unknown], ["result", '"\\ud800"'], ["\udc00", "1"]]),
      ],
      [
        "message_id only under __proto__",
        objectText([["__proto__", objectText([["message_id", unknown]])], ["result", "1"]]),
      ],
    ];
    if (forms.length !== GARBAGE_KINDS) throw new Error(`GARBAGE_KINDS is ${forms.length}`);
    const [what, body] = forms[i] ?? r.pick(forms);
    replies.push({ what, body });
  }
  return replies;
}
