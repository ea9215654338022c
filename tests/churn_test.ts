import assert from "node:assert/strict";
import { ChurnMap, ChurnSet } from "../protocol/churn.ts";

Deno.test("ChurnMap keeps string keys like a Map: set, replace, get, has, delete, size", () => {
  const map = new ChurnMap<{ n: number } | null>();
  assert.equal(map.size, 0);
  map.set("a", { n: 1 });
  map.set("b", null);
  map.set("a", { n: 2 });
  assert.equal(map.size, 2);
  assert.deepEqual(map.get("a"), { n: 2 });
  assert.equal(map.get("b"), null);
  assert.equal(map.has("b"), true);
  assert.equal(map.get("c"), undefined);
  assert.equal(map.has("c"), false);
  assert.equal(map.delete("c"), false);
  assert.equal(map.delete("a"), true);
  assert.equal(map.delete("a"), false);
  assert.equal(map.size, 1);
  assert.deepEqual(map.keys(), ["b"]);
});

Deno.test("ChurnMap takes any string as a key, those of Object.prototype and array indices too", () => {
  const map = new ChurnMap<string>();
  const keys = [
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "",
    "7",
    "0",
    "native 1-0",
  ];
  for (const key of keys) assert.equal(map.has(key), false, key);
  for (const key of keys) map.set(key, `v${key}`);
  assert.equal(map.size, keys.length);
  for (const key of keys) assert.equal(map.get(key), `v${key}`, key);
  // Array indices first, ascending; then the others in the order they were added.
  assert.deepEqual(map.keys(), [
    "0",
    "7",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "",
    "native 1-0",
  ]);
  assert.deepEqual(map.values(), map.keys().map((key) => `v${key}`));
  for (const key of keys) assert.equal(map.delete(key), true, key);
  assert.equal(map.size, 0);
  assert.deepEqual(map.keys(), []);
});

Deno.test("ChurnMap stays right over many entries coming and going, and clear() empties it", () => {
  const map = new ChurnMap<number>();
  const live = new Map<string, number>();
  let seed = 1;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  for (let i = 0; i < 20_000; i++) {
    const key = `k${Math.floor(random() * 300)}`;
    if (random() < 0.5) {
      map.set(key, i);
      live.set(key, i);
    } else {
      assert.equal(map.delete(key), live.delete(key));
    }
    assert.equal(map.size, live.size);
  }
  assert.deepEqual(map.keys().sort(), [...live.keys()].sort());
  for (const [key, value] of live) assert.equal(map.get(key), value);
  map.clear();
  assert.equal(map.size, 0);
  assert.equal(map.get([...live.keys()][0]!), undefined);
});

Deno.test("ChurnSet removes each entry once, from anywhere, and keeps the others in order", () => {
  const set = new ChurnSet<string>();
  const a = set.add("a");
  const b = set.add("b");
  const c = set.add("c");
  const again = set.add("a");
  assert.equal(set.size, 4);
  assert.deepEqual(set.values(), ["a", "b", "c", "a"]);
  assert.equal(b.remove(), true);
  assert.equal(b.remove(), false);
  assert.deepEqual(set.values(), ["a", "c", "a"]);
  assert.equal(a.remove(), true);
  assert.deepEqual(set.values(), ["c", "a"]);
  assert.equal(again.remove(), true);
  assert.deepEqual(set.values(), ["c"]);
  const d = set.add("d");
  assert.deepEqual(set.values(), ["c", "d"]);
  assert.equal(c.remove(), true);
  assert.equal(d.remove(), true);
  assert.equal(set.size, 0);
  assert.deepEqual(set.values(), []);
  set.add("e");
  assert.deepEqual(set.values(), ["e"]);
});

Deno.test("ChurnSet.clear() empties the set, and entries removed after it report they were gone", () => {
  const set = new ChurnSet<number>();
  const entries = [1, 2, 3].map((n) => set.add(n));
  set.clear();
  assert.equal(set.size, 0);
  assert.deepEqual(set.values(), []);
  for (const entry of entries) assert.equal(entry.remove(), false);
  set.add(4);
  assert.equal(set.size, 1);
  assert.deepEqual(set.values(), [4]);
});
