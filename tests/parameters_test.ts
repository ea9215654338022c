import {
  bindArguments,
  declaredParameters,
  type ParameterSpec,
  readParameters,
} from "../server/parameters.ts";
import { ArgumentError, PrpcError } from "../protocol/errors.ts";
import { assert, assertEquals, assertThrows } from "./support/assert.ts";

// deno-lint-ignore ban-types
type AnyFunction = Function;

/**
 * Builds a function from source text at run time, so `Function.prototype.toString`
 * returns exactly that text. Functions written directly in this file are reformatted
 * by Deno's TypeScript transpiler (parentheses added around single arrow parameters,
 * line comments and trailing commas dropped), which would hide the shapes under test.
 */
function fromSource(source: string): AnyFunction {
  const fn = new Function(`return (${source});`)();
  assert(typeof fn === "function", `not a function: ${source}`);
  assertEquals(Function.prototype.toString.call(fn), source);
  return fn;
}

/** Method `name` of an object literal built from source, e.g. `{ m(a) {} }`. */
function methodFromSource(objectSource: string, name: string): AnyFunction {
  const object = new Function(`return (${objectSource});`)() as Record<string, AnyFunction>;
  const fn = object[name];
  assert(typeof fn === "function", `no method ${name} in ${objectSource}`);
  return fn;
}

function spec(names: (string | null)[], rest = false, required = names.length): ParameterSpec {
  return { names, rest, required };
}

// ---------------------------------------------------------------------------
// readParameters: function shapes
// ---------------------------------------------------------------------------

Deno.test("readParameters() reads names from function declarations", () => {
  assertEquals(readParameters(fromSource("function add(a, b) { return a + b; }")), {
    names: ["a", "b"],
    rest: false,
    required: 2,
  });
  assertEquals(readParameters(fromSource("function () {}")), spec([]));
  assertEquals(readParameters(fromSource("function named(only) { return only; }")), spec(["only"]));
});

Deno.test("readParameters() reads names from async functions", () => {
  assertEquals(
    readParameters(fromSource("async function fetchIt(url, retries) { return [url, retries]; }")),
    spec(["url", "retries"]),
  );
  assertEquals(readParameters(fromSource("async function(x) {}")), spec(["x"]));
});

Deno.test("readParameters() reads names from generators and async generators", () => {
  assertEquals(readParameters(fromSource("function* gen(a, b) { yield a; }")), spec(["a", "b"]));
  assertEquals(readParameters(fromSource("function *gen(a) { yield a; }")), spec(["a"]));
  assertEquals(
    readParameters(fromSource("async function* agen(first, second) { yield first; }")),
    spec(["first", "second"]),
  );
  assertEquals(readParameters(fromSource("async function * (x) {}")), spec(["x"]));
});

Deno.test("readParameters() reads names from arrow functions with parentheses", () => {
  assertEquals(readParameters(fromSource("(a, b) => a + b")), spec(["a", "b"]));
  assertEquals(readParameters(fromSource("() => 1")), spec([]));
  assertEquals(readParameters(fromSource("(x) => (x)")), spec(["x"]));
  assertEquals(readParameters(fromSource("async (a, b) => a + b")), spec(["a", "b"]));
  assertEquals(readParameters(fromSource("async(a)=>a")), spec(["a"]));
});

Deno.test("readParameters() reads the name of a single-parameter arrow function without parentheses", () => {
  assertEquals(readParameters(fromSource("x => x")), spec(["x"]));
  assertEquals(readParameters(fromSource("value=>value * 2")), spec(["value"]));
  assertEquals(readParameters(fromSource("$_1 => ($_1)")), spec(["$_1"]));
  assertEquals(readParameters(fromSource("n => { return (n, n); }")), spec(["n"]));
});

Deno.test("readParameters() reads the name of an async single-parameter arrow function", () => {
  assertEquals(readParameters(fromSource("async x => x")), spec(["x"]));
  assertEquals(readParameters(fromSource("async  item=>item")), spec(["item"]));
  assertEquals(readParameters(fromSource("async /* note */ y => y")), spec(["y"]));
});

Deno.test("readParameters() reads a parameter named async", () => {
  assertEquals(readParameters(fromSource("async => async")), spec(["async"]));
  assertEquals(readParameters(fromSource("async=>1")), spec(["async"]));
  assertEquals(readParameters(fromSource("(async, b) => [async, b]")), spec(["async", "b"]));
  assertEquals(readParameters(fromSource("function f(async) { return async; }")), spec(["async"]));
  assertEquals(readParameters(fromSource("async (async) => async")), spec(["async"]));
});

Deno.test("readParameters() reads names from object literal methods", () => {
  assertEquals(
    readParameters(methodFromSource("{ m(a, b) { return a + b; } }", "m")),
    spec(["a", "b"]),
  );
  assertEquals(readParameters(methodFromSource("{ async m(a) { return a; } }", "m")), spec(["a"]));
  assertEquals(
    readParameters(methodFromSource("{ *m(a, b) { yield a; } }", "m")),
    spec(["a", "b"]),
  );
  assertEquals(readParameters(methodFromSource("{ async *m(c) { yield c; } }", "m")), spec(["c"]));
  // A method named async is a method, not an async modifier.
  assertEquals(
    readParameters(methodFromSource("{ async(p, q) { return p + q; } }", "async")),
    spec(["p", "q"]),
  );
  // Names that merely start with "class" or "async".
  assertEquals(
    readParameters(methodFromSource("{ classify(k) { return k; } }", "classify")),
    spec(["k"]),
  );
  assertEquals(
    readParameters(methodFromSource("{ asyncJob(j) { return j; } }", "asyncJob")),
    spec(["j"]),
  );
  // Methods written in this file, as Deno transpiles them.
  const object = {
    sum(a: number, b: number): number {
      return a + b;
    },
  };
  assertEquals(readParameters(object.sum), spec(["a", "b"]));
});

Deno.test("readParameters() reads names from getters' and setters' parameter lists", () => {
  const object = new Function("return { get v() { return 1; }, set v(next) {} };")();
  const descriptor = Object.getOwnPropertyDescriptor(object, "v");
  assert(descriptor?.get !== undefined && descriptor.set !== undefined);
  assertEquals(readParameters(descriptor.get), spec([]));
  assertEquals(readParameters(descriptor.set), spec(["next"]));
});

Deno.test("readParameters() reads names from class methods", () => {
  class Calculator {
    add(a: number, b: number): number {
      return a + b;
    }
    static scale(value: number, factor = 2): number {
      return value * factor;
    }
    async later(delayMs: number): Promise<number> {
      return await Promise.resolve(delayMs);
    }
  }
  assertEquals(readParameters(Calculator.prototype.add), spec(["a", "b"]));
  assertEquals(readParameters(Calculator.scale), spec(["value", "factor"], false, 1));
  assertEquals(readParameters(Calculator.prototype.later), spec(["delayMs"]));

  const Built = new Function(
    "return class { method(x, y = 1) { return x + y; } static s(z) { return z; } };",
  )();
  assertEquals(readParameters(Built.prototype.method), spec(["x", "y"], false, 1));
  assertEquals(readParameters(Built.s), spec(["z"]));
});

Deno.test("readParameters() returns null for classes", () => {
  assertEquals(readParameters(fromSource("class Foo { constructor(a, b) {} }")), null);
  assertEquals(readParameters(fromSource("class{}")), null);
  class Local {
    constructor(readonly a: number) {}
  }
  assertEquals(readParameters(Local), null);
});

Deno.test("readParameters() does not mistake parentheses in the body for the parameter list", () => {
  assertEquals(
    readParameters(fromSource('function f(a) { return ")" + "(" + a; }')),
    spec(["a"]),
  );
  assertEquals(readParameters(fromSource("() => (1, 2)")), spec([]));
});

// ---------------------------------------------------------------------------
// readParameters: default values, literals, comments
// ---------------------------------------------------------------------------

Deno.test("readParameters() skips default values containing commas, parentheses, brackets and braces", () => {
  const fn = fromSource(
    "function f(a, b = Math.max(1, 2), c = [3, 4], d = { e: 5, f: (6, 7) }, g = (x, y) => x + y, h) {}",
  );
  assertEquals(readParameters(fn), {
    names: ["a", "b", "c", "d", "g", "h"],
    rest: false,
    required: 1,
  });
  assertEquals(
    readParameters(fromSource("(a = [[1, 2], {x: [3, (4, 5)]}], b = ({}), c) => 0")),
    spec(["a", "b", "c"], false, 0),
  );
});

Deno.test("readParameters() skips strings containing commas, parentheses and quotes in default values", () => {
  const fn = fromSource(
    `function f(a = "x, (y", b = 'z), w', c = "escaped \\" quote, )", d = 'it\\'s, (', e) {}`,
  );
  assertEquals(readParameters(fn), spec(["a", "b", "c", "d", "e"], false, 0));
  assertEquals(
    readParameters(fromSource('(url = "http://host/a,b", eq = "=", x) => 0')),
    spec(["url", "eq", "x"], false, 0),
  );
});

Deno.test("readParameters() skips template literals with substitutions in default values", () => {
  const fn = fromSource(
    "function f(a = `plain, (text`, b = `sum ${(1, 2)}, ${[3, 4].join(',')}`, " +
      "c = `${ { k: '}' }.k }, )`, d = `outer ${`inner, ${'x'}`} (`, e) {}",
  );
  assertEquals(readParameters(fn), spec(["a", "b", "c", "d", "e"], false, 0));
});

Deno.test("readParameters() ignores comments between parameters", () => {
  const fn = fromSource(
    [
      "function f(",
      "  a, // the first, (with a parenthesis",
      "  /* the second, ) */ b,",
      "  c /* = default, */ = 1, // trailing, comment",
      "  /* d, */",
      ") {}",
    ].join("\n"),
  );
  assertEquals(readParameters(fn), spec(["a", "b", "c"], false, 2));
  assertEquals(
    readParameters(fromSource("(/* leading */ x /* , y */, z /* ) */) => x")),
    spec(["x", "z"]),
  );
  assertEquals(
    readParameters(fromSource("(a = 1 // one, two\n, b) => a")),
    spec(["a", "b"], false, 0),
  );
});

Deno.test("readParameters() reads comments in default values as comments, not as text", () => {
  assertEquals(
    readParameters(fromSource('(a = /* ", ( */ 1, b = "/* not a comment, */") => 0')),
    spec(["a", "b"], false, 0),
  );
});

// ---------------------------------------------------------------------------
// readParameters: destructuring, rest, trailing commas
// ---------------------------------------------------------------------------

Deno.test("readParameters() gives null names to destructured parameters", () => {
  assertEquals(
    readParameters(fromSource("function f({ a, b }, [c, d], e) {}")),
    spec([null, null, "e"]),
  );
  assertEquals(
    readParameters(fromSource("({ a = 1, b: { c } } = {}, [x, y] = [1, 2], z) => z")),
    spec([null, null, "z"], false, 0),
  );
  const transpiled = ({ a, b }: { a: number; b: number }, [c]: number[]) => a + b + (c ?? 0);
  assertEquals(readParameters(transpiled), spec([null, null]));
});

Deno.test("readParameters() reads rest parameters", () => {
  assertEquals(readParameters(fromSource("function f(...args) {}")), spec(["args"], true, 0));
  assertEquals(
    readParameters(fromSource("(a, b, ...more) => more")),
    spec(["a", "b", "more"], true, 2),
  );
  assertEquals(readParameters(fromSource("(a, ... spaced) => a")), spec(["a", "spaced"], true, 1));
  assertEquals(readParameters(fromSource("(a, ...[x, y]) => a")), spec(["a", null], true, 1));
  assertEquals(
    readParameters(fromSource("(a, /* rest: */ ...others) => a")),
    spec(["a", "others"], true, 1),
  );
  const transpiled = (first: string, ...others: number[]) => first + others.length;
  assertEquals(readParameters(transpiled), spec(["first", "others"], true, 1));
});

Deno.test("readParameters() ignores trailing commas", () => {
  assertEquals(readParameters(fromSource("function f(a, b,) {}")), spec(["a", "b"]));
  assertEquals(readParameters(fromSource("(a, b = 2 , ) => a")), spec(["a", "b"], false, 1));
  assertEquals(readParameters(methodFromSource("{ m(x,\n) { return x; } }", "m")), spec(["x"]));
});

Deno.test("readParameters() reads identifiers with $, _, digits and non-ASCII letters", () => {
  assertEquals(
    readParameters(fromSource("function f($, _, a1, größe, 名前) {}")),
    spec(["$", "_", "a1", "größe", "名前"]),
  );
});

// ---------------------------------------------------------------------------
// readParameters: TypeScript functions
// ---------------------------------------------------------------------------

Deno.test("readParameters() reads names from TypeScript functions with type annotations", () => {
  function typed(name: string, count: number, options: { deep?: boolean } = {}): string {
    return `${name}${count}${JSON.stringify(options)}`;
  }
  assertEquals(readParameters(typed), spec(["name", "count", "options"], false, 2));

  const arrow = (a: Array<[number, string]>, b: Record<string, (x: number) => void>): number =>
    a.length + Object.keys(b).length;
  assertEquals(readParameters(arrow), spec(["a", "b"]));

  const asyncArrow = async (id: string): Promise<string> => await Promise.resolve(id);
  assertEquals(readParameters(asyncArrow), spec(["id"]));

  function withThis(this: unknown, value: number): number {
    return value;
  }
  assertEquals(readParameters(withThis), spec(["value"]));

  function generic<T extends { id: string }>(item: T, fallback: T | null = null): T | null {
    return item ?? fallback;
  }
  assertEquals(readParameters(generic), spec(["item", "fallback"], false, 1));
});

Deno.test("readParameters() counts a TypeScript optional parameter without default as required", () => {
  // `b?: string` has no default in JavaScript, so `fn.length` counts it.
  function optional(a: number, b?: string): string {
    return `${a}${b}`;
  }
  assertEquals(readParameters(optional), spec(["a", "b"], false, 2));
});

// ---------------------------------------------------------------------------
// readParameters: required, native and bound functions
// ---------------------------------------------------------------------------

Deno.test("readParameters() sets required to the parameters before the first default", () => {
  assertEquals(readParameters(fromSource("(a, b, c = 1, d) => 0"))?.required, 2);
  assertEquals(readParameters(fromSource("(a = 1, b) => 0"))?.required, 0);
  assertEquals(readParameters(fromSource("(a, b) => 0"))?.required, 2);
  // The rest parameter never counts.
  assertEquals(readParameters(fromSource("(a, ...b) => 0"))?.required, 1);
});

Deno.test("readParameters() bounds required by the number of names read", () => {
  const fn = fromSource("function f(a, b) {}");
  Object.defineProperty(fn, "length", { value: 5 });
  assertEquals(readParameters(fn), spec(["a", "b"], false, 2));
  const shorter = fromSource("function g(a, b, c) {}");
  Object.defineProperty(shorter, "length", { value: 1 });
  assertEquals(readParameters(shorter), spec(["a", "b", "c"], false, 1));
});

Deno.test("readParameters() returns null for native functions", () => {
  assertEquals(readParameters(Math.max), null);
  assertEquals(readParameters(Array.prototype.push), null);
  assertEquals(readParameters(parseInt), null);
  assertEquals(readParameters(Function.prototype), null);
});

Deno.test("readParameters() returns null for bound functions", () => {
  function add(a: number, b: number): number {
    return a + b;
  }
  assertEquals(readParameters(add.bind(null)), null);
  assertEquals(readParameters(add.bind(null, 1)), null);
  assertEquals(readParameters(((x: number) => x).bind(undefined)), null);
});

Deno.test({
  name: "readParameters() reads names from a method named class",
  fn() {
    assertEquals(
      readParameters(methodFromSource("{ class(a, b) { return a + b; } }", "class")),
      spec(["a", "b"]),
    );
  },
});

Deno.test({
  name: "readParameters() skips regular expression literals in default values",
  fn() {
    assertEquals(readParameters(fromSource("(a = /[(]/, b) => a")), spec(["a", "b"], false, 0));
    assertEquals(readParameters(fromSource('(a = /"/, b) => a')), spec(["a", "b"], false, 0));
  },
});

Deno.test({
  name: "readParameters() reads names from a method with a computed name containing a parenthesis",
  fn() {
    assertEquals(
      readParameters(methodFromSource('{ ["get(x)"](a, b) { return a + b; } }', "get(x)")),
      spec(["a", "b"]),
    );
  },
});

// ---------------------------------------------------------------------------
// declaredParameters
// ---------------------------------------------------------------------------

Deno.test("declaredParameters() builds a spec from valid names", () => {
  const fn = (a: number, b: number, c = 1) => a + b + c;
  const params = ["a", "b", "c"];
  const result = declaredParameters(fn, params);
  assertEquals(result, spec(["a", "b", "c"], false, 2));
  // The names are copied, not shared with the caller's array.
  assert(result.names !== params);
  params.push("d");
  assertEquals(result.names, ["a", "b", "c"]);
});

Deno.test("declaredParameters() accepts $, _, digits after the first character and non-ASCII names", () => {
  const fn = function (..._args: unknown[]) {};
  assertEquals(
    declaredParameters(fn, ["$", "_x", "a1", "größe"]),
    spec(["$", "_x", "a1", "größe"], false, 0),
  );
});

Deno.test("declaredParameters() bounds required by fn.length and by the number of names", () => {
  const two = (a: number, b: number) => a + b;
  assertEquals(declaredParameters(two, ["a"]).required, 1);
  assertEquals(declaredParameters(two, ["a", "b", "c"]).required, 2);
  assertEquals(declaredParameters(two, []), spec([], false, 0));
  // Declared names work for functions whose source cannot be read.
  assertEquals(declaredParameters(Math.max, ["x", "y"]), spec(["x", "y"], false, 2));
  assertEquals(declaredParameters(two.bind(null), ["a", "b"]), spec(["a", "b"], false, 2));
});

Deno.test("declaredParameters() throws TypeError for names that are not identifiers", () => {
  const fn = () => 0;
  for (const bad of ["", "1a", "a-b", "a b", "...args", "a.b", "{a}", " a"]) {
    const err = assertThrows(() => declaredParameters(fn, [bad]), TypeError);
    assertEquals(err.message, `Cannot use ${JSON.stringify(bad)} as a parameter name`);
  }
  assertThrows(
    () => declaredParameters(fn, ["ok", 5 as unknown as string]),
    TypeError,
    "Cannot use 5 as a parameter name",
  );
  assertThrows(
    () => declaredParameters(fn, [null as unknown as string]),
    TypeError,
    "Cannot use null as a parameter name",
  );
});

Deno.test("declaredParameters() throws TypeError for a name declared twice", () => {
  const err = assertThrows(() => declaredParameters(() => 0, ["a", "b", "a"]), TypeError);
  assertEquals(err.message, "Cannot declare parameter a twice");
});

// ---------------------------------------------------------------------------
// bindArguments
// ---------------------------------------------------------------------------

Deno.test("bindArguments() returns the same args array when there are no keyword arguments", () => {
  const args = [1, 2];
  assert(bindArguments(spec(["a", "b"]), args, {}) === args);
  const fewer = [1];
  assert(bindArguments(spec(["a", "b"], false, 1), fewer, {}) === fewer);
  const restArgs = [1, 2, 3, 4];
  assert(bindArguments(spec(["a", "rest"], true, 1), restArgs, {}) === restArgs);
});

Deno.test("bindArguments() binds keyword arguments in any order", () => {
  const abc = spec(["a", "b", "c"]);
  assertEquals(bindArguments(abc, [], { a: 1, b: 2, c: 3 }), [1, 2, 3]);
  assertEquals(bindArguments(abc, [], { c: 3, a: 1, b: 2 }), [1, 2, 3]);
  assertEquals(bindArguments(abc, [], { b: 2, c: 3, a: 1 }), [1, 2, 3]);
});

Deno.test("bindArguments() combines positional and keyword arguments without changing args", () => {
  const args = [1];
  const bound = bindArguments(spec(["a", "b", "c"]), args, { c: "C", b: "B" });
  assertEquals(bound, [1, "B", "C"]);
  assert(bound !== args);
  assertEquals(args, [1]);
});

Deno.test("bindArguments() fills gaps with undefined so defaults apply", () => {
  function f(a: number, b = "default-b", c = "default-c"): unknown[] {
    return [a, b, c];
  }
  const parameters = readParameters(f);
  assert(parameters !== null);
  const bound = bindArguments(parameters, [1], { c: "given-c" });
  assertEquals(bound, [1, undefined, "given-c"]);
  assertEquals(bound.length, 3);
  assertEquals(f(...(bound as [number, string, string])), [1, "default-b", "given-c"]);

  const onlyLast = bindArguments(spec(["a", "b", "c"], false, 0), [], { c: 3 });
  assertEquals(onlyLast, [undefined, undefined, 3]);
});

Deno.test("bindArguments() refuses too many positional arguments with a plural message", () => {
  const err = assertThrows(() => bindArguments(spec(["a", "b"]), [1, 2, 3], {}), ArgumentError);
  assertEquals(err.message, "takes at most 2 positional arguments but 3 were given");
  assert(err instanceof PrpcError);
});

Deno.test("bindArguments() refuses too many positional arguments with a singular message", () => {
  const err = assertThrows(() => bindArguments(spec(["a"]), [1, 2], {}), ArgumentError);
  assertEquals(err.message, "takes at most 1 positional argument but 2 were given");
});

Deno.test("bindArguments() says no positional arguments for a function without parameters", () => {
  const one = assertThrows(() => bindArguments(spec([]), [1], {}), ArgumentError);
  assertEquals(one.message, "takes no positional arguments but 1 was given");
  const two = assertThrows(() => bindArguments(spec([]), [1, 2], {}), ArgumentError);
  assertEquals(two.message, "takes no positional arguments but 2 were given");
});

Deno.test("bindArguments() checks the positional count before keyword arguments", () => {
  assertThrows(
    () => bindArguments(spec(["a"]), [1, 2], { zzz: 1 }),
    ArgumentError,
    "takes at most 1 positional argument but 2 were given",
  );
});

Deno.test("bindArguments() refuses a missing required argument", () => {
  const err = assertThrows(() => bindArguments(spec(["a", "b"]), [1], {}), ArgumentError);
  assertEquals(
    err.message,
    'missing required argument "b" (a parameter without a default value is required)',
  );
  assertThrows(
    () => bindArguments(spec(["a", "b", "c"], false, 2), [], { b: 2 }),
    ArgumentError,
    'missing required argument "a"',
  );
  // Optional ones may stay missing.
  assertEquals(bindArguments(spec(["a", "b", "c"], false, 2), [], { b: 2, a: 1 }), [1, 2]);
});

Deno.test("bindArguments() names a missing destructured argument by position", () => {
  const err = assertThrows(
    () => bindArguments(spec(["a", null], false, 2), [], { a: 1 }),
    ArgumentError,
  );
  assertEquals(
    err.message,
    "missing required argument #2 (a parameter without a default value is required)",
  );
});

Deno.test("bindArguments() refuses an unknown keyword and lists the accepted keywords", () => {
  const err = assertThrows(
    () => bindArguments(spec(["a", null, "c"]), [], { a: 1, zzz: 2 }),
    ArgumentError,
  );
  assertEquals(err.message, 'got an unexpected keyword argument "zzz"; keywords accepted: a, c');
});

Deno.test("bindArguments() refuses an unknown keyword without a list when no keyword is accepted", () => {
  const err = assertThrows(() => bindArguments(spec([null]), [], { x: 1 }), ArgumentError);
  assertEquals(err.message, 'got an unexpected keyword argument "x"');
  const none = assertThrows(() => bindArguments(spec([]), [], { x: 1 }), ArgumentError);
  assertEquals(none.message, 'got an unexpected keyword argument "x"');
});

Deno.test("bindArguments() does not treat inherited Object properties as parameters", () => {
  assertThrows(
    () => bindArguments(spec(["a"], false, 0), [], { toString: 1 }),
    ArgumentError,
    'got an unexpected keyword argument "toString"; keywords accepted: a',
  );
});

Deno.test("bindArguments() refuses multiple values for a keyword", () => {
  const err = assertThrows(
    () => bindArguments(spec(["a", "b"]), [1, 2], { a: 3 }),
    ArgumentError,
  );
  assertEquals(err.message, 'got multiple values for argument "a"');
  assertThrows(
    () => bindArguments(spec(["a", "b"], false, 1), [1], { a: 3, b: 4 }),
    ArgumentError,
    'got multiple values for argument "a"',
  );
});

Deno.test("bindArguments() gives extra positional arguments to a rest parameter", () => {
  const restSpec = spec(["a", "b", "rest"], true, 1);
  assertEquals(bindArguments(restSpec, [1, 2, 3, 4, 5], {}), [1, 2, 3, 4, 5]);
  assertEquals(bindArguments(restSpec, [1], { b: 2 }), [1, 2]);
  assertEquals(bindArguments(restSpec, [], { b: 2, a: 1 }), [1, 2]);
  assertThrows(
    () => bindArguments(restSpec, [], {}),
    ArgumentError,
    'missing required argument "a"',
  );
});

Deno.test("bindArguments() refuses a keyword together with extra positional arguments into the rest parameter", () => {
  const restSpec = spec(["a", "b", "rest"], true, 0);
  // Every positional parameter is already filled when extra ones reach the rest parameter.
  assertThrows(
    () => bindArguments(restSpec, [1, 2, 3], { b: 4 }),
    ArgumentError,
    'got multiple values for argument "b"',
  );
});

Deno.test("bindArguments() refuses the rest parameter's name as a keyword", () => {
  const err = assertThrows(
    () => bindArguments(spec(["a", "rest"], true, 0), [], { rest: [1, 2] }),
    ArgumentError,
  );
  assertEquals(err.message, 'got an unexpected keyword argument "rest"; keywords accepted: a');
});

Deno.test("bindArguments() cannot bind a destructured parameter by keyword", () => {
  const parameters = readParameters(fromSource("({ a, b }, c) => [a, b, c]"));
  assertEquals(parameters, spec([null, "c"]));
  assert(parameters !== null);
  assertThrows(
    () => bindArguments(parameters, [], { a: 1, c: 2 }),
    ArgumentError,
    'got an unexpected keyword argument "a"; keywords accepted: c',
  );
  assertThrows(
    () => bindArguments(parameters, [], { c: 2 }),
    ArgumentError,
    "missing required argument #1",
  );
  assertEquals(bindArguments(parameters, [{ a: 1, b: 2 }], { c: 3 }), [{ a: 1, b: 2 }, 3]);
});

Deno.test("bindArguments() binds keywords to the parameters readParameters() found", async () => {
  async function transfer(from: string, to: string, amount = 1, memo = ""): Promise<string> {
    return await Promise.resolve(`${from}->${to}:${amount}:${memo}`);
  }
  const parameters = readParameters(transfer);
  assert(parameters !== null);
  const bound = bindArguments(parameters, ["alice"], { memo: "rent", to: "bob" });
  assertEquals(
    await transfer(...(bound as [string, string, number, string])),
    "alice->bob:1:rent",
  );
});
