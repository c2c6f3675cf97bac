/**
 * The Lua of the Redis Presence engine: the steps of engines/memory/presence.ts
 * (lapse the user's expired connections, apply the call, report the effective
 * status if it differs from what others last saw), each call one atomic script.
 *
 * Keys of one user, all under their shard's hash tag `{pN}`:
 *   <base>u:<userId>  hash   req (requested status), shown (last reported), last (lastActiveAt)
 *   <base>c:<userId>  zset   connectionId → expiresAt
 *   <base>due         zset   userId → their earliest expiresAt; only users with connections
 * where <base> = <prefix>presence:{pN}:. `due` is what makes sweep O(expired):
 * every script leaves it exact for the user it touched.
 *
 * Times are the caller's clock, passed as strings and stored as given, so a
 * millisecond timestamp round-trips exactly. Redis' own key expiry uses only
 * durations (`retain`), never those absolute times, so it is immune to skew.
 */

/** Functions every script starts with. */
const COMMON = `
local function record(user, at)
  if redis.call('EXISTS', user) == 0 then
    redis.call('HSET', user, 'req', 'online', 'shown', 'offline', 'last', at)
  end
end

local function lapse(conns, now)
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
end

-- Activity while invisible does not count: an invisible user looks like
-- someone who left when they went invisible.
local function mark_active(user, at)
  local fields = redis.call('HMGET', user, 'req', 'last')
  if fields[1] ~= 'invisible' and tonumber(at) > tonumber(fields[2]) then
    redis.call('HSET', user, 'last', at)
  end
end

-- {status, lastActiveAt} when the status others see changed, else false (nil).
local function settle(user, conns)
  local fields = redis.call('HMGET', user, 'req', 'shown', 'last')
  local status = fields[1]
  if status == 'invisible' or redis.call('EXISTS', conns) == 0 then status = 'offline' end
  if status == fields[2] then return false end
  redis.call('HSET', user, 'shown', status)
  return {status, fields[3]}
end

local function index(due, conns, user_id)
  local first = redis.call('ZRANGE', conns, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', due, first[2], user_id)
  else
    redis.call('ZREM', due, user_id)
  end
end

-- Records of users not seen for retain ms go (with their lastActiveAt).
local function keep(retain, user, conns, due)
  redis.call('PEXPIRE', user, retain)
  redis.call('PEXPIRE', conns, retain)
  redis.call('PEXPIRE', due, retain)
end
`;

/** KEYS user, conns, due; ARGV userId, connectionId, at, expiresAt, retain. */
export const CONNECT =
  COMMON +
  `
local user, conns, due = KEYS[1], KEYS[2], KEYS[3]
record(user, ARGV[3])
lapse(conns, ARGV[3])
redis.call('ZADD', conns, ARGV[4], ARGV[2])
mark_active(user, ARGV[3])
local change = settle(user, conns)
index(due, conns, ARGV[1])
keep(ARGV[5], user, conns, due)
return change
`;

/**
 * KEYS user, conns, due; ARGV userId, connectionId, at, expiresAt, retain.
 * A connection not held (gone, or never seen) is left alone: bringing it back
 * would be a change, which touch may not report. A lapsed but unswept one revives.
 */
export const TOUCH =
  COMMON +
  `
local user, conns, due = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', user) == 0 or not redis.call('ZSCORE', conns, ARGV[2]) then return false end
redis.call('ZADD', conns, 'XX', ARGV[4], ARGV[2])
mark_active(user, ARGV[3])
index(due, conns, ARGV[1])
keep(ARGV[5], user, conns, due)
return false
`;

/**
 * KEYS user, conns, due; ARGV userId, status, at, retain. Marks activity on
 * both sides of the switch: going invisible is the last visible activity,
 * coming back the first.
 */
export const SET_STATUS =
  COMMON +
  `
local user, conns, due = KEYS[1], KEYS[2], KEYS[3]
record(user, ARGV[3])
lapse(conns, ARGV[3])
mark_active(user, ARGV[3])
redis.call('HSET', user, 'req', ARGV[2])
mark_active(user, ARGV[3])
local change = settle(user, conns)
index(due, conns, ARGV[1])
keep(ARGV[4], user, conns, due)
return change
`;

/** KEYS user, conns, due; ARGV userId, connectionId, at, retain. */
export const DISCONNECT =
  COMMON +
  `
local user, conns, due = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', user) == 0 then return false end
if redis.call('ZREM', conns, ARGV[2]) == 1 then mark_active(user, ARGV[3]) end
lapse(conns, ARGV[3])
local change = settle(user, conns)
index(due, conns, ARGV[1])
keep(ARGV[4], user, conns, due)
return change
`;

/**
 * KEYS due; ARGV now, limit, key base of the shard. Settles at most `limit`
 * users whose earliest connection expired; answers {users looked at,
 * {userId, status, lastActiveAt, ...}}. The user keys are built here rather
 * than passed, as they are only known from `due`; they share its hash tag, so
 * this stays a one-slot script under Redis Cluster.
 */
export const SWEEP =
  COMMON +
  `
local due, base = KEYS[1], ARGV[3]
local users = redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local changes = {}
for _, user_id in ipairs(users) do
  local user, conns = base .. 'u:' .. user_id, base .. 'c:' .. user_id
  lapse(conns, ARGV[1])
  if redis.call('EXISTS', user) == 1 then
    local change = settle(user, conns)
    if change then
      changes[#changes + 1] = user_id
      changes[#changes + 1] = change[1]
      changes[#changes + 1] = change[2]
    end
  end
  index(due, conns, user_id)
end
return {#users, changes}
`;
