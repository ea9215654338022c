/**
 * PRPC's native messages as its own Python client and server write them:
 * jsonpickle of a `prpc.prpcmessage.PRPCMessage` object (see
 * `docs/PROTOCOL.md`, "PRPC's Python client"). Read data-only: of all of
 * jsonpickle's tags, only those PRPC's messages use are understood — the
 * message object, `py/tuple`, `uuid.UUID` and `datetime.datetime` with a fixed
 * offset — and they are checked field by field against their exact shape.
 * Nothing a message names is ever imported, called or looked up; anything else
 * (`py/reduce` of a callable, `py/function`, `py/repr`, `py/type`, references)
 * is refused with the reason.
 *
 * Results are written in kind, as PRPC's server writes them, with Python's
 * `json.dumps` spacing and ASCII escapes, so that PRPC's client decodes them
 * into a `PRPCMessage`. A result value is plain JSON, and one holding an object
 * with a `py/` key is refused: PRPC's client would take it for a jsonpickle
 * tag, and restoring some of those runs code on the caller's machine.
 *
 * @module
 */

/** `py/object` of PRPC's message class. */
export const PRPC_MESSAGE_CLASS = "prpc.prpcmessage.PRPCMessage";

/** What a result in jsonpickle repeats of its request, as the request had it. */
export interface PickledEcho {
  /** `func_args` of the request, rebuilt from the values read (a `py/tuple` stays one). */
  readonly funcArgs: unknown;
  /** `func_kwargs` of the request, rebuilt from the values read. */
  readonly funcKwargs: unknown;
  /** `date_create_message` of the request, rebuilt (a pickled datetime), or `null`. */
  readonly dateCreateMessage: unknown;
}

/** A jsonpickle request read data-only. */
export interface PickledRequest {
  /** The function's name. */
  readonly funcName: string;
  /** Positional arguments, tuples read as arrays. */
  readonly args: unknown[];
  /** Keyword arguments. */
  readonly kwargs: Record<string, unknown>;
  /** `message_id` as a canonical UUID string. */
  readonly messageId: string;
  /** `date_create_message` as ISO 8601, when the request had one. */
  readonly dateCreateMessage: string | undefined;
  /** What its result repeats. */
  readonly echo: PickledEcho;
}

/** Why a jsonpickle message was refused, with what of it could be read safely. */
export class PickleRefusal extends Error {
  /**
   * A refusal.
   *
   * @param reason Why.
   */
  constructor(reason: string) {
    super(reason);
    this.name = "PickleRefusal";
  }
}

/**
 * Whether a JSON object is a jsonpickle object (has a `py/object` key), as
 * PRPC's native messages are.
 *
 * @param fields The parsed message.
 */
export function isPickled(fields: Record<string, unknown>): boolean {
  return Object.hasOwn(fields, "py/object");
}

const UUID_HEX = /^[0-9a-fA-F]{32}$/;

/**
 * Reads a jsonpickle `PRPCMessage` request, data only.
 *
 * @param fields The parsed message (a JSON object with `py/object`).
 * @returns The request.
 * @throws {PickleRefusal} When it is not a `PRPCMessage` of the shape PRPC writes, or
 *   uses a tag outside the whitelist.
 */
export function readPickledRequest(fields: Record<string, unknown>): PickledRequest {
  const cls = fields["py/object"];
  if (cls !== PRPC_MESSAGE_CLASS) {
    throw new PickleRefusal(
      `a jsonpickle message must be a ${PRPC_MESSAGE_CLASS}, got py/object ${
        JSON.stringify(cls)?.slice(0, 80)
      }`,
    );
  }
  const messageId = readUuid(fields.message_id, "message_id");
  if (typeof fields.func_name !== "string" || fields.func_name === "") {
    throw new PickleRefusal("field func_name must be a non-empty string");
  }
  const reader = new DataReader();
  const rawArgs = fields.func_args ?? [];
  const args = reader.read(rawArgs, "func_args");
  if (!Array.isArray(args)) {
    throw new PickleRefusal("field func_args must be a tuple or a list");
  }
  const rawKwargs = fields.func_kwargs ?? {};
  const kwargs = reader.read(rawKwargs, "func_kwargs");
  if (typeof kwargs !== "object" || kwargs === null || Array.isArray(kwargs)) {
    throw new PickleRefusal("field func_kwargs must be a dict");
  }
  const rawDate = fields.date_create_message ?? null;
  const date = rawDate === null ? undefined : reader.read(rawDate, "date_create_message");
  if (date !== undefined && typeof date !== "string") {
    throw new PickleRefusal("field date_create_message must be a datetime");
  }
  // What the result repeats is rebuilt from what was checked, never copied from the request:
  // a Python caller's jsonpickle restores every tag of it.
  const echo = new DataReader(true);
  return {
    funcName: fields.func_name,
    args,
    kwargs: kwargs as Record<string, unknown>,
    messageId,
    dateCreateMessage: date,
    echo: {
      funcArgs: echo.read(rawArgs, "func_args"),
      funcKwargs: echo.read(rawKwargs, "func_kwargs"),
      dateCreateMessage: rawDate === null ? null : echo.read(rawDate, "date_create_message"),
    },
  };
}

/**
 * The `message_id` of a jsonpickle message, when it has a readable one: to
 * answer even a message that is refused.
 *
 * @param fields The parsed message.
 * @returns The canonical UUID, or `null`.
 */
export function pickledMessageId(fields: Record<string, unknown>): string | null {
  try {
    return readUuid(fields.message_id, "message_id");
  } catch {
    return null;
  }
}

function readUuid(value: unknown, where: string): string {
  if (
    isObject(value) && value["py/object"] === "uuid.UUID" && typeof value.hex === "string" &&
    UUID_HEX.test(value.hex) && Object.keys(value).length === 2
  ) {
    const hex = value.hex.toLowerCase();
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
      hex.slice(20)
    }`;
  }
  throw new PickleRefusal(`field ${where} must be a uuid.UUID`);
}

/** A timezone read: its offset in seconds, and its jsonpickle form rebuilt from what was read. */
interface Timezone {
  offset: number;
  pickled: unknown;
}

/**
 * Reads jsonpickle data into plain values: tuples become arrays, datetimes ISO
 * 8601 strings, UUIDs their canonical strings. Remembers the timezones it read,
 * so that a later datetime may refer back to one by `py/id` when all are the same.
 *
 * With `echo`, it returns instead the jsonpickle form of the same data, rebuilt
 * from the values it checked (never a part of the input as it came): what a
 * result may repeat to a Python caller, whose jsonpickle restores every tag.
 */
class DataReader {
  readonly #echo: boolean;
  #timezones = new Map<number, Timezone>();

  constructor(echo = false) {
    this.#echo = echo;
  }

  read(value: unknown, path: string): unknown {
    if (value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) return value.map((item, i) => this.read(item, `${path}[${i}]`));
    const tag = Object.keys(value).find((key) => key.startsWith("py/"));
    if (tag === undefined) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        Object.defineProperty(out, key, {
          value: this.read(item, `${path}.${key}`),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    const fields = value as Record<string, unknown>;
    if (tag === "py/tuple" && Object.keys(fields).length === 1 && Array.isArray(fields[tag])) {
      const items = (fields[tag] as unknown[]).map((item, i) => this.read(item, `${path}[${i}]`));
      return this.#echo ? { "py/tuple": items } : items;
    }
    if (tag === "py/object" && fields[tag] === "uuid.UUID") {
      const uuid = readUuid(value, path);
      return this.#echo ? { "py/object": "uuid.UUID", hex: uuid.replaceAll("-", "") } : uuid;
    }
    if (tag === "py/object" && fields[tag] === "datetime.datetime") {
      return this.#datetime(fields, path);
    }
    if (tag === "py/id") {
      throw new PickleRefusal(
        `${path} refers back to another value (py/id): prpc reads data only, without shared references`,
      );
    }
    throw new PickleRefusal(
      `${path} uses the jsonpickle tag ${tag}${
        tag === "py/object" ? ` ${JSON.stringify(fields[tag])?.slice(0, 80)}` : ""
      }, which prpc does not accept: it reads data only (None, bool, int, float, str, list, tuple, dict, uuid.UUID, datetime.datetime)`,
    );
  }

  /** A `datetime.datetime` as jsonpickle writes it: `__reduce__` with base64 state and a timezone. */
  #datetime(fields: Record<string, unknown>, path: string): unknown {
    const reduce = fields.__reduce__;
    const bad = () =>
      new PickleRefusal(`${path} is not a datetime.datetime of the shape jsonpickle writes`);
    if (Object.keys(fields).length !== 2 || !Array.isArray(reduce) || reduce.length !== 2) {
      throw bad();
    }
    const [type, state] = reduce;
    if (!isExactly(type, { "py/type": "datetime.datetime" }) || !Array.isArray(state)) throw bad();
    if (state.length < 1 || state.length > 2 || typeof state[0] !== "string") throw bad();
    let bytes: Uint8Array;
    try {
      bytes = Uint8Array.from(atob(state[0]), (c) => c.charCodeAt(0));
    } catch {
      throw bad();
    }
    if (bytes.length !== 10) throw bad();
    const timezone = state.length === 2 ? this.#timezone(state[1], path) : null;
    const offsetSec = timezone?.offset ?? null;
    const at = (i: number) => bytes[i] ?? 0; // all ten are there
    const year = (at(0) << 8) | at(1);
    const month = at(2) & 0x7f; // the top bit is `fold`
    const [day, hour, minute, second] = [at(3), at(4), at(5), at(6)];
    const micro = (at(7) << 16) | (at(8) << 8) | at(9);
    if (
      year < 1 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
      second > 59 || micro > 999_999
    ) {
      throw bad();
    }
    if (this.#echo) {
      const pickledState = btoa(String.fromCharCode(...bytes));
      return {
        "py/object": "datetime.datetime",
        "__reduce__": [
          { "py/type": "datetime.datetime" },
          timezone === null ? [pickledState] : [pickledState, timezone.pickled],
        ],
      };
    }
    const pad = (n: number, width = 2) => String(n).padStart(width, "0");
    const text = `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}:${
      pad(second)
    }.${pad(micro, 6)}`;
    return offsetSec === null ? text : `${text}${formatOffset(offsetSec)}`;
  }

  /** A `datetime.timezone` of a fixed offset, or a reference back to the one timezone read so far. */
  #timezone(value: unknown, path: string): Timezone {
    const bad = () => new PickleRefusal(`${path} has a timezone prpc cannot read`);
    if (isObject(value) && Object.keys(value).length === 1 && typeof value["py/id"] === "number") {
      // jsonpickle writes a timezone once and refers back to it: unambiguous only when every
      // timezone read so far is the same.
      const [only, ...more] = this.#timezones.values();
      if (only === undefined || more.length > 0) throw bad();
      return only;
    }
    // Exactly [callable, args]: jsonpickle restores every item of a py/reduce, whatever it is.
    if (
      !isObject(value) || Object.keys(value).length !== 1 || !Array.isArray(value["py/reduce"]) ||
      value["py/reduce"].length !== 2
    ) {
      throw bad();
    }
    const [type, args] = value["py/reduce"] as unknown[];
    if (!isExactly(type, { "py/type": "datetime.timezone" }) || !isObject(args)) throw bad();
    const tuple = args["py/tuple"];
    if (Object.keys(args).length !== 1 || !Array.isArray(tuple)) throw bad();
    if (
      tuple.length < 1 || tuple.length > 2 || (tuple.length === 2 && typeof tuple[1] !== "string")
    ) {
      throw bad();
    }
    const delta = tuple[0];
    if (
      !isObject(delta) || Object.keys(delta).length !== 1 || !Array.isArray(delta["py/reduce"]) ||
      delta["py/reduce"].length !== 2
    ) {
      throw bad();
    }
    const [deltaType, deltaArgs] = delta["py/reduce"] as unknown[];
    if (!isExactly(deltaType, { "py/type": "datetime.timedelta" }) || !isObject(deltaArgs)) {
      throw bad();
    }
    const parts = deltaArgs["py/tuple"];
    if (
      Object.keys(deltaArgs).length !== 1 || !Array.isArray(parts) || parts.length !== 3 ||
      !parts.every(Number.isInteger)
    ) {
      throw bad();
    }
    const [days = 0, seconds = 0, micros = 0] = parts as number[];
    const offset = days * 86_400 + seconds + micros / 1e6;
    if (Math.abs(offset) >= 86_400) throw bad();
    const name = tuple.length === 2 ? [tuple[1] as string] : [];
    const timezone: Timezone = {
      offset,
      pickled: {
        "py/reduce": [{ "py/type": "datetime.timezone" }, {
          "py/tuple": [
            {
              "py/reduce": [{ "py/type": "datetime.timedelta" }, {
                "py/tuple": [days, seconds, micros],
              }],
            },
            ...name,
          ],
        }],
      },
    };
    // One entry per distinct timezone (offset and name), for references back to it.
    this.#timezones.set(offset, this.#timezones.get(offset) ?? timezone);
    return timezone;
  }
}

function formatOffset(offsetSec: number): string {
  const sign = offsetSec < 0 ? "-" : "+";
  const abs = Math.round(Math.abs(offsetSec));
  const hours = Math.floor(abs / 3600);
  const minutes = Math.floor((abs % 3600) / 60);
  const seconds = abs % 60;
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${sign}${pad(hours)}:${pad(minutes)}${seconds === 0 ? "" : `:${pad(seconds)}`}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isExactly(value: unknown, expected: Record<string, string>): boolean {
  if (!isObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length === Object.keys(expected).length &&
    keys.every((key) => value[key] === expected[key]);
}

/** The fields of a result in jsonpickle, before the result value. */
export interface PickledResultFields {
  /** The function's name. */
  readonly funcName: string;
  /** The call's `message_id` (canonical UUID). */
  readonly messageId: string;
  /** What the request had, repeated as it was. */
  readonly echo: PickledEcho;
  /** PRPC's `exception_info`: the error's message, or `null`. */
  readonly exceptionInfo: string | null;
  /** When the call ended (epoch ms, with a fraction for microseconds). */
  readonly doneAt: number;
}

/**
 * Writes a result as PRPC's server does: a jsonpickle `PRPCMessage`.
 *
 * @param fields The fields around the value.
 * @param result The value: plain JSON data (the output of `JSON.parse`), or `null`.
 * @returns The text.
 * @throws {PickleRefusal} When the value holds an object with a `py/` key.
 */
export function writePickledResult(fields: PickledResultFields, result: unknown): string {
  const hex = fields.messageId.replaceAll("-", "");
  return `{"py/object": ${pythonJson(PRPC_MESSAGE_CLASS)}, "func_name": ${
    pythonJson(fields.funcName)
  }, "func_args": ${pythonJson(fields.echo.funcArgs)}, "func_kwargs": ${
    pythonJson(fields.echo.funcKwargs)
  }, "message_id": {"py/object": "uuid.UUID", "hex": "${hex}"}, "date_create_message": ${
    pythonJson(fields.echo.dateCreateMessage)
  }, "result": ${pythonJson(result, "result", true)}, "exception_info": ${
    pythonJson(fields.exceptionInfo)
  }, "date_done_message": ${pickledUtcDatetime(fields.doneAt)}}`;
}

/**
 * A UTC instant as jsonpickle writes a `datetime.datetime` in `datetime.timezone.utc`.
 *
 * @param epochMs The instant, in epoch milliseconds (a fraction counts in microseconds).
 * @returns The JSON text.
 */
export function pickledUtcDatetime(epochMs: number): string {
  const whole = Math.floor(epochMs);
  const date = new Date(whole);
  const year = date.getUTCFullYear();
  const micro = Math.min(
    999_999,
    date.getUTCMilliseconds() * 1000 + Math.min(999, Math.round((epochMs - whole) * 1000)),
  );
  const bytes = [
    year >> 8,
    year & 0xff,
    date.getUTCMonth() + 1,
    date.getUTCDate(),
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
    micro >> 16,
    (micro >> 8) & 0xff,
    micro & 0xff,
  ];
  const state = btoa(String.fromCharCode(...bytes));
  return `{"py/object": "datetime.datetime", "__reduce__": [{"py/type": "datetime.datetime"}, ["${state}", {"py/reduce": [{"py/type": "datetime.timezone"}, {"py/tuple": [{"py/reduce": [{"py/type": "datetime.timedelta"}, {"py/tuple": [0, 0, 0]}]}]}]}]]}`;
}

/**
 * An ISO 8601 time as epoch milliseconds with its microseconds as a fraction
 * (`Date.parse` keeps milliseconds only); `NaN` when it does not parse.
 *
 * @param iso e.g. `"2026-12-05T11:38:36.961162+00:00"`.
 */
export function preciseEpochMs(iso: string): number {
  const ms = Date.parse(iso);
  const fraction = /\.\d{3}(\d{1,3})/.exec(iso)?.[1];
  return fraction === undefined ? ms : ms + Number(fraction.padEnd(3, "0")) / 1000;
}

/**
 * JSON as Python's `json.dumps` writes it by default: `", "` and `": "`
 * between items, and every character above U+007F escaped.
 *
 * @param value JSON data.
 * @param path Where the value is, for the refusal of a `py/` key.
 * @param refuseTags Whether an object with a `py/` key is refused.
 */
function pythonJson(value: unknown, path = "", refuseTags = false): string {
  if (value === null || typeof value !== "object") return asciiJson(value);
  if (Array.isArray(value)) {
    return `[${value.map((item, i) => pythonJson(item, `${path}[${i}]`, refuseTags)).join(", ")}]`;
  }
  const items: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    if (refuseTags && key.startsWith("py/")) {
      throw new PickleRefusal(
        `${path} holds an object with the key ${
          JSON.stringify(key)
        }, which a PRPC client would read as a jsonpickle tag`,
      );
    }
    items.push(`${asciiJson(key)}: ${pythonJson(item, `${path}.${key}`, refuseTags)}`);
  }
  return `{${items.join(", ")}}`;
}

// deno-lint-ignore no-control-regex
const NON_ASCII = /[^\x00-\x7f]/g;

function asciiJson(value: unknown): string {
  const text = JSON.stringify(value) ?? "null";
  return text.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A result in jsonpickle, as a PRPC server stores it, read data-only. */
export interface PickledResult {
  /** `message_id` as a canonical UUID string. */
  readonly messageId: string;
  /** The function's name, when the result has one. */
  readonly funcName: string;
  /** The value, tuples read as arrays, datetimes and UUIDs as strings; `null` after an error. */
  readonly result: unknown;
  /** PRPC's `exception_info` (`str(e)`), or `null`. */
  readonly exceptionInfo: string | null;
}

/**
 * Reads a result that a PRPC server stored: a jsonpickle `PRPCMessage`, with
 * the same whitelist as requests. Its `message_id` is a `uuid.UUID` (a request
 * of PRPC's client) or the UUID string a prpc client sent.
 *
 * @param fields The parsed result (a JSON object with `py/object`).
 * @returns What a caller is given.
 * @throws {PickleRefusal} When it is not a `PRPCMessage` or uses a tag outside the whitelist.
 */
export function readPickledResult(fields: Record<string, unknown>): PickledResult {
  if (fields["py/object"] !== PRPC_MESSAGE_CLASS) {
    throw new PickleRefusal(`a jsonpickle result must be a ${PRPC_MESSAGE_CLASS}`);
  }
  const id = fields.message_id;
  const messageId = typeof id === "string" && UUID_TEXT.test(id)
    ? id.toLowerCase()
    : readUuid(id, "message_id");
  const info = fields.exception_info ?? null;
  if (info !== null && typeof info !== "string") {
    throw new PickleRefusal("field exception_info must be a string or None");
  }
  return {
    messageId,
    funcName: typeof fields.func_name === "string" ? fields.func_name : "",
    result: new DataReader().read(fields.result ?? null, "result"),
    exceptionInfo: info,
  };
}

const UUID_TEXT = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
