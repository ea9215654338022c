import { assertEncodable, sizeOverLimit } from "../protocol/codec.ts";
import { DEFAULT_MAX_DEPTH, nestsDeeper } from "../protocol/depth.ts";
import { PrpcError, SerializationError } from "../protocol/errors.ts";
import { assert, assertEquals, assertThrows } from "./support/assert.ts";

/** Expects `assertEncodable(value, path)` to throw and returns the full message. */
function refusal(value: unknown, path = "value"): string {
  const err = assertThrows(() => assertEncodable(value, path), SerializationError);
  assert(err instanceof PrpcError);
  return err.message;
}

// ---------------------------------------------------------------------------
// assertEncodable: accepted values
// ---------------------------------------------------------------------------

Deno.test("assertEncodable() accepts primitives", () => {
  for (
    const value of [
      "",
      "text",
      "ünïcødé 😀",
      0,
      -1.5,
      1e308,
      Number.MAX_SAFE_INTEGER,
      true,
      false,
      null,
    ]
  ) {
    assertEquals(assertEncodable(value, "value"), undefined);
  }
});

Deno.test("assertEncodable() accepts undefined at the top level and inside arrays and objects", () => {
  assertEncodable(undefined, "value");
  assertEncodable([1, undefined, 3], "value");
  assertEncodable({ a: undefined, b: 1 }, "value");
});

Deno.test("assertEncodable() accepts nested objects and arrays", () => {
  assertEncodable(
    {
      name: "x",
      list: [1, "two", [3, [4, { five: 5 }]], null],
      nested: { deep: { deeper: { deepest: [true, false] } } },
      empty: {},
      none: [],
    },
    "value",
  );
  assertEncodable(Object.create(null), "value");
  const sparse = [1];
  sparse[3] = 4;
  assertEncodable(sparse, "value");
});

Deno.test("assertEncodable() accepts a Date through its toJSON", () => {
  assertEncodable(new Date(0), "value");
  assertEncodable({ when: new Date("2026-01-02T03:04:05Z"), list: [new Date()] }, "value");
  // An invalid Date's toJSON() returns null, which is valid JSON.
  assertEncodable(new Date(NaN), "value");
});

Deno.test("assertEncodable() accepts objects with a custom toJSON", () => {
  assertEncodable({ toJSON: () => "as a string" }, "value");
  assertEncodable({ toJSON: () => ({ replaced: [1, 2] }) }, "value");
  // A toJSON that returns the object itself is accepted too.
  const self = {
    a: 1,
    toJSON(): unknown {
      return this;
    },
  };
  assertEncodable(self, "value");
  // Without toJSON, a function-valued property would be refused; toJSON decides instead.
  assertEncodable({ method: () => 1, toJSON: () => ({ ok: true }) }, "value");
});

Deno.test("assertEncodable() accepts class instances", () => {
  class Point {
    constructor(readonly x: number, readonly y: number) {}
    length(): number {
      return Math.hypot(this.x, this.y);
    }
  }
  assertEncodable(new Point(1, 2), "value");
  assertEncodable([new Point(3, 4), { p: new Point(5, 6) }], "value");
});

Deno.test("assertEncodable() accepts the same object referenced twice (not a cycle)", () => {
  const shared = { id: 1, tags: ["a"] };
  assertEncodable({ first: shared, second: shared, list: [shared, shared] }, "value");
  assertEncodable([shared, [shared, { again: shared }]], "value");
  const date = new Date(0);
  assertEncodable([date, date], "value");
});

// ---------------------------------------------------------------------------
// assertEncodable: refused values
// ---------------------------------------------------------------------------

Deno.test("assertEncodable() refuses functions", () => {
  assertEquals(refusal(() => 1), "Cannot encode value as JSON: a function has no JSON form");
  assertEquals(
    refusal(function named() {}, "args[0]"),
    "Cannot encode args[0] as JSON: a function has no JSON form",
  );
  assertEquals(refusal(class {}), "Cannot encode value as JSON: a function has no JSON form");
  assertEquals(
    refusal({ callback: () => 1 }),
    "Cannot encode value.callback as JSON: a function has no JSON form",
  );
});

Deno.test("assertEncodable() refuses symbols", () => {
  assertEquals(refusal(Symbol("s")), "Cannot encode value as JSON: a symbol has no JSON form");
  assertEquals(
    refusal({ tag: Symbol.iterator }),
    "Cannot encode value.tag as JSON: a symbol has no JSON form",
  );
});

Deno.test("assertEncodable() refuses bigint", () => {
  assertEquals(refusal(1n), "Cannot encode value as JSON: a bigint has no JSON form");
  assertEquals(refusal([0n]), "Cannot encode value[0] as JSON: a bigint has no JSON form");
});

Deno.test("assertEncodable() refuses NaN, Infinity and -Infinity", () => {
  assertEquals(refusal(NaN), "Cannot encode value as JSON: NaN has no JSON form");
  assertEquals(refusal(Infinity), "Cannot encode value as JSON: Infinity has no JSON form");
  assertEquals(refusal(-Infinity), "Cannot encode value as JSON: -Infinity has no JSON form");
  assertEquals(refusal({ n: 0 / 0 }), "Cannot encode value.n as JSON: NaN has no JSON form");
});

Deno.test("assertEncodable() refuses Map, Set, WeakMap and WeakSet", () => {
  const hint = "has no JSON form; send an array or a plain object";
  assertEquals(refusal(new Map([[1, 2]])), `Cannot encode value as JSON: a Map ${hint}`);
  assertEquals(refusal(new Map()), `Cannot encode value as JSON: a Map ${hint}`);
  assertEquals(refusal(new Set([1])), `Cannot encode value as JSON: a Set ${hint}`);
  assertEquals(refusal(new WeakMap()), `Cannot encode value as JSON: a WeakMap ${hint}`);
  assertEquals(refusal(new WeakSet()), `Cannot encode value as JSON: a WeakSet ${hint}`);
  class Registry extends Map<string, number> {}
  assertEquals(refusal(new Registry()), `Cannot encode value as JSON: a Registry ${hint}`);
});

Deno.test("assertEncodable() refuses binary data", () => {
  const why = "binary data has no JSON form; send it as a base64 string";
  assertEquals(refusal(new Uint8Array([1, 2])), `Cannot encode value as JSON: ${why}`);
  assertEquals(refusal(new Float64Array(2)), `Cannot encode value as JSON: ${why}`);
  assertEquals(refusal(new ArrayBuffer(4)), `Cannot encode value as JSON: ${why}`);
  assertEquals(refusal(new DataView(new ArrayBuffer(4))), `Cannot encode value as JSON: ${why}`);
  assertEquals(refusal({ bytes: new Uint8Array(0) }), `Cannot encode value.bytes as JSON: ${why}`);
});

Deno.test("assertEncodable() refuses a Promise", () => {
  const promise = Promise.resolve(1);
  assertEquals(
    refusal(promise),
    "Cannot encode value as JSON: a Promise has no JSON form; await it first",
  );
  assertEquals(
    refusal([promise]),
    "Cannot encode value[0] as JSON: a Promise has no JSON form; await it first",
  );
});

Deno.test("assertEncodable() refuses a direct cycle", () => {
  const object: Record<string, unknown> = { a: 1 };
  object.self = object;
  assertEquals(refusal(object), "Cannot encode value.self as JSON: it refers to itself (a cycle)");
  const array: unknown[] = [1];
  array.push(array);
  assertEquals(refusal(array), "Cannot encode value[1] as JSON: it refers to itself (a cycle)");
});

Deno.test("assertEncodable() refuses an indirect cycle", () => {
  const root: Record<string, unknown> = {};
  const child: Record<string, unknown> = { list: [] as unknown[] };
  root.child = child;
  (child.list as unknown[]).push({ back: root });
  assertEquals(
    refusal(root, "kwargs.x"),
    "Cannot encode kwargs.x.child.list[0].back as JSON: it refers to itself (a cycle)",
  );
});

Deno.test("assertEncodable() refuses a cycle through a toJSON result", () => {
  const holder: Record<string, unknown> = {};
  holder.value = { toJSON: () => ({ again: holder }) };
  assertEquals(
    refusal(holder),
    "Cannot encode value.value.again as JSON: it refers to itself (a cycle)",
  );
});

Deno.test("assertEncodable() refuses a toJSON that throws", () => {
  const throwsError = {
    toJSON() {
      throw new Error("nope");
    },
  };
  assertEquals(
    refusal({ inner: throwsError }),
    "Cannot encode value.inner as JSON: its toJSON() threw nope",
  );
  const throwsString = {
    toJSON() {
      throw "a plain string";
    },
  };
  assertEquals(
    refusal(throwsString),
    "Cannot encode value as JSON: its toJSON() threw a plain string",
  );
});

Deno.test("assertEncodable() refuses a toJSON that returns a value without JSON form", () => {
  assertEquals(
    refusal({ toJSON: () => () => 1 }),
    "Cannot encode value as JSON: a function has no JSON form",
  );
  assertEquals(refusal({ toJSON: () => NaN }), "Cannot encode value as JSON: NaN has no JSON form");
  assertEquals(
    refusal({ toJSON: () => 5n }),
    "Cannot encode value as JSON: a bigint has no JSON form",
  );
  assertEquals(
    refusal({ toJSON: () => new Set() }),
    "Cannot encode value as JSON: a Set has no JSON form; send an array or a plain object",
  );
  // What toJSON returns is checked below the same path.
  assertEquals(
    refusal({ when: { toJSON: () => ({ at: [1, Infinity] }) } }),
    "Cannot encode value.when.at[1] as JSON: Infinity has no JSON form",
  );
});

Deno.test("assertEncodable() names the path of the offending value", () => {
  assertEquals(
    refusal({ list: [1, 2, () => 3] }, "args[0]"),
    "Cannot encode args[0].list[2] as JSON: a function has no JSON form",
  );
  assertEquals(
    refusal({ y: Symbol("s") }, "kwargs.x"),
    "Cannot encode kwargs.x.y as JSON: a symbol has no JSON form",
  );
  assertEquals(
    refusal([[{ a: [{ b: new Map() }] }]], "result"),
    "Cannot encode result[0][0].a[0].b as JSON: a Map has no JSON form; send an array or a plain object",
  );
});

Deno.test("assertEncodable() reports the first offending value in order", () => {
  assertEquals(
    refusal({ ok: 1, first: NaN, second: () => 1 }),
    "Cannot encode value.first as JSON: NaN has no JSON form",
  );
  assertEquals(
    refusal([1, [2, 1n], Symbol("later")]),
    "Cannot encode value[1][1] as JSON: a bigint has no JSON form",
  );
});

Deno.test({
  name: "assertEncodable() refuses a boxed bigint",
  fn() {
    assertThrows(() => assertEncodable(Object(1n), "value"), SerializationError, "value");
    assertThrows(() => assertEncodable({ n: Object(1n) }, "value"), SerializationError, "value.n");
  },
});

Deno.test({
  name: "assertEncodable() refuses a SharedArrayBuffer",
  fn() {
    assertThrows(
      () => assertEncodable(new SharedArrayBuffer(4), "value"),
      SerializationError,
      "binary data has no JSON form",
    );
  },
});

Deno.test("assertEncodable() names the nested path and finds cycles through arrays", () => {
  assertThrows(
    () => assertEncodable({ result: { items: [1, NaN] } }, "the result"),
    SerializationError,
    "Cannot encode the result.result.items[1] as JSON: NaN has no JSON form",
  );
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  assertThrows(
    () => assertEncodable(cyclic, "body"),
    SerializationError,
    "Cannot encode body[0] as JSON",
  );
});

// ---------------------------------------------------------------------------
// sizeOverLimit
// ---------------------------------------------------------------------------

Deno.test("sizeOverLimit() returns null for strings that fit", () => {
  assertEquals(sizeOverLimit("", 0), null);
  assertEquals(sizeOverLimit("hello", 100), null);
  assertEquals(sizeOverLimit("hello", 5), null);
  assertEquals(sizeOverLimit("€€", 6), null);
});

Deno.test("sizeOverLimit() returns the exact byte size of ASCII strings over the limit", () => {
  assertEquals(sizeOverLimit("hello", 4), 5);
  assertEquals(sizeOverLimit("x", 0), 1);
  assertEquals(sizeOverLimit("a".repeat(1000), 999), 1000);
});

Deno.test("sizeOverLimit() returns the exact UTF-8 size of multibyte strings over the limit", () => {
  // "é" is 2 bytes, "€" is 3 bytes, "😀" is 4 bytes (2 UTF-16 code units).
  assertEquals(sizeOverLimit("é", 1), 2);
  assertEquals(sizeOverLimit("€", 2), 3);
  assertEquals(sizeOverLimit("😀", 3), 4);
  assertEquals(sizeOverLimit("aé€😀", 9), 10);
  assertEquals(sizeOverLimit("€".repeat(100), 299), 300);
  assertEquals(sizeOverLimit("😀".repeat(50), 150), 200);
});

Deno.test("sizeOverLimit() returns null for a string exactly at the limit", () => {
  assertEquals(sizeOverLimit("abc", 3), null);
  assertEquals(sizeOverLimit("é", 2), null);
  assertEquals(sizeOverLimit("€", 3), null);
  assertEquals(sizeOverLimit("😀", 4), null);
  assertEquals(sizeOverLimit("aé€😀", 10), null);
  assertEquals(sizeOverLimit("€".repeat(100), 300), null);
});

Deno.test("sizeOverLimit() measures bytes, not UTF-16 code units", () => {
  // 4 code units but 8 bytes: over a limit of 7 although text.length is below it.
  assertEquals(sizeOverLimit("😀😀", 7), 8);
  // 10 code units of 3 bytes each: over 29 although text.length * 3 is just above it.
  assertEquals(sizeOverLimit("€".repeat(10), 29), 30);
  // Mostly ASCII with one multibyte character, one byte over.
  assertEquals(sizeOverLimit("abcé", 4), 5);
  assertEquals(sizeOverLimit("abcé", 5), null);
});

// ---------------------------------------------------------------------------
// Nesting depth
// ---------------------------------------------------------------------------

/** An array nested `depth` levels deep, built without recursion. */
function nestedArray(depth: number): unknown[] {
  let value: unknown[] = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}

Deno.test("assertEncodable() accepts nesting up to maxDepth and refuses one level more, naming the place", () => {
  assertEncodable(nestedArray(DEFAULT_MAX_DEPTH), "value");
  const message = refusal({ items: [nestedArray(DEFAULT_MAX_DEPTH - 1)] }, "result");
  assert(message.includes(`nests deeper than ${DEFAULT_MAX_DEPTH} levels`), message);
  assert(
    message.startsWith(
      `Cannot encode result.items[0]${"[0]".repeat(DEFAULT_MAX_DEPTH - 2)} as JSON`,
    ),
    message.slice(0, 80),
  );
  assertThrows(
    () => assertEncodable([[[1]]], "value", 2),
    SerializationError,
    "deeper than 2 levels",
  );
  assertEncodable([[[1]]], "value", 3);
});

Deno.test("assertEncodable() refuses 200 000 levels without overflowing the stack", () => {
  const message = refusal(nestedArray(200_000));
  assert(message.includes("nests deeper than"), message.slice(-80));
  let object: Record<string, unknown> = {};
  for (let i = 0; i < 200_000; i++) object = { a: object };
  assert(refusal(object).includes("nests deeper than"));
});

Deno.test("assertEncodable() still finds cycles through toJSON() and siblings that share an object", () => {
  const shared = { x: 1 };
  assertEncodable({ a: shared, b: shared, c: [shared, shared] }, "value");
  const loop: Record<string, unknown> = {};
  loop.self = { toJSON: () => loop };
  assert(refusal(loop).includes("cycle"));
});

Deno.test("nestsDeeper() counts brackets outside strings only, at the exact boundary", () => {
  assertEquals(nestsDeeper("[[1]]", 2), false);
  assertEquals(nestsDeeper("[[[1]]]", 2), true);
  assertEquals(nestsDeeper('{"a":{"b":[1]}}', 3), false);
  assertEquals(nestsDeeper('{"a":{"b":[1]}}', 2), true);
  // Brackets and escaped quotes inside strings do not count.
  assertEquals(nestsDeeper(JSON.stringify({ s: '[[[[[[\\"{{{{' }), 1), false);
  assertEquals(nestsDeeper(JSON.stringify(['"', "[[["]), 1), false);
  // Siblings do not add up.
  assertEquals(nestsDeeper("[[1],[2],[3],[4]]", 2), false);
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  assertEquals(nestsDeeper(deep, DEFAULT_MAX_DEPTH), true);
  assertEquals(nestsDeeper(deep, 100_000), false);
  // Short text is not read: it cannot nest deeper than its length.
  assertEquals(nestsDeeper("[[[", 3), false);
});
