/**
 * The Lua scripts of the Redis broker: one atomic script per operation that
 * touches more than one thing, each with its KEYS, ARGV and reply documented.
 * Scripts run by `EVALSHA`, falling back to `EVAL` when the server does not
 * know them yet (first use, or after a restart).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/** A Lua script and the SHA-1 digest `EVALSHA` calls it by. */
export interface RedisScript {
  /** What it does, for messages (e.g. "hand back" a message). */
  readonly name: string;
  /** The Lua source. */
  readonly lua: string;
  /** SHA-1 of the source, hex. */
  readonly sha: string;
}

function script(name: string, lua: string): RedisScript {
  return { name, lua, sha: createHash("sha1").update(lua).digest("hex") };
}

/**
 * Adds requests to one stream, in order (a client sends the requests of one
 * turn in one run). Each `XADD` is its own: one that fails does not stop the
 * others, and its error is its reply.
 *
 * - KEYS[1] request stream
 * - ARGV: the requests' JSON bodies
 * - Reply: for each request, its entry id, or the text of the error that refused it
 */
export const ADD: RedisScript = script(
  "add",
  `
local replies = {}
for i = 1, #ARGV do
  local id = redis.pcall('XADD', KEYS[1], '*', 'message', ARGV[i])
  if type(id) == 'table' then replies[i] = id.err or 'ERR the request was not added' else replies[i] = id end
end
return replies
`,
);

/**
 * Settles requests with their results, any number in one run (a server sends
 * the results that finish together in one batch). Every result is stored (and
 * published) before any request is acknowledged, and a failed `SET` aborts the
 * script before the first `XACK`. Running it twice stores and publishes the
 * same results again, nothing more.
 *
 * - KEYS: for each request i (from 1), KEYS[2i-1] its stream and KEYS[2i] its result key
 * - ARGV[1] group, ARGV[2] result TTL in ms; then for each request i, from ARGV[3i]:
 *   entry id, result body, inbox channel to publish the result to (or `""`)
 * - Reply: how many entries were pending (0 for those acknowledged before, or whose
 *   group is gone because Redis restarted empty)
 */
export const COMPLETE: RedisScript = script(
  "complete",
  `
local count = #KEYS / 2
local ids = {}
local streams = {}
for i = 1, count do
  local id, body, channel = ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  redis.call('SET', KEYS[2 * i], body, 'PX', ARGV[2])
  if channel ~= '' then redis.call('PUBLISH', channel, body) end
  local stream = KEYS[2 * i - 1]
  if ids[stream] == nil then
    ids[stream] = {}
    streams[#streams + 1] = stream
  end
  local list = ids[stream]
  list[#list + 1] = id
end
local acked = 0
for _, stream in ipairs(streams) do
  local n = redis.pcall('XACK', stream, ARGV[1], unpack(ids[stream]))
  if type(n) == 'number' then acked = acked + n end
  redis.call('XDEL', stream, unpack(ids[stream]))
end
return acked
`,
);

/**
 * A Lua function for the scripts that copy a request: the bytes of the entry's
 * `message` field as Redis holds them. The body the server passes was read as
 * text, so bytes that are not UTF-8 had become U+FFFD in it; it is used only
 * when the entry is gone (trimmed) or has no `message` field.
 */
const ORIGINAL_BODY = `
local function original_body(stream, id, fallback)
  local entry = redis.call('XRANGE', stream, id, id)[1]
  if entry then
    local fields = entry[2]
    for i = 1, #fields - 1, 2 do
      if fields[i] == 'message' then return fields[i + 1] end
    end
  end
  return fallback
end`;

/**
 * Sets a request aside on the dead-letter stream, with an optional error result
 * for its caller, then acknowledges and deletes it. A request that is not
 * pending any more (settled already, maybe by an earlier run of this script
 * whose reply was lost) is not set aside again.
 *
 * - KEYS[1] request stream, KEYS[2] dead-letter stream, KEYS[3] result key
 * - ARGV[1] group, ARGV[2] entry id, ARGV[3] kind, ARGV[4] body (used only when the entry
 *   has no `message` field any more, see `ORIGINAL_BODY`), ARGV[5] reason,
 *   ARGV[6] date, ARGV[7] entries to keep (`MAXLEN ~`), ARGV[8] result body or `""`,
 *   ARGV[9] result TTL in ms, ARGV[10] inbox channel or `""`
 * - Reply: the id of the dead-letter entry, or nil when the request was not pending
 */
export const DEAD_LETTER: RedisScript = script(
  "set aside",
  `${ORIGINAL_BODY}
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[3], ARGV[8], 'PX', ARGV[9])
  if ARGV[10] ~= '' then redis.call('PUBLISH', ARGV[10], ARGV[8]) end
end
local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if type(pending) ~= 'table' or pending.err or #pending == 0 then return false end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*',
  'kind', ARGV[3], 'body', original_body(KEYS[1], ARGV[2], ARGV[4]), 'reason', ARGV[5],
  'date', ARGV[6])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return id
`,
);

/**
 * Hands a request back so that any server can take it at once: re-adds it at the
 * end of its stream with the number of deliveries so far (field `prpc_deliveries`),
 * then acknowledges and deletes the delivered entry. Does nothing when another
 * consumer has taken the entry over meanwhile (it is that consumer's now).
 *
 * - KEYS[1] request stream
 * - ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id, ARGV[4] message body (used only
 *   when the entry has no `message` field any more), ARGV[5] deliveries so far
 * - Reply: the new entry id, or nil when the entry was not this consumer's any more
 */
export const RELEASE: RedisScript = script(
  "hand back",
  `${ORIGINAL_BODY}
local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if type(pending) ~= 'table' or pending.err or #pending == 0 or pending[1][2] ~= ARGV[2] then
  return false
end
local id = redis.call('XADD', KEYS[1], '*', 'message', original_body(KEYS[1], ARGV[3], ARGV[4]),
  'prpc_deliveries', ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return id
`,
);

/**
 * The heartbeat: re-claims the entries this consumer is working on (`XCLAIM ...
 * JUSTID`, which resets their idle time and leaves their delivery count), so that
 * no other server takes them over. Entries another consumer took meanwhile are
 * left alone and reported.
 *
 * - KEYS[1] request stream
 * - ARGV[1] group, ARGV[2] consumer, ARGV[3..] entry ids
 * - Reply: the ids this consumer no longer holds
 */
export const HEARTBEAT: RedisScript = script(
  "re-claim",
  `
local lost = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #pending > 0 and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
`,
);

/**
 * Recovery: takes over entries that have been idle longer than the recover
 * interval (their server died or lost its connection) with `XAUTOCLAIM`, and
 * reads how often each has been delivered, this time included. Entries the
 * calling consumer holds are left as they are (a late heartbeat does not make
 * them deliveries again); other entries of its own are taken like any other
 * (their reply or settlement was lost). Entries deleted while pending are
 * acknowledged (Redis 6.2 leaves them pending; 7.0 drops them itself).
 *
 * `XAUTOCLAIM ... JUSTID` claims without counting a delivery; `XCLAIM` then
 * counts it and returns the entry, for each entry actually taken.
 *
 * - KEYS[1] request stream
 * - ARGV[1] group, ARGV[2] consumer, ARGV[3] minimum idle time in ms,
 *   ARGV[4] most entries to take (at least 1), ARGV[5..] ids the consumer holds
 * - Reply: `{id, fields, deliveries}` for each entry taken
 */
export const RECOVER: RedisScript = script(
  "take over",
  `
local held = {}
for i = 5, #ARGV do held[ARGV[i]] = true end
local taken = {}
local wanted = tonumber(ARGV[4])
local cursor = '0-0'
repeat
  local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor,
    'COUNT', wanted - #taken, 'JUSTID')
  cursor = reply[1]
  for _, id in ipairs(reply[2]) do
    if not held[id] then
      local entry = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)[1]
      if type(entry) == 'table' then
        local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
        taken[#taken + 1] = {id, entry[2], pending[1][4]}
      else
        redis.call('XACK', KEYS[1], ARGV[1], id)
      end
    end
  end
until cursor == '0-0' or #taken >= wanted
return taken
`,
);

/**
 * Hands back the entries pending for a consumer that it does not hold: entries
 * whose read reply or settlement was lost with a connection. Each is re-added at
 * the end of its stream with its deliveries so far (the group's count plus its
 * `prpc_deliveries` field, less ARGV[3]), then acknowledged and deleted, as
 * {@linkcode RELEASE} does, so any server takes it at once. Entries deleted
 * while pending are acknowledged; entries without a `message` field stay (the
 * server that takes them over sets them aside).
 *
 * A running consumer discounts the last delivery (ARGV[3] = 1): an entry whose
 * read reply was lost never ran, as {@linkcode RELEASE} does not count an entry
 * that was never handed out, so a flapping connection cannot dead-letter it. At
 * start it is counted (ARGV[3] = 0): an earlier run of the same consumer name
 * may have run it and crashed, and a message that crashes its server must
 * reach the dead-letter stream.
 *
 * - KEYS[1] request stream
 * - ARGV[1] group, ARGV[2] consumer, ARGV[3] deliveries to discount (0 or 1),
 *   ARGV[4..] ids the consumer holds
 * - Reply: the number of entries re-added
 */
export const HAND_BACK: RedisScript = script(
  "hand back lost",
  `
local held = {}
for i = 4, #ARGV do held[ARGV[i]] = true end
local discount = tonumber(ARGV[3])
local count = 0
local start = '-'
local rows
repeat
  rows = redis.call('XPENDING', KEYS[1], ARGV[1], start, '+', 100, ARGV[2])
  for _, row in ipairs(rows) do
    local id = row[1]
    start = '(' .. id
    if not held[id] then
      local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
      local message = nil
      local carried = nil
      if entry then
        local fields = entry[2]
        for i = 1, #fields - 1, 2 do
          if fields[i] == 'message' and message == nil then message = fields[i + 1] end
          if fields[i] == 'prpc_deliveries' and carried == nil then carried = fields[i + 1] end
        end
      end
      if not entry or message then
        if message then
          local before = tonumber(carried) or 0
          if before < 0 or before ~= math.floor(before) then before = 0 end
          local deliveries = math.max(0, before + row[4] - discount)
          redis.call('XADD', KEYS[1], '*', 'message', message, 'prpc_deliveries', deliveries)
          count = count + 1
        end
        redis.call('XACK', KEYS[1], ARGV[1], id)
        redis.call('XDEL', KEYS[1], id)
      end
    end
  end
until #rows < 100
return count
`,
);

/**
 * Removes a stopping server's consumer from the group when it holds no entries,
 * so that servers named by a fresh UUID per start leave no trace. A consumer
 * that still holds entries stays, so that they can be taken over.
 *
 * - KEYS[1] request stream
 * - ARGV[1] group, ARGV[2] consumer
 * - Reply: 1 when the consumer was removed, else 0
 */
export const LEAVE: RedisScript = script(
  "leave the group",
  `
local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if type(pending) ~= 'table' or pending.err or #pending > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`,
);

/**
 * Runs a script by its digest, loading it when the server does not know it.
 *
 * @param redis The connection.
 * @param code The script.
 * @param keys Its KEYS, as its documentation lists them.
 * @param args Its ARGV.
 * @returns The script's reply.
 */
export async function runScript(
  redis: Redis,
  code: RedisScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(code.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error && err.message.startsWith("NOSCRIPT"))) throw err;
    return await redis.eval(code.lua, keys.length, ...keys, ...args);
  }
}
