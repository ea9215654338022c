/**
 * Reads a Redis URL: `redis://` or `rediss://` (TLS), user and password, db index.
 *
 * @module
 */

import { ConfigError } from "../../protocol/errors.ts";

/** Where and how to connect, as read from the URL. */
export interface RedisEndpoint {
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  /** TCP port. */
  port: number;
  /** ACL user name, when the URL has one. */
  username: string | undefined;
  /** Password, when the URL has one. */
  password: string | undefined;
  /** Database index. */
  db: number;
  /** Whether to connect with TLS (`rediss://`). */
  tls: boolean;
  /** The URL with the password masked, for messages. */
  display: string;
}

/** The URL used when none is given: PRPC's default. */
export const DEFAULT_REDIS_URL = "redis://localhost:6379/0";

/**
 * Reads a Redis URL.
 *
 * @param url `redis://[[user]:password@]host[:port][/db]` or the same with `rediss://`;
 *   default {@linkcode DEFAULT_REDIS_URL}.
 * @returns The endpoint.
 * @throws {ConfigError} When the URL is not a Redis URL, or its port or db is invalid.
 */
export function parseRedisUrl(url: string | undefined): RedisEndpoint {
  const text = url === undefined || url === "" ? DEFAULT_REDIS_URL : url;
  const refuse = (why: string): never => {
    throw new ConfigError(
      `Cannot use ${JSON.stringify(mask(text))} as a Redis URL: ${why}; expected ` +
        "redis://[[user]:password@]host[:port][/db] or rediss://... for TLS",
    );
  };
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    return refuse("it is not a URL");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    return refuse(`the scheme is ${parsed.protocol.slice(0, -1)}`);
  }
  if (parsed.hostname === "") return refuse("the host is missing");
  if (parsed.search !== "" || parsed.hash !== "") {
    return refuse("it has a query or fragment, which this broker does not read");
  }
  const path = parsed.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d{1,5}$/.test(path)) {
    return refuse(`the database index ${JSON.stringify(path)} is not a whole number`);
  }
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: parsed.port === "" ? 6379 : Number(parsed.port),
    username: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : decodeURIComponent(parsed.password),
    db: path === "" ? 0 : Number(path),
    tls: parsed.protocol === "rediss:",
    display: mask(text),
  };
}

/** The URL with its password replaced by `***`. */
function mask(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/, "$1***@");
}
