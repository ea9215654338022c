/** Worker permissions: checking, subprocess flags and Web Worker options. */
import { ConfigError } from "../mod.ts";
import {
  checkPermissions,
  permissionFlags,
  workerPermissionOption,
} from "../workers/permissions.ts";
import { assertEquals, assertThrows } from "./support/assert.ts";

Deno.test("permissionFlags passes on what the server holds, except what the worker is denied or narrowed to", () => {
  // deno task test runs with --allow-all: every permission is held in full.
  assertEquals(permissionFlags({ read: false, net: ["api.example.com", "10.0.0.1:80"], env: [] }), [
    "--allow-write",
    "--allow-net=api.example.com,10.0.0.1:80",
    "--allow-run",
    "--allow-ffi",
    "--allow-sys",
    "--allow-import",
  ]);
  assertEquals(permissionFlags({}).length, 8, "nothing left out: all of the server's own");
});

Deno.test("workerPermissionOption inherits what is left out", () => {
  assertEquals(workerPermissionOption({ read: false, net: ["a.example"] }), {
    read: false,
    write: "inherit",
    net: ["a.example"],
    env: "inherit",
    run: "inherit",
    ffi: "inherit",
    sys: "inherit",
    import: "inherit",
  });
});

Deno.test("checkPermissions refuses what Deno would not understand", () => {
  assertEquals(checkPermissions({ read: true, net: undefined }, "f"), { read: true });
  assertThrows(() => checkPermissions(null, "f"), ConfigError, "expected an object");
  assertThrows(() => checkPermissions(["read"], "f"), ConfigError, "expected an object");
  assertThrows(() => checkPermissions({ hrtime: true }, "f"), ConfigError, 'permission "hrtime"');
  assertThrows(() => checkPermissions({ net: "all" }, "f"), ConfigError, "expected true, false");
  assertThrows(() => checkPermissions({ net: [""] }, "f"), ConfigError, "non-empty strings");
});
