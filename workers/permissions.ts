/**
 * Per-function Deno permissions for `thread` and `process` workers, in Deno's
 * own vocabulary: `{ read: false, net: ["api.example.com"] }`. A permission left
 * out is the server's own.
 *
 * @module
 */

import { ConfigError } from "../protocol/errors.ts";

/** One Deno permission name. */
export type PermissionName =
  | "read"
  | "write"
  | "net"
  | "env"
  | "run"
  | "ffi"
  | "sys"
  | "import";

/** Names of the Deno permissions a worker can be given or denied. */
export const PERMISSION_NAMES: readonly PermissionName[] = [
  "read",
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
  "import",
];

/**
 * `true` grants the permission, `false` denies it, a list grants it for those
 * paths, hosts, variables or commands only (as Deno's `--allow-read=a,b`).
 */
export type PermissionValue = boolean | readonly string[];

/** Permissions of a worker; a permission left out is the server's own. */
export type WorkerPermissions = { readonly [name in PermissionName]?: PermissionValue };

/**
 * Checks a permissions object and returns a copy without absent entries.
 *
 * @param permissions What `register` was given.
 * @param where Which registration, for the error message.
 * @returns The checked permissions.
 * @throws {ConfigError} On an unknown name or a value that is not a boolean or a list of strings.
 */
export function checkPermissions(permissions: unknown, where: string): WorkerPermissions {
  if (typeof permissions !== "object" || permissions === null || Array.isArray(permissions)) {
    throw new ConfigError(`Cannot use permissions of ${where}: expected an object`);
  }
  const checked: Record<string, PermissionValue> = {};
  for (const [name, value] of Object.entries(permissions)) {
    if (!(PERMISSION_NAMES as readonly string[]).includes(name)) {
      throw new ConfigError(
        `Cannot use permission ${JSON.stringify(name)} of ${where}: expected one of ${
          PERMISSION_NAMES.join(", ")
        }`,
      );
    }
    if (value === undefined) continue;
    const valid = typeof value === "boolean" ||
      (Array.isArray(value) && value.every((item) => typeof item === "string" && item !== ""));
    if (!valid) {
      throw new ConfigError(
        `Cannot use permission ${name} of ${where}: expected true, false or a list of non-empty strings`,
      );
    }
    checked[name] = typeof value === "boolean" ? value : [...value];
  }
  return checked;
}

/**
 * Whether this process holds the whole of a permission: granted, with no part
 * of it denied (`--allow-read --deny-read=/etc` is partial).
 */
function serverHolds(name: PermissionName): boolean {
  const status = Deno.permissions.querySync({ name });
  return status.state === "granted" && !status.partial;
}

/**
 * Command-line flags that give a `deno` subprocess these permissions. A
 * permission left out is granted when the server holds all of it; a permission
 * the server holds only in part (some of it allowed, or some denied) is not
 * passed on, since Deno cannot tell which part.
 *
 * @param permissions The worker's permissions.
 * @returns Flags such as `--allow-net=api.example.com`.
 */
export function permissionFlags(permissions: WorkerPermissions): string[] {
  const flags: string[] = [];
  for (const name of PERMISSION_NAMES) {
    const value = permissions[name] ?? serverHolds(name);
    if (value === true) flags.push(`--allow-${name}`);
    else if (value !== false && value.length > 0) flags.push(`--allow-${name}=${value.join(",")}`);
    // Deno allows imports from a few well-known hosts by default; false means none.
    else if (name === "import" && permissions.import === false) flags.push("--deny-import");
  }
  return flags;
}

/**
 * The `deno.permissions` option of a Web Worker for these permissions
 * (Deno's unstable worker options); a permission left out is inherited.
 *
 * @param permissions The worker's permissions.
 * @returns The option value.
 */
export function workerPermissionOption(
  permissions: WorkerPermissions,
): Record<PermissionName, "inherit" | boolean | string[]> {
  const option = {} as Record<PermissionName, "inherit" | boolean | string[]>;
  for (const name of PERMISSION_NAMES) {
    const value = permissions[name];
    option[name] = value === undefined
      ? "inherit"
      : typeof value === "boolean"
      ? value
      : [...value];
  }
  return option;
}
